//! The connected phase: one select loop over the socket (reads and writes in
//! one readiness-driven future on the unsplit stream), the outbox doorbell,
//! one timer and control commands (shutdown is one of them:
//! [`Core::begin_shutdown`]).
//!
//! This future is what an idle connection costs, so it is kept small: the
//! state that only exists while packets are being handled (the packet
//! handlers' futures, the closing flush) is boxed for the moment it runs,
//! and one timer is re-armed in place instead of a new one per turn.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;
use roost_codec::ReasonCode;
use roost_session::{Delivery, Violation};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::connect::{Attached, will_of};
use super::events::deliver;
use super::inbound::{Flow, Inputs, StoreWaits, handle_packet};
use super::io::Outgoing;
use crate::core::Core;
use crate::slot::{Control, SessionKey};
use roost_hooks::{AuthExchange, DisconnectCause, Grant};

/// Read at least this much per read call.
const READ_CHUNK: usize = 64 * 1024;
/// What an idle connection reserves for its next read: small, so thousands of
/// idle clients hold almost nothing; it doubles while reads fill it.
const IDLE_READ: usize = 128;
/// Stop taking deliveries from the outbox while this much output is unwritten.
const OUTPUT_HIGH_WATER: usize = 1024 * 1024;
/// How long a closing connection may take to flush its last packets.
const CLOSE_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Where the timer rests while nothing is due (re-armed before it matters).
const TIMER_IDLE: std::time::Duration = std::time::Duration::from_secs(86_400 * 365);

/// The grant of clients whose authentication granted nothing special.
static NO_GRANT: LazyLock<Grant> = LazyLock::new(Grant::default);

/// How the connection ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The client sent DISCONNECT.
    Disconnect { publish_will: bool },
    /// The socket closed or failed without DISCONNECT.
    Lost,
    /// We closed it because the client broke the protocol.
    Violation(ReasonCode),
    /// Another connection took the client id over.
    TakenOver,
    /// Administrative close, shutdown, or a refusal (with the hook's Reason
    /// String, if any).
    Closed(ReasonCode, Option<Box<str>>),
}

/// What the socket did in one turn.
enum Io {
    /// Bytes were written (0 = the peer is gone).
    Wrote(std::io::Result<usize>),
    /// Bytes were read into the read buffer (0 = end of stream).
    Read(std::io::Result<usize>),
}

