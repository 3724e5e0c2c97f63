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
use std::time::{Duration, Instant};

use bytes::BytesMut;
use roost_codec::ReasonCode;
use roost_session::{Delivery, Violation};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use roost_hooks::ClientInfo;

use super::connect::{Attached, will_of};
use super::events::deliver;
use super::inbound::{Flow, Inputs, StoreWaits, handle_packet};
use super::io::Outgoing;
use crate::clock::{credentials_deadline, earliest};
use crate::core::Core;
use crate::hibernate::{Dormant, Hibernated};
use crate::link::Control;
use crate::link::{ControlReceiver, Heard};
use crate::slot::{SessionKey, SessionSlot};
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

/// What a connected client keeps for as long as it is connected: all that
/// survives a hibernation (`hibernate.rs` keeps it in a more compact form).
pub(crate) struct Connected {
    pub(crate) session: roost_session::Session,
    pub(crate) slot: Arc<SessionSlot>,
    pub(crate) connection_id: u64,
    pub(crate) control: ControlReceiver,
    pub(crate) decoder: roost_codec::Decoder,
    pub(crate) client: Arc<ClientInfo>,
    /// `None`: the default grant (most clients).
    pub(crate) grant: Option<Box<Grant>>,
    /// Drops of the session already counted in the broker's statistics.
    pub(crate) drops_seen: u64,
    /// When the client's credentials expire (e.g. a JWT's `exp`).
    pub(crate) credentials_expire: Option<tokio::time::Instant>,
}

/// How a connection's task begins.
pub(crate) enum Start {
    /// Just attached: CONNACK first.
    Fresh(Box<Attached>),
    /// Woken from hibernation.
    Resumed(Box<Connected>),
}

/// Why the loop stopped.
enum Exit {
    End(Ending),
    /// Idle: hand the connection to the dormitory.
    Hibernate,
}

