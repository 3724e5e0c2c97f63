//! The disk format is a contract: a store written by each version (committed
//! under `tests/golden/v<N>/`) must restore to the same snapshot in every later
//! version (older ones migrated on open). When the format changes, bump
//! `FORMAT_VERSION`, keep a reader for the old one, and add
//! `tests/golden/v<N+1>/` beside these; never regenerate an existing one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roost_store::disk::DiskStore;
use roost_store::{SessionOwner, Store};

fn ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

fn golden(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{version}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read golden dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Writes `tests/golden/v<FORMAT_VERSION>` once: `cargo test -p roost-store
/// --test disk_golden -- --ignored generate`. The first batch is
/// checkpointed into disk tables, the second stays in the journal, so both
/// are covered.
#[test]
#[ignore = "writes the committed golden files; run only when creating a new format version"]
fn generate_golden() {
    let dir = golden(roost_store::FORMAT_VERSION);
    assert!(
        !dir.exists(),
        "{} exists: golden files are never regenerated",
        dir.display()
    );
    let store = DiskStore::open(&dir).expect("create");
    let mut batches = common::every_kind().into_iter();
    store
        .apply(&batches.next().expect("batch 1"))
        .expect("apply 1");
    store.checkpoint().expect("checkpoint");
    for batch in batches {
        store.apply(&batch).expect("apply");
    }
    store.sync().expect("sync");
    drop(store);
    // fjall preallocates journals (64 MiB of zeros); a journal ends at its
    // last entry either way, so trim the zeros to keep the repository small.
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "jnl") {
            let data = std::fs::read(&path).expect("read journal");
            let end = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            std::fs::write(&path, &data[..end]).expect("trim journal");
        }
    }
}

/// Opens a copy of a golden store (opening writes: lock, recovery, migration).
fn open_copy(version: u32, work: &Path) -> DiskStore {
    copy_dir(&golden(version), work);
    DiskStore::open(work).expect("open golden store")
}

#[test]
fn the_v2_golden_store_restores_to_the_same_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = open_copy(2, work.path());
    assert_eq!(
        store.restore().expect("restore golden v2"),
        common::every_kind_snapshot()
    );
}

/// Format 1 recorded no session owner: after the migration every session is
/// [`SessionOwner::Unknown`] (resumed by nobody). Nor did it record when a
/// retained message was stored: a migrated one counts as stored at the
/// migration (= the restore, as format 1 treated it). Nothing else changed.
#[test]
fn the_v1_golden_store_migrates_to_the_same_snapshot_with_unknown_owners() {
    let work = tempfile::tempdir().expect("tempdir");
    // Whole milliseconds, as stored.
    let before = UNIX_EPOCH + Duration::from_millis(ms(SystemTime::now()));
    let store = open_copy(1, work.path());
    let after = SystemTime::now();
    let mut expected = common::every_kind_snapshot();
    for session in &mut expected.sessions {
        session.record.owner = SessionOwner::Unknown;
    }
    let restored = store.restore().expect("restore golden v1");
    for (topic, record) in &restored.retained {
        assert!(
            (before..=after).contains(&record.stored_at),
            "{topic}: stored at {:?}, migrated between {before:?} and {after:?}",
            record.stored_at
        );
    }
    for (_, record) in &mut expected.retained {
        record.stored_at = restored.retained[0].1.stored_at;
    }
    assert_eq!(restored, expected);
    // The migration is stamped: the store now reads as the current format
    // without migrating again, and new sessions keep their owners.
    drop(store);
    let store = DiskStore::open(work.path()).expect("reopen migrated store");
    assert_eq!(store.restore().expect("restore migrated"), expected);
}