/// Drives a connected client until the connection ends, then detaches it.
///
/// Not an `async fn`: its arguments would be copied into locals of the
/// future (an `async fn` keeps both), and this future lives as long as the
/// connection. The block below captures them and uses them in place.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in the connection-long future"
)]
pub(crate) fn run<'a, S>(
    core: &'a Arc<Core>,
    attached: Box<Attached>,
    mut stream: S,
    mut rbuf: BytesMut,
) -> impl std::future::Future<Output = ()> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    async move {
        // Moved out in a block of its own, so the box is freed now rather than
        // when this (connection-long) function returns.
        let attached = {
            let boxed = attached;
            *boxed
        };
        let Attached {
            mut session,
            slot,
            connection_id,
            mut control,
            mut decoder,
            auth_method,
            client,
            grant,
        } = attached;
        let grant = boxed_unless_default(grant);
        // Drops the session itself makes (queue full, expired, too large for the
        // client) are counted from here on; earlier ones were counted already.
        let mut drops_seen = session.stats().dropped.total();
        decoder.set_max_packet_size(core.config.mqtt.max_packet_size);
        let key = SessionKey(Arc::clone(&slot));
        let mut out = Outgoing::default();
        let mut batch: VecDeque<Delivery> = VecDeque::new();
        let mut exchange = None;
        let mut next_read = IDLE_READ;

        // CONNACK is the session's first packet. A client whose Maximum Packet
        // Size cannot hold it cannot be served: close without sending anything
        // (nothing larger than that size [MQTT-3.1.2-24], and no DISCONNECT
        // before a CONNACK [MQTT-3.14.0-1]) rather than leave it waiting.
        let now = Instant::now();
        if !queue_connack(&mut session, &mut out) {
            tracing::info!(client_id = %session.client_id(), "CONNACK exceeds the client's Maximum Packet Size; closing");
            Box::pin(finish(
                core,
                session,
                &slot,
                connection_id,
                Ending::Lost,
                &mut out,
                &mut stream,
            ))
            .await;
            return;
        }

        // Deliveries that arrived while attaching.
        slot.drain_outbox(&mut batch);
        for d in batch.drain(..) {
            deliver(core, &mut session, d, now);
        }

        // Packets that arrived in the same read as CONNECT are already buffered:
        // handle them now instead of waiting for more bytes.
        let inputs = Inputs {
            core,
            key: &key,
            client: &client,
            grant: grant.as_deref().unwrap_or(&NO_GRANT),
            auth_method: &auth_method,
            authz: Default::default(),
        };
        let early = if rbuf.is_empty() {
            None
        } else {
            Box::pin(handle_buffered(
                &inputs,
                &mut session,
                &mut exchange,
                &mut decoder,
                &mut rbuf,
            ))
            .await
        };
        if rbuf.is_empty() {
            // The CONNECT read buffer is not kept for the idle wait.
            rbuf = BytesMut::new();
        }
        // Credentials that expire (e.g. a JWT's `exp`) end the connection then (0xA0).
        let credentials_expire = grant.as_ref().and_then(|g| g.expires_at).map(|at| {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        // One timer for the keep-alive deadline and the credentials' expiry,
        // re-armed in place when the deadline moves.
        let timer = tokio::time::sleep(TIMER_IDLE);
        tokio::pin!(timer);
        // Shutdown reaches a driver as a command to its slot's link, sent after
        // the flag is set: a driver that reads the flag as unset had its link
        // in place already, so the command reaches it (no watch receiver and
        // its 136-byte wait in every connection's future).
        let already_down = core.shutting_down();
        // The waits below outlive the loop's turns: a wait that stays pending
        // stays registered, instead of joining and leaving each `Notify`'s
        // waiter list (a lock each way) on every turn. Every command ends the
        // connection, so the command wait never needs renewing.
        let command = control.recv();
        tokio::pin!(command);
        let doorbell = slot.doorbell.notified();
        tokio::pin!(doorbell);

        let ending = if let Some(ending) = early {
            ending
        } else if already_down {
            Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, None)
        } else {
            loop {
                let now = Instant::now();
                if out.pending() < OUTPUT_HIGH_WATER {
                    // Take what is already waiting (e.g. this client's own
                    // messages routed back to it) so it goes out in this write,
                    // in order with the acknowledgements just queued.
                    slot.drain_outbox(&mut batch);
                    for d in batch.drain(..) {
                        deliver(core, &mut session, d, now);
                    }
                }
                core.sync_session_drops(&slot, &mut drops_seen, &session);
                crate::persist::flush_events(core, &mut session).await;
                let encoder = session.encoder();
                while let Some(packet) = session.poll_transmit(now) {
                    if !out.push(&encoder, &packet) {
                        tracing::debug!(client_id = %session.client_id(), "dropped a packet too large for the client");
                    }
                }
                out.prepare();
                if out.is_empty() {
                    // Everything is written: the session's queues need no
                    // memory until the next packet.
                    session.release_idle_memory();
                }
                let wake = earliest(
                    session.poll_timeout().map(tokio::time::Instant::from_std),
                    credentials_expire,
                );
                if let Some(wake) = wake
                    && wake != timer.deadline()
                {
                    timer.as_mut().reset(wake);
                }
                let accept_deliveries = out.pending() < OUTPUT_HIGH_WATER;
                // An idle connection (small reads, nothing buffered) reads into
                // the stack first (see `socket_turn`) and holds no read buffer.
                let idle = next_read == IDLE_READ && rbuf.is_empty();
                if !idle && rbuf.capacity() - rbuf.len() < next_read / 2 {
                    rbuf.reserve(next_read);
                }

                tokio::select! {
                    biased;
                    command = &mut command => match command {
                        Some(Control::Takeover) => break Ending::TakenOver,
                        Some(Control::Close(reason)) => break Ending::Closed(reason, None),
                        None => break Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, None),
                    },
                    io = socket_turn(&mut stream, &out, &mut rbuf) => match io {
                        Io::Wrote(Ok(0) | Err(_)) | Io::Read(Ok(0) | Err(_)) => break Ending::Lost,
                        Io::Wrote(Ok(n)) => out.advance(n),
                        Io::Read(Ok(n)) => {
                            // Adapt the next read to the traffic: double while reads
                            // fill the buffer, fall back to a small one when they do not.
                            next_read = if n >= next_read { (next_read * 2).min(READ_CHUNK) } else { IDLE_READ.max(n.next_power_of_two()) };
                            // Boxed while it runs: the packet handlers' state is
                            // large and an idle connection should not carry it.
                            if let Some(ending) = Box::pin(handle_buffered(&inputs, &mut session, &mut exchange, &mut decoder, &mut rbuf)).await {
                                break ending;
                            }
                            if rbuf.is_empty() {
                                // Hold no read buffer between bursts: the decoded
                                // packets own their slices, the rest is released.
                                rbuf = BytesMut::new();
                            }
                        }
                    },
                    () = &mut doorbell, if accept_deliveries => {
                        doorbell.set(slot.doorbell.notified());
                        let now = Instant::now();
                        slot.drain_outbox(&mut batch);
                        for d in batch.drain(..) {
                            deliver(core, &mut session, d, now);
                        }
                    },
                    () = &mut timer, if wake.is_some() => {
                        if credentials_expire.is_some_and(|at| at <= tokio::time::Instant::now()) {
                            tracing::info!(client_id = %client.client_id, "credentials expired; closing");
                            break Ending::Closed(ReasonCode::MAXIMUM_CONNECT_TIME, None);
                        }
                        if let Err(violation) = session.handle_timeout(Instant::now()) {
                            break violation_ending(&violation, session.client_id());
                        }
                    },
                }
            }
        };

        core.sync_session_drops(&slot, &mut drops_seen, &session);

        crate::persist::flush_events(core, &mut session).await;
        core.ext
            .notify(|h| h.on_disconnect(&client, disconnect_cause(&ending)));
        Box::pin(finish(
            core,
            session,
            &slot,
            connection_id,
            ending,
            &mut out,
            &mut stream,
        ))
        .await;
    }
}

