//! Inbox handoff (cluster-redis.md §3.5 step 3; docs/cluster.md "Inbox
//! handoff"): the janitor that removes a dead node also takes the part of
//! its inbox the node had not handled (after its checkpoint) and delivers
//! it again, so messages forwarded to a dead node for its persistent
//! sessions are not lost with it.
//!
//! The claim renames the inbox in one script (one janitor gets it; a
//! racing one finds nothing; the node restarting writes a fresh inbox).
//! The replay waits one lease first: the dead node's clients reconnecting
//! at once (they wait up to a lease for a handover that does not come) have
//! resumed their sessions somewhere by then. Meanwhile the dead node's
//! routes stay up, so what is published for its clients keeps going to its
//! inbox (a recreated one after the claim, taken too) instead of to nowhere
//! while they move; they go down after the replay, and what other nodes
//! still wrote before reading that is taken a third of a lease later.
//! Each message is then matched
//! against the routes as they are *now*, but delivered to non-shared
//! subscriptions of the dead node's client ids only (`Remote::only`): the
//! other subscribers got it the first time. A shared group the dead node
//! was to deliver gets a member picked afresh.
//!
//! The sessions nobody resumed are adopted over the live nodes first
//! (`spread.rs`), and every adopter gets the replayed messages for the dead
//! node's client ids. A janitor job's replay is fenced: before each page it
//! checks the job is still this node's (`JOB_STEP`, which also records its
//! progress), and before each message that this node's lease is fresh
//! with no gap since the last check (`lease::Gate`): a janitor paused or
//! cut off past its lease stops
//! instead of replaying alongside the node that took its job over (which
//! resumes after the last page recorded).

use std::time::Instant;

use bytes::Bytes;
use redis::{Script, Value};
use smallvec::SmallVec;

use crate::batch;
use crate::dedupe::Seen;
use crate::lease::Gate;
use crate::link::Link;
use crate::routes::Dest;
use crate::wire::{self, DATA, KIND};
use crate::writer::Item;
use crate::{ClusterError, Remote, Shared, scripts};

/// Entries read per `XRANGE`.
const PAGE: usize = 512;
/// Replayed messages a job's janitor hands its writer before waiting until
/// they are written. What is queued when the janitor is paused is written
/// when it resumes, before its gate can stop anything: this bounds what
/// then reaches the successor's sessions a second time (a page holds up to
/// 512 batches of up to 1,024 messages each, and queueing them takes a few
/// milliseconds), and the writer's queue of replayed forwards.
const CHUNK: usize = 1024;

/// A dead node's inbox claimed for handoff, replayed once `due`.
#[derive(Debug)]
pub(crate) struct Pending {
    node: String,
    /// Where its inbox is renamed to.
    key: String,
    /// Its checkpoint when claimed (entries after it are replayed); `None`:
    /// nothing was claimed (no inbox, or another janitor has it).
    from: Option<String>,
    /// The route incarnation the janitor gave the dead node: its routes go
    /// after the replay if it is still that one. `None`: this node's own
    /// earlier run (it registered its routes again itself).
    routes_of: Option<u64>,
    /// The route removal is done: only late forwards are left to take.
    late: bool,
    /// The dead node's client ids.
    pub(crate) clients: Vec<String>,
    pub(crate) due: Instant,
    /// A dead node's janitor job (`job.rs`): its progress is recorded.
    job: bool,
}

impl Pending {
    /// The node whose inbox it was.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }
}

/// Claims the inbox of dead `node` (whose route incarnation the janitor
/// set to `incarnation`); `clients`: the client ids it listed. Its routes
/// go after the replay.
pub(crate) fn claim(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    incarnation: u64,
    clients: Vec<String>,
) -> Result<Pending, ClusterError> {
    let key = shared.keys.handoff_of(node, incarnation);
    let job = shared.keys.job_of(node);
    let mut from = claim_into(link, shared, node, &key, Some(&job))?;
    if from.is_none() {
        // Claimed already by a janitor that died since (the script kept
        // the checkpoint in the job's record).
        from = link.run(|c| redis::cmd("HGET").arg(&job).arg("from").query(c))?;
    }
    Ok(Pending {
        node: node.to_string(),
        key,
        from,
        routes_of: Some(incarnation),
        late: false,
        clients,
        due: Instant::now() + shared.options.lease,
        job: true,
    })
}

