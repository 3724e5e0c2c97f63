//! The writer thread: takes what the broker queued (forwards, route
//! changes, retained changes) and writes it to Redis in one round trip per
//! batch, then answers the QoS 1/2 publishers waiting on their forwards.
//! While Redis is unreachable it keeps the batch and retries; the queue
//! behind it is bounded (see `Cluster::forward`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Script;
use roost_store::StoredMessage;
use smallvec::SmallVec;

use crate::batch::{Body, Names, RemoteOut};
use crate::done::Completer;
use crate::link::Link;
use crate::queue::Linger;
use crate::routes::Dest;
use crate::wire::{DATA, INCARNATION, KIND, ORIGIN, SEQ, TOPIC};
use crate::{ClusterError, Shared, scripts};

/// Messages (queue weight: a staged read is as many as it holds) taken
/// per round trip at most, past which the last item taken may go.
const BATCH: usize = 1024;
/// The writer's queue lingers up to `time` for half a round trip's
/// messages (`queue::Linger`).
pub(crate) fn linger(time: Duration) -> Linger {
    Linger {
        time,
        fill: BATCH / 2,
    }
}

/// Filters per route script call (each is one Lua argument).
const ROUTE_CHUNK: usize = 256;

/// Something for the writer.
pub(crate) enum Item {
    /// A message for other nodes' inboxes; `ack` answered once written.
    Forward {
        to: SmallVec<[Dest; 4]>,
        /// Boxed: the queue holds mostly these, and other items are small.
        message: Box<StoredMessage>,
        ack: Option<Completer<()>>,
        /// Sent on by a node that had no member left of a group.
        rerouted: bool,
        /// Handed off from a dead node's inbox: only these sessions get it
        /// (see [`Remote::only`]); empty: every subscriber named.
        only: Vec<String>,
    },
    /// Messages a connection's read staged (`staged.rs`), already encoded:
    /// message `i` is for node `entries[i].0` and its `Remote` ends at
    /// `entries[i].1` in `bytes` (starting where the one before ends);
    /// `ack` answered once all are written.
    Encoded {
        bytes: Vec<u8>,
        entries: Vec<(u16, usize)>,
        ack: Option<Completer<()>>,
    },
    /// This node gained (`present`) or lost its last subscriber for a filter.
    Route { filter: String, present: bool },
    /// A retained message set (`blob`) or cleared (`None`).
    Retain {
        topic: String,
        blob: Option<Vec<u8>>,
    },
    /// A ban added (`until_ms`: its end, `0` never) or lifted (`None`).
    Ban {
        target: String,
        until_ms: Option<u64>,
    },
}

