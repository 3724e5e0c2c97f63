//! The cluster's members as the management API lists them (`GET
//! /api/v1/nodes`): every node in the nodes ZSET, live or with a lease
//! that lapsed and that no node collected yet, with what it announced in
//! its `node:<id>` hash (`announce.rs`). Read on request, on the link kept
//! for blocking calls; nothing is added to the lease's work.

use std::time::SystemTime;

use crate::wire::unix_ms;
use crate::{Cluster, ClusterError};

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its node id.
    pub node: String,
    /// When its lease lapses unless renewed, Unix milliseconds.
    pub lease_until_ms: u64,
    /// The lease has not lapsed (false: the node stopped renewing it, and
    /// is removed by the next node to notice, within a third of a lease).
    pub live: bool,
    /// When it started, Unix milliseconds (absent for a node that has not
    /// written it).
    pub started_ms: Option<u64>,
    /// The URLs clients reach it at, as it announced them.
    pub addresses: Vec<String>,
    /// Its Roost version.
    pub version: Option<String>,
    /// Connections open on it at its last announcement.
    pub connections: Option<u64>,
    /// Sessions it held (connected and parked) at its last announcement.
    pub sessions: Option<u64>,
    /// The URL of its management API (`http://10.0.0.5:18083`), when it
    /// runs one.
    pub admin_url: Option<String>,
    /// When it last announced these, Unix milliseconds.
    pub announced_ms: Option<u64>,
}

/// The hash fields read, in [`Member`]'s order.
const FIELDS: [&str; 7] = [
    "started",
    "addresses",
    "version",
    "connections",
    "sessions",
    "admin",
    "announced",
];

impl Cluster {
    /// Every node in the set (live or lapsed, not yet collected), sorted by
    /// node id. Blocking (one Redis round trip, then one per node): call it
    /// off the async runtime's workers.
    pub fn members(&self) -> Result<Vec<Member>, ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        let keys = &self.shared.keys;
        let now = unix_ms(SystemTime::now());
        let all: Vec<(String, f64)> = link.run(|c| {
            redis::cmd("ZRANGE")
                .arg(keys.nodes())
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c)
        })?;
        let mut members = Vec::with_capacity(all.len());
        for (node, lease_until) in all {
            let info: Vec<Option<String>> = link.run(|c| {
                redis::cmd("HMGET")
                    .arg(keys.node_info(&node))
                    .arg(&FIELDS[..])
                    .query(c)
            })?;
            let field = |i: usize| info.get(i).cloned().flatten();
            let number = |i: usize| field(i).and_then(|v| v.parse::<u64>().ok());
            // Scores are whole milliseconds stored as doubles.
            let lease_until_ms = lease_until.max(0.0) as u64;
            members.push(Member {
                node,
                lease_until_ms,
                live: lease_until_ms >= now,
                started_ms: number(0),
                addresses: field(1)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                version: field(2),
                connections: number(3),
                sessions: number(4),
                admin_url: field(5).filter(|u| !u.is_empty()),
                announced_ms: number(6),
            });
        }
        members.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(members)
    }
}

impl Cluster {
    /// The node named by `client_id`'s owner record (the one holding its
    /// connection or parked session), `None` when no node holds it (never
    /// claimed, released, or orphaned by a dead node). Blocking (one Redis
    /// round trip).
    pub fn owner_node(&self, client_id: &str) -> Result<Option<String>, ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        let key = self.shared.keys.owner_of(client_id);
        let node: Option<String> =
            link.run(|c| redis::cmd("HGET").arg(&key).arg("node").query(c))?;
        Ok(node.filter(|n| !n.is_empty()))
    }
}