/// A dead node's handoff taken over at `stage` (`job.rs`): delivered from
/// after `position` (the dead janitor's last recorded entry, or the
/// checkpoint) when the claimed stream is still there, due at `due`.
pub(crate) fn resume(
    shared: &Shared,
    node: &str,
    incarnation: u64,
    stage: crate::job::Stage,
    position: Option<String>,
    clients: Vec<String>,
    due: Instant,
) -> Pending {
    let late = stage == crate::job::Stage::Late;
    Pending {
        node: node.to_string(),
        key: shared.keys.handoff_of(node, incarnation),
        // The late step's stream (if claimed already) from its start.
        from: position.or_else(|| late.then(|| "0-0".to_string())),
        routes_of: Some(incarnation),
        late,
        clients,
        due,
        job: true,
    }
}

/// Claims this node's own earlier inbox at start (route incarnation
/// `incarnation` before it registers); `None`: nothing left in it.
pub(crate) fn claim_own(
    link: &mut Link,
    shared: &Shared,
    incarnation: u64,
) -> Result<Option<Pending>, ClusterError> {
    let me = &shared.options.node_id;
    let key = shared.keys.handoff_of(me, incarnation);
    Ok(
        claim_into(link, shared, me, &key, None)?.map(|from| Pending {
            node: me.clone(),
            key,
            from: Some(from),
            routes_of: None,
            late: true,
            clients: Vec::new(),
            due: Instant::now() + shared.options.lease,
            job: false,
        }),
    )
}

/// This node's earlier run left no inbox to hand off but sessions
/// (`clients`): they are adopted one lease later all the same, if their
/// clients have not come back by then (`adopt.rs`).
pub(crate) fn adopt_own(shared: &Shared, incarnation: u64, clients: Vec<String>) -> Pending {
    let me = &shared.options.node_id;
    Pending {
        node: me.clone(),
        key: shared.keys.handoff_of(me, incarnation),
        from: None,
        routes_of: None,
        late: true,
        clients,
        due: Instant::now() + shared.options.lease,
        job: false,
    }
}

/// Renames `node`'s inbox to `key` unless `key` exists; its checkpoint.
fn claim_into(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    key: &str,
    job: Option<&str>,
) -> Result<Option<String>, ClusterError> {
    let keys = &shared.keys;
    // Kept long enough for the replay and its retries, and for another
    // janitor to take the job over if this one dies (`job.rs`).
    let keep_ms = u64::try_from(shared.options.lease.as_millis().saturating_mul(20))
        .unwrap_or(u64::MAX)
        .max(60_000);
    link.run(|c| {
        let script = Script::new(scripts::HANDOFF_CLAIM);
        let mut call = script.prepare_invoke();
        call.key(keys.inbox_of(node))
            .key(keys.checkpoint_of(node))
            .key(key);
        if let Some(job) = job {
            call.key(job);
        }
        call.arg(keep_ms).invoke(c)
    })
}

