//! Membership (cluster-redis.md §3.5): the node's lease in the nodes ZSET,
//! renewed every third of its length; each round also removes nodes whose
//! lease lapsed (their routes, their inbox, their sessions made adoptable
//! and their wills published: `janitor.rs`). Only one node removes a given
//! node (a Lua check-and-remove). A renewal that fails marks the node
//! unhealthy, which refuses new CONNECTs until Redis answers again.
//!
//! **Self-fencing.** A node that could not renew for `lease - lease / 6`
//! (its own monotonic clock, from the start of its last successful
//! renewal: before any other node can see its lease lapse) fences itself:
//! the broker closes every connection (DISCONNECT 0x9C Use another server)
//! and lets go of every session without writing (their rows in Redis are
//! the truth; clients resume them on any node). It refuses CONNECTs until a
//! renewal succeeds; then, before accepting any, it runs the janitor on its
//! own sessions (their expiry starts), as a node that saw it die would
//! have. Their wills go out only if another node did see it die (removed
//! it from the set, which the renewal script tells): after a *short* fence
//! (Redis back before anyone noticed), the cluster saw no death, and its
//! clients' wills are dropped.
//!
//! While Redis does not answer, renewals are retried every `lease / 15`
//! (at least 50 ms) rather than every third of the lease, so a node takes
//! CONNECTs again soon after Redis returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use redis::Script;

use crate::link::Link;
use crate::wire::unix_ms;
use crate::{Shared, announce, handoff, janitor, job, scripts, writer};

pub(crate) fn run(shared: Arc<Shared>, mut link: Link) {
    let lease = shared.options.lease;
    let every = lease / 3;
    let fence_after = lease - lease / 6;
    let retry = (lease / 15).max(Duration::from_millis(50));
    // The node joined (a renewal) just before this thread started.
    let mut renewed_at = Instant::now();
    loop {
        // First: a pause (SIGSTOP, a stalled host) may have outlived the lease.
        // `availability_over_consistency`: never (the node keeps serving).
        if renewed_at.elapsed() >= fence_after && !shared.options.available_when_cut_off {
            fence(&shared);
        }
        let started = Instant::now();
        let renewed = renew(&mut link, &shared).and_then(|kept| {
            if shared.fenced.load(Ordering::Relaxed) {
                // Back: this node's sessions were let go; adopt them as a
                // janitor would, before accepting connections. Their wills
                // only if the cluster saw this node die.
                janitor::orphan_sessions(&mut link, &shared, &shared.options.node_id, !kept)?;
                shared.fenced.store(false, Ordering::Relaxed);
                if kept {
                    tracing::warn!("cluster: lease renewed after a short self-fence (no other node saw it lapse; wills not published); accepting connections");
                } else {
                    tracing::warn!("cluster: lease renewed after self-fencing; accepting connections");
                }
            }
            Ok(())
        });
        match renewed {
            Ok(()) => {
                renewed_at = started;
                let since = started.saturating_duration_since(shared.epoch);
                shared.renewed.store(
                    u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                announce::after_renewal(&mut link, &shared);
                hand_off_due(&link, &shared);
                if !shared.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("cluster: Redis answers again; accepting connections");
                    if shared.options.available_when_cut_off {
                        // Sessions served meanwhile are claimed again (`rejoin.rs`).
                        shared.receiver.rejoined();
                    }
                }
            }
            Err(e) => {
                if shared.healthy.swap(false, Ordering::Relaxed) {
                    if shared.options.available_when_cut_off {
                        tracing::warn!(error = %e, "cluster: Redis unreachable; serving local clients only (availability_over_consistency)");
                    } else {
                        tracing::warn!(error = %e, "cluster: Redis unreachable; refusing new connections");
                    }
                }
            }
        }
        // Wake for the next renewal, or for the fence if it comes first.
        let fence_in = fence_after.saturating_sub(renewed_at.elapsed());
        let mut wait =
            if shared.fenced.load(Ordering::Relaxed) || shared.options.available_when_cut_off {
                every
            } else {
                every.min(fence_in.max(Duration::from_millis(1)))
            };
        if !shared.healthy.load(Ordering::Relaxed) {
            wait = wait.min(retry);
        }
        if shared.stop.pause(wait) {
            return;
        }
    }
}

/// A janitor's replay goes on only while this node's lease is surely its
/// own, without a gap (`handoff.rs`): open while the last successful
/// renewal started less than `lease - lease / 6` ago (the self-fence's
/// bound: before any other node can see the lease lapse and take the job
/// over) and the node is not fenced. Once that bound passed between two
/// checks (a pause: SIGSTOP, a stalled host, Redis away), the gate stays
/// shut, even if the lease thread renews first after the pause: another
/// node may have taken the job over meanwhile.
pub(crate) struct Gate {
    /// Open until then (time after `Shared::epoch`).
    until: Duration,
}

impl Gate {
    /// A gate valid from the last renewal.
    pub(crate) fn new(shared: &Shared) -> Gate {
        Gate {
            until: Self::bound(shared),
        }
    }

    fn bound(shared: &Shared) -> Duration {
        let lease = shared.options.lease;
        Duration::from_millis(shared.renewed.load(Ordering::Relaxed)) + (lease - lease / 6)
    }

    /// Whether the replay may go on (checked before each message).
    pub(crate) fn open(&mut self, shared: &Shared) -> bool {
        if shared.epoch.elapsed() >= self.until || shared.fenced.load(Ordering::Relaxed) {
            self.until = Duration::ZERO;
            return false;
        }
        self.until = self.until.max(Self::bound(shared));
        true
    }
}

