//! The connected phase: one loop over the socket (reads and writes in one
//! readiness-driven future on the unsplit stream), the doorbell (commands
//! and deliveries, `control.rs`), and one timer. Shutdown is one of the
//! commands ([`Core::begin_shutdown`]).
//!
//! [`run`] is the loop and nothing else; every turn is the same named steps
//! of a [`Driver`], in the quinn style: [`Driver::before_wait`] (commands,
//! deliveries, drops), the store flush, [`Driver::queue_output`],
//! [`Driver::arm_timer`], [`Driver::prepare_read`], then the wait, and one
//! of [`Driver::on_written`], [`Driver::on_read`] or [`Driver::on_timer`]
//! for what woke it. How the connection ends is `ending.rs`.
//!
//! This future is what an idle connection costs, so it is kept small: the
//! state that only exists while packets are being handled (the packet
//! handlers' futures, the closing flush) is boxed for the moment it runs,
//! and one timer is re-armed in place instead of a new one per turn.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use roost_codec::ReasonCode;
use roost_hooks::{AuthExchange, ClientInfo, Grant};
use roost_session::{Delivery, Session, Violation};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::connect::Attached;
use super::inbound::{Flow, Inputs, StoreWaits, handle_packet};
use super::io::Outgoing;
use crate::clock::{credentials_deadline, earliest};
use crate::core::Core;
use crate::hibernate::{Dormant, Hibernated};
use crate::link::{Control, ControlReceiver, Heard};
use crate::metrics::Metrics;
use crate::slot::{SessionKey, SessionSlot};

use super::connection::{Connected, Ending, Start};
use super::ending::{end_connection, finish};

/// Read at least this much per read call.
const READ_CHUNK: usize = 64 * 1024;
/// What an idle connection reserves for its next read: small, so thousands of
/// idle clients hold almost nothing; it doubles while reads fill it.
const IDLE_READ: usize = 128;
/// Stop taking deliveries from the outbox while this much output is unwritten.
const OUTPUT_HIGH_WATER: usize = 1024 * 1024;
/// Where the timer rests while nothing is due (re-armed before it matters).
const TIMER_IDLE: Duration = Duration::from_secs(86_400 * 365);

/// The grant of clients whose authentication granted nothing special.
static NO_GRANT: LazyLock<Grant> = LazyLock::new(Grant::default);

/// Why the loop stopped.
pub(crate) enum Exit {
    End(Ending),
    /// Idle: hand the connection to the dormitory.
    Hibernate,
}

/// What the socket did in one turn.
enum Io {
    /// Bytes were written (0 = the peer is gone).
    Wrote(std::io::Result<usize>),
    /// Bytes were read into the read buffer (0 = end of stream).
    Read(std::io::Result<usize>),
}

/// What woke the loop.
enum Woken {
    Socket(Io),
    /// A command or deliveries: the top of the loop acts on both.
    Doorbell,
    /// Back-pressure: the outbox this paused connection waits for was
    /// drained (the top of the loop resumes it).
    Room,
    Timer,
}

/// Who the connection is: what [`Inputs`] borrows for every packet, kept
/// apart from the [`Driver`] that the steps change.
struct Identity {
    /// The session's slot (the registry's entry and the router's key).
    key: SessionKey,
    connection_id: u64,
    client: Arc<ClientInfo>,
    /// `None`: the default grant (most clients).
    grant: Option<Box<Grant>>,
}

/// When an idle connection hibernates.
#[derive(Clone, Copy)]
struct Hibernation {
    /// After this long without traffic (`limits.hibernate_after_ms`).
    after: Duration,
    /// The next check.
    at: tokio::time::Instant,
}