/// Delivers what the claimed inbox holds after its checkpoint and what
/// was forwarded to the dead node since (a recreated inbox, unless the node
/// came back: its new run reads that one), then takes its routes down;
/// the next step (`Some`: forwards written before the other nodes read the
/// removal) is due a third of a lease later. Returns how many messages.
pub(crate) fn replay(
    link: &mut Link,
    shared: &Shared,
    pending: &Pending,
) -> Result<(usize, Option<Pending>), ClusterError> {
    if !still_janitor(link, shared, pending, &mut Gate::new(shared))? {
        return Ok((0, None));
    }
    // First the sessions nobody resumed: parked on the live nodes (a job's)
    // or here (this node's earlier run's), the replay reaches them as it
    // reaches a resumed one (`spread.rs`, `adopt.rs`).
    if !pending.late || pending.routes_of.is_none() {
        if pending.job {
            crate::spread::adopt_spread(link, shared, &pending.node, &pending.clients)?;
        } else {
            crate::adopt::adopt_sessions(link, shared, &pending.node, &pending.clients)?;
        }
    }
    // The other adopters get every replayed message for the dead node's
    // client ids (their own matching picks what their sessions take).
    let adopters: Vec<u16> = if pending.job {
        crate::spread::targets(link, shared, &pending.node)?
            .iter()
            .filter_map(|name| shared.routes.number_of(name))
            .collect()
    } else {
        Vec::new()
    };
    // From here the lease must hold without a gap (the adoption above
    // may wait for the other adopters longer than a lease).
    let gate = &mut Gate::new(shared);
    let mut seen = Seen::default();
    let mut replayed = 0;
    if let Some(from) = &pending.from {
        match replay_from(link, shared, pending, from, &adopters, gate, &mut seen)? {
            Some(n) => replayed += n,
            None => return Ok((replayed, None)),
        }
    }
    let alive = crate::lease::until(link, &shared.keys, &pending.node)?;
    if alive.is_none() && claim_into(link, shared, &pending.node, &pending.key, None)?.is_some() {
        match replay_from(link, shared, pending, "0-0", &adopters, gate, &mut seen)? {
            Some(n) => replayed += n,
            None => return Ok((replayed, None)),
        }
    }
    let mut next = None;
    if let (Some(incarnation), false) = (pending.routes_of, pending.late) {
        if !still_janitor(link, shared, pending, gate)? {
            return Ok((replayed, None));
        }
        let keys = &shared.keys;
        link.run(|c| {
            Script::new(scripts::ROUTE_DOWN_IF)
                .key(keys.routes_of(&pending.node))
                .key(keys.incarnation_of(&pending.node))
                .key(keys.route_log())
                .arg(&pending.node)
                .arg(shared.options.log_maxlen)
                .arg(incarnation)
                .invoke::<i64>(c)
        })?;
        tracing::info!(node = %pending.node, "inbox handoff replayed; the dead node's routes removed");
        let after = shared.options.lease / 3;
        if pending.job
            && !crate::job::advance(link, shared, &pending.node, crate::job::Stage::Late, after)?
        {
            return Ok((replayed, None));
        }
        next = Some(Pending {
            node: pending.node.clone(),
            key: pending.key.clone(),
            from: None,
            routes_of: pending.routes_of,
            late: true,
            clients: pending.clients.clone(),
            due: Instant::now() + after,
            job: pending.job,
        });
    } else if let (true, Some(incarnation)) = (pending.job, pending.routes_of) {
        crate::job::finish(link, shared, &pending.node, incarnation)?;
    }
    shared
        .stats
        .handed_off
        .fetch_add(replayed as u64, std::sync::atomic::Ordering::Relaxed);
    if replayed > 0 {
        tracing::warn!(node = %pending.node, messages = replayed, "a dead node's unread inbox was delivered again");
    }
    Ok((replayed, next))
}

/// A job's replay goes on only while the job is this node's and its lease
/// is fresh (false: stop, the job is or will be another node's; if it is
/// still this node's, its next renewal round runs it again from its
/// recorded stage, `job::take_over`).
fn still_janitor(
    link: &mut Link,
    shared: &Shared,
    pending: &Pending,
    gate: &mut Gate,
) -> Result<bool, ClusterError> {
    if !pending.job {
        return Ok(true);
    }
    if gate.open(shared) && crate::job::still_mine(link, shared, &pending.node)? {
        return Ok(true);
    }
    cut_off(pending);
    Ok(false)
}

fn cut_off(pending: &Pending) {
    tracing::warn!(
        node = %pending.node,
        "inbox handoff stopped: this node's lease may have lapsed or its janitor job was taken over"
    );
}

