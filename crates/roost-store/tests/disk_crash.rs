//! Crash consistency of the disk store under `kill -9`: a child process
//! (this test binary, re-executed) writes batches through a `Sync` writer
//! and prints each acknowledged sequence number; the parent SIGKILLs it at
//! random moments, reopens the store and checks that every acknowledged
//! batch is there, whole, and that the store always opens and restores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use roost_codec::QoS;
use roost_store::disk::DiskStore;
use roost_store::{
    Delta, Durability, InflightStage, SessionRecord, Snapshot, Store, Writer, WriterConfig,
};

/// Set in the child's environment: the data directory to write.
const CHILD_DIR: &str = "ROOST_STORE_CRASH_CHILD_DIR";
const CLIENT: &str = "crasher";
const CYCLES: usize = 24;

fn payload(seq: u64) -> Bytes {
    Bytes::from(seq.to_be_bytes().repeat(16))
}

/// One batch = the message in one keyspace and its inflight state in
/// another, so a torn batch would show as a message without its state.
fn batch(seq: u64) -> Vec<Delta> {
    let mut message = common::bare("crash/t", b"");
    message.payload = payload(seq);
    vec![
        Delta::MessageEnqueue {
            client_id: CLIENT.into(),
            seq,
            message: common::queued(message, QoS::AtLeastOnce, &[]),
        },
        Delta::OutboundStage {
            client_id: CLIENT.into(),
            seq,
            packet_id: common::pid(u16::try_from(seq % 60_000 + 1).expect("fits")),
            stage: InflightStage::Sent,
        },
    ]
}

/// The child: runs only when re-executed by the parent test.
#[test]
fn crash_child_process_entry_point() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return; // a normal test run: nothing to do
    };
    let store = DiskStore::open(&dir).expect("child opens the store");
    let start = store
        .restore()
        .expect("child restores")
        .sessions
        .first()
        .map_or(0, |s| s.next_seq());
    store
        .apply(&[Delta::SessionUpsert {
            client_id: CLIENT.into(),
            record: SessionRecord {
                expiry_interval: u32::MAX,
                disconnected_at: None,
                owner: roost_store::SessionOwner::Anonymous,
            },
            subscriptions: Vec::new(),
        }])
        .expect("session");
    let writer = Writer::spawn(store, WriterConfig::new(Durability::Sync)).expect("writer");
    let mut seq = start;
    loop {
        // Several batches in flight at once, so kills land inside group commits.
        let tickets: Vec<_> = (seq..seq + 8)
            .map(|s| (s, writer.submit(batch(s)).expect("submit")))
            .collect();
        seq += 8;
        for (s, ticket) in tickets {
            ticket.wait().expect("stored");
            println!("ACK {s}");
        }
    }
}

/// Checks the store after a kill; returns the sequence numbers present.
fn verify(dir: &Path, acked: &BTreeSet<u64>, cycle: usize) -> BTreeSet<u64> {
    let store = DiskStore::open(dir)
        .unwrap_or_else(|e| panic!("cycle {cycle}: store does not open after kill: {e}"));
    let snapshot: Snapshot = store
        .restore()
        .unwrap_or_else(|e| panic!("cycle {cycle}: store does not restore after kill: {e}"));
    assert_eq!(snapshot.orphans, 0, "cycle {cycle}: torn batch");
    let session = snapshot
        .sessions
        .iter()
        .find(|s| s.client_id == CLIENT)
        .unwrap_or_else(|| panic!("cycle {cycle}: session lost"));
    let mut present = BTreeSet::new();
    for m in &session.messages {
        assert_eq!(
            m.message.message.payload,
            payload(m.seq),
            "cycle {cycle}: seq {}",
            m.seq
        );
        assert!(
            m.inflight.is_some(),
            "cycle {cycle}: seq {} without its inflight state",
            m.seq
        );
        present.insert(m.seq);
    }
    let lost: Vec<&u64> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "cycle {cycle}: acknowledged but lost: {lost:?}"
    );
    present
}

#[test]
fn every_acknowledged_sync_batch_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 | 1);
    eprintln!("crash test seed {seed}");
    let mut rng = seed;
    let mut acked = BTreeSet::new();
    let started = Instant::now();
    for cycle in 0..CYCLES {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "crash test ran too long"
        );
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_process_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("ACK ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the first acknowledgement, then kill after a random 0-40 ms.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("cycle {cycle}: child acknowledged nothing in 30 s"));
        acked.insert(first);
        if cycle == 0 {
            // While the child holds the directory, this process may not open it.
            match DiskStore::open(dir.path()) {
                Err(roost_store::StoreError::Locked { .. }) => {}
                other => panic!("expected Locked while the child runs, got {other:?}"),
            }
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 40_000));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        acked.extend(rx.try_iter());
        let present = verify(dir.path(), &acked, cycle);
        eprintln!(
            "cycle {cycle}: {} acknowledged, {} present",
            acked.len(),
            present.len()
        );
    }
    assert!(
        acked.len() >= CYCLES,
        "the child acknowledged too little to mean anything"
    );
}