/// The connection's state that the loop's steps change.
struct Driver<'a> {
    core: &'a Arc<Core>,
    session: Session,
    decoder: roost_codec::Decoder,
    /// A re-authentication under way.
    exchange: Option<Box<dyn AuthExchange>>,
    out: Outgoing,
    /// Deliveries taken from the outbox in one go (empty between turns).
    batch: VecDeque<Delivery>,
    rbuf: BytesMut,
    /// How much the next read asks for (see [`Driver::on_read`]).
    next_read: usize,
    /// Drops of the session already counted in the broker's statistics.
    drops_seen: u64,
    /// When the client's credentials expire (e.g. a JWT's `exp`).
    credentials_expire: Option<tokio::time::Instant>,
    /// `None`: this connection does not hibernate (its transport cannot,
    /// or the dormitory is off).
    hibernation: Option<Hibernation>,
    /// The last turn woken by something other than the timer.
    last_active: Instant,
    /// This turn was woken by the timer (which is not activity).
    timer_turn: bool,
    /// Back-pressure: this driver told its slot that it leaves deliveries
    /// in the outbox because its client is behind (`credit.rs`).
    output_full: bool,
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
    rbuf: BytesMut,
) -> impl std::future::Future<Output = Option<Box<Hibernated>>> + 'a
where
    S: AsyncRead + AsyncWrite + Dormant + Unpin + 'a,
{
    async move {
        let hibernates = stream.can_hibernate();
        let (mut driver, who, control, fresh) = Driver::new(core, start, rbuf, hibernates);
        if fresh && !driver.queue_connack() {
            Box::pin(driver.close_unserved(who, &mut stream)).await;
            return None;
        }
        // Deliveries that arrived while attaching (or while hibernating).
        driver.take_deliveries(&who.key.0, Instant::now());
        let exit = 'connected: {
            let inputs = Inputs {
                core,
                key: &who.key,
                client: &who.client,
                grant: who.grant.as_deref().unwrap_or(&NO_GRANT),
                authz: Default::default(),
                credit: Default::default(),
            };
            // Packets that arrived in the same read as CONNECT are already
            // buffered: handle them now instead of waiting for more bytes.
            if !driver.rbuf.is_empty()
                && let ControlFlow::Break(exit) = Box::pin(driver.handle_input(&inputs)).await
            {
                break 'connected exit;
            }
            if let ControlFlow::Break(exit) = driver.on_start() {
                break 'connected exit;
            }
            // One timer for the keep-alive deadline, the credentials' expiry
            // and hibernation, re-armed in place when the deadline moves.
            let timer = tokio::time::sleep(TIMER_IDLE);
            tokio::pin!(timer);
            // The doorbell is waited on across the loop's turns: a wait that
            // stays pending stays registered, instead of joining and leaving
            // the `Notify`'s waiter list (a lock each way) on every turn.
            let doorbell = control.doorbell();
            tokio::pin!(doorbell);
            loop {
                let admin = match driver.before_wait(&control, &who.key.0) {
                    ControlFlow::Break(exit) => break exit,
                    ControlFlow::Continue(admin) => admin,
                };
                // Management API requests (boxed: rare, and their state is
                // not the idle connection's to carry).
                if admin {
                    let answer =
                        super::admin::answer(&inputs, &mut driver.session, who.connection_id);
                    Box::pin(answer).await;
                }
                // Back-pressure: a pause that ended left packets in the
                // read buffer; handle them before reading more.
                if inputs.credit.take_unread()
                    && let ControlFlow::Break(exit) = Box::pin(driver.handle_input(&inputs)).await
                {
                    break exit;
                }
                core.flush_events(&mut driver.session).await;
                driver.queue_output();
                let timed = driver.arm_timer(timer.as_mut(), inputs.credit.deadline());
                driver.prepare_read();
                let paused = inputs.credit.is_paused();
                let woken = tokio::select! {
                    biased;
                    io = socket_turn(&mut stream, &driver.out, &mut driver.rbuf, !paused) => Woken::Socket(io),
                    () = &mut doorbell => Woken::Doorbell,
                    () = inputs.credit.room(core), if paused => Woken::Room,
                    () = &mut timer, if timed => Woken::Timer,
                };
                let step = match woken {
                    Woken::Socket(Io::Wrote(written)) => driver.on_written(written),
                    // Boxed while it runs: the packet handlers' state is
                    // large and an idle connection should not carry it.
                    Woken::Socket(Io::Read(read)) => Box::pin(driver.on_read(&inputs, read)).await,
                    // The top of the loop acts on commands and deliveries
                    // (deliveries once the output is below its high water;
                    // the slot rings only when its outbox was empty, so a
                    // ring while it is above is not needed again).
                    Woken::Doorbell => {
                        doorbell.set(control.doorbell());
                        ControlFlow::Continue(())
                    }
                    Woken::Room => ControlFlow::Continue(()),
                    Woken::Timer => {
                        inputs.credit.expire(core);
                        driver.on_timer(&who.key.0, &who.client)
                    }
                };
                if let ControlFlow::Break(exit) = step {
                    break exit;
                }
            }
        };
        // What the connection keeps goes straight into the boxed closing
        // future (or, through it, into the dormitory's box), never into a
        // local beside them in this future.
        Box::pin(conclude(core, driver, who, control, exit, stream)).await
    }
}

