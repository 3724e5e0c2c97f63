//! How a node joins the cluster ([`Options`]) and what can go wrong
//! ([`ClusterError`](crate::ClusterError)).

use std::time::Duration;

use crate::SharedPick;

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's id, unique in the cluster and stable across restarts.
    pub node_id: String,
    /// `redis://…` of the one primary.
    pub redis_url: String,
    /// Prepended to every key.
    pub key_prefix: String,
    /// Membership lease; renewed every third of it.
    pub lease: Duration,
    /// Connect, read and write timeout of every Redis call.
    pub timeout: Duration,
    /// `MAXLEN ~` of an inbox (entries = batches): the cap for a reader that stopped.
    pub inbox_maxlen: usize,
    /// `MAXLEN ~` of the route and retained logs.
    pub log_maxlen: usize,
    /// Messages waiting for the writer at most (QoS 0 beyond it is dropped,
    /// QoS 1/2 beyond twice it).
    pub forward_buffer: usize,
    /// How long the first message waiting for the writer may wait for more
    /// (`queue::Linger`); zero: not at all.
    pub forward_linger: Duration,
    /// `availability_over_consistency`: while Redis is unreachable, no
    /// self-fence and no forwards (local delivery only); the broker accepts
    /// CONNECTs without a claim.
    pub available_when_cut_off: bool,
    /// How a shared group's node is picked per message.
    pub shared: SharedPick,
    /// The URLs clients reach this node at (`mqtt://10.0.0.5:1883`), kept
    /// in its node hash for the management API's node list.
    pub addresses: Vec<String>,
    /// Called by the claims thread as it waits for work: hands the
    /// thread's free memory back to the OS if the embedder asked
    /// (`roost_alloc::release_if_asked`). That thread allocates for every
    /// CONNECT (Redis commands and replies, the growing map of claims) and
    /// then idles; mimalloc frees a thread's pages on that thread only.
    pub release_memory: Option<fn() -> bool>,
}

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// A bad option (e.g. the Redis URL).
    #[error("{0}")]
    Config(String),
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// A record could not be encoded or decoded.
    #[error("encoding: {0}")]
    Encoding(String),
    /// This node was declared dead meanwhile.
    #[error("this node's incarnation is stale")]
    Stale,
    /// The cluster link is stopped (or its thread is gone).
    #[error("cluster link stopped")]
    Stopped,
    /// Redis is unreachable or too many requests wait: refused at once.
    #[error("cluster unavailable")]
    Unavailable,
    /// A live node of the cluster speaks another cluster protocol version
    /// (`version.rs`): this node does not join.
    #[error(
        "node {node} of this cluster speaks cluster protocol version {theirs}, this build speaks version {ours}; nodes of different cluster protocol versions cannot share a cluster (upgrade every node, or give this one another key_prefix or Redis)"
    )]
    Version {
        /// The live node found.
        node: String,
        /// Its version (1: a build from before versions were announced).
        theirs: u32,
        /// This build's ([`PROTOCOL`](crate::PROTOCOL)).
        ours: u32,
    },
}

impl ClusterError {
    pub(crate) fn redis(e: redis::RedisError) -> Self {
        ClusterError::Redis(e.to_string())
    }
}
