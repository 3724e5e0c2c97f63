//! fdatasync of fjall's active journal through a file descriptor of our own.
//!
//! fjall's `Database::persist` holds the journal lock through the
//! fdatasync, so every batch commit waits for a sync in progress: with it,
//! the writer could not apply the next group while the previous one is
//! fsynced (`writer/pipeline.rs`). Syncing the same file through another
//! descriptor takes no fjall lock. Why that is as durable:
//!
//! - a batch commit (`PersistMode::Buffer`) writes the batch to the active
//!   journal and hands it to the OS before it returns, so an fdatasync of
//!   that file, through any descriptor, begun after the commit returned,
//!   makes it durable;
//! - journals are `<id>.jnl` in the data directory, the active one has the
//!   highest id, and fjall fsyncs a journal (`SyncAll`) under its lock before
//!   it creates the next one. So a batch committed before the directory is
//!   listed is either in the journal found then, or in an older journal that
//!   is durable already;
//! - a batch being committed meanwhile may reach the disk in part; fjall's
//!   recovery drops a torn trailing batch (checksums), as after any crash.
//!
//! These rest on fjall's layout (checked by this module's tests against the
//! fjall in Cargo.lock). When no journal is found, or it keeps vanishing
//! (rotated and removed while listed), the sync falls back to
//! `Database::persist`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fjall::{Database, PersistMode};

use crate::disk::fjall_error;
use crate::error::StoreError;

/// The active journal's id and a descriptor of it, cached between syncs.
#[derive(Debug)]
pub(crate) struct JournalSync {
    dir: PathBuf,
    open: Mutex<Option<(u64, File)>>,
}

impl JournalSync {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            open: Mutex::new(None),
        }
    }

    /// Makes every batch committed before the call durable.
    pub(crate) fn sync(&self, db: &Database) -> Result<(), StoreError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // A journal listed but gone before it is opened was rotated (so
        // fsynced) and removed: list again.
        for _ in 0..3 {
            let id = match active_journal(&self.dir) {
                Ok(Some(id)) => id,
                Ok(None) => break,
                Err(e) => return Err(self.io_error("listing the journals", e)),
            };
            if open.as_ref().map(|(open_id, _)| *open_id) != Some(id) {
                match File::open(journal_path(&self.dir, id)) {
                    Ok(file) => *open = Some((id, file)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io_error("opening the journal", e)),
                }
            }
            if let Some((_, file)) = open.as_ref() {
                return file
                    .sync_data()
                    .map_err(|e| self.io_error("fsyncing the journal", e));
            }
        }
        *open = None;
        db.persist(PersistMode::SyncData)
            .map_err(|e| fjall_error(e, &self.dir, "fsyncing the journal"))
    }

    fn io_error(&self, doing: &str, e: io::Error) -> StoreError {
        StoreError::io(format!("{doing} in {}", self.dir.display()), e)
    }
}

fn journal_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.jnl"))
}

/// The highest `<id>.jnl` in `dir`, fjall's active journal.
fn active_journal(dir: &Path) -> io::Result<Option<u64>> {
    let mut highest = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        highest = highest.max(Some(id));
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::delta::Delta;
    use crate::disk::DiskStore;
    use crate::store::Store;

    /// A retained message whose payload is 512 bytes of `mark`.
    fn retain(n: u64, mark: u8) -> Delta {
        Delta::RetainSet {
            topic: format!("t/{n}").into(),
            message: crate::record::StoredMessage {
                topic: format!("t/{n}").into(),
                payload: bytes::Bytes::from(vec![mark; 512]),
                qos: roost_codec::QoS::AtLeastOnce,
                retain: true,
                properties: crate::record::StoredProperties::default(),
                expires_at: None,
                publisher: None,
            },
            stored_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(n),
        }
    }

    fn holds(dir: &Path, id: u64, mark: u8) -> bool {
        let bytes = std::fs::read(journal_path(dir, id)).unwrap();
        bytes.windows(512).any(|w| w.iter().all(|b| *b == mark))
    }

    /// The layout this module relies on: a committed batch is in the
    /// highest-numbered `.jnl` file of the data directory (fjall
    /// preallocates journals, so it is found by content, not by length),
    /// which is the file `sync` opens; also after a checkpoint.
    #[test]
    fn batches_go_to_the_highest_numbered_journal_which_sync_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for round in 0..3u8 {
            let mark = 0xA0 + round;
            store.apply(&[retain(u64::from(round), mark)]).unwrap();
            let id = active_journal(dir.path()).unwrap().expect("a journal");
            assert!(holds(dir.path(), id, mark), "round {round}: journal {id}");
            store.sync().unwrap();
            let synced = store.journal.open.lock().unwrap().as_ref().map(|o| o.0);
            assert_eq!(synced, Some(id), "round {round}");
            ids.push(id);
            store.checkpoint().unwrap();
        }
        eprintln!("active journals per round: {ids:?}");
        drop(store);
        let store = DiskStore::open(dir.path()).unwrap();
        assert_eq!(store.restore().unwrap().retained.len(), 3);
    }
}
