//! # roost-cluster
//!
//! The Redis side of Roost's cluster mode (docs/cluster.md): several broker
//! processes on one Redis act as one broker. This crate knows Redis and
//! nothing of connections; the broker talks to it through [`Cluster`] and
//! hears from it through a [`Receiver`].
//!
//! ```text
//!  broker publish ─▶ Cluster::forward ─▶ [writer thread] XADD <p>{n:B}:inbox (batched)
//!        (QoS 1/2 waits on the returned Done before PUBACK / PUBREC)
//!  node B: [reader thread] XREAD inbox + route log + retained log
//!        ─▶ Receiver::messages (routed to B's own subscribers only)
//!  subscribe 0→1 / 1→0 per filter ─▶ route set + route log ─▶ every node's cache
//!  CONNECT ─▶ Cluster::claim (Lua compare-and-set) ─▶ kick via the old node's inbox
//!  [lease thread] ZADD <p>{sys}:nodes; lapsed nodes' routes and inboxes removed
//! ```
//!
//! Every node keeps its own trie and delivers to its own clients with no
//! Redis call; Redis is asked only which *other* nodes need a message (a
//! cached answer) and to carry it there. Blocking `redis` client on the
//! crate's own threads (one connection each), like `roost-store`'s writer:
//! the broker's runtime never waits on a socket to Redis, and a blocking
//! `XREAD` needs its own connection anyway.

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod adopt;
mod announce;
mod batch;
mod dedupe;
mod done;
mod gap;
mod handoff;
mod janitor;
mod job;
mod keys;
mod lease;
mod link;
mod members;
mod options;
mod owner;
mod queue;
mod reader;
mod receiver;
mod rejoin;
mod routes;
mod scripts;
mod spread;
mod staged;
mod token;
mod version;
mod wire;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytestring::ByteString;
use parking_lot::Mutex;
use redis::Script;
use roost_store::{Fences, StoredMessage};
use smallvec::SmallVec;

pub use announce::Probe;
pub use done::Done;
pub use members::Member;
pub use options::{ClusterError, Options};
pub use receiver::{
    BanChange, BatchSource, Kicked, OrphanWill, Receiver, Remote, RemoteSink, RetainedUpdate,
};
pub use rejoin::Reclaimed;
pub use routes::SharedPick;
pub use staged::Staged;

use keys::Keys;
use link::Link;
use queue::Queue;
use routes::Routes;
pub use token::{compact_token, token_text};
pub use version::PROTOCOL;
use writer::Item;

/// What a claim found.
#[derive(Debug)]
pub struct Claimed {
    /// The node that had the client id before, when another one.
    pub previous_node: Option<String>,
    /// That node is alive and was sent a kick: completes once it flushed the
    /// session's rows and let it go. Wait for it (bounded), then
    /// [`Cluster::settle`].
    pub handover: Option<Done<()>>,
    /// Redis held a stored session for the client id when it was claimed
    /// (true when not known). False with no previous node: nothing to load
    /// (a new persistent session skips the load, a round trip and a
    /// blocking thread's heap: RSS per connection, docs/performance.md).
    pub stored: bool,
}

impl Claimed {
    /// The claim settled itself (no other node held the client id): no
    /// [`Cluster::settle`] to make. Otherwise (a handover, or a node whose
    /// lease lapsed) settle once the handover ended.
    pub fn settled(&self) -> bool {
        self.previous_node.is_none()
    }
}

/// What [`Cluster::forward`] did with a message.
#[derive(Debug)]
pub enum Forward {
    /// No other node has a subscriber for it.
    Local,
    /// Queued for the writer; the `Done` (asked for QoS 1/2) completes once
    /// it is in every destination inbox.
    Queued(Option<Done<()>>),
    /// The buffer is full (Redis slow or gone): dropped and counted.
    Dropped,
}

/// Counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages written to other nodes' inboxes (one per destination).
    pub forwarded: AtomicU64,
    /// Messages read from this node's inbox.
    pub received: AtomicU64,
    /// Messages dropped because the forward buffer was full.
    pub dropped: AtomicU64,
    /// Kicks received.
    pub kicks: AtomicU64,
    /// Messages sent on because a shared group had no member left here.
    pub rerouted: AtomicU64,
    /// Route cache rebuilds: route log entries this node had not read yet
    /// were trimmed (it was further behind than the log's cap).
    pub route_rebuilds: AtomicU64,
    /// Inbox batches dropped as already seen (a retried or replayed batch).
    pub duplicates: AtomicU64,
    /// Messages re-delivered from dead nodes' inboxes (inbox handoff).
    pub handed_off: AtomicU64,
    /// Dead nodes' sessions adopted by this node's janitor (parked here
    /// until their clients come back).
    pub adopted: AtomicU64,
}

/// The cluster threads' stop signal, and their way to sleep until it.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    bell: parking_lot::Condvar,
}

impl Stop {
    /// Sleeps up to `wait` unless stopped meanwhile; true when stopped.
    fn pause(&self, wait: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.bell.wait_for(&mut stopped, wait);
        }
        *stopped
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.bell.notify_all();
    }
}

/// State the cluster threads share.
struct Shared {
    /// Threads pause on this, never on a queue's condition variable (a push
    /// must wake the queue's own thread, not a sleeping lease renewal).
    stop: Stop,
    options: Options,
    keys: Keys,
    routes: Routes,
    writes: Queue<Item>,
    owners: Queue<owner::Request>,
    healthy: AtomicBool,
    /// This node fenced itself and has not renewed its lease since.
    fenced: AtomicBool,
    /// This node's claims, one entry per client id (shared with the
    /// broker's cluster link and the session store, `roost_store::Fences`):
    /// the owner thread records each claim here in claim order.
    claims: Arc<Fences>,
    /// Claims waiting for the old node's handover answer, by new token.
    handovers: Mutex<std::collections::HashMap<String, done::Completer<()>>>,
    incarnation: AtomicU64,
    /// Entries the route log had received when this node loaded its route
    /// cache at start (the reader's starting position, `gap.rs`).
    route_log_added: AtomicU64,
    registering: Mutex<()>,
    /// Dead nodes' inboxes claimed by this node, waiting for their replay.
    handoffs: Mutex<Vec<handoff::Pending>>,
    /// Dead nodes whose handoff step runs on the handoff thread now.
    jobs_running: Mutex<std::collections::HashSet<String>>,
    /// Dead nodes whose sessions this node adopts its share of now
    /// (`spread.rs`).
    adopting: Mutex<std::collections::HashSet<String>>,
    /// When this node's last successful lease renewal started, in ms
    /// after `epoch` (`lease::fresh`: a janitor's replay stops once its
    /// lease may have lapsed).
    renewed: AtomicU64,
    epoch: std::time::Instant,
    receiver: Arc<dyn Receiver>,
    stats: Stats,
    /// This node's hash for the others' management API (`announce.rs`).
    announce: announce::Announce,
}

/// This node's membership of the cluster; leaves it when dropped.
pub struct Cluster {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    leave: Mutex<Option<Link>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.shared.options.node_id)
            .finish_non_exhaustive()
    }
}

