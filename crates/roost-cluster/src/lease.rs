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
use crate::{Shared, janitor, scripts, writer};

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
                if !shared.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("cluster: Redis answers again; accepting connections");
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
fn renew(link: &mut Link, shared: &Shared) -> Result<bool, crate::ClusterError> {
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
    Ok(kept == 1)
}

/// Removes a node whose lease lapsed: out of the set, its routes down, its
/// sessions adoptable and their wills published (`janitor.rs`), its inbox
/// deleted (nobody reads it; handing it over is not built).
fn collect(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    now: u64,
) -> Result<(), crate::ClusterError> {
    let keys = &shared.keys;
    let removed: i64 = link.run(|c| {
        Script::new(scripts::EXPIRE_NODE)
            .key(keys.nodes())
            .arg(node)
            .arg(now)
            .invoke(c)
    })?;
    if removed == 0 {
        return Ok(());
    }
    link.run(|c| {
        Script::new(scripts::ROUTE_DOWN)
            .key(keys.routes_of(node))
            .key(keys.incarnation_of(node))
            .key(keys.route_log())
            .arg(node)
            .arg(shared.options.log_maxlen)
            .invoke::<i64>(c)
    })?;
    janitor::orphan_sessions(link, shared, node, true)?;
    link.run(|c| {
        redis::pipe()
            .del(keys.inbox_of(node))
            .ignore()
            .del(keys.node_info(node))
            .ignore()
            .query::<()>(c)
    })?;
    tracing::warn!(
        node,
        "cluster node's lease lapsed: its routes and inbox are removed"
    );
    Ok(())
}
