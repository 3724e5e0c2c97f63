//! What the writer did and how far behind it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

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
    /// fsyncs done.
    pub syncs: u64,
    /// Applies and fsyncs that failed.
    pub failures: u64,
    /// Deltas waiting in the queue right now: the writer's lag.
    pub queued_deltas: usize,
    /// Submitters blocked right now because the queue is full.
    pub waiting_submitters: usize,
    /// The last failure, if any.
    pub last_error: Option<StoreError>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    refused: AtomicU64,
    stalls: AtomicU64,
    stall_micros: AtomicU64,
    groups: AtomicU64,
    batches_applied: AtomicU64,
    syncs: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<StoreError>>,
}

impl Counters {
    pub(crate) fn submitted(&self, stall: Option<Stall>) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        if let Some(Stall(d)) = stall {
            self.stalls.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            self.stall_micros.fetch_add(micros, Ordering::Relaxed);
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

    pub(crate) fn synced(&self, result: &Result<(), StoreError>) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.record(result);
    }

    fn record(&self, result: &Result<(), StoreError>) {
        if let Err(e) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(e.clone());
        }
    }

    pub(crate) fn snapshot(
        &self,
        (queued_deltas, waiting_submitters): (usize, usize),
    ) -> WriterStats {
        WriterStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
            stall_micros: self.stall_micros.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            batches_applied: self.batches_applied.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            queued_deltas,
            waiting_submitters,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}
