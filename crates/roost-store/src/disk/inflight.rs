//! The keys of the standalone `inflight` rows the disk store holds, kept in
//! memory so that a batch knows without reading whether such a row exists:
//! an ack then writes no tombstone for a row that is not there (most
//! messages have their inflight state folded into their `messages` row, see
//! `batch.rs`). Loaded from the keyspace at open; updated after each commit.
//! Its size is bounded by the messages in flight whose stage was written
//! apart from their enqueue.

use std::collections::BTreeSet;
use std::path::Path;

use crate::disk::fjall_error;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;

/// The stored standalone inflight keys.
#[derive(Debug, Default)]
pub(crate) struct InflightKeys(BTreeSet<Vec<u8>>);

impl InflightKeys {
    /// Reads every key of the `inflight` keyspace.
    pub(crate) fn load(ks: &Keyspaces, path: &Path) -> Result<Self, StoreError> {
        let mut keys = BTreeSet::new();
        for guard in ks.get(Ks::Inflight).iter() {
            let key = guard
                .key()
                .map_err(|e| fjall_error(e, path, "reading inflight keys"))?;
            keys.insert(key.to_vec());
        }
        Ok(Self(keys))
    }

    /// Whether a standalone row of `key` is stored.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.0.contains(key)
    }

    /// Records what a committed batch did to the keyspace: `true` = put.
    pub(crate) fn update(&mut self, changes: Vec<(Vec<u8>, bool)>) {
        for (key, put) in changes {
            if put {
                self.0.insert(key);
            } else {
                self.0.remove(&key);
            }
        }
    }

    /// How many there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
