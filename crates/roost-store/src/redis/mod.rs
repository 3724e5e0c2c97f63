//! The Redis backend: the same deltas and snapshot on a Redis server (7.0
//! command set), for a broker whose state lives outside it. Key layout in
//! `docs/persistence.md`; every batch is one `MULTI`/`EXEC` transaction, so it is applied
//! whole or not at all.
//!
//! The API is blocking (redis-rs's synchronous connection): call it from the
//! [`crate::Writer`] thread or `spawn_blocking`, never from inside an async
//! task. A dropped connection is re-opened once per call and the batch sent
//! again; that is safe because every delta is idempotent. A server that
//! stays unreachable (or answers `LOADING`, `READONLY`, …) fails the call
//! with the transient [`StoreError::Unavailable`], which the
//! [`crate::Writer`] retries with backoff rather than dropping the batch.
//!
//! [`Store::sync`] asks nothing of the server: durability is the server's
//! persistence configuration (`appendonly yes` with `appendfsync always` or
//! `everysec`). Redis replication is asynchronous; a failover can lose
//! writes the primary acknowledged.

mod connection;
mod keys;
mod lease;
mod load;
mod ops;
mod shared;
pub mod target;

pub use lease::Lease;

/// Decodes a will as the Redis store keeps it (field `will` of
/// `<p>{c:<id>}:s`): a cluster janitor publishes a dead node's wills.
pub fn decode_will(bytes: &[u8]) -> Result<crate::WillRecord, StoreError> {
    crate::codec::decode(bytes, "will")
}

/// Decodes a session record as the Redis store keeps it (field `rec`).
pub fn decode_session(bytes: &[u8]) -> Result<crate::SessionRecord, StoreError> {
    crate::codec::decode(bytes, "session")
}

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::fence::Fences;
use crate::snapshot::Snapshot;
use crate::store::{LoadedSession, Store};
use crate::{FORMAT_VERSION, OLDEST_READABLE_FORMAT};
use connection::Link;
use keys::{ClientKey, FIELD_RECORD, Keys};

/// How to reach the server.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user][:password@]host[:port][/db]`, `rediss://…` (TLS),
    /// `redis+sentinel://…` or, for cluster mode only, `redis+cluster://…`
    /// (see [`target`]).
    pub url: String,
    /// Prepended to every key (no braces), e.g. `roost:`.
    pub key_prefix: String,
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// PEM of the CA that signed the server's certificate (`rediss://`
    /// only); `None` trusts the system's root certificates.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl RedisConfig {
    /// `url` with prefix `roost:` and a 5 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "roost:".into(),
            timeout: Duration::from_secs(5),
            ca_cert_pem: None,
        }
    }
}

/// The Redis-backed store.
#[derive(Debug)]
pub struct RedisStore {
    link: Link,
    keys: Keys,
    /// Cluster mode: the prefix is shared by every node; client rows are
    /// written under this node's fencing tokens (`shared.rs`).
    shared: Option<(Arc<Fences>, shared::SharedStats)>,
}

