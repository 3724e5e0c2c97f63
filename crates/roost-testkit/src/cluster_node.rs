//! A `roost` process started as a cluster node, as every cluster suite
//! starts its nodes: one configuration, so a suite says only what differs
//! (its lease, extra `[cluster]` lines, other sections).

// A test's own setup: a node that does not start fails the test there.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::BrokerProcess;

/// A cluster node's configuration: `top` (whole TOML tables, e.g.
/// `[http]`), then `[cluster]` with `node_id = name`, `lease_ms` and the
/// `cluster` lines, then `[cluster.redis]` at `redis_url` with a 500 ms
/// command timeout (a lost Redis shows within a lease).
pub fn cluster_config(
    redis_url: &str,
    name: &str,
    lease_ms: u64,
    top: &str,
    cluster: &str,
) -> String {
    format!(
        "{top}\n[cluster]\nenabled = true\nnode_id = \"{name}\"\nlease_ms = {lease_ms}\n\
         {cluster}\n[cluster.redis]\nurl = \"{redis_url}\"\ntimeout_ms = 500\n"
    )
}

/// `bin` started with [`cluster_config`] and the memory store (the
/// session rows are the cluster's, in Redis); panics when it does not
/// start (a test's own setup).
pub fn cluster_node(
    bin: &str,
    redis_url: &str,
    name: &str,
    lease_ms: u64,
    top: &str,
    cluster: &str,
) -> BrokerProcess {
    BrokerProcess::builder(bin)
        .config_toml(cluster_config(redis_url, name, lease_ms, top, cluster))
        .arg("--store")
        .arg("memory")
        .start()
        .expect("start a cluster node")
}

/// The node among `nodes` whose log first shows `line`, polled until
/// `wait` runs out (then the test fails naming the line).
pub async fn first_to_log<'n>(
    nodes: &[&'n BrokerProcess],
    line: &str,
    wait: Duration,
) -> &'n BrokerProcess {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(node) = nodes.iter().find(|n| n.log().contains(line)) {
            return node;
        }
        assert!(Instant::now() < deadline, "no node logged {line:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
