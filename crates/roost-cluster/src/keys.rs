//! The cluster's key schema on Redis (cluster-redis.md §3.0), every key
//! under a hash tag so the keys one Lua script touches share a slot:
//!
//! ```text
//!  <p>{sys}:nodes          ZSET    node id -> lease expiry (unix ms)
//!  <p>{sys}:node:<id>      HASH    started, incarnation, what it announces (announce.rs)
//!  <p>{sys}:admin-secret   STRING  the management APIs' node credential
//!  <p>{rt}:n:<id>          SET     filters node <id> has subscribers for
//!  <p>{rt}:inc:<id>        STRING  node <id>'s route incarnation (bumped by GC)
//!  <p>{rt}:log             STREAM  route changes: n, i, r (reset/down), a, d
//!  <p>{n:<id>}:inbox       STREAM  batches of messages (and kicks) for node <id>
//!  <p>{n:<id>}:ckpt        STRING  inbox entry id node <id> handled up to
//!  <p>{n:<id>}:handoff:<i> STREAM  a dead node's inbox, claimed by a janitor
//!  <p>{n:<id>}:sess        SET     client ids node <id> claimed (its janitor's list)
//!  <p>{n:<id>}:sess:<i>    SET     that list set aside for dead node <id>'s janitor job
//!  <p>{n:<id>}:job         HASH    dead node <id>'s janitor job: janitor, inc, stage, due, from, pos
//!  <p>{sys}:jobs           HASH    dead node id -> the node doing its janitor job
//!  <p>{c:<client id>}:own  HASH    node, token, state, from: who owns the session
//!  <p>{ret:<b>}            HASH    topic -> (stored_at, StoredMessage); b = FNV(topic) mod 64
//!  <p>{retlog}             STREAM  retained changes: o, t, d (absent = cleared)
//! ```
//!
//! The owner key's suffix (`:own`) differs from the Redis store's session
//! keys (`{c:<id>}:s`…), so both can share a prefix without clashing.

/// Retained messages are spread over this many hashes (compact encoding per
/// hash; a start-up scans them all). cluster-redis.md proposes 4096 for a
/// Redis Cluster's slots; a single primary needs no more than this.
pub(crate) const RETAINED_BUCKETS: u32 = 64;

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn nodes(&self) -> String {
        format!("{}{{sys}}:nodes", self.prefix)
    }

    pub(crate) fn node_info(&self, node: &str) -> String {
        format!("{}{{sys}}:node:{node}", self.prefix)
    }

    /// The credential the nodes' management APIs give each other (`announce.rs`).
    pub(crate) fn admin_secret(&self) -> String {
        format!("{}{{sys}}:admin-secret", self.prefix)
    }

    pub(crate) fn routes_of(&self, node: &str) -> String {
        format!("{}{{rt}}:n:{node}", self.prefix)
    }

    pub(crate) fn incarnation_of(&self, node: &str) -> String {
        format!("{}{{rt}}:inc:{node}", self.prefix)
    }

    pub(crate) fn route_log(&self) -> String {
        format!("{}{{rt}}:log", self.prefix)
    }

    pub(crate) fn inbox_of(&self, node: &str) -> String {
        format!("{}{{n:{node}}}:inbox", self.prefix)
    }

    /// Where node `<id>`'s reader has handled its inbox up to (an entry id):
    /// a handoff replays what follows.
    pub(crate) fn checkpoint_of(&self, node: &str) -> String {
        format!("{}{{n:{node}}}:ckpt", self.prefix)
    }

    /// A dead node's inbox once a janitor claimed it for handoff (renamed:
    /// one janitor gets it; a restarted node starts a fresh inbox).
    pub(crate) fn handoff_of(&self, node: &str, incarnation: u64) -> String {
        format!("{}{{n:{node}}}:handoff:{incarnation}", self.prefix)
    }

    pub(crate) fn owner_of(&self, client_id: &str) -> String {
        format!("{}{{c:{client_id}}}:own", self.prefix)
    }

    /// The session row keys of the Redis store sharing this prefix
    /// (`roost-store`'s `redis/keys.rs`): session, subscriptions, queue,
    /// in flight, inbound QoS 2.
    pub(crate) fn rows_of(&self, client_id: &str) -> [String; 5] {
        ["s", "subs", "q", "inf", "in"].map(|s| format!("{}{{c:{client_id}}}:{s}", self.prefix))
    }

    /// The client ids whose sessions node `<id>` owns (for its janitor).
    pub(crate) fn sessions_of(&self, node: &str) -> String {
        format!("{}{{n:{node}}}:sess", self.prefix)
    }

    /// Dead node `<id>`'s session list set aside for its janitor job
    /// (route incarnation `<i>` the janitor gave it).
    pub(crate) fn sessions_aside(&self, node: &str, incarnation: u64) -> String {
        format!("{}{{n:{node}}}:sess:{incarnation}", self.prefix)
    }

    /// Dead node `<id>`'s janitor job: its progress (`job.rs`).
    pub(crate) fn job_of(&self, node: &str) -> String {
        format!("{}{{n:{node}}}:job", self.prefix)
    }

    /// Every janitor job under way: dead node -> its janitor.
    pub(crate) fn jobs(&self) -> String {
        format!("{}{{sys}}:jobs", self.prefix)
    }

    pub(crate) fn retained_bucket(&self, bucket: u32) -> String {
        format!("{}{{ret:{bucket}}}", self.prefix)
    }

    pub(crate) fn retained_of(&self, topic: &str) -> String {
        self.retained_bucket(bucket_of(topic))
    }

    pub(crate) fn retained_log(&self) -> String {
        format!("{}{{retlog}}", self.prefix)
    }

    /// The cluster's bans: target (`client:…`, `user:…`, `ip:…`) -> end
    /// (unix ms, `0` = never).
    pub(crate) fn bans(&self) -> String {
        format!("{}{{ban}}:list", self.prefix)
    }

    /// Ban changes, applied in order by every node.
    pub(crate) fn ban_log(&self) -> String {
        format!("{}{{ban}}:log", self.prefix)
    }
}

/// A topic's retained bucket: FNV-1a, stable across builds and nodes.
pub(crate) fn bucket_of(topic: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in topic.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % RETAINED_BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_a_hash_tag_per_script() {
        let k = Keys::new("mq:");
        assert_eq!(k.routes_of("a"), "mq:{rt}:n:a");
        assert_eq!(k.incarnation_of("a"), "mq:{rt}:inc:a");
        assert_eq!(k.route_log(), "mq:{rt}:log");
        assert_eq!(k.inbox_of("a"), "mq:{n:a}:inbox");
        assert_eq!(k.owner_of("c1"), "mq:{c:c1}:own");
    }

    #[test]
    fn buckets_are_stable_and_in_range() {
        assert_eq!(bucket_of("a/b"), bucket_of("a/b"));
        assert!(bucket_of("x") < RETAINED_BUCKETS);
    }
}
