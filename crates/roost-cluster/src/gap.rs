//! Route-log gap detection (cluster-redis.md §3.2): the route log is capped
//! (`MAXLEN ~ log_maxlen`), so a reader further behind than the cap (a node
//! paused, a slow reader under a burst of subscription churn) would skip the
//! changes trimmed before it read them, and its route cache would stay wrong
//! for good.
//!
//! The reader keeps its *position*: how many entries the log had ever
//! received up to its cursor (`entries-added` of Redis 7.0's `XINFO
//! STREAM`, taken with the cursor when the cache was loaded, then one more
//! per entry read). When a read returns route entries, `entries-added -
//! length` says how many entries were ever removed from the front (the log
//! is only trimmed, never `XDEL`ed); more than the position means entries
//! this node had not read are gone. The reader then rebuilds its whole cache
//! from the live nodes' route sets (as at start) and reads the log on from
//! the id it took before reading them (entries after it are applied again:
//! set adds and removals, idempotent). Counted in
//! [`Stats::route_rebuilds`](crate::Stats). A trim between the read and the
//! check can make a reader right at the cap rebuild once for nothing: safe.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use redis::Value;

use crate::link::Link;
use crate::wire::{self, Entry, text_of};
use crate::{ClusterError, Shared};

/// `XINFO STREAM`'s last id, entries ever added and current length
/// (`0-0`, 0, 0 for a log that does not exist yet).
fn info(link: &mut Link, log: &str) -> Result<(String, u64, u64), ClusterError> {
    let exists: bool = link.run(|c| redis::cmd("EXISTS").arg(log).query(c))?;
    if !exists {
        return Ok(("0-0".into(), 0, 0));
    }
    let info: Value = link.run(|c| redis::cmd("XINFO").arg("STREAM").arg(log).query(c))?;
    let fields: Vec<&Value> = match &info {
        Value::Array(items) => items.iter().collect(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().and_then(|k| text_of(k)).as_deref() == Some(name))
            .and_then(|pair| pair.get(1).copied())
    };
    let number = |name: &str| match field(name) {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        Some(other) => text_of(other).and_then(|t| t.parse().ok()).unwrap_or(0),
        None => 0,
    };
    let last = field("last-generated-id")
        .and_then(text_of)
        .unwrap_or_else(|| "0-0".into());
    Ok((last, number("entries-added"), number("length")))
}

/// Rebuilds the route cache from the live nodes' route sets; returns the
/// log id to read on from and how many entries the log had received up to
/// it (both taken before the sets were read).
pub(crate) fn reload(link: &mut Link, shared: &Shared) -> Result<(String, u64), ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let (cursor, added, _) = info(link, &keys.route_log())?;
    let now = wire::unix_ms(SystemTime::now());
    let live: Vec<String> = link.run(|c| {
        redis::cmd("ZRANGEBYSCORE")
            .arg(keys.nodes())
            .arg(now)
            .arg("+inf")
            .query(c)
    })?;
    let mut sets = Vec::with_capacity(live.len());
    for node in live.iter().filter(|n| *n != me) {
        let filters: Vec<String> =
            link.run(|c| redis::cmd("SMEMBERS").arg(keys.routes_of(node)).query(c))?;
        sets.push((node, filters));
    }
    shared.routes.clear();
    for (node, filters) in &sets {
        shared.routes.load(node, filters);
    }
    Ok((cursor, added))
}

/// The reader's check before applying `entries` just read from the route
/// log (`log`): `None` to apply them (`added`, the reader's position, now
/// counts them); `Some(id)` when entries it had not read were trimmed and
/// the cache was rebuilt instead: the entries are not applied, the log is
/// read on from `id` (`added` is its position).
pub(crate) fn check(
    link: &mut Link,
    shared: &Shared,
    log: &str,
    added: &mut u64,
    entries: &[Entry],
) -> Result<Option<String>, ClusterError> {
    let (_, total, length) = info(link, log)?;
    let read = entries.len() as u64;
    if total < *added {
        // The log was recreated (Redis lost it): count from here.
        *added = total.saturating_sub(read);
    }
    let removed = total.saturating_sub(length);
    if removed <= *added {
        *added += read;
        return Ok(None);
    }
    let unread = removed - *added;
    let (from, position) = reload(link, shared)?;
    *added = position;
    let n = shared.stats.route_rebuilds.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        rebuilds = n,
        routes = shared.routes.len(),
        unread_trimmed = unread,
        "route log gap: entries this node had not read were trimmed; route cache rebuilt from the route sets"
    );
    Ok(Some(from))
}