/// Delivers the claimed stream's entries after `from`, then deletes it
/// (to the dead node's client ids on the nodes the routes say, and on
/// `adopters`). `None`: stopped, this node is not (surely) the job's
/// janitor any more.
fn replay_from(
    link: &mut Link,
    shared: &Shared,
    pending: &Pending,
    from: &str,
    adopters: &[u16],
    gate: &mut Gate,
    seen: &mut Seen,
) -> Result<Option<usize>, ClusterError> {
    // Unless it came back (same node id): its new run's clients get
    // theirs through its routes.
    let back = crate::lease::until(link, &shared.keys, &pending.node)?;
    let dead = back
        .is_none()
        .then(|| shared.routes.number_of(&pending.node))
        .flatten();
    let mut start = if from == "0-0" {
        "-".to_string()
    } else {
        format!("({from}")
    };
    let mut replayed = 0;
    loop {
        let reply: Value = link.run(|c| {
            redis::cmd("XRANGE")
                .arg(&pending.key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query(c)
        })?;
        let entries = wire::entries(reply);
        let Some(last) = entries.last().map(|e| e.id.clone()) else {
            break;
        };
        if !still_janitor(link, shared, pending, gate)? {
            return Ok(None);
        }
        for mut entry in entries {
            // Kicks and handover answers were for the dead node's connections.
            if entry.text(KIND) != Some("m") {
                continue;
            }
            if let Some((origin, incarnation, seq)) = entry.batch_header()
                && !seen.fresh(origin, incarnation, seq)
            {
                continue;
            }
            let Some(data) = entry.take(DATA) else {
                continue;
            };
            match batch::decode(&Bytes::from(data)) {
                Ok(messages) => {
                    for remote in messages {
                        // Checked per message: a pause (SIGSTOP) may come
                        // in the middle of a page.
                        if pending.job && !gate.open(shared) {
                            shared.receiver.settle();
                            cut_off(pending);
                            return Ok(None);
                        }
                        deliver(shared, remote, &pending.clients, adopters, dead);
                        replayed += 1;
                        if pending.job && replayed % CHUNK == 0 && !crate::adopt::written(shared) {
                            return Err(ClusterError::Redis(
                                "a replayed chunk's forwards were not written".into(),
                            ));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %pending.node, error = %e, "undecodable batch in a dead node's inbox skipped")
                }
            }
        }
        shared.receiver.settle();
        // The page's forwards are in their inboxes before its end is
        // recorded: a janitor taking the job over resumes after it, so one
        // still in this node's writer queue would be lost with this node.
        if pending.job && !crate::adopt::written(shared) {
            return Err(ClusterError::Redis(
                "a replayed page's forwards were not written".into(),
            ));
        }
        if pending.job && !crate::job::progress(link, shared, &pending.node, &last)? {
            cut_off(pending);
            return Ok(None);
        }
        start = format!("({last}");
    }
    link.run(|c| redis::cmd("DEL").arg(&pending.key).query::<()>(c))?;
    Ok(Some(replayed))
}

/// One message of a dead node's inbox, to where the routes say now (not
/// to the dead node itself, `dead`: its routes are still up, but every
/// client of its is resumed somewhere or adopted by now, and this replay
/// would take the message out of its inbox again and deliver it twice),
/// and to `adopters` (nodes that adopted some of the dead node's sessions).
fn deliver(
    shared: &Shared,
    remote: Remote,
    clients: &[String],
    adopters: &[u16],
    dead: Option<u16>,
) {
    // Handed off twice (the dead node held a handed-off message): still
    // only for the sessions it was meant for.
    let only = if remote.only.is_empty() {
        clients.to_vec()
    } else {
        remote.only
    };
    // No client id known (an earlier run of this node whose sessions were
    // not listed): no non-shared subscriber is named.
    let direct = remote.direct && !only.is_empty();
    let topic = remote.message.topic.to_string();
    let publisher = remote.message.publisher.as_deref().unwrap_or("");
    let plan = shared.routes.plan(&topic, publisher);
    let mut to: SmallVec<[Dest; 4]> = SmallVec::new();
    if direct {
        for dest in plan.to.iter().filter(|d| d.direct && Some(d.node) != dead) {
            to.push(Dest {
                node: dest.node,
                direct: true,
                groups: Vec::new(),
            });
        }
        // Their routes for the sessions they adopted may not be in this
        // node's cache yet; once each (their own matching and `only` pick
        // the sessions).
        for node in adopters {
            if !to.iter().any(|d| d.node == *node) {
                to.push(Dest {
                    node: *node,
                    direct: true,
                    groups: Vec::new(),
                });
            }
        }
    }
    let mut here = Vec::new();
    for group in remote.groups {
        let picked = plan
            .to
            .iter()
            .find(|d| d.groups.iter().any(|g| **g == *group))
            .map(|d| d.node);
        match picked {
            Some(node) => match to.iter_mut().find(|d| d.node == node) {
                Some(dest) => dest.groups.push(group.as_str().into()),
                None => to.push(Dest {
                    node,
                    direct: false,
                    groups: vec![group.as_str().into()],
                }),
            },
            // This node's pick (or no member anywhere: dropped here).
            None => here.push(group),
        }
    }
    if direct || !here.is_empty() {
        shared.receiver.messages(vec![Remote {
            message: remote.message.clone(),
            direct,
            groups: here,
            rerouted: true,
            only: only.clone(),
        }]);
    }
    if to.is_empty() {
        return;
    }
    let item = Item::Forward {
        to,
        message: Box::new(remote.message),
        ack: None,
        rerouted: true,
        only,
    };
    // Bounded by the dead inbox (itself capped): never dropped.
    if shared.writes.push_within(item, usize::MAX).is_err() {
        tracing::debug!("cluster stopped; handed-off message not forwarded");
    }
}
