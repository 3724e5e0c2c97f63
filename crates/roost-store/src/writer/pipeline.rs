//! `Sync` durability with the fsync of one group overlapping the apply of the
//! next: the writer thread applies groups and hands them to a syncer thread,
//! which fsyncs and completes their tickets, oldest first.
//!
//! ```text
//!  queue ─▶ writer: pop group ─▶ coalesce ─▶ store.apply ─▶ hand-off (bounded) ─▶ syncer: store.sync ─▶ complete tickets
//! ```
//!
//! A ticket still completes only after its group is applied *and* an fsync
//! that began after that apply returned: the syncer takes a group only once
//! it is applied, and fsyncs before completing it. Groups that wait in the
//! hand-off while an fsync runs share the next one. The hand-off holds at
//! most [`AHEAD`] groups: when the disk is slower than the applies, the
//! writer waits there and the queue fills behind it (then `submit` blocks),
//! as without the pipeline.
//!
//! The store must let `sync` run while `apply` does (the disk store fsyncs
//! its journal through a file descriptor of its own, without fjall's
//! journal lock: `disk/journal_sync.rs`).

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Instant;

use crate::error::StoreError;
use crate::store::Store;
use crate::writer::WriterConfig;
use crate::writer::group::{AppliedGroup, apply_group, sync};
use crate::writer::queue::{Popped, Queue};
use crate::writer::stats::Counters;

/// Groups applied and not yet fsynced, at most, besides the one being
/// fsynced.
const AHEAD: usize = 2;

/// Groups one fsync covers at most (what waited in the hand-off, and what
/// arrived while it was drained).
const MAX_PER_SYNC: usize = 16;

/// The writer thread in `Sync` mode: runs the syncer beside it.
pub(crate) fn run<S: Store>(
    store: &S,
    queue: &Queue,
    counters: &Counters,
    config: WriterConfig,
) -> Result<(), StoreError> {
    let (tx, rx) = sync_channel::<AppliedGroup>(AHEAD);
    std::thread::scope(|scope| {
        let syncer = std::thread::Builder::new()
            .name("roost-store-sync".into())
            .spawn_scoped(scope, || syncer(store, counters, rx));
        let syncer = match syncer {
            Ok(s) => s,
            Err(e) => return Err(StoreError::io("starting the store syncer thread", e)),
        };
        let applied = applier(store, queue, counters, &config, tx);
        let synced = syncer.join().unwrap_or_else(|_| {
            Err(StoreError::Backend {
                backend: "writer",
                message: "the store syncer thread panicked".into(),
            })
        });
        applied.and(synced)
    })
}

/// Pops, coalesces and applies groups, handing each to the syncer. Returns
/// when the queue is closed and drained (the syncer then finishes what it
/// holds), or with the outage's error when the close grace ran out.
fn applier<S: Store>(
    store: &S,
    queue: &Queue,
    counters: &Counters,
    config: &WriterConfig,
    tx: SyncSender<AppliedGroup>,
) -> Result<(), StoreError> {
    let mut give_up_at: Option<Instant> = None;
    let mut deltas = Vec::new();
    loop {
        let group = match queue.pop_group(config.max_group_deltas, None) {
            Popped::Group(group) => group,
            Popped::Closed | Popped::Timeout => return Ok(()),
        };
        let done = apply_group(
            store,
            group,
            &mut deltas,
            queue,
            counters,
            config,
            &mut give_up_at,
        )?;
        if tx.send(done).is_err() {
            // The syncer is gone (it panicked): the group's guard and
            // `FailLeftovers` fail the tickets.
            return Err(StoreError::Closed);
        }
    }
}

/// Fsyncs what the applier handed over and completes its tickets, in order.
/// Returns the outcome of its last fsync (the close's).
fn syncer<S: Store>(
    store: &S,
    counters: &Counters,
    rx: Receiver<AppliedGroup>,
) -> Result<(), StoreError> {
    let mut last = Ok(());
    let mut groups = Vec::with_capacity(MAX_PER_SYNC);
    while let Ok(first) = rx.recv() {
        groups.push(first);
        while groups.len() < MAX_PER_SYNC {
            match rx.try_recv() {
                Ok(done) => groups.push(done),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let synced = if groups.iter().any(|g| g.wrote && g.outcome.is_ok()) {
            let r = sync(store, counters);
            last = r.clone();
            r
        } else {
            Ok(())
        };
        for group in groups.drain(..) {
            let outcome = group.outcome.and(synced.clone());
            for (ticket, _) in &group.tickets.0 {
                ticket.complete(outcome.clone());
            }
        }
    }
    last
}
