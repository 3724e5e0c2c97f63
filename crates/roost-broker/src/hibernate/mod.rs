//! Hibernation: an idle plain-TCP connection gives its task back.
//!
//! A connected client's task — its future, its timer, tokio's registration
//! of its socket — is about 2 KB that an idle client holds for nothing (an
//! idle Mosquitto connection costs ~0.7 KB). After
//! `limits.hibernate_after_ms` without traffic, a connection with nothing to
//! write, no packet half read and no authentication exchange under way
//! moves what it must keep ([`Connected`]: the session and its links to the
//! broker) into a [`Hibernated`] box, hands its socket to the broker's one
//! [`Dormitory`] and ends its task. The dormitory watches every hibernating
//! socket in one epoll (kqueue) set, which tokio watches in turn, so it costs
//! one task in all. The first thing that concerns a hibernating connection
//! — bytes or a hang-up on its socket, a delivery, a command (takeover,
//! close, shutdown), its keep-alive or credentials deadline — spawns a new
//! task that picks up where the old one stopped. EMQX hibernates idle
//! connection processes in the same spirit.
//!
//! Wake-ups cannot be missed: the dormitory installs the connection's
//! [`Sleeper`] on its command line before it looks at the outbox and the
//! pending command one last time. A delivery pushed after that look finds
//! the sleeper (the slot rings the line under the slot's lock, see
//! `SessionSlot::push`); a command takes it under the line's lock.
//!
//! The session sleeps in its compact form ([`Dozing`]) when nothing is
//! under way, which is what makes an idle client cheap: one 160-byte box
//! (with the socket and the ticket), an 8-byte bucket in the dormitory's
//! table and a 4-byte deadline entry, instead of a 448-byte state and a
//! 2 KB task.
//!
//! This module keeps the sleepers and knows nothing of the driver: the
//! driver packs a connection into a [`Hibernated`] and gives the dormitory
//! a [`Host`] that puts a woken one back into a task (`driver/sleep.rs`).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytestring::ByteString;
use mio::unix::SourceFd;
use parking_lot::Mutex;
use roost_hooks::{ClientInfo, Grant};
use roost_session::{QuietSession, Session};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admission::ConnectionPermit;
use crate::clock::{credentials_deadline, earliest};
use crate::link::{ControlReceiver, Sleeper, WakeList};
use crate::metrics::Metrics;
use crate::slot::SessionSlot;
use deadlines::Deadlines;

mod deadlines;

/// What the dormitory needs from the broker it serves (the driver
/// provides it: `driver/sleep.rs`).
pub(crate) trait Host: Send + Sync + 'static {
    /// Gives a woken connection a task again.
    fn resume(host: &Arc<Self>, hibernated: Hibernated);
    /// The broker's counters (hibernating connections, hibernations).
    fn metrics(&self) -> &Metrics;
    /// The embedder's request to return freed memory, if any.
    fn memory_release(&self) -> Option<fn()>;
    /// Turns true when the broker shuts down.
    fn shutdown(&self) -> watch::Receiver<bool>;
}

/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// How long after a connection hibernates the broker asks the allocator to
/// release freed memory (its task's among it): long enough that a wave of
/// hibernations is released at once, and at most once per this period.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// A hibernating connection: what its task kept, and its socket. Boxed
/// whole (`Box<Hibernated>`): the dormitory's table holds pointers.
///
/// At most 160 bytes, a size class of its own among what an idle client
/// keeps: what can be derived again on waking is left out (the credentials'
/// deadline comes from the grant, the drops already counted from the
/// session, the keep-alive deadline from the session's clock, the decoder
/// from the version and the configured maximum packet size). The
/// socket's tokio registration, freed as the connection hibernates, is a
/// 256-byte block, and the pages those leave empty go back to the system.
/// (While session slots were 248 B, those pages stayed half full of slots
/// and a 256-byte box filling the holes measured better; docs/performance.md
/// §5.)
pub(crate) struct Hibernated {
    /// Its bed in the dormitory (set as it arrives there); in the box's
    /// padding, so the table holds the box alone.
    pub(crate) id: u32,
    pub(crate) session: Dozing,
    pub(crate) slot: Arc<SessionSlot>,
    pub(crate) connection_id: u64,
    pub(crate) control: ControlReceiver,
    pub(crate) client: Arc<ClientInfo>,
    pub(crate) grant: Option<Box<Grant>>,
    pub(crate) stream: std::net::TcpStream,
    /// The listener's admission, released when the connection ends.
    pub(crate) ticket: Option<ConnectionPermit>,
}