pub(crate) fn run(shared: Arc<Shared>, mut link: Link) {
    let mut backoff = Duration::from_millis(50);
    // Batch sequence numbers (`dedupe.rs`): one per round trip, kept by
    // its retries, so a batch written twice is read once.
    let mut seq: u64 = 0;
    // The queue's buffer and this one trade places at every take.
    let mut items = VecDeque::new();
    // Kept from round trip to round trip: its per-node bodies keep their
    // buffers (`Body::clear`).
    let mut batch = Batch::default();
    while shared
        .writes
        .take_into(BATCH, Duration::from_millis(500), &mut items)
    {
        if items.is_empty() {
            continue;
        }
        seq += 1;
        let mut acks = Vec::new();
        batch.reset(seq, shared.incarnation.load(Ordering::Relaxed));
        for item in items.drain(..) {
            batch.add(item, &mut acks);
        }
        loop {
            match batch.write(&mut link, &shared) {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    break;
                }
                Err(e) => {
                    shared.healthy.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cluster write failed; retrying (publishers' acknowledgements wait)");
                    if shared.stop.pause(backoff) {
                        // Stopping: what could not be written is not acknowledged.
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        answer(&shared, acks);
    }
}

/// Answers a written batch's waiting publishers: more than one on the
/// broker's runtime ([`Receiver::in_runtime`](crate::Receiver::in_runtime)),
/// one wake-up from this thread for all of them.
fn answer(shared: &Shared, acks: Vec<Completer<()>>) {
    match acks.len() {
        0 => {}
        1 => acks.into_iter().for_each(|ack| ack.complete(Ok(()))),
        _ => shared.receiver.in_runtime(Box::new(move || {
            for ack in acks {
                ack.complete(Ok(()));
            }
        })),
    }
}

impl Item {
    /// Its weight in the writer's queue (`queue.rs`): the messages it
    /// carries (per destination), 1 for anything else.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Item::Encoded { entries, .. } => entries.len().max(1),
            _ => 1,
        }
    }
}

/// One batch grouped for writing.
#[derive(Default)]
struct Batch {
    /// This batch's header (`dedupe.rs`): the same on every destination
    /// and on every retry.
    seq: u64,
    incarnation: u64,
    /// Messages per destination node, encoded.
    forwards: HashMap<u16, Body>,
    /// The last change per filter, in first-seen order.
    routes: Vec<(String, bool)>,
    route_index: HashMap<String, usize>,
    retained: Vec<(String, Option<Vec<u8>>)>,
    bans: Vec<(String, Option<u64>)>,
}

impl Batch {
    /// Empty again for round trip `seq`, its buffers kept.
    fn reset(&mut self, seq: u64, incarnation: u64) {
        self.seq = seq;
        self.incarnation = incarnation;
        self.forwards.values_mut().for_each(Body::clear);
        self.routes.clear();
        self.route_index.clear();
        self.retained.clear();
        self.bans.clear();
    }

    fn add(&mut self, item: Item, acks: &mut Vec<Completer<()>>) {
        match item {
            Item::Forward {
                to,
                message,
                ack,
                rerouted,
                only,
            } => {
                // No destination (a barrier, `adopt.rs`): nothing is
                // encoded; its answer comes once what was queued before it
                // is written.
                for dest in &to {
                    let out = RemoteOut {
                        message: &message,
                        direct: dest.direct,
                        groups: Names(&dest.groups),
                        rerouted,
                        only: &only,
                    };
                    let body = self.forwards.entry(dest.node).or_default();
                    match body.push(&out) {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cluster message not encodable; not forwarded")
                        }
                    }
                }
                acks.extend(ack);
            }
            Item::Encoded {
                bytes,
                entries,
                ack,
            } => {
                let mut start = 0;
                for (node, end) in entries {
                    if let Some(encoded) = bytes.get(start..end) {
                        self.forwards.entry(node).or_default().push_encoded(encoded);
                    }
                    start = end;
                }
                acks.extend(ack);
            }
            Item::Route { filter, present } => match self.route_index.get(&filter) {
                Some(i) => self.routes[*i].1 = present,
                None => {
                    self.route_index.insert(filter.clone(), self.routes.len());
                    self.routes.push((filter, present));
                }
            },
            Item::Retain { topic, blob } => self.retained.push((topic, blob)),
            Item::Ban { target, until_ms } => self.bans.push((target, until_ms)),
        }
    }

    fn write(&mut self, link: &mut Link, shared: &Shared) -> Result<(), ClusterError> {
        if !self.routes.is_empty() {
            let adds: Vec<&str> = self
                .routes
                .iter()
                .filter(|(_, p)| *p)
                .map(|(f, _)| f.as_str())
                .collect();
            let dels: Vec<&str> = self
                .routes
                .iter()
                .filter(|(_, p)| !*p)
                .map(|(f, _)| f.as_str())
                .collect();
            if !update_routes(link, shared, false, &adds, &dels)? {
                register(link, shared)?;
            }
        }
        let forwards = self.forwards.values().any(|body| body.count() > 0);
        if !forwards && self.retained.is_empty() && self.bans.is_empty() {
            return Ok(());
        }
        let keys = &shared.keys;
        let maxlen = shared.options.inbox_maxlen;
        let mut pipe = redis::pipe();
        for (target, until_ms) in &self.bans {
            match until_ms {
                Some(ms) => pipe.hset(keys.bans(), target, *ms).ignore(),
                None => pipe.hdel(keys.bans(), target).ignore(),
            };
            let mut xadd = redis::cmd("XADD");
            xadd.arg(keys.ban_log())
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg("*")
                .arg(ORIGIN)
                .arg(&shared.options.node_id)
                .arg(TOPIC)
                .arg(target);
            if let Some(ms) = until_ms {
                xadd.arg(DATA).arg(*ms);
            }
            pipe.add_command(xadd).ignore();
        }
        for (topic, blob) in &self.retained {
            let bucket = keys.retained_of(topic);
            match blob {
                Some(blob) => pipe.hset(&bucket, topic, blob.as_slice()).ignore(),
                None => pipe.hdel(&bucket, topic).ignore(),
            };
            let mut xadd = redis::cmd("XADD");
            xadd.arg(keys.retained_log())
                .arg("MAXLEN")
                .arg("~")
                .arg(shared.options.log_maxlen)
                .arg("*")
                .arg(ORIGIN)
                .arg(&shared.options.node_id)
                .arg(TOPIC)
                .arg(topic);
            if let Some(blob) = blob {
                xadd.arg(DATA).arg(blob.as_slice());
            }
            pipe.add_command(xadd).ignore();
        }
        let mut sent = 0;
        for (node, body) in &mut self.forwards {
            if body.count() == 0 {
                continue;
            }
            let Some(name) = shared.routes.name(*node) else {
                continue;
            };
            sent += body.count();
            let data = body.frame();
            pipe.cmd("XADD")
                .arg(keys.inbox_of(&name))
                .arg("MAXLEN")
                .arg("~")
                .arg(maxlen)
                .arg("*")
                .arg(KIND)
                .arg("m")
                .arg(ORIGIN)
                .arg(&shared.options.node_id)
                .arg(INCARNATION)
                .arg(self.incarnation)
                .arg(SEQ)
                .arg(self.seq)
                .arg(DATA)
                .arg(data)
                .ignore();
        }
        link.run(|c| pipe.query::<()>(c))?;
        shared
            .stats
            .forwarded
            .fetch_add(sent as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the route script in chunks; false when the node's incarnation is
/// stale (declared dead meanwhile).
pub(crate) fn update_routes(
    link: &mut Link,
    shared: &Shared,
    reset: bool,
    adds: &[&str],
    dels: &[&str],
) -> Result<bool, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let script = Script::new(scripts::ROUTE_UPDATE);
    let incarnation = shared.incarnation.load(Ordering::Relaxed);
    let mut first = true;
    let mut adds = adds.chunks(ROUTE_CHUNK);
    let mut dels = dels.chunks(ROUTE_CHUNK);
    loop {
        let (a, d) = (adds.next(), dels.next());
        if a.is_none() && d.is_none() && !first {
            return Ok(true);
        }
        let a = a.unwrap_or(&[]);
        let d = d.unwrap_or(&[]);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.routes_of(me))
            .key(keys.incarnation_of(me))
            .key(keys.route_log())
            .arg(me)
            .arg(incarnation)
            .arg(if reset && first { "1" } else { "0" })
            .arg(shared.options.log_maxlen)
            .arg(a.len());
        for filter in a.iter().chain(d) {
            invocation.arg(*filter);
        }
        let applied: i64 = link.run(|c| invocation.invoke(c))?;
        if applied == 0 {
            return Ok(false);
        }
        first = false;
    }
}

/// Takes a new route incarnation and publishes this node's whole route set
/// again (at start, and after the node was declared dead while it lived:
/// a pause past its lease, a partition).
pub(crate) fn register(link: &mut Link, shared: &Shared) -> Result<(), ClusterError> {
    let _one_at_a_time = shared.registering.lock();
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let incarnation: u64 =
        link.run(|c| redis::cmd("INCR").arg(keys.incarnation_of(me)).query(c))?;
    shared.incarnation.store(incarnation, Ordering::Relaxed);
    let filters: Vec<String> = shared.routes.published.lock().iter().cloned().collect();
    let adds: Vec<&str> = filters.iter().map(String::as_str).collect();
    if !update_routes(link, shared, true, &adds, &[])? {
        return Err(ClusterError::Stale);
    }
    tracing::info!(node = %me, incarnation, routes = adds.len(), "cluster routes registered");
    Ok(())
}
