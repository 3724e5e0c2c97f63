//! The writer through a backend outage: transient failures (injected with
//! `FaultyStore::outage`) hold the group and retry it, so nothing is lost
//! or reordered and tickets complete once the store is back; the stats show
//! the outage; lasting errors still fail at once; a close during an endless
//! outage ends within its grace period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use roost_store::{
    Delta, Durability, FaultyStore, MemoryStore, Snapshot, Store, StoreError, Writer, WriterConfig,
    WriterStats,
};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(10);

fn retain(n: u64) -> Delta {
    Delta::RetainSet {
        topic: format!("t/{n}").into(),
        message: common::bare("t", b"p"),
        stored_at: common::stored_at(n),
    }
}

/// A memory store that also records the topic of every `RetainSet` it
/// applied, in the order applied.
#[derive(Default)]
struct Journal {
    inner: MemoryStore,
    applied: Mutex<Vec<String>>,
}

impl Journal {
    fn topics(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }
}

impl Store for Journal {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        self.inner.apply(batch)?;
        let mut applied = self.applied.lock().unwrap();
        for d in batch {
            if let Delta::RetainSet { topic, .. } = d {
                applied.push(topic.to_string());
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        self.inner.restore()
    }
}

/// Fast retries, so tests do not wait on the production backoff.
fn fast(durability: Durability) -> WriterConfig {
    WriterConfig {
        retry_initial: Duration::from_millis(1),
        retry_max: Duration::from_millis(4),
        ..WriterConfig::new(durability)
    }
}

/// Polls the writer's stats until `done` holds; fails after `LONG`.
fn wait_stats(writer: &Writer, what: &str, done: impl Fn(&WriterStats) -> bool) -> WriterStats {
    let deadline = Instant::now() + LONG;
    loop {
        let stats = writer.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: {stats:?}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn an_outage_holds_the_group_and_queues_the_rest_then_stores_everything_in_order() {
    let store = Arc::new(FaultyStore::new(Journal::default(), u64::MAX));
    store.outage(u64::MAX);
    let writer = Writer::spawn(Arc::clone(&store), fast(Durability::Sync)).expect("spawn");

    let first = writer.submit(vec![retain(0)]).expect("submit");
    let during = wait_stats(&writer, "outage seen", |s| s.unavailable && s.retries >= 2);
    assert_eq!(during.outages, 1);
    assert_eq!(during.failures, 0, "a retried failure is not a failure");
    assert!(matches!(
        during.last_error,
        Some(StoreError::Unavailable { .. })
    ));
    // Later batches queue behind the held group; nobody is told "stored".
    let rest: Vec<_> = (1..=20)
        .map(|n| {
            writer
                .submit(vec![retain(n), retain(n + 100)])
                .expect("submit")
        })
        .collect();
    assert!(first.wait_timeout(SHORT).is_none(), "sync ticket waits");
    assert!(rest[19].wait_timeout(SHORT).is_none());
    let queued = writer.stats();
    assert_eq!(queued.queued_deltas, 40);
    assert!(queued.outage_micros > 0);
    assert!(store.inner().topics().is_empty());

    store.end_outage();
    assert!(matches!(first.wait_timeout(LONG), Some(Ok(()))));
    for t in &rest {
        assert!(matches!(t.wait_timeout(LONG), Some(Ok(()))));
    }
    // Exactly once each, in submission order.
    let mut expected = vec!["t/0".to_string()];
    for n in 1..=20 {
        expected.push(format!("t/{n}"));
        expected.push(format!("t/{}", n + 100));
    }
    assert_eq!(store.inner().topics(), expected);
    let after = writer.stats();
    assert!(!after.unavailable);
    assert_eq!(after.outage_micros, 0);
    assert_eq!((after.outages, after.failures), (1, 0));
    assert_eq!(after.retries, store.unavailable_failures());
    assert_eq!(after.queued_deltas, 0);
}

#[test]
fn retries_count_each_failed_attempt_and_outages_each_episode() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new(), u64::MAX));
    let writer = Writer::spawn(Arc::clone(&store), fast(Durability::None)).expect("spawn");