/// Most clients get the default grant: keep a pointer only for the others.
/// A function, not an expression in `run`: comparing borrows the grant, and a
/// local borrowed in an `async` block keeps its room (96 B) in the
/// connection-long future even after it is moved out.
fn boxed_unless_default(grant: Grant) -> Option<Box<Grant>> {
    (grant != Grant::default()).then(|| Box::new(grant))
}

/// Encodes the session's CONNACK; false when the client cannot take it.
fn queue_connack(session: &mut roost_session::Session, out: &mut Outgoing) -> bool {
    match session.poll_transmit(Instant::now()) {
        Some(connack) => out.push(&session.encoder(), &connack),
        None => true,
    }
}

/// The earlier of two optional deadlines.
fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One turn of the socket: writes pending output when it can, otherwise
/// reads. Reads and writes share the one stream, so no split (and no lock
/// per poll) is needed.
fn socket_turn<'a, S: AsyncRead + AsyncWrite + Unpin>(
    stream: &'a mut S,
    out: &'a Outgoing,
    rbuf: &'a mut BytesMut,
) -> impl std::future::Future<Output = Io> + 'a {
    std::future::poll_fn(move |cx| {
        if !out.is_empty()
            && let Poll::Ready(written) = out.poll_write_some(Pin::new(&mut *stream), cx)
        {
            return Poll::Ready(Io::Wrote(written));
        }
        if rbuf.capacity() == 0 {
            // Idle: wait on a stack buffer, so only bytes that arrive get a
            // heap buffer (exactly their size).
            let mut stack = [0u8; IDLE_READ];
            let mut read = ReadBuf::new(&mut stack);
            return Pin::new(&mut *stream).poll_read(cx, &mut read).map(|done| {
                Io::Read(done.map(|()| {
                    rbuf.extend_from_slice(read.filled());
                    read.filled().len()
                }))
            });
        }
        // `read_buf` keeps no state between polls: a fresh one per poll is
        // the same as keeping one.
        let read = std::pin::pin!(stream.read_buf(rbuf));
        read.poll(cx).map(Io::Read)
    })
}

