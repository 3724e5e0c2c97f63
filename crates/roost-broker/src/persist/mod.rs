//! Persistence: turns broker events into `roost_store` deltas, writes them
//! through the group-commit [`Writer`], and rebuilds the broker from the
//! store at startup (docs/persistence.md, "What the broker calls, and when").
//!
//! ```text
//!  connect / subscribe / park / end ─▶ deltas (events.rs, session.rs) ─┐
//!  routed PUBLISH ─▶ one batch: enqueues + publisher's inbound id ──────┼─▶ Persist::submit ─▶ Writer
//!  session store events (sent, acked, dropped) ─▶ deltas (events.rs) ──┘        │ CommitTicket
//!                                                  durability = sync: PUBACK/PUBREC after the ticket
//!  startup: open.rs (backend) ─▶ restore.rs (sessions, retained, wills) ─▶ Persist::start
//! ```
//!
//! Without a store (`Core::persist` is `None`) none of this runs: the hot
//! path pays one `Option` check.

mod events;
mod open;
mod publish;
mod reclaim;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use roost_store::{CommitTicket, Delta, TrySubmitError, Writer};

use crate::config::{DurabilityConfig, StoreBackend, StoreConfig};
pub(crate) use events::{delta, drain_state, may_send_before_stored, write_events};
pub(crate) use open::Opened;
pub(crate) use publish::retained_sink;
pub(crate) use reclaim::{
    Arriving, load as load_for_reclaim, message_rows, number_unstored, write_live, written,
};
pub(crate) use session::{on_connect, on_park, on_session_end, on_subscribe, on_unsubscribe};

/// The broker's link to its store.
pub(crate) struct Persist {
    /// `None` until [`Persist::start`] (restore must not write) and after
    /// [`Persist::close`].
    writer: RwLock<Option<Writer>>,
    /// Released by [`Persist::close`], so a disk store's lock goes with it
    /// even while timer tasks still hold the broker core.
    opened: Mutex<Option<Opened>>,
    config: StoreConfig,
    /// Batches whose store write failed (logged).
    failures: AtomicU64,
    /// Cluster mode: the fencing tokens the shared store writes under.
    fences: Option<std::sync::Arc<roost_store::Fences>>,
    /// Session loads running at once ([`Persist::load_session`]).
    loads: tokio::sync::Semaphore,
}

/// How many session loads run at once. Each runs on a blocking thread, and
/// what it allocates there stays with the session it builds: a burst of
/// Clean Start 0 CONNECTs without a bound ran on ~64 blocking threads, each
/// leaving its own mimalloc pages partly used for good (~1.2 KB more per
/// idle persistent connection than one node; docs/performance.md). A few
/// at a time keep the pool, and the pages, to a few threads; a load is one
/// Redis round trip, so 4 still load thousands of sessions a second.
const LOADS_AT_ONCE: usize = 4;

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist")
            .field("backend", &self.config.backend)
            .field("durability", &self.config.durability)
            .finish_non_exhaustive()
    }
}

impl Persist {
    /// Wraps an opened store; nothing is written until [`Persist::start`].
    pub(crate) fn new(opened: Opened, config: StoreConfig) -> Self {
        Self {
            writer: RwLock::new(None),
            opened: Mutex::new(Some(opened)),
            config,
            failures: AtomicU64::new(0),
            fences: None,
            loads: tokio::sync::Semaphore::new(LOADS_AT_ONCE),
        }
    }

    /// Cluster mode: the fencing tokens the shared store writes under.
    pub(crate) fn fences(&self) -> Option<&std::sync::Arc<roost_store::Fences>> {
        self.fences.as_ref()
    }

    /// Cluster mode: reads one client's stored session and will (blocking
    /// work off the runtime).
    pub(crate) async fn load_session(
        &self,
        client_id: &str,
    ) -> Result<roost_store::LoadedSession, String> {
        let store = self
            .opened
            .lock()
            .as_ref()
            .map(Opened::store)
            .ok_or("store closed")?;
        let client_id = client_id.to_string();
        // The semaphore is never closed, so this waits for a permit.
        let _permit = self.loads.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || store.load_session(&client_id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Starts the writer (after the restore, per docs/persistence.md).
    pub(crate) fn start(&self) -> Result<(), roost_store::StoreError> {
        let config = self.config.writer_config();
        let store = self
            .opened
            .lock()
            .as_ref()
            .map(Opened::store)
            .ok_or(roost_store::StoreError::Closed)?;
        let writer = Writer::spawn(store, config)?;
        *self.writer.write() = Some(writer);
        Ok(())
    }

    /// PUBACK / PUBREC wait for the publish's ticket.
    pub(crate) fn acks_wait(&self) -> bool {
        self.config.durability == DurabilityConfig::Sync
    }

    /// Hands a batch to the writer. Never drops a delta: when the queue is
    /// full it waits for room (off the runtime's worker when it can), which
    /// is the back-pressure docs/persistence.md describes. `None` for an
    /// empty batch, or before start / after close (nothing is written then).
    pub(crate) fn submit(&self, batch: Vec<Delta>) -> Option<CommitTicket> {
        if batch.is_empty() {
            return None;
        }
        let guard = self.writer.read();
        let writer = guard.as_ref()?;
        match writer.try_submit(batch) {
            Ok(ticket) => Some(ticket),
            Err(TrySubmitError::Full(batch)) => {
                let blocking = || writer.submit(batch);
                let submitted = match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(blocking)
                    }
                    _ => blocking(),
                };
                submitted
                    .inspect_err(|e| tracing::warn!(error = %e, "store writer refused a batch"))
                    .ok()
            }
            Err(TrySubmitError::Closed(_)) => {
                tracing::debug!("store writer closed; batch not written");
                None
            }
        }
    }