    store.outage(3);
    writer
        .submit(vec![retain(1)])
        .expect("submit")
        .wait()
        .expect("stored after 3 retries");
    let s = writer.stats();
    assert_eq!((s.outages, s.retries, s.failures, s.groups), (1, 3, 0, 1));

    writer
        .submit(vec![retain(2)])
        .expect("submit")
        .wait()
        .expect("no outage");
    store.outage(2);
    writer
        .submit(vec![retain(3)])
        .expect("submit")
        .wait()
        .expect("stored after 2 retries");
    let s = writer.stats();
    assert_eq!((s.outages, s.retries, s.failures, s.groups), (2, 5, 0, 3));
    assert!(!s.unavailable);
    assert_eq!(store.inner().restore().expect("restore").retained.len(), 3);
}

#[test]
fn a_lasting_error_still_fails_its_group_at_once_without_retrying() {
    // The first operation already fails with `Injected`, a lasting error.
    let store = Arc::new(FaultyStore::new(MemoryStore::new(), 0));
    let config = WriterConfig {
        retry_initial: Duration::from_secs(60),
        ..WriterConfig::new(Durability::None)
    };
    let writer = Writer::spawn(Arc::clone(&store), config).expect("spawn");
    let started = Instant::now();
    match writer
        .submit(vec![retain(1)])
        .expect("submit")
        .wait_timeout(LONG)
    {
        Some(Err(StoreError::Injected { op: 1 })) => {}
        other => panic!("expected the injected failure, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no backoff wait"
    );
    let s = writer.stats();
    assert_eq!((s.outages, s.retries, s.failures), (0, 0, 1));
    assert!(!s.unavailable);
    assert_eq!(store.operations(), 1, "tried once");
    assert!(!StoreError::Injected { op: 1 }.is_transient());
}

#[test]
fn close_during_an_endless_outage_fails_the_held_batches_after_the_grace_period() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new(), u64::MAX));
    store.outage(u64::MAX);
    let grace = Duration::from_millis(300);
    let config = WriterConfig {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        close_grace: grace,
        ..WriterConfig::new(Durability::Async {
            fsync_interval: Duration::from_millis(10),
        })
    };
    let writer = Writer::spawn(Arc::clone(&store), config).expect("spawn");
    let tickets: Vec<_> = (0..5)
        .map(|n| writer.submit(vec![retain(n)]).expect("submit"))
        .collect();
    wait_stats(&writer, "outage seen", |s| s.unavailable);

    let started = Instant::now();
    let closed = writer.close();
    let took = started.elapsed();
    assert!(
        matches!(closed, Err(StoreError::Unavailable { .. })),
        "close reports the outage: {closed:?}"
    );
    assert!(
        took >= grace,
        "kept retrying for the grace period ({took:?})"
    );
    assert!(took < LONG, "shutdown is bounded ({took:?})");
    for t in tickets {
        assert!(matches!(
            t.wait_timeout(SHORT),
            Some(Err(StoreError::Unavailable { .. }))
        ));
    }
    assert!(
        store
            .inner()
            .restore()
            .expect("restore")
            .retained
            .is_empty()
    );
}

#[test]
fn close_during_an_outage_that_ends_within_the_grace_stores_everything() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new(), u64::MAX));
    store.outage(u64::MAX);
    let config = WriterConfig {
        close_grace: LONG,
        ..fast(Durability::Sync)
    };
    let writer = Writer::spawn(Arc::clone(&store), config).expect("spawn");
    let tickets: Vec<_> = (0..5)
        .map(|n| writer.submit(vec![retain(n)]).expect("submit"))
        .collect();
    wait_stats(&writer, "outage seen", |s| s.unavailable);

    let closing = thread::spawn(move || writer.close());
    // Retries go on after the close; then the server "comes back".
    let before = store.unavailable_failures();
    let deadline = Instant::now() + LONG;
    while store.unavailable_failures() < before + 3 {
        assert!(Instant::now() < deadline, "no retries after close");
        thread::sleep(Duration::from_millis(2));
    }
    assert!(!closing.is_finished(), "close waits for the outage to end");
    store.end_outage();
    closing.join().expect("close thread").expect("close Ok");
    for t in tickets {
        assert!(matches!(t.wait_timeout(SHORT), Some(Ok(()))));
    }
    assert_eq!(store.inner().restore().expect("restore").retained.len(), 5);
}
