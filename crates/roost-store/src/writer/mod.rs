//! Write-behind with group commit: submitters hand batches to one thread,
//! which applies everything waiting as one store batch and fsyncs it
//! according to the [`Durability`] policy.
//!
//! ```text
//!  submit(batch) ──▶ bounded queue (deltas) ──▶ writer thread:
//!    └─ CommitTicket           take all waiting ──▶ store.apply(group) ──▶ fsync? ──▶ complete tickets
//! ```
//!
//! In [`Durability::Sync`] the fsync runs on a second thread, overlapping
//! the apply of the next group (`pipeline.rs`).
//!
//! A transient failure (the backend is unreachable: [`StoreError::is_transient`])
//! does not drop the group: the thread retries the same group with
//! exponential backoff, its tickets pending, while later batches queue
//! behind it up to the queue's limit (see `thread.rs`).
//!
//! Runtime-agnostic: a std thread and a mutex/condvar queue. A [`CommitTicket`]
//! can be waited on from a plain thread or `.await`ed on any executor.
//! `submit` blocks while the queue is full; async callers use
//! [`Writer::try_submit`] or call `submit` from a blocking context.

mod coalesce;
mod group;
mod pipeline;
mod queue;
mod stats;
mod thread;
mod ticket;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::store::Store;
use queue::{Pending, PushError, Queue};
use stats::Counters;
pub use stats::WriterStats;
pub use ticket::CommitTicket;
use ticket::TicketCell;

/// When a batch counts as stored (see `docs/persistence.md` for what each
/// mode keeps on `kill -9` and on power loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Tickets complete once applied; the writer never fsyncs (the OS
    /// writes back on its own schedule, and at [`Writer::close`]).
    None,
    /// Tickets complete once applied; the writer fsyncs at most
    /// `fsync_interval` after a write.
    Async {
        /// Longest time applied data waits for an fsync.
        fsync_interval: Duration,
    },
    /// Tickets complete after the group containing the batch is applied and
    /// fsynced (group commit).
    Sync,
}

/// Writer settings.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// The durability policy.
    pub durability: Durability,
    /// Deltas that may wait in the queue before `submit` blocks (and
    /// `try_submit` refuses).
    pub max_queued_deltas: usize,
    /// Deltas applied as one store batch at most (one group commit).
    pub max_group_deltas: usize,
    /// Wait before the first retry of a group whose apply failed with a
    /// transient error ([`StoreError::is_transient`]); doubled after each
    /// further failure.
    pub retry_initial: Duration,
    /// Longest wait between two retries.
    pub retry_max: Duration,
    /// How long a writer closed during an outage keeps retrying before it
    /// fails what it still holds, so shutdown cannot hang on a dead server.
    pub close_grace: Duration,
}

impl WriterConfig {
    /// Defaults for `durability`: 65,536 queued deltas, groups of up to as
    /// many (the writer takes everything waiting: the larger the group, the
    /// more of a message's enqueue, stage and ack it holds together, which
    /// `coalesce.rs` then drops before any of it is written);
    /// retries from 50 ms doubling to 5 s; 10 s of grace at close.
    pub fn new(durability: Durability) -> Self {
        Self {
            durability,
            max_queued_deltas: 65_536,
            max_group_deltas: 65_536,
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            close_grace: Duration::from_secs(10),
        }
    }
}

/// Why [`Writer::try_submit`] did not take a batch.
#[derive(Debug)]
pub enum TrySubmitError {
    /// The queue is full; the batch is handed back.
    Full(Vec<Delta>),
    /// The writer is closed; the batch is handed back.
    Closed(Vec<Delta>),
}

/// The write-behind writer. Dropping it closes the queue, lets the thread
/// store what is queued, fsyncs and joins (as [`Writer::close`], ignoring
/// the result).
#[derive(Debug)]
pub struct Writer {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn spawn<S: Store + 'static>(store: S, config: WriterConfig) -> Result<Writer, StoreError> {
        let queue = Arc::new(Queue::new(config.max_queued_deltas));
        let counters = Arc::new(Counters::default());
        let thread = {
            let queue = Arc::clone(&queue);
            let counters = Arc::clone(&counters);
            std::thread::Builder::new()
                .name("roost-store-writer".into())
                .spawn(move || thread::run(&store, &queue, &counters, config))
                .map_err(|e| StoreError::io("starting the store writer thread", e))?
        };
        Ok(Writer {
            queue,
            counters,
            thread: Some(thread),
        })
    }

    /// Queues a batch (applied atomically, in submission order). Blocks
    /// while the queue is full; each such wait is counted in
    /// [`WriterStats::stalls`].
    pub fn submit(&self, batch: Vec<Delta>) -> Result<CommitTicket, StoreError> {
        self.push(batch, false, true)
            .map_err(|_| StoreError::Closed)
    }

    /// Queues a batch without blocking.
    pub fn try_submit(&self, batch: Vec<Delta>) -> Result<CommitTicket, TrySubmitError> {
        self.push(batch, false, false)
    }

    /// A ticket that completes once everything submitted before it is
    /// applied *and* fsynced, whatever the durability.
    pub fn flush_ticket(&self) -> Result<CommitTicket, StoreError> {
        self.push(Vec::new(), true, true)
            .map_err(|_| StoreError::Closed)
    }

    /// Blocks until everything submitted so far is applied and fsynced.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.flush_ticket()?.wait()
    }

    /// Counters and current lag.
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot(self.queue.lag())
    }

    /// Stores what is queued, fsyncs, stops the thread. Returns the first
    /// error of that final stretch.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        self.queue.close();
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(StoreError::Backend {
                    backend: "writer",
                    message: "the writer thread panicked".into(),
                })
            }),
            None => Ok(()),
        }
    }

    fn push(
        &self,
        deltas: Vec<Delta>,
        force_sync: bool,
        block: bool,
    ) -> Result<CommitTicket, TrySubmitError> {
        let cell = TicketCell::new();
        let pending = Pending {
            deltas,
            ticket: Arc::clone(&cell),
            force_sync,
        };
        match self.queue.push(pending, block) {
            Ok(stall) => {
                self.counters.submitted(stall);
                Ok(CommitTicket::new(cell))
            }
            Err(PushError::Full(p)) => {
                self.counters.refused();
                Err(TrySubmitError::Full(p.deltas))
            }
            Err(PushError::Closed(p)) => Err(TrySubmitError::Closed(p.deltas)),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The outcome has nowhere to go; `close` reports it.
        let _ = self.shutdown();
    }
}