/// Drives a connected client until the connection ends (then detaches it) or
/// hibernates (then returns what the dormitory keeps, without its ticket).
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
    start: Start,
    mut stream: S,
    mut rbuf: BytesMut,
) -> impl std::future::Future<Output = Option<Box<Hibernated>>> + 'a
where
    S: AsyncRead + AsyncWrite + Dormant + Unpin + 'a,
{
    async move {
        let (fresh, conn) = match start {
            Start::Fresh(attached) => (true, connected(core, attached)),
            Start::Resumed(conn) => (false, conn),
        };
        // Moved out in a block of its own, so the box is freed now rather than
        // when this (connection-long) function returns.
        let conn = {
            let boxed = conn;
            *boxed
        };
        let Connected {
            mut session,
            slot,
            connection_id,
            control,
            mut decoder,
            client,
            grant,
            mut drops_seen,
            credentials_expire,
        } = conn;
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
        if fresh && !queue_connack(&mut session, &mut out) {
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
            return None;
        }

        // Deliveries that arrived while attaching (or while hibernating).
        let pause_at = core.config.limits.pause_at();
        // Whether this driver told its slot it leaves deliveries there
        // because its client is behind (back-pressure, `credit.rs`).
        let mut output_full = false;
        slot.drain_outbox(&mut batch, pause_at, false);
        for d in batch.drain(..) {
            deliver(core, &mut session, d, now);
        }

        let exit = {
            // Packets that arrived in the same read as CONNECT are already
            // buffered: handle them now instead of waiting for more bytes.
            let inputs = Inputs {
                core,
                key: &key,
                client: &client,
                grant: grant.as_deref().unwrap_or(&NO_GRANT),
                authz: Default::default(),
                credit: Default::default(),
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
            // After this long without traffic the connection hibernates, if
            // its transport can (plain TCP) and the dormitory is there.
            let hibernate_after = core
                .dormitory()
                .filter(|_| stream.can_hibernate())
                .map(|_| Duration::from_millis(core.config.limits.hibernate_after_ms));
            let mut last_active = now;
            let mut timer_turn = false;
            let mut hibernate_at =
                hibernate_after.map(|after| tokio::time::Instant::from_std(now + after));
            // One timer for the keep-alive deadline, the credentials' expiry
            // and hibernation, re-armed in place when the deadline moves.
            let timer = tokio::time::sleep(TIMER_IDLE);
            tokio::pin!(timer);
            // Shutdown reaches a driver as a command to its slot's link, sent
            // after the flag is set: a driver that reads the flag as unset had
            // its link in place already, so the command reaches it (no watch
            // receiver and its 136-byte wait in every connection's future).
            let already_down = core.shutting_down();
            // The doorbell (commands and deliveries, see `control.rs`) is
            // waited on across the loop's turns: a wait that stays pending
            // stays registered, instead of joining and leaving the `Notify`'s
            // waiter list (a lock each way) on every turn.
            let doorbell = control.doorbell();
            tokio::pin!(doorbell);

            if let Some(ending) = early {
                Exit::End(ending)
            } else if already_down {
                Exit::End(Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, None))
            } else {
                loop {
                    let now = Instant::now();
                    if !timer_turn {
                        last_active = now;
                    }
                    timer_turn = false;
                    // Every turn, so that a busy socket cannot hold a command
                    // back (a lock-free check unless one was sent).
                    match control.take() {
                        Heard::Command(Control::Takeover) => break Exit::End(Ending::TakenOver),
                        Heard::Command(Control::Close(reason)) => {
                            break Exit::End(Ending::Closed(reason, None));
                        }
                        Heard::Closed => {
                            break Exit::End(Ending::Closed(
                                ReasonCode::SERVER_SHUTTING_DOWN,
                                None,
                            ));
                        }
                        Heard::Nothing => {}
                    }
                    // Back-pressure (issue 21): a pause that ended left
                    // packets in the read buffer; handle them before reading.
                    if inputs.credit.take_unread()
                        && let Some(ending) = Box::pin(handle_buffered(
                            &inputs,
                            &mut session,
                            &mut exchange,
                            &mut decoder,
                            &mut rbuf,
                        ))
                        .await
                    {
                        break Exit::End(ending);
                    }
                    if out.pending() < OUTPUT_HIGH_WATER
                        && super::backpressure::may_take(&session, pause_at)
                    {
                        // Take what is already waiting (e.g. this client's own
                        // messages routed back to it) so it goes out in this write,
                        // in order with the acknowledgements just queued.
                        slot.drain_outbox(&mut batch, pause_at, out.is_empty());
                        output_full = false;
                        for d in batch.drain(..) {
                            deliver(core, &mut session, d, now);
                        }
                    } else if pause_at > 0 && !output_full {
                        // Back-pressure: the client is behind; publishers
                        // waiting on this outbox may give up on it.
                        slot.output_full();
                        output_full = true;
                    }
                    core.sync_session_drops(&slot, &mut drops_seen, &session);
                    crate::persist::flush_events(core.persist(), &mut session).await;
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
                        earliest(
                            session.poll_timeout().map(tokio::time::Instant::from_std),
                            credentials_expire,
                        ),
                        earliest(hibernate_at, inputs.credit.deadline()),
                    );
                    if let Some(wake) = wake
                        && wake != timer.deadline()
                    {
                        timer.as_mut().reset(wake);
                    }
                    // An idle connection (small reads, nothing buffered) reads into
                    // the stack first (see `socket_turn`) and holds no read buffer.
                    let idle = next_read == IDLE_READ && rbuf.is_empty();
                    if !idle && rbuf.capacity() - rbuf.len() < next_read / 2 {
                        rbuf.reserve(next_read);
                    }

                    tokio::select! {
                        biased;
                        io = socket_turn(&mut stream, &out, &mut rbuf, !inputs.credit.is_paused()) => match io {
                            Io::Wrote(Ok(0) | Err(_)) | Io::Read(Ok(0) | Err(_)) => break Exit::End(Ending::Lost),
                            Io::Wrote(Ok(n)) => out.advance(n),
                            Io::Read(Ok(n)) => {
                                // Adapt the next read to the traffic: double while reads
                                // fill the buffer, fall back to a small one when they do not.
                                next_read = if n >= next_read { (next_read * 2).min(READ_CHUNK) } else { IDLE_READ.max(n.next_power_of_two()) };
                                // Boxed while it runs: the packet handlers' state is
                                // large and an idle connection should not carry it.
                                if let Some(ending) = Box::pin(handle_buffered(&inputs, &mut session, &mut exchange, &mut decoder, &mut rbuf)).await {
                                    break Exit::End(ending);
                                }
                                if pause_at > 0 && n >= READ_CHUNK {
                                    // Back-pressure: after a full read, let the other
                                    // connections (the subscribers draining what this
                                    // one routed) run before reading again; tokio's
                                    // budget would allow 128 reads (8 MiB) in one poll.
                                    tokio::task::yield_now().await;
                                }
                                if rbuf.is_empty() {
                                    // Hold no read buffer between bursts: the decoded
                                    // packets own their slices, the rest is released.
                                    rbuf = BytesMut::new();
                                }
                            }
                        },
                        // A command or deliveries: the top of the loop acts on
                        // both (deliveries once the output is below its high
                        // water; the slot rings only when its outbox was empty,
                        // so a ring while it is above is not needed again).
                        () = &mut doorbell => doorbell.set(control.doorbell()),
                        // Back-pressure: the outbox this connection waits for
                        // was drained (the top of the loop resumes it).
                        () = inputs.credit.room(core), if inputs.credit.is_paused() => {}
                        () = &mut timer, if wake.is_some() => {
                            timer_turn = true;
                            inputs.credit.expire(core);
                            if credentials_expire.is_some_and(|at| at <= tokio::time::Instant::now()) {
                                tracing::info!(client_id = %client.client_id, "credentials expired; closing");
                                break Exit::End(Ending::Closed(ReasonCode::MAXIMUM_CONNECT_TIME, None));
                            }
                            if let Err(violation) = session.handle_timeout(Instant::now()) {
                                break Exit::End(violation_ending(&violation, session.client_id()));
                            }
                            if let (Some(at), Some(after)) = (hibernate_at, hibernate_after)
                                && at <= tokio::time::Instant::now()
                            {
                                let now = Instant::now();
                                let quiet = out.is_empty()
                                    && rbuf.is_empty()
                                    && exchange.is_none()
                                    && session.transmit_len() == 0
                                    && !slot.has_outbox()
                                    && !core.shutting_down();
                                if quiet && last_active + after <= now {
                                    break Exit::Hibernate;
                                }
                                let next = if quiet { last_active + after } else { now + after };
                                hibernate_at = Some(tokio::time::Instant::from_std(next));
                            }
                        },
                    }
                }
            }
        };

        // Called once, on the way out: what the connection keeps goes
        // straight into a box (hibernation) or into the boxed closing future,
        // and is never a local beside them in this future.
        let into_conn = move || Connected {
            session,
            slot,
            connection_id,
            control,
            decoder,
            client,
            grant,
            drops_seen,
            credentials_expire,
        };
        match exit {
            Exit::End(ending) => {
                let closed_by_us = Box::pin(end_connection(
                    core,
                    into_conn(),
                    ending,
                    &mut out,
                    &mut stream,
                ))
                .await;
                // The session is detached already: only the socket lingers
                // (see `linger.rs`), so the client reads the reason before
                // the socket goes. Not at shutdown: the broker's wait for its
                // connections to end is bounded and the process goes away.
                if closed_by_us && !core.shutting_down() {
                    Box::pin(super::linger::drain(&mut stream)).await;
                }
                None
            }
            Exit::Hibernate => match stream.into_std() {
                Ok(stream) => Some(super::sleep::hibernated(core, into_conn(), stream)),
                Err(e) => {
                    // (`connection_id` is a copy: the closure holds the original.)
                    tracing::warn!(connection_id, error = %e, "could not hand the socket to the dormitory; closing");
                    let mut gone = tokio::io::sink();
                    Box::pin(end_connection(
                        core,
                        into_conn(),
                        Ending::Lost,
                        &mut out,
                        &mut gone,
                    ))
                    .await;
                    None
                }
            },
        }
    }
}

