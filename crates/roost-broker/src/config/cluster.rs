//! `[cluster]`: several Roost nodes on one Redis act as one broker
//! (docs/cluster.md).

use std::path::Path;

use serde::Deserialize;

/// `[cluster.redis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterRedisConfig {
    /// `redis://[user][:password@]host[:port][/db]` of the one primary,
    /// `redis+cluster://[user][:password@]h1:p1,h2:p2,…` (Redis Cluster
    /// seeds) or `redis+sentinel://[user][:password@]s1:p1,…/<master>[/db]`
    /// (the primary Sentinel names); `rediss…` for TLS.
    pub url: String,
    /// Connect, read and write timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ClusterRedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            timeout_ms: 2_000,
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Join a cluster (off: a single broker, nothing below is used).
    pub enabled: bool,
    /// This node's id, unique in the cluster. Unset: derived from the host
    /// name and the store's data directory, so it is stable across restarts.
    pub node_id: Option<String>,
    /// Where the cluster's state lives.
    pub redis: ClusterRedisConfig,
    /// Membership lease in milliseconds: a node silent that long is declared
    /// dead (its routes removed). Renewed every third of it.
    pub lease_ms: u64,
    /// Prepended to every cluster key (no braces).
    pub key_prefix: String,
    /// `MAXLEN ~` of each node's inbox stream (batches): the cap for a node
    /// that stopped reading.
    pub inbox_maxlen: usize,
    /// Messages waiting to be forwarded at most: while Redis is slow or gone,
    /// QoS 0 beyond it is dropped (counted), QoS 1/2 beyond twice it.
    pub forward_buffer: usize,
    /// How long, in microseconds, the first message waiting to cross to
    /// another node may wait for more (half the writer's 1,024-message
    /// batch fills it sooner) before the round trip to Redis starts. Under
    /// load a round trip carries several times as many messages, which
    /// costs every node and Redis less CPU per message; an idle node's
    /// message waits this long at most. 0: each round trip starts at once.
    pub forward_linger_us: u64,
    /// While Redis is unreachable, keep serving: no self-fence, CONNECTs
    /// accepted without a cluster claim, local pub/sub only (nothing is
    /// forwarded), sessions made meanwhile not persisted and not protected
    /// against a second connection of their client id on another node. Off
    /// (the default): consistency first, the node fences itself
    /// (docs/cluster.md, "availability_over_consistency").
    pub availability_over_consistency: bool,
    /// Durable mode (docs/cluster.md): a QoS 1/2 publisher's PUBACK / PUBREC
    /// also waits for the queue rows of its local persistent subscribers to
    /// be in Redis (as `[store] durability = "sync"`), and a node
    /// checkpoints its inbox past a forwarded message only once its queue
    /// rows are written. Off: faster, and a node killed loses what it had
    /// not written yet.
    pub durable: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_id: None,
            redis: ClusterRedisConfig::default(),
            lease_ms: 10_000,
            key_prefix: "roost:cl:".into(),
            inbox_maxlen: 100_000,
            forward_buffer: 100_000,
            forward_linger_us: 500,
            availability_over_consistency: false,
            durable: false,
        }
    }
}

impl ClusterConfig {
    /// A value the types alone do not rule out: `(key, message)`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled {
            return Ok(());
        }
        if !self.redis.url.contains("://") {
            return Err((
                "cluster.redis.url",
                format!("`{}` has no scheme: write redis://{0}", self.redis.url),
            ));
        }
        if let Err(e) = roost_cluster::check_redis_url(&self.redis.url) {
            return Err(("cluster.redis.url", e));
        }
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err((
                "cluster.node_id",
                "1 to 64 characters among A-Z a-z 0-9 - _ .".into(),
            ));
        }
        if self.lease_ms < 300 {
            return Err(("cluster.lease_ms", "must be at least 300".into()));
        }
        if self.redis.timeout_ms == 0 || self.redis.timeout_ms >= self.lease_ms {
            return Err((
                "cluster.redis.timeout_ms",
                "must be at least 1 and below cluster.lease_ms".into(),
            ));
        }
        if self.key_prefix.contains(['{', '}']) {
            return Err(("cluster.key_prefix", "must not contain braces".into()));
        }
        if self.inbox_maxlen == 0 {
            return Err(("cluster.inbox_maxlen", "must be at least 1".into()));
        }
        if self.forward_buffer == 0 {
            return Err(("cluster.forward_buffer", "must be at least 1".into()));
        }
        if self.forward_linger_us > 100_000 {
            return Err((
                "cluster.forward_linger_us",
                "must be at most 100000 (0.1 s)".into(),
            ));
        }
        Ok(())
    }

    /// The configured node id, or one derived from the host name and the
    /// data directory: stable across restarts of the same node, different
    /// for two nodes on one host with their own data directories.
    pub fn effective_node_id(&self, data_dir: &Path) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let mut hash: u32 = 0x811c_9dc5;
        for byte in dir.as_os_str().as_encoded_bytes() {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let host = if host.is_empty() { "node".into() } else { host };
        format!("{host}-{hash:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_node_id_is_stable_and_differs_per_data_dir() {
        let c = ClusterConfig::default();
        let a = c.effective_node_id(Path::new("/tmp/roost-a"));
        assert_eq!(a, c.effective_node_id(Path::new("/tmp/roost-a")));
        assert_ne!(a, c.effective_node_id(Path::new("/tmp/roost-b")));
        let named = ClusterConfig {
            node_id: Some("n1".into()),
            ..ClusterConfig::default()
        };
        assert_eq!(named.effective_node_id(Path::new("/x")), "n1");
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = |c: ClusterConfig| c.validate().err().map(|(k, _)| k);
        let on = ClusterConfig {
            enabled: true,
            ..ClusterConfig::default()
        };
        assert_eq!(bad(on.clone()), None);
        let mut c = on.clone();
        c.redis.url = "localhost:6379".into();
        assert_eq!(bad(c), Some("cluster.redis.url"));
        for url in [
            "redis+cluster://h1:7000,h2:7000",
            "redis+sentinel://s1:26379,s2/mymaster",
        ] {
            let mut c = on.clone();
            c.redis.url = url.into();
            assert_eq!(bad(c), None, "{url}");
        }
        for url in [
            "redis+cluster://h1:port",
            "redis+cluster://h1:7000/2",
            "redis+sentinel://s1:26379",
        ] {
            let mut c = on.clone();
            c.redis.url = url.into();
            assert_eq!(bad(c), Some("cluster.redis.url"), "{url}");
        }
        let mut c = on.clone();
        c.node_id = Some("a b".into());
        assert_eq!(bad(c), Some("cluster.node_id"));
        let mut c = on.clone();
        c.lease_ms = 10;
        assert_eq!(bad(c), Some("cluster.lease_ms"));
        let mut c = on;
        c.key_prefix = "{x}".into();
        assert_eq!(bad(c), Some("cluster.key_prefix"));
    }
}
