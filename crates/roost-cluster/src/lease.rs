//! Membership (cluster-redis.md §3.5): the node's lease in the nodes ZSET,
//! renewed every third of its length; each round also removes nodes whose
//! lease lapsed (their routes, their inbox). Any node may do it; doing it
//! twice is harmless. A renewal that fails marks the node unhealthy, which
//! refuses new CONNECTs until Redis answers again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use redis::Script;

use crate::link::Link;
use crate::wire::unix_ms;
use crate::{Shared, scripts, writer};

pub(crate) fn run(shared: Arc<Shared>, mut link: Link) {
    let every = shared.options.lease / 3;
    loop {
        match renew(&mut link, &shared) {
            Ok(()) => {
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
        if shared.stop.pause(every) {
            return;
        }
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
/// inbox deleted (nobody reads it; adopting it is not built).
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