impl Hibernated {
    /// When it must wake: its keep-alive or credentials deadline.
    fn deadline(&self) -> Option<Instant> {
        let keep_alive = self.session.poll_timeout().map(Instant::from_std);
        earliest(keep_alive, credentials_deadline(self.grant.as_deref()))
    }
}

/// A hibernating connection's session: compact when nothing is under way
/// (the usual idle client), else boxed as it is (e.g. a PUBACK outstanding).
pub(crate) enum Dozing {
    Quiet(QuietSession),
    Busy(Box<Session>),
}

impl Dozing {
    pub(crate) fn new(session: Session) -> Self {
        match session.into_quiet() {
            Ok(quiet) => Self::Quiet(quiet),
            Err(busy) => Self::Busy(busy),
        }
    }

    /// When the session needs its connection awake (its keep-alive deadline).
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        match self {
            Self::Quiet(quiet) => quiet.poll_timeout(),
            Self::Busy(busy) => busy.poll_timeout(),
        }
    }

    /// The live session; `client_id` is its slot's (the quiet form drops it).
    pub(crate) fn wake(self, client_id: &ByteString) -> Session {
        match self {
            Self::Quiet(quiet) => quiet.wake(client_id.clone()),
            Self::Busy(busy) => *busy,
        }
    }
}

/// A transport a connection may hibernate on: only a plain TCP socket, whose
/// whole state is the kernel's. TLS, WebSocket and QUIC streams keep state
/// in the process, and stay awake.
pub(crate) trait Dormant: Sized {
    fn can_hibernate(&self) -> bool {
        false
    }

    /// The socket, out of tokio's reactor.
    fn into_std(self) -> std::io::Result<std::net::TcpStream> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

impl Dormant for tokio::net::TcpStream {
    fn can_hibernate(&self) -> bool {
        true
    }

    fn into_std(self) -> std::io::Result<std::net::TcpStream> {
        tokio::net::TcpStream::into_std(self)
    }
}

/// Boxed streams (TLS, WebSocket, QUIC, Unix, PROXY-prefixed) stay awake.
impl<T: ?Sized> Dormant for Box<T> {}

/// A bed in the dormitory's table: the box, found by its own id (8-byte
/// buckets; a map from the id to the box took 16).
struct Bed(Box<Hibernated>);

impl PartialEq for Bed {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Bed {}

impl Hash for Bed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl Borrow<u32> for Bed {
    fn borrow(&self) -> &u32 {
        &self.0.id
    }
}

/// The broker's hibernating connections, watched by one task
/// ([`Dormitory::watch`]).
pub(crate) struct Dormitory {
    /// Connections handed over, not yet in bed.
    #[expect(
        clippy::vec_box,
        reason = "each box moves on into the dormitory's table as it is"
    )]
    arrivals: Mutex<Vec<Box<Hibernated>>>,
    /// Wake-ups by id; its bell also rings for arrivals.
    wakes: Arc<WakeList>,
    /// The task is watching: connections may hibernate.
    running: AtomicBool,
    /// Taken by the task when it starts.
    poll: Mutex<Option<mio::Poll>>,
    registry: mio::Registry,
}

