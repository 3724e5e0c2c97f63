//! The driver's side of hibernation (`crate::hibernate`): packing an idle
//! connection into its [`Hibernated`] box, handing it to the dormitory, and
//! giving a woken one a task again.

use std::sync::Arc;

use bytes::BytesMut;
use roost_codec::Decoder;
use tokio::sync::watch;

use super::io::Outgoing;
use super::run::{self, Connected, Ending, Start};
use crate::admission::ConnectionPermit;
use crate::clock::credentials_deadline;
use crate::core::Core;
use crate::hibernate::{Dozing, Hibernated, Host};
use crate::metrics::Metrics;

/// What `conn` keeps while it sleeps on `stream`. Its session's drops are
/// counted first: a sleeping session drops nothing (a delivery wakes it),
/// so on waking every drop it reports has been counted.
pub(crate) fn hibernated(
    core: &Core,
    conn: Connected,
    stream: std::net::TcpStream,
) -> Box<Hibernated> {
    let Connected {
        session,
        slot,
        connection_id,
        control,
        decoder: _,
        client,
        grant,
        mut drops_seen,
        credentials_expire: _,
    } = conn;
    core.sync_session_drops(&slot, &mut drops_seen, &session);
    Box::new(Hibernated {
        id: 0,
        session: Dozing::new(session),
        slot,
        connection_id,
        control,
        client,
        grant,
        stream,
        ticket: None,
    })
}

/// The connection awake, with its socket and its ticket.
fn woken(
    core: &Core,
    hibernated: Hibernated,
) -> (
    Box<Connected>,
    std::net::TcpStream,
    Option<ConnectionPermit>,
) {
    let Hibernated {
        id: _,
        session,
        slot,
        connection_id,
        control,
        client,
        grant,
        stream,
        ticket,
    } = hibernated;
    let session = session.wake(&slot.client_id);
    // As `run::connected` set it up.
    let decoder = Decoder::server_resumed(session.version(), core.config.mqtt.max_packet_size);
    let conn = Connected {
        drops_seen: session.stats().dropped.total(),
        credentials_expire: credentials_deadline(grant.as_deref()),
        session,
        slot,
        connection_id,
        control,
        decoder,
        client,
        grant,
    };
    (Box::new(conn), stream, ticket)
}

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

/// Starts watching hibernating connections (a task that ends with the runtime).
pub(crate) fn start_dormitory(core: &Arc<Core>) {
    if let Some(dormitory) = core.dormitory_built() {
        tokio::spawn(Arc::clone(dormitory).watch(Arc::clone(core)));
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
                Box::pin(run::end_connection(
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

/// After a connection's task: it ended (its ticket goes), or it hibernates
/// (the ticket goes with it).
pub(crate) fn after_run(
    core: &Arc<Core>,
    next: Option<Box<Hibernated>>,
    ticket: Option<ConnectionPermit>,
) {
    let Some(mut hibernated) = next else {
        drop(ticket);
        return;
    };
    hibernated.ticket = ticket;
    match core.dormitory() {
        Some(dormitory) => dormitory.admit(hibernated),
        // The dormitory stopped since the connection chose to hibernate.
        None => Core::resume(core, *hibernated),
    }
}
