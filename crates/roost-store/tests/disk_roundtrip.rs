//! The disk backend restores exactly what was applied, across reopen, and
//! refuses with a clear error what it cannot open.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "disk")]

mod common;

use roost_store::disk::{DiskStore, FORMAT_KEY, META_KEYSPACE};
use roost_store::{Delta, FORMAT_VERSION, SessionRecord, Store, StoreError};

#[test]
fn disk_restores_every_delta_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).expect("open");
    common::apply_every_kind(&store);
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn disk_restores_every_delta_kind_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = DiskStore::open(dir.path()).expect("open");
        common::apply_every_kind(&store);
        store.sync().expect("sync");
    }
    let store = DiskStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn disk_restores_after_reopen_without_sync() {
    // apply alone hands the batch to the OS: a clean drop keeps it.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = DiskStore::open(dir.path()).expect("open");
        common::apply_every_kind(&store);
    }
    let store = DiskStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn session_delete_removes_rows_written_earlier_in_the_same_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).expect("open");
    let c = common::id("c");
    store
        .apply(&[
            Delta::SessionUpsert {
                client_id: c.clone(),
                record: SessionRecord {
                    expiry_interval: 5,
                    disconnected_at: None,
                    owner: roost_store::SessionOwner::Anonymous,
                },
                subscriptions: vec![(
                    common::id("f"),
                    common::sub(roost_codec::QoS::AtLeastOnce, None),
                )],
            },
            Delta::MessageEnqueue {
                client_id: c.clone(),
                seq: 4,
                message: common::queued(common::bare("t", b"p"), roost_codec::QoS::AtMostOnce, &[]),
            },
            Delta::SessionDelete { client_id: c },
        ])
        .expect("apply");
    assert_eq!(
        store.restore().expect("restore"),
        roost_store::Snapshot::default()
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_as_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = DiskStore::open(dir.path()).expect("open");
    match DiskStore::open(dir.path()) {
        Err(StoreError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn a_store_of_a_newer_format_is_refused_not_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(DiskStore::open(dir.path()).expect("create"));
    {
        let db = fjall::Database::builder(dir.path()).open().expect("fjall");
        let meta = db
            .keyspace(META_KEYSPACE, fjall::KeyspaceCreateOptions::default)
            .expect("meta");
        meta.insert(FORMAT_KEY, (FORMAT_VERSION + 1).to_be_bytes())
            .expect("write version");
        db.persist(fjall::PersistMode::SyncAll).expect("persist");
    }
    match DiskStore::open(dir.path()) {
        Err(StoreError::UnsupportedFormat { found, supported }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn a_garbled_format_version_is_reported_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(DiskStore::open(dir.path()).expect("create"));
    {
        let db = fjall::Database::builder(dir.path()).open().expect("fjall");
        let meta = db
            .keyspace(META_KEYSPACE, fjall::KeyspaceCreateOptions::default)
            .expect("meta");
        meta.insert(FORMAT_KEY, b"v1?!!".as_slice()).expect("write");
    }
    assert!(matches!(
        DiskStore::open(dir.path()),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_garbled_record_is_reported_corrupt_on_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(DiskStore::open(dir.path()).expect("create"));
    {
        let db = fjall::Database::builder(dir.path()).open().expect("fjall");
        let sessions = db
            .keyspace("sessions", fjall::KeyspaceCreateOptions::default)
            .expect("sessions");
        // Key "\0\x01c" is client "c"; the value is not a SessionRecord.
        sessions
            .insert(
                b"\x00\x01c".as_slice(),
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".as_slice(),
            )
            .expect("write");
    }
    let store = DiskStore::open(dir.path()).expect("open");
    match store.restore() {
        Err(StoreError::Corrupt(what)) => assert!(what.contains("sessions"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_path_that_is_a_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    match DiskStore::open(&file) {
        Err(e @ StoreError::Io { .. }) => {
            assert!(e.to_string().contains("not-a-dir"), "{e}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn data_without_a_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = fjall::Database::builder(dir.path()).open().expect("fjall");
        let retained = db
            .keyspace("retained", fjall::KeyspaceCreateOptions::default)
            .expect("retained");
        retained.insert("t", "x").expect("write");
    }
    assert!(matches!(
        DiskStore::open(dir.path()),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn an_oversized_client_id_is_an_invalid_delta_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).expect("open");
    let long = "x".repeat(70_000);
    let r = store.apply(&[Delta::WillDelete {
        client_id: long.into(),
    }]);
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

#[test]
fn a_key_beyond_fjalls_limit_is_an_invalid_delta_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).expect("open");
    let r = store.apply(&[Delta::SubDelete {
        client_id: "c".repeat(40_000).into(),
        filter: "f".repeat(40_000).into(),
    }]);
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

#[test]
fn the_empty_topic_is_stored_like_any_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DiskStore::open(dir.path()).expect("open");
    let message = common::bare("", b"x");
    store
        .apply(&[Delta::RetainSet {
            topic: common::id(""),
            message: message.clone(),
            stored_at: common::stored_at(0),
        }])
        .expect("apply");
    assert_eq!(
        store.restore().expect("restore").retained,
        vec![(
            common::id(""),
            roost_store::RetainedRecord {
                message,
                stored_at: common::stored_at(0),
            }
        )]
    );
}