impl std::fmt::Debug for Dormitory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dormitory")
            .field("running", &self.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Dormitory {
    pub(crate) fn new() -> std::io::Result<Arc<Self>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        Ok(Arc::new(Self {
            arrivals: Mutex::new(Vec::new()),
            wakes: Arc::new(WakeList::default()),
            running: AtomicBool::new(false),
            poll: Mutex::new(Some(poll)),
            registry,
        }))
    }

    /// Connections may hibernate (the task is watching).
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Takes a connection in; its task ends after this.
    pub(crate) fn admit(&self, hibernated: Box<Hibernated>) {
        self.arrivals.lock().push(hibernated);
        self.wakes.bell.notify_one();
    }

    /// The dormitory's task: admits, watches and wakes hibernating
    /// connections until the broker shuts down, then wakes them all (they
    /// close with 0x8B as awake ones do).
    pub(crate) async fn watch<H: Host>(self: Arc<Self>, host: Arc<H>) {
        let Some(poll) = self.poll.lock().take() else {
            return;
        };
        // `with_interest` is deprecated because a generic `AsRawFd` might
        // return another descriptor later; `mio::Poll` owns its epoll
        // descriptor for its whole life, so that cannot happen here, and the
        // replacement is `unsafe` (forbidden in this workspace).
        #[expect(deprecated, reason = "sound for mio::Poll, see above")]
        let watched = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE);
        let mut poll = match watched {
            Ok(poll) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "hibernation unavailable: cannot watch its epoll set");
                return;
            }
        };
        self.running.store(true, Ordering::Release);
        let mut ward = Ward {
            dormitory: &self,
            host: &host,
            beds: HashSet::new(),
            deadlines: Deadlines::new(Instant::now()),
            next_id: 0,
            down: false,
            release_at: None,
        };
        let mut events = mio::Events::with_capacity(EVENTS);
        let mut shutdown = host.shutdown();
        let mut due = Vec::new();
        loop {
            let next_deadline = ward.next_deadline();
            let sleep = tokio::time::sleep_until(next_deadline.unwrap_or_else(far_future));
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|down| *down), if !ward.down => {
                    ward.down = true;
                    due.extend(ward.beds.iter().map(|bed| bed.0.id));
                }
                () = self.wakes.bell.notified() => {
                    due.extend(self.wakes.take());
                    let arrivals = std::mem::take(&mut *self.arrivals.lock());
                    for hibernated in arrivals {
                        ward.settle(hibernated);
                    }
                }
                ready = poll.readable_mut() => match ready {
                    Ok(mut guard) => loop {
                        events.clear();
                        match guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                tracing::warn!(error = %e, "hibernation: epoll_wait failed");
                                break;
                            }
                        }
                        if events.is_empty() {
                            guard.clear_ready();
                            break;
                        }
                        due.extend(events.iter().filter_map(|event| u32::try_from(event.token().0).ok()));
                    },
                    Err(e) => {
                        // The reactor failed: nobody would wake these any more.
                        tracing::error!(error = %e, "hibernation stopped: waking every hibernating connection");
                        self.running.store(false, Ordering::Release);
                        ward.down = true;
                        due.extend(ward.beds.iter().map(|bed| bed.0.id));
                    }
                },
                () = sleep, if next_deadline.is_some() => {
                    let now = Instant::now();
                    ward.release_if_due(now);
                    ward.deadlines.take_due(now, &mut due);
                }
            }
            for id in due.drain(..) {
                ward.wake(id);
            }
            ward.sweep_deadlines();
            if ward.down && !self.is_running() && ward.beds.is_empty() {
                // Stopped after a reactor failure: late arrivals are woken
                // by `settle` until then, none come after the flag is seen.
                let arrivals = std::mem::take(&mut *self.arrivals.lock());
                for hibernated in arrivals {
                    ward.settle(hibernated);
                }
                return;
            }
        }
    }
}

/// The dormitory task's own state.
struct Ward<'a, H> {
    dormitory: &'a Arc<Dormitory>,
    host: &'a Arc<H>,
    beds: HashSet<Bed>,
    /// The beds' keep-alive and credentials deadlines (entries of beds
    /// already woken linger until due or swept).
    deadlines: Deadlines,
    /// The last id handed out. Ids wrap around and skip beds in use; a
    /// stale wake-up or deadline naming a reused id (after 2^32
    /// hibernations) wakes its new sleeper early, which only goes back to
    /// sleep.
    next_id: u32,
    /// Shutting down (or stopped): nothing more goes to sleep.
    down: bool,
    /// When to ask the allocator to release what hibernated tasks freed.
    release_at: Option<Instant>,
}