impl<'a> Driver<'a> {
    /// Unpacks how the connection starts into the loop's state, who the
    /// connection is and its control line; true for a fresh attach (the
    /// CONNACK is still to go). The boxes go now, not when the
    /// connection-long future ends.
    fn new(
        core: &'a Arc<Core>,
        start: Start,
        rbuf: BytesMut,
        hibernates: bool,
    ) -> (Self, Identity, ControlReceiver, bool) {
        let (fresh, conn) = match start {
            Start::Fresh(attached) => (true, connected(core, *attached)),
            Start::Resumed(conn) => (false, *conn),
        };
        let Connected {
            session,
            slot,
            connection_id,
            control,
            decoder,
            client,
            grant,
            drops_seen,
            credentials_expire,
        } = conn;
        let now = Instant::now();
        // After this long without traffic the connection hibernates, if its
        // transport can (plain TCP) and the dormitory is there.
        let hibernation = core.dormitory().filter(|_| hibernates).map(|_| {
            let after = Duration::from_millis(core.config.limits.hibernate_after_ms);
            Hibernation {
                after,
                at: tokio::time::Instant::from_std(now + after),
            }
        });
        let driver = Self {
            core,
            session,
            decoder,
            exchange: None,
            out: Outgoing::default(),
            batch: VecDeque::new(),
            rbuf,
            next_read: IDLE_READ,
            drops_seen,
            credentials_expire,
            hibernation,
            last_active: now,
            timer_turn: false,
            output_full: false,
        };
        let who = Identity {
            key: SessionKey(slot),
            connection_id,
            client,
            grant,
        };
        (driver, who, control, fresh)
    }

    /// Encodes the session's CONNACK, its first packet; false when the
    /// client's Maximum Packet Size cannot hold it. Such a client cannot be
    /// served: it is closed without anything sent (nothing larger than that
    /// size [MQTT-3.1.2-24], and no DISCONNECT before a CONNACK
    /// [MQTT-3.14.0-1]) rather than left waiting.
    fn queue_connack(&mut self) -> bool {
        match self.session.poll_transmit(Instant::now()) {
            Some(connack) => self.out.push(&self.session.encoder(), &connack),
            None => true,
        }
    }

    /// Closes a client whose CONNACK does not fit (see [`Self::queue_connack`]).
    async fn close_unserved<S: AsyncWrite + Unpin>(mut self, who: Identity, stream: &mut S) {
        tracing::info!(client_id = %self.session.client_id(), "CONNACK exceeds the client's Maximum Packet Size; closing");
        let slot = who.key.0;
        let ending = Ending::Lost;
        let (core, id) = (self.core, who.connection_id);
        finish(core, self.session, &slot, id, ending, &mut self.out, stream).await;
    }

    /// Takes the deliveries waiting in the slot's outbox into the session
    /// (QoS 0 and what fits the inflight window go out with this turn's
    /// write, the rest is queued).
    fn take_deliveries(&mut self, slot: &SessionSlot, now: Instant) {
        // Back-pressure: wakes the publishers paused on this outbox; with
        // all written (`idle`), a subscriber marked slow has caught up.
        let pause_at = self.core.config.limits.pause_at();
        slot.drain_outbox(&mut self.batch, pause_at, self.out.is_empty());
        self.output_full = false;
        for d in self.batch.drain(..) {
            self.session.handle_delivery(now, d);
        }
    }

