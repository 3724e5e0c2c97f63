//! Opening the configured backend (blocking: disk replays its journal,
//! Redis connects).

use std::sync::Arc;

use roost_store::{MemoryStore, Snapshot, Store, StoreError};

use crate::config::{StoreBackend, StoreConfig};

/// An open store, and the disk store's handle for checkpoints.
pub(crate) struct Opened {
    store: Arc<dyn Store>,
    #[cfg(feature = "disk")]
    disk: Option<Arc<roost_store::disk::DiskStore>>,
    /// The Redis prefix's one-broker lease, released when the store closes.
    #[cfg(feature = "redis")]
    _lease: Option<roost_store::redis::Lease>,
}

impl Opened {
    /// Opens the backend `config` names. Errors name the directory or URL.
    pub(crate) fn open(config: &StoreConfig) -> Result<Self, String> {
        match config.backend() {
            StoreBackend::Memory => Ok(Self::from_store(Arc::new(MemoryStore::new()))),
            StoreBackend::Disk => open_disk(config),
            StoreBackend::Redis => open_redis(config),
        }
    }

    /// Any store (tests, embedders).
    pub(crate) fn from_store(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            #[cfg(feature = "disk")]
            disk: None,
            #[cfg(feature = "redis")]
            _lease: None,
        }
    }

    /// The store, for the writer.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Reads everything stored.
    pub(crate) fn restore(&self) -> Result<Snapshot, StoreError> {
        self.store.restore()
    }

    /// Writes a disk store's memtables out (nothing for other backends).
    pub(crate) fn checkpoint(&self) -> Result<(), StoreError> {
        #[cfg(feature = "disk")]
        if let Some(disk) = &self.disk {
            return disk.checkpoint();
        }
        Ok(())
    }
}

#[cfg(feature = "disk")]
fn open_disk(config: &StoreConfig) -> Result<Opened, String> {
    let disk = roost_store::disk::DiskStore::open(&config.data_dir)
        .map_err(|e| format!("store.data_dir {}: {e}", config.data_dir.display()))?;
    let disk = Arc::new(disk);
    Ok(Opened {
        store: Arc::clone(&disk) as Arc<dyn Store>,
        disk: Some(disk),
        #[cfg(feature = "redis")]
        _lease: None,
    })
}

#[cfg(not(feature = "disk"))]
fn open_disk(_: &StoreConfig) -> Result<Opened, String> {
    Err("store.backend = \"disk\": this build has no disk store (feature `disk`)".into())
}

/// How long a Redis prefix's lease outlives its broker (renewed every
/// third of it while the broker runs).
#[cfg(feature = "redis")]
const REDIS_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(feature = "redis")]
fn open_redis(config: &StoreConfig) -> Result<Opened, String> {
    let r = &config.redis;
    let mut redis = roost_store::redis::RedisConfig::new(r.url.clone());
    redis.key_prefix.clone_from(&r.key_prefix);
    redis.timeout = std::time::Duration::from_millis(r.timeout_ms.max(1));
    if let Some(path) = &r.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("store.redis.ca_cert {}: {e}", path.display()))?;
        redis.ca_cert_pem = Some(pem);
    }
    // One broker per prefix, as one per data directory: taken before the
    // store is read (a broker killed with SIGKILL leaves a lease that
    // expires within REDIS_LEASE; a start meanwhile waits for it).
    let lease = roost_store::redis::Lease::acquire(&redis, REDIS_LEASE)
        .map_err(|e| format!("store.redis.key_prefix {:?}: {e}", r.key_prefix))?;
    let store = roost_store::redis::RedisStore::open(&redis)
        .map_err(|e| format!("store.redis.url {}: {e}", redacted(&r.url)))?;
    let mut opened = Opened::from_store(Arc::new(store));
    opened._lease = Some(lease);
    Ok(opened)
}

/// Cluster mode's session store: the Redis store on the cluster's Redis and
/// key prefix, shared by every node, each client's rows written under this
/// node's fencing token (`fences`, kept by the cluster link).
#[cfg(feature = "redis")]
pub(crate) fn open_shared(
    cluster: &crate::config::ClusterConfig,
    fences: Arc<roost_store::Fences>,
) -> Result<Opened, String> {
    let mut redis = roost_store::redis::RedisConfig::new(cluster.redis.url.clone());
    redis.key_prefix.clone_from(&cluster.key_prefix);
    redis.timeout = std::time::Duration::from_millis(cluster.redis.timeout_ms.max(1));
    let store = roost_store::redis::RedisStore::open_shared(&redis, fences)
        .map_err(|e| format!("cluster.redis.url {}: {e}", redacted(&cluster.redis.url)))?;
    Ok(Opened::from_store(Arc::new(store)))
}

#[cfg(not(feature = "redis"))]
pub(crate) fn open_shared(
    _: &crate::config::ClusterConfig,
    _: Arc<roost_store::Fences>,
) -> Result<Opened, String> {
    Err(
        "cluster mode keeps sessions in Redis: this build has no Redis store (feature `redis`)"
            .into(),
    )
}

#[cfg(not(feature = "redis"))]
fn open_redis(_: &StoreConfig) -> Result<Opened, String> {
    Err("store.backend = \"redis\": this build has no Redis store (feature `redis`)".into())
}

/// The URL without its password, for messages.
#[cfg(feature = "redis")]
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
