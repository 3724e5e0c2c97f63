//! Batch throughput through the [`Writer`] for memory, disk `Sync`, disk
//! `Async` and disk `None`.
//!
//! `cargo run --release -p roost-store --example throughput -- [batches per thread]`
//!
//! Closed loop: 8 threads, each submitting a one-delta batch (a queued
//! 100-byte QoS 1 message) and waiting for its ticket before the next, as a
//! publisher waiting for its PUBACK does. Open loop: one thread submits
//! every batch, then waits for the last ticket (raw write rate).

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use roost_codec::QoS;
use roost_store::disk::DiskStore;
use roost_store::{
    Delta, Durability, MemoryStore, QueuedMessage, Store, StoredMessage, StoredProperties, Writer,
    WriterConfig,
};

const THREADS: u64 = 8;

fn delta(thread: u64, seq: u64) -> Delta {
    Delta::MessageEnqueue {
        client_id: format!("client-{thread}").into(),
        seq,
        message: QueuedMessage {
            message: StoredMessage {
                topic: "bench/topic".into(),
                payload: Bytes::from_static(&[7; 100]),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: StoredProperties::default(),
                expires_at: None,
                publisher: None,
            },
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
        },
    }
}

fn closed_loop(writer: &Arc<Writer>, per_thread: u64) -> Result<Duration, Box<dyn Error>> {
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let writer = Arc::clone(writer);
            std::thread::spawn(move || -> Result<(), roost_store::StoreError> {
                for seq in 0..per_thread {
                    writer.submit(vec![delta(t, seq)])?.wait()?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "submitter panicked")??;
    }
    Ok(started.elapsed())
}

fn open_loop(writer: &Writer, total: u64) -> Result<Duration, Box<dyn Error>> {
    let started = Instant::now();
    let mut last = None;
    for seq in 0..total {
        last = Some(writer.submit(vec![delta(99, seq)])?);
    }
    if let Some(t) = last {
        t.wait()?;
    }
    writer.flush()?;
    Ok(started.elapsed())
}

fn run<S: Store + 'static>(
    name: &str,
    make: impl Fn() -> Result<S, Box<dyn Error>>,
    durability: Durability,
    per_thread: u64,
) -> Result<(), Box<dyn Error>> {
    let writer = Arc::new(Writer::spawn(make()?, WriterConfig::new(durability))?);
    let closed = closed_loop(&writer, per_thread)?;
    let stats = writer.stats();
    let total = THREADS * per_thread;
    let closed_rate = total as f64 / closed.as_secs_f64();
    let per_group = stats.batches_applied as f64 / stats.groups.max(1) as f64;
    let syncs = stats.syncs;
    drop(writer);

    let writer = Writer::spawn(make()?, WriterConfig::new(durability))?;
    let open = open_loop(&writer, total)?;
    let open_stats = writer.stats();
    println!(
        "{name:<22} closed loop: {closed_rate:>9.0} batches/s ({:.1} µs each, {per_group:.1} batches/commit, {syncs} fsyncs) | \
         open loop: {:>9.0} batches/s ({:.1} batches/commit)",
        closed.as_secs_f64() * 1e6 * THREADS as f64 / total as f64,
        total as f64 / open.as_secs_f64(),
        open_stats.batches_applied as f64 / open_stats.groups.max(1) as f64,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let per_thread: u64 = std::env::args().nth(1).map_or(Ok(5_000), |a| a.parse())?;
    let root = tempfile::tempdir()?;
    let counter = std::sync::atomic::AtomicU64::new(0);
    let disk = || -> Result<DiskStore, Box<dyn Error>> {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(DiskStore::open(root.path().join(n.to_string()))?)
    };
    run(
        "memory",
        || Ok(MemoryStore::new()),
        Durability::Sync,
        per_thread,
    )?;
    run("disk sync", disk, Durability::Sync, per_thread)?;
    run(
        "disk async (10 ms)",
        disk,
        Durability::Async {
            fsync_interval: Duration::from_millis(10),
        },
        per_thread,
    )?;
    run("disk none", disk, Durability::None, per_thread)?;
    Ok(())
}
