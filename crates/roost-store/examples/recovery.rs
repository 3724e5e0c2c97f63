//! Measures how long a broker restart takes to get its state back: writes N
//! queued messages (default 1,000,000) over 1,000 sessions to a disk store,
//! closes it, reopens it and restores everything.
//!
//! `cargo run --release -p roost-store --example recovery -- [N] [--checkpoint]`
//!
//! With `--checkpoint` the store writes its tables out before closing
//! (a planned shutdown); without, the reopen replays the journal (a crash).

use std::error::Error;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use roost_codec::QoS;
use roost_store::disk::DiskStore;
use roost_store::{Delta, QueuedMessage, SessionRecord, Store, StoredMessage, StoredProperties};

const SESSIONS: u64 = 1_000;
const BATCH: u64 = 10_000;

fn message(seq: u64) -> QueuedMessage {
    QueuedMessage {
        message: StoredMessage {
            topic: format!("sensors/building-{}/temperature", seq % 97).into(),
            payload: Bytes::from(vec![(seq % 251) as u8; 64]),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: StoredProperties {
                message_expiry_interval: Some(86_400),
                ..StoredProperties::default()
            },
            expires_at: Some(SystemTime::now() + Duration::from_secs(86_400)),
            publisher: Some("publisher-1".into()),
        },
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: vec![1],
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let checkpoint = std::env::args().any(|a| a == "--checkpoint");
    let dir = tempfile::tempdir()?;

    let started = Instant::now();
    {
        let store = DiskStore::open(dir.path())?;
        let sessions: Vec<Delta> = (0..SESSIONS)
            .map(|s| Delta::SessionUpsert {
                client_id: format!("client-{s:05}").into(),
                record: SessionRecord {
                    expiry_interval: 86_400,
                    disconnected_at: Some(SystemTime::now()),
                    owner: roost_store::SessionOwner::Anonymous,
                },
                subscriptions: vec![("sensors/#".into(), roost_store_sub())],
            })
            .collect();
        store.apply(&sessions)?;
        let mut seq = 0;
        while seq < count {
            let end = (seq + BATCH).min(count);
            let batch: Vec<Delta> = (seq..end)
                .map(|n| Delta::MessageEnqueue {
                    client_id: format!("client-{:05}", n % SESSIONS).into(),
                    seq: n / SESSIONS,
                    message: message(n),
                })
                .collect();
            store.apply(&batch)?;
            seq = end;
        }
        store.sync()?;
        if checkpoint {
            store.checkpoint()?;
        }
    }
    let written = started.elapsed();
    let size = dir_size(dir.path())?;

    let t0 = Instant::now();
    let store = DiskStore::open(dir.path())?;
    let opened = t0.elapsed();
    let t1 = Instant::now();
    let snapshot = store.restore()?;
    let restored = t1.elapsed();
    let messages: usize = snapshot.sessions.iter().map(|s| s.messages.len()).sum();
    if messages as u64 != count {
        return Err(format!("restored {messages} messages, wrote {count}").into());
    }
    println!(
        "{count} messages / {} sessions ({}): write {:.2?}, on disk {:.1} MiB, \
         reopen {:.2?}, restore {:.2?}, total recovery {:.2?}",
        snapshot.sessions.len(),
        if checkpoint {
            "checkpointed"
        } else {
            "journal replay"
        },
        written,
        size as f64 / 1_048_576.0,
        opened,
        restored,
        opened + restored,
    );
    Ok(())
}

fn roost_store_sub() -> roost_store::SubscriptionRecord {
    roost_store::SubscriptionRecord {
        options: roost_codec::SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..roost_codec::SubscriptionOptions::default()
        },
        identifier: Some(1),
    }
}

fn dir_size(path: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            // Allocated size: journals are preallocated sparse files.
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    Ok(total)
}
