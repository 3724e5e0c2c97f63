//! Property: random delta sequences, applied in random batches, restore to
//! what an independent model says, on the disk store (also after reopen)
//! and on the memory store. A faulty wrapper failing mid-way leaves exactly
//! the batches before the failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::model::Model;
use common::strategy::batches;
use proptest::prelude::*;
use roost_store::disk::DiskStore;
use roost_store::{FaultyStore, MemoryStore, Store, StoreError};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn disk_and_memory_restore_what_the_model_holds(batches in batches()) {
        let mut model = Model::default();
        let memory = MemoryStore::new();
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let disk = DiskStore::open(dir.path()).expect("open");
            for batch in &batches {
                batch.iter().for_each(|d| model.apply(d));
                disk.apply(batch).expect("disk apply");
                memory.apply(batch).expect("memory apply");
                prop_assert_eq!(disk.restore().expect("disk restore"), model.snapshot());
            }
            prop_assert_eq!(memory.restore().expect("memory restore"), model.snapshot());
        }
        let reopened = DiskStore::open(dir.path()).expect("reopen");
        prop_assert_eq!(reopened.restore().expect("restore after reopen"), model.snapshot());
    }

    #[test]
    fn a_failing_store_keeps_exactly_the_batches_before_the_failure(
        batches in batches(),
        fail_after in 0u64..6,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FaultyStore::new(DiskStore::open(dir.path()).expect("open"), fail_after);
        let mut model = Model::default();
        for (n, batch) in batches.iter().enumerate() {
            match store.apply(batch) {
                Ok(()) => batch.iter().for_each(|d| model.apply(d)),
                Err(StoreError::Injected { op }) => prop_assert_eq!(op, n as u64 + 1),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
        prop_assert_eq!(store.inner().restore().expect("restore"), model.snapshot());
    }
}