    /// Before the first wait: the buffer CONNECT was read into is not kept
    /// for the idle wait, and a broker that is shutting down already closes
    /// the connection. (Shutdown reaches a driver as a command to its slot's
    /// link, sent after the flag is set: a driver that reads the flag as
    /// unset had its link in place already, so the command reaches it,
    /// without a `watch` receiver and its 136-byte wait in every
    /// connection's future.)
    fn on_start(&mut self) -> ControlFlow<Exit> {
        self.release_read_buffer();
        if self.core.shutting_down() {
            let ending = Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, None);
            return ControlFlow::Break(Exit::End(ending));
        }
        ControlFlow::Continue(())
    }

    /// Every turn, before the wait: a command ends the loop (looked at
    /// every turn, so that a busy socket cannot hold one back; lock-free
    /// unless one was sent); deliveries already waiting (e.g. this client's
    /// own messages routed back to it) join this turn's write, in order with
    /// the acknowledgements just queued, unless the output is above its high
    /// water; the session's new drops are counted.
    ///
    /// `Continue(true)`: management API requests wait (`admin.rs`).
    fn before_wait(
        &mut self,
        control: &ControlReceiver,
        slot: &SessionSlot,
    ) -> ControlFlow<Exit, bool> {
        let now = Instant::now();
        if !self.timer_turn {
            self.last_active = now;
        }
        self.timer_turn = false;
        let admin = match control.take() {
            Heard::Command(Control::Takeover) => {
                return ControlFlow::Break(Exit::End(Ending::TakenOver));
            }
            Heard::Command(Control::Close(reason)) => {
                return ControlFlow::Break(Exit::End(Ending::Closed(reason, None)));
            }
            Heard::Closed => {
                let ending = Ending::Closed(ReasonCode::SERVER_SHUTTING_DOWN, None);
                return ControlFlow::Break(Exit::End(ending));
            }
            Heard::Command(Control::Admin) => true,
            Heard::Nothing => false,
        };
        let pause_at = self.core.config.limits.pause_at();
        if self.out.pending() < OUTPUT_HIGH_WATER
            && super::backpressure::may_take(&self.session, pause_at)
        {
            self.take_deliveries(slot, now);
        } else if pause_at > 0 && !self.output_full {
            // Back-pressure: the client is behind; publishers
            // waiting on this outbox may give up on it.
            slot.output_full();
            self.output_full = true;
        }
        let core = self.core;
        core.sync_session_drops(slot, &mut self.drops_seen, &self.session);
        ControlFlow::Continue(admin)
    }

    /// Encodes what the session has to send into the output. With nothing
    /// left unwritten, the session's queues need no memory until the next
    /// packet: they let it go.
    fn queue_output(&mut self) {
        let now = Instant::now();
        let encoder = self.session.encoder();
        while let Some(packet) = self.session.poll_transmit(now) {
            if !self.out.push(&encoder, &packet) {
                tracing::debug!(client_id = %self.session.client_id(), "dropped a packet too large for the client");
            }
        }
        self.out.prepare();
        if self.out.is_empty() {
            self.session.release_idle_memory();
        }
    }

    /// Re-arms the one timer (in place, only when the deadline moved) for
    /// the earliest of the session's deadline (keep-alive), the credentials'
    /// expiry, the hibernation check and the end of a back-pressure pause
    /// (`paused_until`); false when none is due.
    fn arm_timer(
        &self,
        timer: Pin<&mut Sleep>,
        paused_until: Option<tokio::time::Instant>,
    ) -> bool {
        let keep_alive = self
            .session
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        let wake = earliest(
            earliest(keep_alive, self.credentials_expire),
            earliest(self.hibernation.map(|h| h.at), paused_until),
        );
        if let Some(wake) = wake
            && wake != timer.deadline()
        {
            timer.reset(wake);
        }
        wake.is_some()
    }

    /// Makes room for the next read. An idle connection (small reads,
    /// nothing buffered) reads into the stack first (see `socket_turn`) and
    /// holds no read buffer.
    fn prepare_read(&mut self) {
        let idle = self.next_read == IDLE_READ && self.rbuf.is_empty();
        if !idle && self.rbuf.capacity() - self.rbuf.len() < self.next_read / 2 {
            self.rbuf.reserve(self.next_read);
        }
    }

    /// Output went out (nothing written: the peer is gone).
    fn on_written(&mut self, written: std::io::Result<usize>) -> ControlFlow<Exit> {
        match written {
            Ok(0) | Err(_) => ControlFlow::Break(Exit::End(Ending::Lost)),
            Ok(n) => {
                Metrics::add(&self.core.metrics.bytes_sent, n);
                self.out.advance(n);
                ControlFlow::Continue(())
            }
        }
    }

    /// Bytes came in (none: end of stream): the next read adapts to the
    /// traffic (doubling while reads fill the buffer, back to a small one
    /// when they do not), then every complete packet is handled.
    async fn on_read(
        &mut self,
        inputs: &Inputs<'_>,
        read: std::io::Result<usize>,
    ) -> ControlFlow<Exit> {
        let n = match read {
            Ok(0) | Err(_) => return ControlFlow::Break(Exit::End(Ending::Lost)),
            Ok(n) => n,
        };
        Metrics::add(&self.core.metrics.bytes_received, n);
        self.next_read = if n >= self.next_read {
            (self.next_read * 2).min(READ_CHUNK)
        } else {
            IDLE_READ.max(n.next_power_of_two())
        };
        let flow = self.handle_input(inputs).await;
        if n >= READ_CHUNK && self.core.config.limits.pause_at() > 0 && flow.is_continue() {
            // Back-pressure: after a full read, let the other connections
            // (the subscribers draining what this one routed) run before
            // reading again; tokio's budget would allow 128 reads (8 MiB)
            // in one poll.
            tokio::task::yield_now().await;
        }
        flow
    }

    /// Handles every complete packet in the read buffer. Whatever ends the
    /// read, acknowledgements queued on the way leave (now or in the closing
    /// flush) only once their messages are stored.
    async fn handle_input(&mut self, inputs: &Inputs<'_>) -> ControlFlow<Exit> {
        let now = Instant::now();
        let mut waits = StoreWaits::default();
        let ending = loop {
            let packet = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(packet)) => packet,
                Ok(None) => break None,
                Err(e) => {
                    break Some(Ending::violation(
                        &Violation::from(e),
                        self.session.client_id(),
                    ));
                }
            };
            let session = &mut self.session;
            match handle_packet(inputs, session, &mut self.exchange, &mut waits, packet, now).await
            {
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
                Err(violation) => break Some(Ending::violation(&violation, session.client_id())),
            }
        };
        if !waits.settle(inputs.core).await {
            // Fenced while acknowledgements waited on Redis: closed without
            // them (no DISCONNECT: it would carry them out first).
            return ControlFlow::Break(Exit::End(Ending::Lost));
        }
        match ending {
            Some(ending) => ControlFlow::Break(Exit::End(ending)),
            None => {
                self.release_read_buffer();
                ControlFlow::Continue(())
            }
        }
    }

    /// Holds no read buffer between bursts once it is empty: the decoded
    /// packets own their slices, the rest is released.
    fn release_read_buffer(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
    }

    /// The timer fired: expired credentials end the connection (0xA0), the
    /// session checks its keep-alive, and the connection may hibernate.
    fn on_timer(&mut self, slot: &SessionSlot, client: &ClientInfo) -> ControlFlow<Exit> {
        self.timer_turn = true;
        if self
            .credentials_expire
            .is_some_and(|at| at <= tokio::time::Instant::now())
        {
            tracing::info!(client_id = %client.client_id, "credentials expired; closing");
            let ending = Ending::Closed(ReasonCode::MAXIMUM_CONNECT_TIME, None);
            return ControlFlow::Break(Exit::End(ending));
        }
        if let Err(violation) = self.session.handle_timeout(Instant::now()) {
            let ending = Ending::violation(&violation, self.session.client_id());
            return ControlFlow::Break(Exit::End(ending));
        }
        self.check_hibernation(slot)
    }

    /// At the hibernation check: a connection quiet (nothing to write, read
    /// or finish, nothing in its outbox, no shutdown) for `hibernate_after`
    /// hibernates; otherwise the check moves to when it could.
    fn check_hibernation(&mut self, slot: &SessionSlot) -> ControlFlow<Exit> {
        let Some(hibernation) = self.hibernation else {
            return ControlFlow::Continue(());
        };
        if hibernation.at > tokio::time::Instant::now() {
            return ControlFlow::Continue(());
        }
        let now = Instant::now();
        let quiet = self.out.is_empty()
            && self.rbuf.is_empty()
            && self.exchange.is_none()
            && self.session.transmit_len() == 0
            && !slot.has_outbox()
            && !self.core.shutting_down();
        let after = hibernation.after;
        if quiet && self.last_active + after <= now {
            return ControlFlow::Break(Exit::Hibernate);
        }
        let next = if quiet {
            self.last_active + after
        } else {
            now + after
        };
        self.hibernation = Some(Hibernation {
            after,
            at: tokio::time::Instant::from_std(next),
        });
        ControlFlow::Continue(())
    }

    /// What the connection keeps after the loop, and its unwritten output.
    fn into_connected(self, who: Identity, control: ControlReceiver) -> (Connected, Outgoing) {
        let Identity {
            key,
            connection_id,
            client,
            grant,
        } = who;
        let conn = Connected {
            session: self.session,
            slot: key.0,
            connection_id,
            control,
            decoder: self.decoder,
            client,
            grant,
            drops_seen: self.drops_seen,
            credentials_expire: self.credentials_expire,
        };
        (conn, self.out)
    }
}

