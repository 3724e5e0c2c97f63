//! The per-connection task: transport ↔ codec ↔ session ↔ outbox. A thin
//! loop in the quinn style: feed inputs to the sans-IO session, drain its
//! output, re-arm its timer. One file per phase.

mod connect;
mod inbound;
mod io;
mod run;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::ListenerConfig;
use crate::core::Core;
use crate::metrics::Metrics;

/// Serves one accepted connection until it closes.
pub(crate) async fn serve<S>(core: Arc<Core>, listener: Arc<ListenerConfig>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::new();
    match connect::handshake(&core, &listener, peer, &mut reader, &mut writer, &mut rbuf).await {
        Ok(attached) => {
            tracing::debug!(%peer, client_id = %attached.session.client_id(), "client connected");
            run::run(&core, attached, reader, writer, rbuf).await;
        }
        Err(refused) => {
            Metrics::inc(&core.metrics.connections_refused);
            tracing::debug!(%peer, %refused, "connection refused");
        }
    }
}
