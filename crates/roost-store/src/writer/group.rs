//! One group of batches off the queue, written: its tickets held under a
//! guard, its deltas coalesced and applied as one store batch, an outage
//! retried with backoff (and given up once closed past the grace). Shared by
//! the writer loop (`thread.rs`) and the `Sync` pipeline (`pipeline.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::delta::Delta;
use crate::error::StoreError;
use crate::store::Store;
use crate::writer::WriterConfig;
use crate::writer::coalesce::coalesce;
use crate::writer::queue::{Pending, Queue};
use crate::writer::stats::Counters;
use crate::writer::ticket::TicketCell;

/// Completes the tickets of the group being stored with `Closed` if the
/// thread unwinds before it could give them their real outcome (completing
/// is first-wins, so after a normal completion this does nothing).
pub(crate) struct GroupGuard(pub(crate) Vec<(Arc<TicketCell>, bool)>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        for (ticket, _) in &self.0 {
            ticket.complete(Err(StoreError::Closed));
        }
    }
}

/// One group taken off the queue and applied; its tickets not yet completed.
pub(crate) struct AppliedGroup {
    /// The group's tickets, each with its flush-barrier flag.
    pub(crate) tickets: GroupGuard,
    /// The store's verdict on the group's batch.
    pub(crate) outcome: Result<(), StoreError>,
    /// Something was written (a group coalesced to nothing needs no fsync).
    pub(crate) wrote: bool,
}

/// Coalesces `group` into one batch in `deltas` (one buffer for the life of
/// the thread: a fresh multi-MB vector per group cost page faults on every
/// group) and applies it, retrying an outage. `Err` when the close grace ran
/// out: this group and everything still queued are failed with the outage's
/// error, and the writer ends.
pub(crate) fn apply_group<S: Store>(
    store: &S,
    group: Vec<Pending>,
    deltas: &mut Vec<Delta>,
    queue: &Queue,
    counters: &Counters,
    config: &WriterConfig,
    give_up_at: &mut Option<Instant>,
) -> Result<AppliedGroup, StoreError> {
    let count = group.len() as u64;
    let mut tickets = GroupGuard(Vec::with_capacity(group.len()));
    for p in group {
        tickets.0.push((p.ticket, p.force_sync));
        deltas.extend(p.deltas);
    }
    let used = deltas.len();
    counters.coalesced(coalesce(deltas) as u64);
    let wrote = !deltas.is_empty();
    let outcome = if wrote {
        match apply(store, deltas, queue, counters, config, give_up_at) {
            Applied::Done(r) => {
                counters.applied(count, &r);
                r
            }
            Applied::GaveUp(e) => {
                let failed = Err(e.clone());
                counters.applied(count, &failed);
                for (ticket, _) in &tickets.0 {
                    ticket.complete(failed.clone());
                }
                for p in queue.close_and_drain() {
                    p.ticket.complete(failed.clone());
                }
                return Err(e);
            }
        }
    } else {
        Ok(())
    };
    // Release the payloads now. Keep room for a group like this one (steady
    // load reuses it), but give back what a burst grew: a full group of
    // ~300 B deltas is ~20 MB.
    deltas.clear();
    let keep = used.saturating_mul(2).max(1_024);
    deltas.shrink_to(keep.min(config.max_group_deltas.max(1_024)));
    Ok(AppliedGroup {
        tickets,
        outcome,
        wrote,
    })
}

/// The outcome of applying one group.
pub(crate) enum Applied {
    /// The store's verdict (success or a lasting error).
    Done(Result<(), StoreError>),
    /// Still unavailable when the close grace ran out.
    GaveUp(StoreError),
}

/// Applies one group, retrying transient failures with backoff until the
/// store answers for good, or, once the queue is closed, until
/// `give_up_at` (set `close_grace` after the close is first seen, and kept
/// across groups so the whole shutdown is bounded).
pub(crate) fn apply<S: Store>(
    store: &S,
    deltas: &[Delta],
    queue: &Queue,
    counters: &Counters,
    config: &WriterConfig,
    give_up_at: &mut Option<Instant>,
) -> Applied {
    let mut backoff = config.retry_initial;
    let mut outage: Option<(Instant, u64)> = None;
    loop {
        let started = Instant::now();
        let applied = store.apply(deltas);
        counters.write_latency.observe(started.elapsed());
        let e = match applied {
            Err(e) if e.is_transient() => e,
            done => {
                if let Some((since, retries)) = outage {
                    counters.outage_ended();
                    let duration_ms =
                        u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    tracing::info!(
                        duration_ms,
                        retries,
                        "store available again; writes resumed"
                    );
                }
                return Applied::Done(done);
            }
        };
        let mut wait = backoff;
        let closed = queue.is_closed();
        if closed {
            let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + config.close_grace);
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => wait = wait.min(left),
                _ => {
                    counters.outage_ended();
                    tracing::error!(error = %e, "store still unavailable at shutdown; failing the writes it holds");
                    return Applied::GaveUp(e);
                }
            }
        }
        match &mut outage {
            None => {
                let now = Instant::now();
                counters.outage_began(now, &e);
                tracing::warn!(error = %e, "store unavailable; holding writes and retrying");
                outage = Some((now, 1));
            }
            Some((_, retries)) => *retries += 1,
        }
        counters.retried();
        if closed {
            std::thread::sleep(wait);
        } else {
            // Wakes early on close, to start the grace period.
            queue.wait_closed(wait);
        }
        backoff = next_backoff(backoff, config.retry_max);
    }
}

/// Doubles `backoff`, capped at `max` (and at least 1 ms, so a zero
/// setting cannot spin).
fn next_backoff(backoff: Duration, max: Duration) -> Duration {
    backoff
        .saturating_mul(2)
        .clamp(Duration::from_millis(1), max.max(Duration::from_millis(1)))
}

pub(crate) fn sync<S: Store>(store: &S, counters: &Counters) -> Result<(), StoreError> {
    let r = store.sync();
    counters.synced(&r);
    r
}
