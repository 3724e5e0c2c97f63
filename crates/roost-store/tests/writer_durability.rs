//! The write-behind writer: group commit, what each durability mode waits
//! for, the bounded queue's policy, and failures reaching the tickets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use common::gated::{Event, GatedStore, next};
use roost_store::{
    Delta, Durability, FaultyStore, MemoryStore, Store, StoreError, TrySubmitError, Writer,
    WriterConfig,
};

fn retain(n: u64) -> Delta {
    Delta::RetainSet {
        topic: format!("t/{n}").into(),
        message: common::bare("t", b"p"),
        stored_at: common::stored_at(n),
    }
}

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(10);

#[test]
fn sync_tickets_complete_only_after_an_fsync_begun_after_their_apply_which_overlaps_the_next_apply()
{
    let (store, events) = GatedStore::new();
    let writer =
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::Sync)).expect("spawn");

    let first = writer.submit(vec![retain(0)]).expect("submit");
    assert_eq!(next(&events), Event::Applied(1));
    assert_eq!(next(&events), Event::SyncStarted);
    // Applied but not fsynced: the ticket must not complete yet.
    assert!(first.wait_timeout(SHORT).is_none());

    // The next group is applied while the first one's fsync is blocked
    // (the pipeline), but its ticket waits for an fsync of its own.
    let second = writer.submit(vec![retain(1), retain(101)]).expect("submit");
    assert_eq!(next(&events), Event::Applied(2));
    assert!(second.wait_timeout(SHORT).is_none());
    assert!(first.wait_timeout(SHORT).is_none());
    store.open_gate();
    assert!(matches!(first.wait_timeout(LONG), Some(Ok(()))));
    assert_eq!(next(&events), Event::SyncStarted);
    assert!(matches!(second.wait_timeout(LONG), Some(Ok(()))));
    let stats = writer.stats();
    assert_eq!(
        (stats.groups, stats.batches_applied, stats.syncs),
        (2, 2, 2)
    );
    assert_eq!(store.restore().expect("restore").retained.len(), 3);
}

#[test]
fn async_tickets_complete_on_apply_and_the_fsync_follows_within_the_interval() {
    let (store, events) = GatedStore::new();
    let config = WriterConfig::new(Durability::Async {
        fsync_interval: Duration::from_millis(20),
    });
    let writer = Writer::spawn(Arc::clone(&store), config).expect("spawn");
    let ticket = writer.submit(vec![retain(1)]).expect("submit");
    // The gate is closed, yet the ticket completes: async does not wait for fsync.
    assert!(matches!(ticket.wait_timeout(LONG), Some(Ok(()))));
    assert_eq!(next(&events), Event::Applied(1));
    // The fsync comes on its own (the interval elapses with no new writes).
    assert_eq!(next(&events), Event::SyncStarted);
    store.open_gate();
    writer.close().expect("close");
}

#[test]
fn none_never_fsyncs_until_close_or_an_explicit_flush() {
    let (store, events) = GatedStore::new();
    store.open_gate();
    let writer =
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::None)).expect("spawn");
    for n in 0..5 {
        writer
            .submit(vec![retain(n)])
            .expect("submit")
            .wait()
            .expect("applied");
    }
    assert_eq!(writer.stats().syncs, 0);
    writer.flush().expect("flush");
    assert_eq!(writer.stats().syncs, 1);
    writer
        .submit(vec![retain(9)])
        .expect("submit")
        .wait()
        .expect("applied");
    writer.close().expect("close syncs");
    let seen: Vec<Event> = events.try_iter().collect();
    assert_eq!(
        seen.iter().filter(|e| **e == Event::SyncStarted).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&Event::SyncStarted));
}

#[test]
fn a_full_queue_refuses_try_submit_and_makes_submit_wait() {
    let (store, events) = GatedStore::new();
    // Async with an fsync after every group: the writer is stuck in the
    // gated fsync, so nothing leaves the queue. (In Sync mode the writer
    // goes on applying while an fsync runs, see above.)
    let config = WriterConfig {
        max_queued_deltas: 4,
        ..WriterConfig::new(Durability::Async {
            fsync_interval: Duration::ZERO,
        })
    };
    let writer = Arc::new(Writer::spawn(Arc::clone(&store), config).expect("spawn"));
    let first = writer.submit(vec![retain(0)]).expect("submit");
    assert_eq!(next(&events), Event::Applied(1));
    assert_eq!(next(&events), Event::SyncStarted);
    // The writer is stuck in fsync; fill the queue to its 4 deltas.
    let queued = writer
        .submit(vec![retain(1), retain(2), retain(3), retain(4)])
        .expect("submit");
    match writer.try_submit(vec![retain(5)]) {
        Err(TrySubmitError::Full(batch)) => assert_eq!(batch, vec![retain(5)]),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(writer.stats().refused, 1);
    assert_eq!(writer.stats().queued_deltas, 4);

    let blocked = {
        let writer = Arc::clone(&writer);
        thread::spawn(move || writer.submit(vec![retain(6)]).expect("submit").wait())
    };
    let deadline = std::time::Instant::now() + LONG;
    while writer.stats().waiting_submitters == 0 {
        assert!(std::time::Instant::now() < deadline, "submit never blocked");
        thread::sleep(Duration::from_millis(1));
    }
    store.open_gate();
    first.wait().expect("first");
    queued.wait().expect("queued");
    blocked
        .join()
        .expect("thread")
        .expect("blocked submit stored");
    assert_eq!(writer.stats().stalls, 1);
    assert_eq!(store.restore().expect("restore").retained.len(), 6);
}

#[test]
fn an_injected_apply_failure_reaches_the_ticket_and_the_stats() {
    // None: only applies count as operations; the third one fails.
    let store = Arc::new(FaultyStore::new(MemoryStore::new(), 2));
    let writer =
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::None)).expect("spawn");
    writer
        .submit(vec![retain(1)])
        .expect("submit")
        .wait()
        .expect("1st");
    writer
        .submit(vec![retain(2)])
        .expect("submit")
        .wait()
        .expect("2nd");
    match writer.submit(vec![retain(3)]).expect("submit").wait() {
        Err(StoreError::Injected { op: 3 }) => {}
        other => panic!("expected the injected failure, got {other:?}"),
    }
    let stats = writer.stats();
    assert_eq!(stats.failures, 1);
    assert!(matches!(
        stats.last_error,
        Some(StoreError::Injected { op: 3 })
    ));
    // Nothing of the failed batch is in the store; what came before is.
    let retained = store.inner().restore().expect("restore").retained;
    assert_eq!(retained.len(), 2);
    // The writer keeps going once the store works again.
    store.heal(10);
    writer
        .submit(vec![retain(4)])
        .expect("submit")
        .wait()
        .expect("after heal");
}

