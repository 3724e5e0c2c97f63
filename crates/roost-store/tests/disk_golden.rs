//! The disk format is a contract: a store written by this version (committed
//! under `tests/golden/v1/`) must restore to the same snapshot in every later
//! version. When the format changes, bump `FORMAT_VERSION`, keep a reader
//! for v1, and add `tests/golden/v2/` beside this one; never regenerate v1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use roost_store::Store;
use roost_store::disk::DiskStore;

fn golden_v1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1")
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

/// Writes `tests/golden/v1` once: `cargo test -p roost-store --test
/// disk_golden -- --ignored generate`. The first batch is checkpointed into
/// disk tables, the second stays in the journal, so both are covered.
#[test]
#[ignore = "writes the committed golden files; run only when creating a new format version"]
fn generate_golden_v1() {
    let dir = golden_v1();
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

#[test]
fn the_v1_golden_store_restores_to_the_same_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    // Opening writes (lock, recovery): work on a copy, keep the golden files pristine.
    copy_dir(&golden_v1(), work.path());
    let store = DiskStore::open(work.path()).expect("open golden v1");
    assert_eq!(
        store.restore().expect("restore golden v1"),
        common::every_kind_snapshot()
    );
}
