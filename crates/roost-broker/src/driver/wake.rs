//! Waking a hibernated connection: the driver's [`Host`] for the dormitory
//! (`crate::hibernate`). Resuming runs the connection's loop again, so this
//! stands above `run.rs`, and `sleep.rs` (which the loop calls to hibernate)
//! does not import the loop back.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::watch;

use super::connection::{Connected, Ending, Start};
use super::ending::end_connection;
use super::io::Outgoing;
use super::run;
use super::sleep::{after_run, woken};
use crate::admission::ConnectionPermit;
use crate::core::Core;
use crate::hibernate::{Hibernated, Host};
use crate::metrics::Metrics;

impl Host for Core {
    fn resume(core: &Arc<Self>, hibernated: Hibernated) {
        hibernated.control.wake_up();
        let (conn, stream, ticket) = woken(core, hibernated);
        tokio::spawn(awake(Arc::clone(core), conn, stream, ticket));
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn memory_release(&self) -> Option<fn()> {
        self.ext.memory_release
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// The woken connection's task. Not an `async fn`: its arguments are used
/// in place, not copied into locals kept beside the connection's future.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in the connection-long future"
)]
fn awake(
    core: Arc<Core>,
    conn: Box<Connected>,
    stream: std::net::TcpStream,
    ticket: Option<ConnectionPermit>,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                let next = run::run(&core, Start::Resumed(conn), stream, BytesMut::new()).await;
                after_run(&core, next, ticket);
            }
            Err(e) => {
                tracing::warn!(client_id = %conn.client.client_id, error = %e, "cannot wake a hibernated connection; closing");
                let mut gone = tokio::io::sink();
                let mut out = Outgoing::default();
                Box::pin(end_connection(
                    &core,
                    *conn,
                    Ending::Lost,
                    &mut out,
                    &mut gone,
                ))
                .await;
                drop(ticket);
            }
        }
    }
}
