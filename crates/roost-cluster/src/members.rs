//! The cluster's members as the management API lists them (`GET
//! /api/v1/nodes`): every node whose lease in the nodes ZSET has not
//! lapsed, with when it joined (its `node:<id>` hash). Read on request, on
//! the link kept for blocking calls; nothing is added to the lease's work.

use std::time::SystemTime;

use crate::wire::unix_ms;
use crate::{Cluster, ClusterError};

/// One live node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its node id.
    pub node: String,
    /// When its lease lapses unless renewed, Unix milliseconds.
    pub lease_until_ms: u64,
    /// When it joined, Unix milliseconds (absent for a node that has not
    /// written it).
    pub started_ms: Option<u64>,
    /// The URLs clients reach it at, as it announced them when it joined.
    pub addresses: Vec<String>,
}

impl Cluster {
    /// The live nodes, sorted by node id. Blocking (one Redis round trip,
    /// then one per node): call it off the async runtime's workers.
    pub fn members(&self) -> Result<Vec<Member>, ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        let keys = &self.shared.keys;
        let now = unix_ms(SystemTime::now());
        let live: Vec<(String, f64)> = link.run(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys.nodes())
                .arg(now)
                .arg("+inf")
                .arg("WITHSCORES")
                .query(c)
        })?;
        let mut members = Vec::with_capacity(live.len());
        for (node, lease_until) in live {
            let (started, addresses): (Option<u64>, Option<String>) = link.run(|c| {
                redis::cmd("HMGET")
                    .arg(keys.node_info(&node))
                    .arg("started")
                    .arg("addresses")
                    .query(c)
            })?;
            members.push(Member {
                node,
                // Scores are whole milliseconds stored as doubles.
                lease_until_ms: lease_until.max(0.0) as u64,
                started_ms: started,
                addresses: addresses
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            });
        }
        members.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(members)
    }
}