/// Handles every complete packet in `rbuf`; `Some` when the connection ends.
async fn handle_buffered(
    inputs: &Inputs<'_>,
    session: &mut roost_session::Session,
    exchange: &mut Option<Box<dyn AuthExchange>>,
    decoder: &mut roost_codec::Decoder,
    rbuf: &mut BytesMut,
) -> Option<Ending> {
    let now = Instant::now();
    let mut waits = StoreWaits::default();
    let ending = loop {
        match decoder.decode(rbuf) {
            Ok(Some(packet)) => {
                match handle_packet(inputs, session, exchange, &mut waits, packet, now).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Disconnect { publish_will }) => {
                        break Some(Ending::Disconnect { publish_will });
                    }
                    Ok(Flow::Close(reason, reason_string)) => {
                        break Some(Ending::Closed(reason, reason_string));
                    }
                    Err(violation) => {
                        break Some(violation_ending(&violation, session.client_id()));
                    }
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(violation_ending(&Violation::from(e), session.client_id())),
        }
    };
    // Whatever ends this read, acknowledgements queued above leave (now or in
    // the closing flush) only once their messages are stored.
    waits.settle(inputs.core).await;
    ending
}

fn disconnect_cause(ending: &Ending) -> DisconnectCause {
    match ending {
        Ending::Disconnect {
            publish_will: false,
        } => DisconnectCause::Client(ReasonCode::NORMAL_DISCONNECTION),
        Ending::Disconnect { publish_will: true } => {
            DisconnectCause::Client(ReasonCode::DISCONNECT_WITH_WILL)
        }
        Ending::Lost => DisconnectCause::Lost,
        Ending::Violation(rc) | Ending::Closed(rc, _) => DisconnectCause::Server(*rc),
        Ending::TakenOver => DisconnectCause::Server(ReasonCode::SESSION_TAKEN_OVER),
    }
}

fn violation_ending(violation: &Violation, client_id: &str) -> Ending {
    tracing::info!(%client_id, %violation, spec = violation.spec_id().unwrap_or("-"), "closing connection: protocol violation");
    Ending::Violation(violation.reason_code())
}

/// Sends the closing DISCONNECT (5.0), flushes, publishes or hands over the
/// will, and detaches the session.
async fn finish<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    mut session: roost_session::Session,
    slot: &Arc<crate::slot::SessionSlot>,
    connection_id: u64,
    ending: Ending,
    out: &mut Outgoing,
    writer: &mut W,
) {
    let now = Instant::now();
    let (close_reason, reason_string) = match &ending {
        Ending::Violation(rc) => (Some(*rc), None),
        Ending::Closed(rc, reason_string) => (Some(*rc), reason_string.as_deref()),
        Ending::TakenOver => (Some(ReasonCode::SESSION_TAKEN_OVER), None),
        Ending::Disconnect { .. } | Ending::Lost => (None, None),
    };
    if let Some(reason) = close_reason {
        // What the session queued before the close goes out first: a CONNACK
        // must precede any DISCONNECT [MQTT-3.14.0-1], acks keep their order.
        let encoder = session.encoder();
        while let Some(packet) = session.poll_transmit(now) {
            out.push(&encoder, &packet);
        }
        if let Some(packet) = session.close(reason, reason_string, None) {
            out.push(&session.encoder(), &packet);
        }
        out.prepare();
        let flush = async {
            while !out.is_empty() {
                match out.write_some(writer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.advance(n),
                }
            }
            let _ = writer.shutdown().await;
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush).await;
    }
    let will = match ending {
        Ending::Disconnect {
            publish_will: false,
        } => None,
        _ => will_of(&session, now),
    };
    let will = if matches!(ending, Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, _)) {
        // The broker is going away: a delayed will could never fire, send it now.
        will.map(|(m, _)| (m, 0))
    } else {
        will
    };
    tracing::debug!(client_id = %session.client_id(), ?ending, "connection closed");
    let state = session.into_state();
    core.detach(slot, connection_id, state, will, now);
}
