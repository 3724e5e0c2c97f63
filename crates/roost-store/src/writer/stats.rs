//! What the writer did and how far behind it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::writer::queue::Stall;

/// A point-in-time copy of the writer's counters.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WriterStats {
    /// Batches accepted by `submit` / `try_submit` (flush barriers included).
    pub submitted: u64,
    /// Batches `try_submit` refused because the queue was full.
    pub refused: u64,
    /// Times `submit` had to wait for room (back-pressure on the broker).
    pub stalls: u64,
    /// Total time spent in those waits, in microseconds.
    pub stall_micros: u64,
    /// Store applies (one per group).
    pub groups: u64,
    /// Batches applied (successfully or not), summed over groups.
    pub batches_applied: u64,
    /// Deltas dropped before apply because a later delta of the same
    /// group undid or overwrote them (see `writer/coalesce.rs`).
    pub coalesced: u64,
    /// fsyncs done.
    pub syncs: u64,
    /// Applies and fsyncs that failed for good (their tickets got the
    /// error). Transient failures that were retried are in `retries`.
    pub failures: u64,
    /// The backend is unavailable right now: the writer is retrying a group
    /// and everything behind it waits in the queue.
    pub unavailable: bool,
    /// Outages begun (a group's apply failed transiently after the previous
    /// apply succeeded).
    pub outages: u64,
    /// Applies that failed transiently and were tried again.
    pub retries: u64,
    /// How long the current outage has lasted, in microseconds (0 when
    /// the backend is available).
    pub outage_micros: u64,
    /// Deltas waiting in the queue right now: the writer's lag.
    pub queued_deltas: usize,
    /// Submitters blocked right now because the queue is full.
    pub waiting_submitters: usize,
    /// The last failure, if any.
    pub last_error: Option<StoreError>,
    /// How long each apply to the backend took (retries of an outage
    /// timed one by one).
    pub write_latency: crate::latency::LatencySnapshot,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    refused: AtomicU64,
    stalls: AtomicU64,
    stall_micros: AtomicU64,
    groups: AtomicU64,
    batches_applied: AtomicU64,
    coalesced: AtomicU64,
    syncs: AtomicU64,
    failures: AtomicU64,
    outages: AtomicU64,
    retries: AtomicU64,
    /// Each apply's duration.
    pub(crate) write_latency: crate::latency::LatencyHistogram,
    /// Start of the current outage.
    outage_since: Mutex<Option<Instant>>,
    last_error: Mutex<Option<StoreError>>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Counters {
    pub(crate) fn submitted(&self, stall: Option<Stall>) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        if let Some(Stall(d)) = stall {
            self.stalls.fetch_add(1, Ordering::Relaxed);
            self.stall_micros.fetch_add(micros(d), Ordering::Relaxed);
        }
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn applied(&self, batches: u64, result: &Result<(), StoreError>) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.batches_applied.fetch_add(batches, Ordering::Relaxed);
        self.record(result);
    }

    pub(crate) fn coalesced(&self, deltas: u64) {
        if deltas > 0 {
            self.coalesced.fetch_add(deltas, Ordering::Relaxed);
        }
    }

    pub(crate) fn synced(&self, result: &Result<(), StoreError>) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.record(result);
    }

    /// A transient failure began an outage (the apply will be retried).
    pub(crate) fn outage_began(&self, since: Instant, error: &StoreError) {
        self.outages.fetch_add(1, Ordering::Relaxed);
        *self
            .outage_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(since);
        self.last_error(error);
    }

    /// A transient failure within an outage (the apply will be retried).
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The backend answered again (successfully or with a lasting error).
    pub(crate) fn outage_ended(&self) {
        *self
            .outage_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn last_error(&self, e: &StoreError) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(e.clone());
    }

    fn record(&self, result: &Result<(), StoreError>) {
        if let Err(e) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.last_error(e);
        }
    }

    pub(crate) fn snapshot(
        &self,
        (queued_deltas, waiting_submitters): (usize, usize),
    ) -> WriterStats {
        let outage_since = *self
            .outage_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        WriterStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
            stall_micros: self.stall_micros.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            batches_applied: self.batches_applied.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            unavailable: outage_since.is_some(),
            outages: self.outages.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            outage_micros: outage_since.map_or(0, |t| micros(t.elapsed())),
            queued_deltas,
            waiting_submitters,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            write_latency: self.write_latency.snapshot(),
        }
    }
}