impl<H: Host> Ward<'_, H> {
    /// The next bed deadline or memory release, whichever comes first.
    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .next()
            .into_iter()
            .chain(self.release_at)
            .min()
    }

    /// Asks for the memory release if it is due.
    fn release_if_due(&mut self, now: Instant) {
        if self.release_at.is_some_and(|at| at <= now) {
            self.release_at = None;
            if let Some(release) = self.host.memory_release() {
                release();
                // The embedder's release usually runs as each worker parks
                // (mimalloc frees a thread's pages on that thread only), and
                // an idle worker sleeps until it has work. One empty task per
                // worker: a spawn that pushes an earlier one out of this
                // worker's LIFO slot wakes a parked worker, which parks, and
                // releases, again. Measured: 2,409 -> 1,615 B per idle
                // connection on two workers.
                let workers = tokio::runtime::Handle::current().metrics().num_workers();
                for _ in 0..workers {
                    tokio::spawn(async {});
                }
            }
        }
    }

    /// Drops deadline entries of connections already woken, when they pile up.
    fn sweep_deadlines(&mut self) {
        self.deadlines
            .sweep(self.beds.len(), |id| self.beds.contains(&id));
    }

    /// The next id no bed uses.
    fn free_id(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if !self.beds.contains(&self.next_id) {
                return self.next_id;
            }
        }
    }

    /// Puts an arrival to bed, unless something already waits for it.
    fn settle(&mut self, mut hibernated: Box<Hibernated>) {
        let id = self.free_id();
        hibernated.id = id;
        let sleeper = Sleeper::new(&self.dormitory.wakes, id);
        if self.down || !hibernated.control.sleep(sleeper) {
            return H::resume(self.host, *hibernated);
        }
        // After the sleeper is in: a delivery pushed from now on rings it.
        if !hibernated.slot.release_idle_outbox() {
            return H::resume(self.host, *hibernated);
        }
        let fd = hibernated.stream.as_raw_fd();
        let registered = self.dormitory.registry.register(
            &mut SourceFd(&fd),
            mio::Token(id as usize),
            mio::Interest::READABLE,
        );
        if let Err(e) = registered {
            tracing::warn!(error = %e, "hibernation: cannot watch a socket; keeping it awake");
            return H::resume(self.host, *hibernated);
        }
        // Computed here rather than kept in the box (see `Hibernated`).
        if let Some(at) = hibernated.deadline() {
            self.deadlines.insert(at, id);
        }
        self.beds.insert(Bed(hibernated));
        if self.release_at.is_none() && self.host.memory_release().is_some() {
            self.release_at = Some(Instant::now() + RELEASE_AFTER);
        }
        let metrics = self.host.metrics();
        Metrics::inc(&metrics.connections_hibernating);
        Metrics::inc(&metrics.hibernations);
    }

    /// Wakes `id` if it still sleeps (wakes for one already woken are stale).
    fn wake(&mut self, id: u32) {
        let Some(Bed(hibernated)) = self.beds.take(&id) else {
            return;
        };
        let fd = hibernated.stream.as_raw_fd();
        if let Err(e) = self.dormitory.registry.deregister(&mut SourceFd(&fd)) {
            tracing::debug!(error = %e, "hibernation: deregistering a socket failed");
        }
        self.host
            .metrics()
            .connections_hibernating
            .fetch_sub(1, Ordering::Relaxed);
        H::resume(self.host, *hibernated);
    }
}

/// A deadline that never comes (the `sleep` branch is disabled then).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::Hibernated;

    #[test]
    fn a_hibernated_connection_fits_the_160_byte_size_class() {
        let size = std::mem::size_of::<Hibernated>();
        assert!(size > 128 && size <= 160, "Hibernated is {size} bytes");
    }
}
