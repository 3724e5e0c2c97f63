//! How a connected client's connection ends: the hooks and the operator's
//! log hear why, the last packets (and a closing DISCONNECT) are flushed, the
//! will is published or handed over, and the session is detached from its
//! slot (parked, or gone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roost_codec::ReasonCode;
use roost_session::Session;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::connect::will_of;
use super::connection::{Connected, Ending};
use super::io::Outgoing;
use crate::core::Core;
use crate::slot::SessionSlot;

/// How long a closing connection may take to flush its last packets.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Ends a connection: counts the session's last drops, flushes its store
/// events, tells the hooks, then closes and detaches (see [`finish`]).
/// True when the broker closed with a reason it wrote out in full: the
/// caller lingers then (see `linger.rs`).
pub(crate) async fn end_connection<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    conn: Connected,
    ending: Ending,
    out: &mut Outgoing,
    writer: &mut W,
) -> bool {
    let Connected {
        mut session,
        slot,
        connection_id,
        client,
        mut drops_seen,
        ..
    } = conn;
    core.sync_session_drops(&slot, &mut drops_seen, &session);
    core.flush_events(&mut session).await;
    super::oplog::disconnected(&client, &ending);
    core.ext
        .notify(|h| h.on_disconnect(&client, ending.cause()));
    Box::pin(finish(
        core,
        session,
        &slot,
        connection_id,
        ending,
        out,
        writer,
    ))
    .await
}

/// Sends the closing DISCONNECT (5.0), flushes, publishes or hands over the
/// will, and detaches the session. True when the broker closed with a
/// reason and its output (that DISCONNECT included) went out in full, the
/// write side shut down: the connection may linger then.
pub(crate) async fn finish<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    mut session: Session,
    slot: &Arc<SessionSlot>,
    connection_id: u64,
    ending: Ending,
    out: &mut Outgoing,
    writer: &mut W,
) -> bool {
    let now = Instant::now();
    let mut flushed = false;
    if let Some((reason, reason_string)) = ending.close_reason() {
        queue_disconnect(&mut session, out, reason, reason_string, now);
        // A client that did not take our output in time is not reading: it
        // would not read the reason either, so it gets no lingering.
        flushed = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush(out, writer))
            .await
            .unwrap_or(false);
    } else if matches!(ending, Ending::Disconnect { .. }) {
        // The client said goodbye: close our side cleanly too. Over TLS that
        // is a close_notify (without it a client sees a truncation, not an
        // end of stream), over WebSocket a close frame; plain TCP a FIN.
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer.shutdown()).await;
    }
    let will = last_will(core, &session, &ending, now);
    tracing::debug!(client_id = %session.client_id(), ?ending, "connection closed");
    let state = session.into_state();
    core.detach(slot, connection_id, state, will, now);
    flushed
}

/// Queues what the session still has to send, then the closing DISCONNECT
/// (5.0): a CONNACK must precede any DISCONNECT [MQTT-3.14.0-1], acks keep
/// their order.
fn queue_disconnect(
    session: &mut Session,
    out: &mut Outgoing,
    reason: ReasonCode,
    reason_string: Option<&str>,
    now: Instant,
) {
    let encoder = session.encoder();
    while let Some(packet) = session.poll_transmit(now) {
        out.push(&encoder, &packet);
    }
    if let Some(packet) = session.close(reason, reason_string, None) {
        out.push(&session.encoder(), &packet);
    }
    out.prepare();
}

/// Writes all of `out`, then shuts the write side down; false when the
/// peer is gone first.
async fn flush<W: AsyncWrite + Unpin>(out: &mut Outgoing, writer: &mut W) -> bool {
    while !out.is_empty() {
        match out.write_some(writer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => out.advance(n),
        }
    }
    writer.shutdown().await.is_ok()
}

/// The will to publish (with its delay), if the ending leaves one.
fn last_will(
    core: &Core,
    session: &Session,
    ending: &Ending,
    now: Instant,
) -> Option<(roost_session::Message, u32)> {
    let will = match ending {
        Ending::Disconnect {
            publish_will: false,
        } => None,
        _ => will_of(session, now),
    };
    if matches!(ending, Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, _))
        && core.persist().is_none()
    {
        // The broker is going away and keeps nothing: a delayed will could
        // never fire, send it now. With a store the session parks as on any
        // disconnect, its will and disconnect time are stored, and the will
        // fires after the restart only if the client stays away for the
        // rest of its delay (docs/persistence.md, "Graceful shutdown").
        will.map(|(m, _)| (m, 0))
    } else {
        will
    }
}
