//! The memory backend restores exactly what was applied, for every delta kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use roost_store::{MemoryStore, Store};

#[test]
fn memory_restores_every_delta_kind() {
    let store = MemoryStore::new();
    common::apply_every_kind(&store);
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn memory_agrees_with_the_model_on_every_delta_kind() {
    let mut model = common::model::Model::default();
    for batch in common::every_kind() {
        batch.iter().for_each(|d| model.apply(d));
    }
    assert_eq!(model.snapshot(), common::every_kind_snapshot());
}

#[test]
fn an_empty_store_restores_an_empty_snapshot() {
    let snapshot = MemoryStore::new().restore().expect("restore");
    assert_eq!(snapshot, roost_store::Snapshot::default());
}
