//! The writer thread: takes groups off the queue, applies each as one store
//! batch, fsyncs per the durability policy and completes the tickets.

use std::sync::Arc;
use std::time::Instant;

use crate::error::StoreError;
use crate::store::Store;
use crate::writer::queue::{Popped, Queue};
use crate::writer::stats::Counters;
use crate::writer::ticket::TicketCell;
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

/// Completes the tickets of the group being stored with `Closed` if the
/// thread unwinds before it could give them their real outcome (completing
/// is first-wins, so after a normal completion this does nothing).
struct GroupGuard(Vec<(Arc<TicketCell>, bool)>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for (ticket, _) in &self.0 {
            ticket.complete(Err(StoreError::Closed));
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
    let interval = match config.durability {
        Durability::Async { fsync_interval } => Some(fsync_interval),
        Durability::None | Durability::Sync => None,
    };
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    let mut close_result = Ok(());
    loop {
        // In async mode, wake up when applied data is due for its fsync.
        let timeout = match interval {
            Some(i) if unsynced => Some(i.saturating_sub(last_sync.elapsed())),
            _ => None,
        };
        match queue.pop_group(config.max_group_deltas, timeout) {
            Popped::Closed => {
                if unsynced {
                    close_result = sync(store, counters);
                }
                return close_result;
            }
            Popped::Timeout => {
                if unsynced {
                    // Failures are counted and kept in stats; nobody waits on them.
                    let _ = sync(store, counters);
                    unsynced = false;
                    last_sync = Instant::now();
                }
            }
            Popped::Group(group) => {
                let force = group.iter().any(|p| p.force_sync);
                let count = group.len();
                let mut tickets = GroupGuard(Vec::with_capacity(count));
                let mut deltas = Vec::new();
                for p in group {
                    tickets.0.push((p.ticket, p.force_sync));
                    if deltas.is_empty() {
                        deltas = p.deltas;
                    } else {
                        deltas.extend(p.deltas);
                    }
                }
                let applied = if deltas.is_empty() {
                    Ok(())
                } else {
                    let r = store.apply(&deltas);
                    counters.applied(count as u64, &r);
                    unsynced |= r.is_ok();
                    r
                };
                let due = match config.durability {
                    Durability::Sync => true,
                    Durability::Async { fsync_interval } => last_sync.elapsed() >= fsync_interval,
                    Durability::None => false,
                };
                let synced = if (due || force) && unsynced {
                    let r = sync(store, counters);
                    unsynced = false;
                    last_sync = Instant::now();
                    r
                } else {
                    Ok(())
                };
                let strict = config.durability == Durability::Sync;
                for (ticket, forced) in &tickets.0 {
                    let outcome = if strict || *forced {
                        applied.clone().and(synced.clone())
                    } else {
                        applied.clone()
                    };
                    ticket.complete(outcome);
                }
            }
        }
    }
}

fn sync<S: Store>(store: &S, counters: &Counters) -> Result<(), StoreError> {
    let r = store.sync();
    counters.synced(&r);
    r
}
