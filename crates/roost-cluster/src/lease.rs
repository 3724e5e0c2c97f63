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
//! own sessions (their wills go out once, their expiry starts), as a node
//! that saw it die would have.

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
    // The node joined (a renewal) just before this thread started.
    let mut renewed_at = Instant::now();
    loop {
        // First: a pause (SIGSTOP, a stalled host) may have outlived the lease.
        if renewed_at.elapsed() >= fence_after {
            fence(&shared);
        }
        let started = Instant::now();
        let renewed = renew(&mut link, &shared).and_then(|()| {
            if shared.fenced.load(Ordering::Relaxed) {
                // Back: this node's sessions were let go; adopt them as a
                // janitor would, before accepting connections.
                janitor::orphan_sessions(&mut link, &shared, &shared.options.node_id)?;
                shared.fenced.store(false, Ordering::Relaxed);
                tracing::warn!("cluster: lease renewed after self-fencing; accepting connections");
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
                    tracing::warn!(error = %e, "cluster: Redis unreachable; refusing new connections");
                }
            }
        }
        // Wake for the next renewal, or for the fence if it comes first.
        let fence_in = fence_after.saturating_sub(renewed_at.elapsed());
        let wait = if shared.fenced.load(Ordering::Relaxed) {
            every
        } else {
            every.min(fence_in.max(Duration::from_millis(1)))
        };
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

fn renew(link: &mut Link, shared: &Shared) -> Result<(), crate::ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let lease_ms = u64::try_from(shared.options.lease.as_millis()).unwrap_or(u64::MAX);
    let now = unix_ms(SystemTime::now());
    link.run(|c| {
        redis::cmd("ZADD")
            .arg(keys.nodes())
            .arg(now.saturating_add(lease_ms))
            .arg(me)
            .query::<()>(c)
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
    Ok(())
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
    janitor::orphan_sessions(link, shared, node)?;
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
