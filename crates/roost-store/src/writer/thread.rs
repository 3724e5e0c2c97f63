//! The writer thread: takes groups off the queue, applies each as one store
//! batch, fsyncs per the durability policy and completes the tickets.
//!
//! A transient apply failure (the backend is unreachable) starts an outage:
//! the thread retries the *same* group with exponential backoff and pops
//! nothing else meanwhile, so order holds and nothing is dropped; later
//! batches wait in the bounded queue (then `submit` blocks). One warning
//! when an outage begins, one info line when it ends. Closed during an
//! outage, it retries for `close_grace`, then fails what it still holds.

use std::time::Instant;

use crate::error::StoreError;
use crate::store::Store;
use crate::writer::group::{apply_group, sync};
use crate::writer::queue::{Popped, Queue};
use crate::writer::stats::Counters;
use crate::writer::{Durability, WriterConfig};

/// Fails every batch still queued when the thread ends, however it ends
/// (including a panic in the store), so no ticket waits forever.
struct FailLeftovers<'a>(&'a Queue);

impl Drop for FailLeftovers<'_> {
    fn drop(&mut self) {
        for p in self.0.close_and_drain() {
            p.ticket.complete(Err(StoreError::Closed));
        }
    }
}

/// The writer thread.
pub(crate) fn run<S: Store>(
    store: &S,
    queue: &Queue,
    counters: &Counters,
    config: WriterConfig,
) -> Result<(), StoreError> {
    let _leftovers = FailLeftovers(queue);
    if config.durability == Durability::Sync {
        // The fsync of one group overlaps the apply of the next.
        return crate::writer::pipeline::run(store, queue, counters, config);
    }
    // `Sync` runs in `pipeline.rs`: here a group's tickets wait for an
    // fsync only when the group is a flush barrier.
    let interval = match config.durability {
        Durability::Async { fsync_interval } => Some(fsync_interval),
        Durability::None | Durability::Sync => None,
    };
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    // When the writer, closed during an outage, stops retrying.
    let mut give_up_at = None;
    let mut deltas = Vec::new();
    loop {
        // In async mode, wake up when applied data is due for its fsync.
        let timeout = match interval {
            Some(i) if unsynced => Some(i.saturating_sub(last_sync.elapsed())),
            _ => None,
        };
        let group = match queue.pop_group(config.max_group_deltas, timeout) {
            Popped::Closed => {
                return if unsynced {
                    sync(store, counters)
                } else {
                    Ok(())
                };
            }
            Popped::Timeout => {
                if unsynced {
                    // Failures are counted and kept in stats; nobody waits on them.
                    let _ = sync(store, counters);
                    unsynced = false;
                    last_sync = Instant::now();
                }
                continue;
            }
            Popped::Group(group) => group,
        };
        let force = group.iter().any(|p| p.force_sync);
        let done = apply_group(
            store,
            group,
            &mut deltas,
            queue,
            counters,
            &config,
            &mut give_up_at,
        )?;
        unsynced |= done.wrote && done.outcome.is_ok();
        let due = interval.is_some_and(|i| last_sync.elapsed() >= i);
        let synced = if (due || force) && unsynced {
            let r = sync(store, counters);
            unsynced = false;
            last_sync = Instant::now();
            r
        } else {
            Ok(())
        };
        for (ticket, forced) in &done.tickets.0 {
            let outcome = if *forced {
                done.outcome.clone().and(synced.clone())
            } else {
                done.outcome.clone()
            };
            ticket.complete(outcome);
        }
    }
}
