//! The format version kept in the `meta` keyspace: written when a store is
//! created, checked on every open; an older readable format is migrated
//! in place (one atomic batch: a crash leaves the old format whole).

use std::path::Path;

use fjall::{Database, PersistMode};

use crate::disk::fjall_error;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;
use crate::migrate;
use crate::{FORMAT_VERSION, OLDEST_READABLE_FORMAT};

/// The `meta` key holding the format version (`u32` big-endian).
pub const FORMAT_KEY: &str = "format_version";

/// The keyspace holding [`FORMAT_KEY`].
pub const META_KEYSPACE: &str = "meta";

/// Refuses a store of another format; stamps a new, empty one.
pub(crate) fn check_or_init(db: &Database, ks: &Keyspaces, path: &Path) -> Result<(), StoreError> {
    let stored = ks
        .meta
        .get(FORMAT_KEY)
        .map_err(|e| fjall_error(e, path, "reading the format version"))?;
    match stored {
        Some(bytes) => {
            let raw = <[u8; 4]>::try_from(&bytes[..]).map_err(|_| {
                StoreError::Corrupt(format!(
                    "format version in {} is {} bytes, not 4",
                    path.display(),
                    bytes.len()
                ))
            })?;
            let found = u32::from_be_bytes(raw);
            if (OLDEST_READABLE_FORMAT..FORMAT_VERSION).contains(&found) {
                return migrate(db, ks, path, found);
            }
            if found != FORMAT_VERSION {
                return Err(StoreError::UnsupportedFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        None => {
            for k in Ks::ALL {
                let empty = ks
                    .get(k)
                    .is_empty()
                    .map_err(|e| fjall_error(e, path, "checking a new store is empty"))?;
                if !empty {
                    return Err(StoreError::Corrupt(format!(
                        "{} holds data ({}) but no format version",
                        path.display(),
                        k.name()
                    )));
                }
            }
            ks.meta
                .insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes())
                .and_then(|()| db.persist(PersistMode::SyncAll))
                .map_err(|e| fjall_error(e, path, "writing the format version"))
        }
    }
}

/// Rewrites every record whose encoding changed since `from` and stamps the
/// current version, in one atomic batch, then fsyncs.
fn migrate(db: &Database, ks: &Keyspaces, path: &Path, from: u32) -> Result<(), StoreError> {
    let mut batch = db.batch();
    let mut sessions = 0usize;
    // 1 → 2: session records gained their owner.
    let sessions_ks = ks.get(Ks::Sessions);
    for guard in sessions_ks.iter() {
        let (key, value) = guard
            .into_inner()
            .map_err(|e| fjall_error(e, path, "reading sessions to migrate"))?;
        batch.insert(sessions_ks, key, migrate::session_record_v1_to_v2(&value)?);
        sessions += 1;
    }
    // 1 → 2: retained messages gained their store time (the migration's).
    let now = std::time::SystemTime::now();
    let mut retained = 0usize;
    let retained_ks = ks.get(Ks::Retained);
    for guard in retained_ks.iter() {
        let (key, value) = guard
            .into_inner()
            .map_err(|e| fjall_error(e, path, "reading retained messages to migrate"))?;
        batch.insert(
            retained_ks,
            key,
            migrate::retained_record_v1_to_v2(&value, now)?,
        );
        retained += 1;
    }
    batch.insert(&ks.meta, FORMAT_KEY, FORMAT_VERSION.to_be_bytes());
    batch
        .commit()
        .and_then(|()| db.persist(PersistMode::SyncAll))
        .map_err(|e| fjall_error(e, path, "migrating the store"))?;
    tracing::warn!(
        path = %path.display(),
        from,
        to = FORMAT_VERSION,
        sessions,
        retained,
        "store migrated; sessions it held have no recorded owner and will not be resumed"
    );
    Ok(())
}