#[test]
fn an_injected_fsync_failure_fails_sync_tickets() {
    // Sync: apply is operation 1, fsync operation 2 (fails).
    let store = FaultyStore::new(MemoryStore::new(), 1);
    let writer = Writer::spawn(store, WriterConfig::new(Durability::Sync)).expect("spawn");
    match writer.submit(vec![retain(1)]).expect("submit").wait() {
        Err(StoreError::Injected { op: 2 }) => {}
        other => panic!("expected the injected fsync failure, got {other:?}"),
    }
}

#[test]
fn close_stores_everything_queued_before_returning() {
    let store = Arc::new(MemoryStore::new());
    let writer =
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::Sync)).expect("spawn");
    let tickets: Vec<_> = (0..50)
        .map(|n| writer.submit(vec![retain(n)]).expect("submit"))
        .collect();
    writer.close().expect("close");
    for t in tickets {
        t.wait().expect("stored before close returned");
    }
    assert_eq!(store.restore().expect("restore").retained.len(), 50);
}

#[test]
fn batches_from_many_threads_are_all_stored_in_sync_mode() {
    let store = Arc::new(MemoryStore::new());
    let writer = Arc::new(
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::Sync)).expect("spawn"),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let writer = Arc::clone(&writer);
            thread::spawn(move || {
                for n in 0..100 {
                    writer
                        .submit(vec![retain(t * 1000 + n)])
                        .expect("submit")
                        .wait()
                        .expect("stored");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(store.restore().expect("restore").retained.len(), 400);
    let stats = writer.stats();
    assert_eq!(stats.batches_applied, 400);
    assert!(stats.syncs <= stats.groups);
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn a_ticket_can_be_awaited_without_any_runtime() {
    let store = Arc::new(MemoryStore::new());
    let writer =
        Writer::spawn(Arc::clone(&store), WriterConfig::new(Durability::Sync)).expect("spawn");
    let mut ticket = writer.submit(vec![retain(1)]).expect("submit");
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = std::time::Instant::now() + LONG;
    let outcome = loop {
        match std::pin::Pin::new(&mut ticket).poll(&mut cx) {
            Poll::Ready(r) => break r,
            Poll::Pending => {
                assert!(std::time::Instant::now() < deadline, "ticket never woke us");
                thread::park_timeout(SHORT);
            }
        }
    };
    outcome.expect("stored");
}

use std::future::Future as _;

struct PanickingStore;

impl Store for PanickingStore {
    fn apply(&self, _: &[Delta]) -> Result<(), StoreError> {
        panic!("a bug in a store");
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn restore(&self) -> Result<roost_store::Snapshot, StoreError> {
        Ok(roost_store::Snapshot::default())
    }
}

#[test]
fn a_panicking_store_fails_the_tickets_instead_of_leaving_them_waiting() {
    let writer = Writer::spawn(PanickingStore, WriterConfig::new(Durability::Sync)).expect("spawn");
    let ticket = writer.submit(vec![retain(1)]).expect("submit");
    assert!(matches!(
        ticket.wait_timeout(LONG),
        Some(Err(StoreError::Closed))
    ));
    // The writer is gone: later batches are refused, not queued forever.
    let deadline = std::time::Instant::now() + LONG;
    loop {
        match writer.try_submit(vec![retain(2)]) {
            Err(TrySubmitError::Closed(_)) => break,
            Ok(t) => assert!(matches!(
                t.wait_timeout(LONG),
                Some(Err(StoreError::Closed))
            )),
            Err(TrySubmitError::Full(_)) => {}
        }
        assert!(std::time::Instant::now() < deadline, "writer never closed");
    }
    assert!(writer.close().is_err(), "close reports the dead thread");
}