    /// The writer's outage and lag counters, for `BrokerHandle::stats`
    /// (nothing before start or after close).
    pub(crate) fn fill_stats(&self, stats: &mut crate::metrics::Stats) {
        let guard = self.writer.read();
        let Some(writer) = guard.as_ref() else {
            return;
        };
        let w = writer.stats();
        stats.store_unavailable = w.unavailable;
        stats.store_outages = w.outages;
        stats.store_retries = w.retries;
        stats.store_outage_ms = w.outage_micros / 1_000;
        stats.store_queued_deltas = w.queued_deltas as u64;
        stats.store_failures = w.failures;
    }

    /// How long the writer's applies took (nothing before start or after close).
    pub(crate) fn write_latency(&self) -> Option<roost_store::LatencySnapshot> {
        Some(self.writer.read().as_ref()?.stats().write_latency)
    }

    /// A ticket that completes once everything submitted so far is stored
    /// (and, in `sync` mode, fsynced).
    pub(crate) fn barrier(&self) -> Option<CommitTicket> {
        self.writer.read().as_ref()?.flush_ticket().ok()
    }

    /// Waits for a publish's ticket before its PUBACK / PUBREC goes out, in
    /// `sync` mode; at once otherwise. A failed write is logged and counted:
    /// the message was routed in memory, so it is acknowledged anyway.
    pub(crate) async fn acknowledged(&self, ticket: Option<CommitTicket>) {
        if !self.acks_wait() {
            return;
        }
        if let Some(ticket) = ticket
            && let Err(e) = ticket.await
        {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "store write failed; going on (this change may not survive a restart)");
        }
    }

    /// Stops the writer (flushing and fsyncing what it holds), then lets a
    /// disk store checkpoint so the next start does not replay its journal.
    /// Blocking: call it off the runtime.
    pub(crate) fn close(&self) {
        let writer = self.writer.write().take();
        if let Some(writer) = writer {
            let stats = writer.stats();
            if let Err(e) = writer.close() {
                tracing::error!(error = %e, "store writer did not close cleanly");
            }
            tracing::info!(
                groups = stats.groups,
                batches = stats.batches_applied,
                coalesced_deltas = stats.coalesced,
                syncs = stats.syncs,
                "store writer closed"
            );
        }
        let opened = self.opened.lock().take();
        if let Some(opened) = opened
            && let Err(e) = opened.checkpoint()
        {
            tracing::warn!(error = %e, "store checkpoint failed (the next start replays the journal)");
        }
        let failures = self.failures.load(Ordering::Relaxed);
        tracing::info!(failures, "store closed");
    }
}

/// Cluster mode: opens the session store shared by the cluster's nodes (the
/// Redis store on the cluster's Redis and prefix; `[store]`'s backend is not
/// used, its durability and queue settings are). It restores nothing: a
/// session is loaded when its client connects.
pub(crate) async fn open_shared(
    config: &crate::config::Config,
) -> Result<Option<(Persist, roost_store::Snapshot)>, String> {
    let fences = std::sync::Arc::new(roost_store::Fences::default());
    let cluster = config.cluster.clone();
    let f = std::sync::Arc::clone(&fences);
    let opened = tokio::task::spawn_blocking(move || open::open_shared(&cluster, f))
        .await
        .map_err(|e| format!("store: opening failed: {e}"))??;
    tracing::info!(prefix = %config.cluster.key_prefix, "store: the cluster's Redis (sessions shared by every node)");
    let mut store = config.store.clone();
    if config.cluster.durable {
        // Durable mode: acknowledgements wait for the queue rows.
        store.durability = DurabilityConfig::Sync;
    }
    let mut persist = Persist::new(opened, store);
    persist.fences = Some(fences);
    Ok(Some((persist, roost_store::Snapshot::default())))
}

/// Opens the configured store, restores it into `core` and starts the
/// writer. Blocking parts run off the runtime. Errors name the key and
/// the directory or URL.
pub(crate) async fn open(
    config: &StoreConfig,
) -> Result<Option<(Persist, roost_store::Snapshot)>, String> {
    if config.backend() == StoreBackend::Memory {
        return Ok(None);
    }
    let cfg = config.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let opened = Opened::open(&cfg)?;
        let snapshot = opened
            .restore()
            .map_err(|e| format!("store: cannot restore: {e}"))?;
        Ok::<_, String>((opened, snapshot))
    })
    .await
    .map_err(|e| format!("store: opening failed: {e}"))??;
    let (opened, snapshot) = opened;
    match config.backend() {
        StoreBackend::Disk => {
            tracing::info!(data_dir = %config.data_dir.display(), durability = ?config.durability, "store: disk")
        }
        backend => tracing::info!(?backend, durability = ?config.durability, "store"),
    }
    Ok(Some((Persist::new(opened, config.clone()), snapshot)))
}
