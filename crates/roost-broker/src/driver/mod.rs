//! The per-connection task: transport ↔ codec ↔ session ↔ outbox. A thin
//! loop in the quinn style: feed inputs to the sans-IO session, drain its
//! output, re-arm its timer. One file per phase.

mod authz;
mod connect;
mod events;
mod inbound;
mod io;
mod run;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::ListenerConfig;
use crate::core::Core;
use crate::metrics::Metrics;
use crate::transport::ConnectionInfo;

pub(crate) use events::enqueue_offline;

/// Serves one accepted connection until it closes. `info` is what the
/// transport learnt (peer address, TLS identity).
pub(crate) async fn serve<S>(
    core: Arc<Core>,
    listener: Arc<ListenerConfig>,
    stream: S,
    info: ConnectionInfo,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::new();
    let peer = info.peer;
    match connect::handshake(&core, &listener, &info, &mut reader, &mut writer, &mut rbuf).await {
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
