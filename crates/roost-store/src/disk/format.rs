//! The format version kept in the `meta` keyspace: written when a store is
//! created, checked on every open.

use std::path::Path;

use fjall::{Database, PersistMode};

use crate::FORMAT_VERSION;
use crate::disk::fjall_error;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;

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
