//! The driver's side of hibernation (`crate::hibernate`): packing an idle
//! connection into its [`Hibernated`] box, handing it to the dormitory, and
//! unpacking a woken one (`wake.rs`, a floor above the loop, gives it a
//! task again).

use std::sync::Arc;

use roost_codec::Decoder;

use super::connection::Connected;
use crate::admission::ConnectionPermit;
use crate::clock::credentials_deadline;
use crate::core::Core;
use crate::hibernate::{Dozing, Hibernated, Host};

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
pub(super) fn woken(
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

/// Starts watching hibernating connections (a task that ends with the runtime).
pub(crate) fn start_dormitory(core: &Arc<Core>) {
    if let Some(dormitory) = core.dormitory_built() {
        tokio::spawn(Arc::clone(dormitory).watch(Arc::clone(core)));
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