/// Turns a freshly attached client into its connected state.
fn connected(core: &Core, attached: Box<Attached>) -> Box<Connected> {
    let Attached {
        session,
        slot,
        connection_id,
        control,
        mut decoder,
        client,
        grant,
    } = *attached;
    // Drops the session itself makes (queue full, expired, too large for the
    // client) are counted from here on; earlier ones were counted already.
    let drops_seen = session.stats().dropped.total();
    decoder.set_max_packet_size(core.config.mqtt.max_packet_size);
    let credentials_expire = credentials_deadline(Some(&grant));
    Box::new(Connected {
        session,
        slot,
        connection_id,
        control,
        decoder,
        client,
        grant: boxed_unless_default(grant),
        drops_seen,
        credentials_expire,
    })
}

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
    crate::persist::flush_events(core.persist(), &mut session).await;
    super::oplog::disconnected(&client, &ending);
    core.ext
        .notify(|h| h.on_disconnect(&client, disconnect_cause(&ending)));
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

/// One turn of the socket: writes pending output when it can, otherwise
/// reads. Reads and writes share the one stream, so no split (and no lock
/// per poll) is needed.
fn socket_turn<'a, S: AsyncRead + AsyncWrite + Unpin>(
    stream: &'a mut S,
    out: &'a Outgoing,
    rbuf: &'a mut BytesMut,
    may_read: bool,
) -> impl std::future::Future<Output = Io> + 'a {
    std::future::poll_fn(move |cx| {
        if !out.is_empty()
            && let Poll::Ready(written) = out.poll_write_some(Pin::new(&mut *stream), cx)
        {
            return Poll::Ready(Io::Wrote(written));
        }
        if !may_read {
            // Paused by back-pressure: TCP holds the publisher back.
            return Poll::Pending;
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
                    Ok(Flow::Continue) if inputs.credit.is_paused() => {
                        // Back-pressure: the rest waits in the buffer.
                        inputs.credit.left_unread();
                        break None;
                    }
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
/// will, and detaches the session. True when the broker closed with a
/// reason and its output (that DISCONNECT included) went out in full, the
/// write side shut down: the connection may linger then.
async fn finish<W: AsyncWrite + Unpin>(
    core: &Arc<Core>,
    mut session: roost_session::Session,
    slot: &Arc<crate::slot::SessionSlot>,
    connection_id: u64,
    ending: Ending,
    out: &mut Outgoing,
    writer: &mut W,
) -> bool {
    let now = Instant::now();
    let mut flushed = false;
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
                    Ok(0) | Err(_) => return false,
                    Ok(n) => out.advance(n),
                }
            }
            writer.shutdown().await.is_ok()
        };
        // A client that did not take our output in time is not reading: it
        // would not read the reason either, so it gets no lingering.
        flushed = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush)
            .await
            .unwrap_or(false);
    } else if matches!(ending, Ending::Disconnect { .. }) {
        // The client said goodbye: close our side cleanly too. Over TLS that
        // is a close_notify (without it a client sees a truncation, not an
        // end of stream), over WebSocket a close frame; plain TCP a FIN.
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer.shutdown()).await;
    }
    let will = match ending {
        Ending::Disconnect {
            publish_will: false,
        } => None,
        _ => will_of(&session, now),
    };
    let will = if matches!(ending, Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, _))
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
    };
    tracing::debug!(client_id = %session.client_id(), ?ending, "connection closed");
    let state = session.into_state();
    core.detach(slot, connection_id, state, will, now);
    flushed
}