/// When `node`'s lease ends (ms since the epoch, as the nodes set scores
/// it); `None`: it is not in the set (declared dead, or never joined).
pub(crate) fn until(
    link: &mut Link,
    keys: &crate::keys::Keys,
    node: &str,
) -> Result<Option<f64>, crate::ClusterError> {
    link.run(|c| redis::cmd("ZSCORE").arg(keys.nodes()).arg(node).query(c))
}

/// Fences this node (once per outage): unhealthy, and the broker lets go
/// of every connection and session.
fn fence(shared: &Shared) {
    shared.healthy.store(false, Ordering::Relaxed);
    if !shared.fenced.swap(true, Ordering::Relaxed) {
        tracing::error!(
            node = %shared.options.node_id,
            "cluster: lease not renewed in time; fencing this node (closing every connection)"
        );
        shared.receiver.fenced();
    }
}

/// One renewal; `Ok(true)` when this node was still in the set (no other
/// node collected it since the last renewal).
fn renew(link: &mut Link, shared: &Arc<Shared>) -> Result<bool, crate::ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let lease_ms = u64::try_from(shared.options.lease.as_millis()).unwrap_or(u64::MAX);
    let now = unix_ms(SystemTime::now());
    let kept: i64 = link.run(|c| {
        Script::new(scripts::RENEW)
            .key(keys.nodes())
            .arg(me)
            .arg(now.saturating_add(lease_ms))
            .invoke(c)
    })?;
    // Declared dead while alive (a pause past the lease): register again.
    let current: Option<u64> =
        link.run(|c| redis::cmd("GET").arg(keys.incarnation_of(me)).query(c))?;
    if current != Some(shared.incarnation.load(Ordering::Relaxed)) {
        tracing::warn!(node = %me, "this node was declared dead; registering its routes again");
        writer::register(link, shared)?;
    }
    let dead: Vec<String> = link.run(|c| {
        redis::cmd("ZRANGEBYSCORE")
            .arg(keys.nodes())
            .arg("-inf")
            .arg(format!("({now}"))
            .query(c)
    })?;
    for node in dead.iter().filter(|n| *n != me) {
        collect(link, shared, node, now)?;
    }
    // Janitor jobs whose janitor died (or this node's, stopped by an error).
    job::take_over(link, shared, now)?;
    Ok(kept == 1)
}

/// Replays the dead nodes' inboxes whose grace has passed (`handoff.rs`)
/// on a thread of its own, with its own connection: a long inbox must not
/// hold the lease renewal back. One that fails goes back to the list for a
/// later round.
fn hand_off_due(link: &Link, shared: &Arc<Shared>) {
    let now = Instant::now();
    let due: Vec<handoff::Pending> = {
        let mut pending = shared.handoffs.lock();
        if pending.iter().all(|p| p.due > now) {
            return;
        }
        let (due, later) = pending.drain(..).partition(|p| p.due <= now);
        *pending = later;
        due
    };
    // Running: not taken over by this node's own `job::take_over`.
    shared
        .jobs_running
        .lock()
        .extend(due.iter().map(|p| p.node().to_string()));
    let (shared, mut link) = (Arc::clone(shared), link.sibling());
    let spawned = std::thread::Builder::new()
        .name("roost-cluster-h".into())
        .spawn(move || {
            let mut due = due.into_iter();
            while let Some(next) = due.next() {
                let node = next.node().to_string();
                match handoff::replay(&mut link, &shared, &next) {
                    Ok((_, Some(step))) => shared.handoffs.lock().push(step),
                    Ok((_, None)) => {}
                    Err(e) => {
                        tracing::warn!(node = next.node(), error = %e, "inbox handoff failed; retried at a later renewal");
                        let rest: Vec<handoff::Pending> = due.collect();
                        // Back in `handoffs`, no longer running.
                        let mut running = shared.jobs_running.lock();
                        running.remove(&node);
                        for p in &rest {
                            running.remove(p.node());
                        }
                        drop(running);
                        let mut pending = shared.handoffs.lock();
                        pending.push(next);
                        pending.extend(rest);
                        return;
                    }
                }
                shared.jobs_running.lock().remove(&node);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the inbox handoff thread; dead nodes' unread messages are lost");
    }
}

/// Removes a node whose lease lapsed: out of the set, its routes down, its
/// sessions adoptable and their wills published (`janitor.rs`), its inbox
/// claimed for handoff (`handoff.rs`: replayed after a grace of one lease).
fn collect(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    now: u64,
) -> Result<(), crate::ClusterError> {
    let keys = &shared.keys;
    // This node is the dead node's janitor from here (`job.rs`): if it
    // dies or fails halfway, another node takes the job over.
    let removed: i64 = link.run(|c| {
        Script::new(scripts::EXPIRE_NODE)
            .key(keys.nodes())
            .key(keys.jobs())
            .arg(node)
            .arg(now)
            .arg(&shared.options.node_id)
            .invoke(c)
    })?;
    if removed == 0 {
        return Ok(());
    }
    job::run(link, shared, node, false)?;
    link.run(|c| redis::cmd("DEL").arg(keys.node_info(node)).query::<()>(c))?;
    tracing::warn!(
        node,
        "cluster node's lease lapsed: its sessions are adoptable, its inbox is handed off and its routes removed one lease later"
    );
    Ok(())
}