/// After the loop: a connection that ends is closed (`ending.rs`) and,
/// when the broker closed it with a reason, lingers so the client reads the
/// reason before the socket goes (`linger.rs`; not at shutdown: the
/// broker's wait for its connections is bounded and the process goes
/// away). An idle one hands its socket and what it keeps to the dormitory.
async fn conclude<S>(
    core: &Arc<Core>,
    driver: Driver<'_>,
    who: Identity,
    control: ControlReceiver,
    exit: Exit,
    mut stream: S,
) -> Option<Box<Hibernated>>
where
    S: AsyncRead + AsyncWrite + Dormant + Unpin,
{
    let (conn, mut out) = driver.into_connected(who, control);
    match exit {
        Exit::End(ending) => {
            // Management requests nobody will answer: their callers hear
            // it now rather than after their timeout.
            drop(core.admin_requests.take(conn.connection_id));
            let closed_by_us = end_connection(core, conn, ending, &mut out, &mut stream).await;
            if closed_by_us && !core.shutting_down() {
                super::linger::drain(&mut stream).await;
            }
            None
        }
        Exit::Hibernate => match stream.into_std() {
            Ok(stream) => Some(super::sleep::hibernated(core, conn, stream)),
            Err(e) => {
                let connection_id = conn.connection_id;
                tracing::warn!(connection_id, error = %e, "could not hand the socket to the dormitory; closing");
                let mut gone = tokio::io::sink();
                end_connection(core, conn, Ending::Lost, &mut out, &mut gone).await;
                None
            }
        },
    }
}

/// Turns a freshly attached client into its connected state.
fn connected(core: &Core, attached: Attached) -> Connected {
    let Attached {
        session,
        slot,
        connection_id,
        control,
        mut decoder,
        client,
        grant,
    } = attached;
    // Drops the session itself makes (queue full, expired, too large for the
    // client) are counted from here on; earlier ones were counted already.
    let drops_seen = session.stats().dropped.total();
    decoder.set_max_packet_size(core.config.mqtt.max_packet_size);
    let credentials_expire = credentials_deadline(Some(&grant));
    Connected {
        session,
        slot,
        connection_id,
        control,
        decoder,
        client,
        grant: boxed_unless_default(grant),
        drops_seen,
        credentials_expire,
    }
}

/// Most clients get the default grant: keep a pointer only for the others.
/// A function, not an expression in `run`: comparing borrows the grant, and a
/// local borrowed in an `async` block keeps its room (96 B) in the
/// connection-long future even after it is moved out.
fn boxed_unless_default(grant: Grant) -> Option<Box<Grant>> {
    (grant != Grant::default()).then(|| Box::new(grant))
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
