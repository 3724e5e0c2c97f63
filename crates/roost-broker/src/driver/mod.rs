//! The per-connection task: transport ↔ codec ↔ session ↔ outbox. A thin
//! loop in the quinn style: feed inputs to the sans-IO session, drain its
//! output, re-arm its timer. One file per phase.
//!
//! The task's future is what every idle connection costs, so its layout is
//! deliberate: the CONNECT phase runs in a boxed future that is freed once
//! the client is attached, and the connected phase keeps only what lives as
//! long as the connection (see `run.rs`).

mod admin;
mod authz;
pub(crate) mod backpressure;
mod connect;
mod connection;
mod ending;
mod inbound;
mod io;
mod linger;
mod oplog;
mod run;
mod sleep;
mod wake;

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::admission::ConnectionPermit;
use crate::config::ListenerConfig;
use crate::core::Core;
use crate::metrics::Metrics;
use crate::transport::ConnectionInfo;

pub(crate) use sleep::start_dormitory;

/// Serves one accepted connection until it closes. `info` is what the
/// transport learnt (peer address, TLS identity); `ticket`, the listener's
/// admission, is released when the connection ends.
///
/// Not an `async fn`: its arguments would stay in the future for the whole
/// connection. They move into the boxed CONNECT phase instead, and the
/// long-lived future holds the core, that box, then the connected phase.
pub(crate) fn serve<S>(
    core: Arc<Core>,
    listener: Arc<ListenerConfig>,
    stream: S,
    info: ConnectionInfo,
    ticket: Option<ConnectionPermit>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + crate::hibernate::Dormant + Send + Unpin + 'static,
{
    let connecting = Box::pin(connect_phase(Arc::clone(&core), listener, stream, info));
    async move {
        // `let else`, not `if let`: the temporary an `if let` matches on
        // lives to the end of its block, and would keep 56 B beside the
        // connected phase for the whole connection.
        let Some((attached, stream, rbuf)) = connecting.await else {
            if let Some(ticket) = &ticket {
                ticket.refused(crate::listener_stats::Refused::Connect);
            }
            drop(ticket);
            return;
        };
        let next = run::run(&core, connection::Start::Fresh(attached), stream, rbuf).await;
        // Ended: the connection no longer counts against the listener's
        // limits. Hibernating: it still does, the ticket goes with it.
        sleep::after_run(&core, next, ticket);
    }
}

/// Reads and checks CONNECT and attaches the session. Reads and writes are
/// split only for this phase (the CONNECT exchange takes both halves); the
/// stream is whole again for the connected phase.
async fn connect_phase<S>(
    core: Arc<Core>,
    listener: Arc<ListenerConfig>,
    stream: S,
    info: ConnectionInfo,
) -> Option<(Box<connect::Attached>, S, BytesMut)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::new();
    let peer = info.peer;
    let mut seen = connect::Seen::default();
    let handshake = connect::handshake(
        &core,
        &listener,
        &info,
        &mut reader,
        &mut writer,
        &mut rbuf,
        &mut seen,
    );
    match handshake.await {
        Ok(attached) => {
            oplog::connected(&attached.client, &seen);
            crate::sys::events::connected(
                &core,
                &attached.client,
                seen.keep_alive,
                seen.clean_start,
            );
            Some((Box::new(attached), reader.unsplit(writer), rbuf))
        }
        Err(refused) => {
            Metrics::inc(&core.metrics.connections_refused);
            oplog::refused(peer, &listener, &seen, &refused);
            // A refusing CONNACK went out: let the client read it before the
            // socket goes (see `linger.rs`). Not at shutdown: the process is
            // going away, and its wait for connections to end is bounded.
            if matches!(refused, connect::Refused::ConnAck(_)) && !core.shutting_down() {
                Box::pin(linger::close(&mut reader, &mut writer)).await;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::builtin_auth::Builtins;
    use crate::config::Config;
    use crate::extensions::Extensions;
    use crate::transport::PeerAddr;

    /// The most a plain-TCP connection's future may take. Tokio allocates
    /// it whole in the connection's task cell, so every connected client
    /// that is not hibernating pays for it (docs/performance.md, "An idle
    /// connection"): a driver change that keeps more state across its
    /// awaits shows up here first. 1,200 B is what it took before the
    /// driver became a loop over named steps (issue 20); it took 1,112 B
    /// after, 1,136 B with back-pressure's wait (issue 21; test profile,
    /// plain TCP).
    const CONNECTION_FUTURE_BUDGET: usize = 1_200;

    #[tokio::test]
    async fn the_connection_future_stays_within_its_budget() {
        let core = Core::new(
            Config::default(),
            Extensions::default(),
            Builtins::default(),
            None,
        );
        let listener = Arc::new(ListenerConfig::loopback(0));
        let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = bound.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (stream, peer) = bound.accept().await.unwrap();
        let info = ConnectionInfo::new(PeerAddr::Inet(peer), listener.kind);
        let future = serve(core, listener, stream, info, None);
        let size = std::mem::size_of_val(&future);
        println!("connection future: {size} bytes");
        assert!(
            size <= CONNECTION_FUTURE_BUDGET,
            "the connection's future grew to {size} bytes (budget {CONNECTION_FUTURE_BUDGET})"
        );
    }
}
