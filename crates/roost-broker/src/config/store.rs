//! `[store]`: where the broker keeps what must outlive it, and how hard it
//! tries (docs/persistence.md, docs/configuration.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which store backend holds persistent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// In the process: lost on restart (the library default).
    #[default]
    Memory,
    /// fjall under `data_dir` (the `roost` server's default).
    Disk,
    /// A Redis server at `redis.url`.
    Redis,
}

/// When a write counts as done (docs/persistence.md, "Durability modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityConfig {
    /// Never fsync while running (only on shutdown).
    None,
    /// Fsync at most `fsync_interval_ms` after a write; acknowledge at once.
    #[default]
    Async,
    /// PUBACK / PUBREC only once the message is fsynced (group commit).
    Sync,
}

/// `[store.redis]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisStoreConfig {
    /// `redis://[user][:password@]host[:port][/db]` or `rediss://…`.
    pub url: String,
    /// Prepended to every key (no braces).
    pub key_prefix: String,
    /// Connect, read and write timeout in milliseconds.
    pub timeout_ms: u64,
    /// PEM file of a private CA for `rediss://` (empty = system roots).
    pub ca_cert: Option<PathBuf>,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "roost:".into(),
            timeout_ms: 5_000,
            ca_cert: None,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `"memory"`, `"disk"` or `"redis"`. Unset: the embedder's default
    /// (memory for the library, disk for the `roost` server).
    pub backend: Option<StoreBackend>,
    /// Directory of the disk store (created when missing).
    pub data_dir: PathBuf,
    /// `"none"`, `"async"` (default) or `"sync"`.
    pub durability: DurabilityConfig,
    /// Longest time between a write and its fsync in `async` mode.
    pub fsync_interval_ms: u64,
    /// Deltas that may wait for the store writer before a publisher waits
    /// for room (the queue's bound; nothing is ever dropped).
    pub max_queued_deltas: usize,
    /// First wait before retrying a write that failed transiently (e.g.
    /// Redis unreachable); doubled after each failure up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// Longest wait between two retries.
    pub retry_max_ms: u64,
    /// How long a shutdown during a store outage keeps retrying before it
    /// gives up on what is still queued (counted in `store_failures`).
    pub close_grace_ms: u64,
    /// The Redis backend.
    pub redis: RedisStoreConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: None,
            data_dir: PathBuf::from("roost-data"),
            durability: DurabilityConfig::Async,
            fsync_interval_ms: 10,
            max_queued_deltas: 65_536,
            retry_initial_ms: 50,
            retry_max_ms: 5_000,
            close_grace_ms: 10_000,
            redis: RedisStoreConfig::default(),
        }
    }
}

impl StoreConfig {
    /// The disk store under `data_dir` (async durability).
    pub fn disk(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            backend: Some(StoreBackend::Disk),
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The Redis store at `url` (async durability).
    pub fn redis(url: impl Into<String>) -> Self {
        Self {
            backend: Some(StoreBackend::Redis),
            redis: RedisStoreConfig {
                url: url.into(),
                ..RedisStoreConfig::default()
            },
            ..Self::default()
        }
    }

    /// The same store with another durability mode.
    pub fn with_durability(mut self, durability: DurabilityConfig) -> Self {
        self.durability = durability;
        self
    }

    /// The backend in force (unset = memory).
    pub fn backend(&self) -> StoreBackend {
        self.backend.unwrap_or(StoreBackend::Memory)
    }

    /// The writer's settings: the durability policy, the queue bound and
    /// the retry schedule.
    pub(crate) fn writer_config(&self) -> roost_store::WriterConfig {
        let mut config = roost_store::WriterConfig::new(self.writer_durability());
        config.max_queued_deltas = self.max_queued_deltas.max(1);
        config.retry_initial = Duration::from_millis(self.retry_initial_ms.max(1));
        config.retry_max = Duration::from_millis(self.retry_max_ms.max(self.retry_initial_ms));
        config.close_grace = Duration::from_millis(self.close_grace_ms);
        config
    }

    /// The writer's durability policy.
    pub(crate) fn writer_durability(&self) -> roost_store::Durability {
        match self.durability {
            DurabilityConfig::None => roost_store::Durability::None,
            DurabilityConfig::Async => roost_store::Durability::Async {
                fsync_interval: Duration::from_millis(self.fsync_interval_ms),
            },
            DurabilityConfig::Sync => roost_store::Durability::Sync,
        }
    }

    /// Checks values serde cannot: `Err((dotted key, message))`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.backend() == StoreBackend::Disk && self.data_dir.as_os_str().is_empty() {
            return Err(("store.data_dir", "required with backend = \"disk\""));
        }
        if self.backend() == StoreBackend::Redis && self.redis.url.is_empty() {
            return Err(("store.redis.url", "required with backend = \"redis\""));
        }
        if self.durability == DurabilityConfig::Async && self.fsync_interval_ms == 0 {
            return Err((
                "store.fsync_interval_ms",
                "must be at least 1 with durability = \"async\"",
            ));
        }
        Ok(())
    }
}