impl RedisStore {
    /// Connects, then checks the stored format version (stamping it on an
    /// empty prefix; refusing another version, or data without one).
    pub fn open(config: &RedisConfig) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&config.key_prefix)?;
        let link = Link::connect(config)?;
        if link.is_cluster() {
            // Each batch is one MULTI/EXEC over many clients' keys (many
            // slots), and restore SCANs the whole key space.
            return Err(StoreError::Invalid(
                "redis URL: a Redis Cluster (redis+cluster://) serves cluster mode \
                 ([cluster]) only; the single-broker Redis store needs one primary \
                 (redis:// or redis+sentinel://)"
                    .into(),
            ));
        }
        let store = RedisStore {
            link,
            keys,
            shared: None,
        };
        store.check_format()?;
        Ok(store)
    }

    /// Opens a prefix shared by the nodes of a cluster (docs/cluster.md):
    /// no one-broker lease, other nodes' keys expected under the prefix;
    /// each client's rows are written only under its token in `fences`
    /// (fenced in Redis by the owner record); restore gives no session
    /// (each is read when its client connects, [`Store::load_session`]);
    /// retained messages and delayed publications are not written (the
    /// cluster shares retained messages itself).
    pub fn open_shared(
        config: &RedisConfig,
        fences: Arc<Fences>,
    ) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&config.key_prefix)?;
        let link = Link::connect(config)?;
        let format = keys.format();
        let stored: Option<String> = link.run(|c| redis::cmd("GET").arg(&format).query(c))?;
        match stored {
            Some(v) if v.trim() == FORMAT_VERSION.to_string() => {}
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "format version {v:?} under {format}; cluster mode needs {FORMAT_VERSION}"
                )));
            }
            None => link.run(|c| {
                redis::cmd("SET")
                    .arg(&format)
                    .arg(FORMAT_VERSION.to_string())
                    .arg("NX")
                    .query::<()>(c)
            })?,
        }
        Ok(RedisStore {
            link,
            keys,
            shared: Some((fences, shared::SharedStats::default())),
        })
    }

    /// Cluster mode: client write groups refused by Redis because another
    /// node owns the client id now (0 outside cluster mode).
    pub fn fenced_writes(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |(_, s)| s.fenced.load(Ordering::Relaxed))
    }

    fn check_format(&self) -> Result<(), StoreError> {
        let key = self.keys.format();
        let stored: Option<String> = self.link.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        match stored {
            Some(v) => {
                let found: u32 = v.trim().parse().map_err(|_| {
                    StoreError::Corrupt(format!("format version {v:?} under {key}"))
                })?;
                if (OLDEST_READABLE_FORMAT..FORMAT_VERSION).contains(&found) {
                    return self.migrate(found);
                }
                if found != FORMAT_VERSION {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                // The broker's lease may already be there (taken first).
                let lease = self.keys.lease().into_bytes();
                let any = load::scan(&self.link, &self.keys.all_pattern())?;
                if let Some(k) = any.iter().find(|k| **k != lease) {
                    return Err(StoreError::Corrupt(format!(
                        "keys under the prefix (e.g. {}) but no {key}",
                        String::from_utf8_lossy(k)
                    )));
                }
                self.link.run(|c| {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(FORMAT_VERSION.to_string())
                        .arg("NX")
                        .query::<()>(c)
                })
            }
        }
    }

    /// Rewrites every record whose encoding changed since `from` and stamps
    /// the current version, in one MULTI/EXEC transaction (all or nothing).
    fn migrate(&self, from: u32) -> Result<(), StoreError> {
        let session_keys: Vec<Vec<u8>> = load::scan(&self.link, &self.keys.client_pattern())?
            .into_iter()
            .filter(|k| {
                self.keys
                    .parse_client(k)
                    .is_some_and(|(_, kind)| kind == ClientKey::Session)
            })
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut sessions = 0usize;
        for key in &session_keys {
            let record: Option<Vec<u8>> = self
                .link
                .run(|c| redis::cmd("HGET").arg(key).arg(FIELD_RECORD).query(c))?;
            if let Some(bytes) = record {
                let v2 = crate::migrate::session_record_v1_to_v2(&bytes)?;
                pipe.hset(key, FIELD_RECORD, v2).ignore();
                sessions += 1;
            }
        }
        // 1 → 2: retained messages gained their store time (the migration's).
        let now = std::time::SystemTime::now();
        let mut retained = 0usize;
        let buckets = load::scan(&self.link, &self.keys.retained_pattern())?;
        for (bucket, hash) in buckets
            .iter()
            .zip(load::hgetall_many(&self.link, &buckets)?)
        {
            for (topic, value) in hash {
                let v2 = crate::migrate::retained_record_v1_to_v2(&value, now)?;
                pipe.hset(bucket, topic, v2).ignore();
                retained += 1;
            }
        }
        pipe.cmd("SET")
            .arg(self.keys.format())
            .arg(FORMAT_VERSION.to_string())
            .ignore();
        self.link.run(|c| pipe.query::<()>(c))?;
        tracing::warn!(
            from,
            to = FORMAT_VERSION,
            sessions,
            retained,
            "redis store migrated; sessions it held have no recorded owner and will not be resumed"
        );
        Ok(())
    }
}

impl Store for RedisStore {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some((fences, stats)) = &self.shared {
            return shared::apply(&self.link, &self.keys, fences, stats, batch);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut writes = Vec::new();
        for delta in batch {
            ops::ops(&self.keys, delta, &mut writes)?;
        }
        ops::pipe(&mut pipe, writes);
        self.link.run(|c| pipe.query::<()>(c))
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        if self.shared.is_some() {
            // Shared by a cluster: sessions are read when their clients
            // connect; retained messages come from the cluster's copy.
            return Ok(Snapshot::default());
        }
        load::load(&self.link, &self.keys).map(|s| s.into_snapshot())
    }

    fn load_session(&self, client_id: &str) -> Result<LoadedSession, StoreError> {
        shared::load_session(&self.link, &self.keys, client_id)
    }
}