/// Checks a `[cluster.redis] url` without connecting (one server,
/// `redis+cluster://` seeds or `redis+sentinel://…/<master>`), for the
/// configuration check: the reason when it cannot be used.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    roost_store::redis::target::Target::parse(url, None, Duration::from_secs(1))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Cluster {
    /// Joins: registers the node (a new route incarnation, its lease),
    /// loads the route table and every retained message (given to
    /// `receiver`), then starts the threads. `claims`: where this node's
    /// claims are recorded (the session store's fences). Blocking.
    pub fn start(
        options: Options,
        receiver: Arc<dyn Receiver>,
        claims: Arc<Fences>,
    ) -> Result<Cluster, ClusterError> {
        let mut link = Link::connect(&options.redis_url, options.timeout)?;
        let keys = Keys::new(&options.key_prefix);
        let shared = Arc::new(Shared {
            routes: Routes::new(&options.node_id, options.shared),
            writes: Queue::weighted(options.forward_buffer, Item::weight)
                .lingering(Some(writer::linger(options.forward_linger))),
            owners: Queue::new(10_000),
            keys,
            stop: Stop::default(),
            healthy: AtomicBool::new(true),
            fenced: AtomicBool::new(false),
            claims,
            handovers: Mutex::new(std::collections::HashMap::new()),
            incarnation: AtomicU64::new(0),
            route_log_added: AtomicU64::new(0),
            registering: Mutex::new(()),
            handoffs: Mutex::new(Vec::new()),
            jobs_running: Mutex::new(std::collections::HashSet::new()),
            adopting: Mutex::new(std::collections::HashSet::new()),
            renewed: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            receiver,
            stats: Stats::default(),
            announce: announce::Announce::default(),
            options,
        });
        warn_if_evicting(&mut link);
        let keys = &shared.keys;
        let me = shared.options.node_id.clone();
        version::check(&mut link, keys, &me)?;
        // An earlier run's unread inbox (killed, restarted before a janitor
        // saw its lease lapse) is handed off like a dead node's
        // (`handoff.rs`; its client ids are added by
        // `adopt_earlier_sessions`); the new inbox is read from here on.
        let earlier: Option<u64> =
            link.run(|c| redis::cmd("GET").arg(keys.incarnation_of(&me)).query(c))?;
        if let Some(pending) = handoff::claim_own(&mut link, &shared, earlier.unwrap_or(0))? {
            shared.handoffs.lock().push(pending);
        }
        let inbox = last_id(&mut link, &keys.inbox_of(&me))?;
        writer::register(&mut link, &shared)?;
        let lease_ms = u64::try_from(shared.options.lease.as_millis()).unwrap_or(u64::MAX);
        let now = wire::unix_ms(SystemTime::now());
        link.run(|c| {
            redis::pipe()
                .zadd(keys.nodes(), &me, now.saturating_add(lease_ms))
                .ignore()
                .hset_multiple(
                    keys.node_info(&me),
                    &[
                        ("started", now),
                        ("incarnation", shared.incarnation.load(Ordering::Relaxed)),
                        (version::FIELD, u64::from(version::PROTOCOL)),
                    ],
                )
                .ignore()
                .hset(
                    keys.node_info(&me),
                    "addresses",
                    shared.options.addresses.join(" "),
                )
                .ignore()
                .query::<()>(c)
        })?;
        // Written again at each renewal: a node collected while alive (a
        // pause), or whose hash Redis lost (a restart without its data),
        // gets its hash back — with its protocol version, which a joining
        // node reads (without it, the hash would say version 1).
        shared.announce.fix("started", now.to_string());
        shared
            .announce
            .fix(version::FIELD, version::PROTOCOL.to_string());
        let (routes, added) = gap::reload(&mut link, &shared)?;
        shared.route_log_added.store(added, Ordering::Relaxed);
        let retained = last_id(&mut link, &keys.retained_log())?;
        let loaded = load_retained(&mut link, &shared)?;
        let bans = last_id(&mut link, &keys.ban_log())?;
        let listed: Vec<(String, u64)> =
            link.run(|c| redis::cmd("HGETALL").arg(keys.bans()).query(c))?;
        for (target, until_ms) in listed {
            shared.receiver.ban(BanChange {
                target,
                until: Some(wire::ban_end(until_ms)),
            });
        }
        tracing::info!(
            node = %me,
            routes = shared.routes.len(),
            retained = loaded,
            "joined the cluster"
        );
        let cursors = reader::Cursors {
            inbox,
            routes,
            retained,
            bans,
        };
        let mut threads = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| ClusterError::Config(format!("cannot start thread {name}: {e}")))
        };
        let (s, l) = (Arc::clone(&shared), link.sibling());
        threads.push(spawn(
            "roost-cluster-w",
            Box::new(move || writer::run(s, l)),
        )?);
        for streams in cursors.split(link.is_cluster()) {
            let (s, l) = (Arc::clone(&shared), link.sibling());
            threads.push(spawn(
                "roost-cluster-r",
                Box::new(move || reader::run(s, l, streams)),
            )?);
        }
        let (s, l) = (Arc::clone(&shared), link.sibling());
        threads.push(spawn(
            "roost-cluster-l",
            Box::new(move || lease::run(s, l)),
        )?);
        let (s, l) = (Arc::clone(&shared), link.sibling());
        threads.push(spawn(
            "roost-cluster-o",
            Box::new(move || owner::run(s, l)),
        )?);
        Ok(Cluster {
            shared,
            threads: Mutex::new(threads),
            leave: Mutex::new(Some(link)),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.options.node_id
    }

    /// False while Redis does not answer (new connections are refused).
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Messages waiting for the writer.
    pub fn backlog(&self) -> usize {
        self.shared.writes.len()
    }

    /// This node now has a non-shared subscriber for `filter`, or a member
    /// of the shared group `filter` = `$share/g/f` (a route of its own).
    /// Only a first one changes the table.
    pub fn route_present(&self, filter: &str) {
        let mut published = self.shared.routes.published.lock();
        if !published.contains(filter) {
            published.insert(filter.to_string());
            self.shared.routes.own(filter, true);
            self.queue_route(filter, true);
        }
    }

    /// This node has no subscriber (or member) for `filter` any more.
    pub fn route_absent(&self, filter: &str) {
        let mut published = self.shared.routes.published.lock();
        if published.remove(filter) {
            self.shared.routes.own(filter, false);
            self.queue_route(filter, false);
        }
    }

    /// This node now has `members` members of share group `group` at
    /// `filter` (0: none left): its route for the group names the count
    /// (`$share/g+N/f`, capped), so other nodes weigh it by that.
    pub fn group_members(&self, group: &str, filter: &str, members: usize) {
        let route = routes::group_route(group, filter, members);
        let mut weights = self.shared.routes.group_routes.lock();
        let canonical = format!("$share/{group}/{filter}");
        let old = weights.get(&canonical).cloned();
        if old.as_deref() == Some(route.as_str()) && members > 0 {
            return;
        }
        if let Some(old) = &old {
            self.route_absent(old);
        }
        if members == 0 {
            weights.remove(&canonical);
        } else {
            self.route_present(&route);
            weights.insert(canonical, route);
        }
    }

    /// Route changes are never dropped: they may exceed the buffer (by the
    /// number of distinct filters changing at once).
    fn queue_route(&self, filter: &str, present: bool) {
        let item = Item::Route {
            filter: filter.to_string(),
            present,
        };
        if self.shared.writes.push_within(item, usize::MAX).is_err() {
            tracing::debug!(filter, "cluster stopped; route change not written");
        }
    }

    /// Sends `message` to the other nodes that need it (no Redis call when
    /// none does): those with non-shared subscribers for its topic, and for
    /// every shared group matched in the cluster the one node picked to
    /// deliver it ([`SharedPick`]; this node included). `wait`: the
    /// `Forward` holds a `Done` that completes once it is written (QoS 1/2
    /// acknowledgements wait on it). The message is built (`message`) only
    /// when some node needs it. Also returns the groups (`$share/g/f`)
    /// assigned to other nodes: this node must not deliver them (empty
    /// unless the message was queued).
    pub fn forward(
        &self,
        topic: &str,
        publisher_id: &str,
        wait: bool,
        message: impl FnOnce() -> StoredMessage,
    ) -> (Forward, Vec<Arc<str>>) {
        // No route cached: nothing goes elsewhere (the local-only case: no
        // lock taken, no plan built).
        if !self.shared.routes.any() {
            return (Forward::Local, Vec::new());
        }
        let plan = self.shared.routes.plan(topic, publisher_id);
        if plan.to.is_empty() {
            return (Forward::Local, plan.elsewhere);
        }
        if self.shared.options.available_when_cut_off && !self.healthy() {
            // Cut off, serving anyway: this node's subscribers only (its
            // own members of every group), no publisher waits on Redis.
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return (Forward::Local, Vec::new());
        }
        let (done, ack) = if wait {
            let (done, ack) = done::pair();
            (Some(done), Some(ack))
        } else {
            (None, None)
        };
        match self.queue_forward(plan.to, message(), ack, false, wait) {
            true => (Forward::Queued(done), plan.elsewhere),
            // Not sent: this node delivers its own groups after all.
            false => (Forward::Dropped, Vec::new()),
        }
    }

    /// A message received for shared `groups` this node has no member of
    /// any more (the member left after the sender picked this node): sent
    /// on, once, to another node with members of each. Groups no other node
    /// has are lost (counted). Never waited on: the publisher's
    /// acknowledgement went with the first hop.
    pub fn reroute(&self, message: &StoredMessage, groups: &[String]) {
        let topic = message.topic.to_string();
        let publisher_id = message.publisher.as_deref().unwrap_or("");
        let mut to: SmallVec<[routes::Dest; 4]> = SmallVec::new();
        for group in groups {
            match self
                .shared
                .routes
                .other_member_node(group, publisher_id, &topic)
            {
                Some(node) => match to.iter_mut().find(|d| d.node == node) {
                    Some(dest) => dest.groups.push(group.as_str().into()),
                    None => to.push(routes::Dest {
                        node,
                        direct: false,
                        groups: vec![group.as_str().into()],
                    }),
                },
                None => {
                    self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        group,
                        "shared group has no member left in the cluster; message dropped"
                    );
                }
            }
        }
        if !to.is_empty() {
            self.shared.stats.rerouted.fetch_add(1, Ordering::Relaxed);
            self.queue_forward(
                to,
                message.clone(),
                None,
                true,
                message.qos != roost_codec::QoS::AtMostOnce,
            );
        }
    }

    /// Queues one forward; false (counted) when the buffer is full.
    fn queue_forward(
        &self,
        to: SmallVec<[routes::Dest; 4]>,
        message: StoredMessage,
        ack: Option<done::Completer<()>>,
        rerouted: bool,
        reliable: bool,
    ) -> bool {
        let cap = self.shared.writes.cap();
        let limit = if reliable { cap.saturating_mul(2) } else { cap };
        let item = Item::Forward {
            to,
            message: Box::new(message),
            ack,
            rerouted,
            only: Vec::new(),
        };
        match self.shared.writes.push_within(item, limit) {
            Ok(()) => true,
            Err(_) => {
                let n = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped_so_far = n,
                        "cluster forward buffer full; message dropped"
                    );
                }
                false
            }
        }
    }

    /// Sets (non-empty payload) or clears the retained message of its topic
    /// cluster-wide: its bucket and the retained log, which every node
    /// (this one too) applies in order.
    pub fn retain(&self, message: &StoredMessage) {
        let topic = message.topic.to_string();
        let blob = if message.payload.is_empty() {
            None
        } else {
            match wire::encode(&wire::RetainedBlob {
                stored_at_ms: wire::unix_ms(SystemTime::now()),
                message: message.clone(),
            }) {
                Ok(blob) => Some(blob),
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "retained message not encodable; not shared");
                    return;
                }
            }
        };
        if self
            .shared
            .writes
            .push_within(Item::Retain { topic, blob }, usize::MAX)
            .is_err()
        {
            tracing::debug!("cluster stopped; retained change not written");
        }
    }

    /// Adds (`until` Some) or lifts (None) a ban cluster-wide: the list in
    /// Redis and its log, which every node (this one too) applies.
    pub fn ban(&self, target: &str, until: Option<Option<SystemTime>>) {
        let item = Item::Ban {
            target: target.to_string(),
            until_ms: until.map(|end| end.map_or(0, |t| wire::unix_ms(t).max(1))),
        };
        if self.shared.writes.push_within(item, usize::MAX).is_err() {
            tracing::debug!("cluster stopped; ban change not written");
        }
    }

    /// Claims `client_id` for a new connection (`resume`: Clean Start 0):
    /// returns its token (compact: [`token_text`] spells it) and the answer
    /// to wait for. Refused at once while Redis is unreachable or this node
    /// is fenced.
    /// Once granted, the claim is in the `claims` given to [`Cluster::start`]
    /// (before the answer completes), tied to no connection yet.
    pub fn claim(
        &self,
        client_id: &ByteString,
        resume: bool,
    ) -> Result<(u128, Done<Claimed>), ClusterError> {
        self.claim_as(client_id, uuid::Uuid::new_v4().as_u128(), resume)
    }

    /// [`Cluster::claim`] under a token the caller chose: unique in the
    /// cluster (the broker spells a connection's from a random per-process
    /// half and the connection id, so that the connection can stand for
    /// the claim's record: `roost_store::Fences::go_slim`).
    pub fn claim_as(
        &self,
        client_id: &ByteString,
        bits: u128,
        resume: bool,
    ) -> Result<(u128, Done<Claimed>), ClusterError> {
        if !self.healthy() {
            return Err(ClusterError::Unavailable);
        }
        let (done, reply) = done::pair();
        let request = owner::Request::Claim {
            client_id: client_id.clone(),
            token: bits,
            resume,
            reply,
        };
        self.shared
            .owners
            .push(request)
            .map_err(|_| ClusterError::Unavailable)?;
        Ok((bits, done))
    }

    /// Ends a handover: from now on only `token` writes `client_id`'s rows.
    /// `false`: a newer claim holds the client id.
    pub fn settle(&self, client_id: &str, token: &str) -> Result<Done<bool>, ClusterError> {
        let (done, reply) = done::pair();
        let request = owner::Request::Settle {
            client_id: client_id.to_string(),
            token: token.to_string(),
            reply,
        };
        self.shared
            .owners
            .push(request)
            .map_err(|_| ClusterError::Unavailable)?;
        Ok(done)
    }

    /// Answers a kick: this node flushed the session's rows and let it go.
    pub fn handed(&self, kick: &Kicked) {
        let request = owner::Request::Handed {
            client_id: kick.client_id.clone(),
            new_token: kick.new_token.clone(),
            to: kick.to.clone(),
        };
        if self.shared.owners.push(request).is_err() {
            tracing::debug!(client_id = %kick.client_id, "handover answer not queued (the new owner stops waiting)");
        }
    }

    /// The session of `client_id` claimed with `token` left this node (ended,
    /// or handed over): off the node's session list. The answer completes
    /// once the owner thread took it off (or left it, a newer claim holding
    /// the id): the claim's entry in `claims` must stay until then, it is
    /// what that check reads. `None`: not queued (the cluster stopped).
    pub fn session_ended(&self, client_id: &str, token: u128) -> Option<Done<()>> {
        let (done, reply) = done::pair();
        let request = owner::Request::Ended {
            client_id: client_id.to_string(),
            token,
            reply,
        };
        self.shared.owners.push(request).ok().map(|()| done)
    }

    /// Whether nobody reconnected as `client_id` since a janitor orphaned its
    /// session with `token` (a delayed orphan will goes out only then).
    pub fn still_orphan(&self, client_id: &str, token: &str) -> Result<Done<bool>, ClusterError> {
        let (done, reply) = done::pair();
        let request = owner::Request::StillOrphan {
            client_id: client_id.to_string(),
            token: token.to_string(),
            reply,
        };
        self.shared
            .owners
            .push(request)
            .map_err(|_| ClusterError::Unavailable)?;
        Ok(done)
    }

    /// Sessions an earlier run of this node id still owns in Redis (it was
    /// killed, or restarted before its lease lapsed) become nobody's: their
    /// wills go to the receiver, their expiry starts, as a janitor does for
    /// a dead node. Call it once the receiver can publish cluster-wide and
    /// before accepting connections. Blocking. Returns how many.
    pub fn adopt_earlier_sessions(&self) -> Result<usize, ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        let me = &self.shared.options.node_id;
        let clients = janitor::orphan_sessions(link, &self.shared, me, true)?;
        let listed = clients.len();
        // The earlier run's unread inbox, claimed at start: its clients are
        // known now.
        let mut handoffs = self.shared.handoffs.lock();
        let mut own = false;
        for pending in handoffs.iter_mut() {
            if pending.node() == me && pending.clients.is_empty() {
                pending.clients.clone_from(&clients);
                own = true;
            }
        }
        // No inbox left: its sessions are adopted one lease later all the
        // same (those whose clients have not come back).
        if !own && !clients.is_empty() {
            let incarnation = self.shared.incarnation.load(Ordering::Relaxed);
            handoffs.push(handoff::adopt_own(&self.shared, incarnation, clients));
        }
        Ok(listed)
    }

    /// `availability_over_consistency`: serve while Redis is unreachable.
    pub fn available_when_cut_off(&self) -> bool {
        self.shared.options.available_when_cut_off
    }

    /// True while this node is fenced (its lease lapsed; it holds no session).
    pub fn fenced(&self) -> bool {
        self.shared.fenced.load(Ordering::Relaxed)
    }

    /// The connection holding `token` for `client_id` ended.
    pub fn release(&self, client_id: &str, token: u128) {
        let request = owner::Request::Release {
            client_id: client_id.to_string(),
            token,
        };
        if self.shared.owners.push(request).is_err() {
            tracing::debug!(client_id, "release not queued (the record expires)");
        }
    }

    /// Leaves the cluster: stops the threads (writing what is queued), then
    /// removes this node's routes, lease and inbox so the others stop
    /// forwarding at once. Blocking; idempotent.
    pub fn stop(&self) {
        self.shared.stop.stop();
        self.shared.writes.stop();
        self.shared.owners.stop();
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
        let Some(mut link) = self.leave.lock().take() else {
            return;
        };
        let keys = &self.shared.keys;
        let me = &self.shared.options.node_id;
        let left = link.run(|c| {
            Script::new(scripts::ROUTE_DOWN)
                .key(keys.routes_of(me))
                .key(keys.incarnation_of(me))
                .key(keys.route_log())
                .arg(me)
                .arg(self.shared.options.log_maxlen)
                .invoke::<i64>(c)?;
            redis::pipe()
                .zrem(keys.nodes(), me)
                .ignore()
                .del(keys.inbox_of(me))
                .ignore()
                .del(keys.node_info(me))
                .ignore()
                .query::<()>(c)
        });
        match left {
            Ok(()) => tracing::info!(node = %me, "left the cluster"),
            Err(e) => {
                tracing::warn!(node = %me, error = %e, "could not leave the cluster cleanly; its lease will lapse")
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The id of a stream's newest entry (`0-0` when empty or missing).
fn last_id(link: &mut Link, key: &str) -> Result<String, ClusterError> {
    let reply: redis::Value = link.run(|c| {
        redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(c)
    })?;
    Ok(wire::entries(reply)
        .pop()
        .map_or_else(|| "0-0".to_string(), |e| e.id))
}

/// Hands every retained message in the buckets to the receiver.
fn load_retained(link: &mut Link, shared: &Shared) -> Result<usize, ClusterError> {
    let mut loaded = 0;
    for bucket in 0..keys::RETAINED_BUCKETS {
        let key = shared.keys.retained_bucket(bucket);
        let mut cursor = 0u64;
        loop {
            let (next, flat): (u64, Vec<Vec<u8>>) = link.run(|c| {
                redis::cmd("HSCAN")
                    .arg(&key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(256)
                    .query(c)
            })?;
            for pair in flat.chunks(2) {
                if let [_, blob] = pair {
                    match wire::decode::<wire::RetainedBlob>(blob) {
                        Ok(blob) => {
                            shared.receiver.retained(RetainedUpdate::Set {
                                stored_at: wire::from_unix_ms(blob.stored_at_ms),
                                message: Box::new(blob.message),
                            });
                            loaded += 1;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable retained message skipped")
                        }
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(loaded)
}

/// Warns when Redis may evict keys: an evicted owner record or route set
/// silently breaks the cluster's guarantees (docs/cluster.md).
fn warn_if_evicting(link: &mut Link) {
    // One server answers [name, value]; a Redis Cluster answers per node:
    // every value after a `maxmemory-policy` name is looked at.
    let reply = link.run(|c| {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query::<redis::Value>(c)
    });
    let Ok(reply) = reply else {
        return;
    };
    let mut strings = Vec::new();
    flatten_strings(&reply, &mut strings);
    for pair in strings.windows(2) {
        if pair[0] == "maxmemory-policy" && pair[1] != "noeviction" {
            tracing::warn!(policy = %pair[1], "Redis maxmemory-policy is not noeviction: evicted cluster keys break its guarantees");
            return;
        }
    }
}

/// Every string in a reply, depth first.
fn flatten_strings(value: &redis::Value, out: &mut Vec<String>) {
    match value {
        redis::Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => out.push(s.clone()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|v| flatten_strings(v, out));
        }
        redis::Value::Map(pairs) => {
            for (k, v) in pairs {
                flatten_strings(k, out);
                flatten_strings(v, out);
            }
        }
        _ => {}
    }
}
