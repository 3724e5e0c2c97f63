//! The embedded disk backend: fjall (an LSM tree with a write-ahead journal)
//! under a data directory. One keyspace per kind of row (see `docs/persistence.md` for
//! the key layout), values are postcard-encoded records, and the `meta`
//! keyspace holds [`crate::FORMAT_VERSION`].
//!
//! A batch is one fjall write batch: atomic across keyspaces, written to the
//! journal and handed to the OS before `apply` returns (survives `kill -9`);
//! [`Store::sync`] fsyncs the journal (survives power loss).
//!
//! Only one process may open a directory: fjall holds a lock file, and a
//! second open fails with [`StoreError::Locked`].

mod batch;
mod format;
mod inflight;
mod journal_sync;
pub(crate) mod keys;
mod keyspaces;
mod load;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fjall::Database;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::snapshot::Snapshot;
use crate::store::Store;
use batch::Overlay;
pub use format::{FORMAT_KEY, META_KEYSPACE};
use inflight::InflightKeys;
use journal_sync::JournalSync;
use keyspaces::Keyspaces;

/// The fjall-backed store.
pub struct DiskStore {
    db: Database,
    keyspaces: Keyspaces,
    path: PathBuf,
    /// Serialises applies: a batch reads stored keys (range deletes, the
    /// standalone inflight rows it holds) and must not interleave with
    /// another batch.
    apply_lock: Mutex<InflightKeys>,
    /// fdatasync of the journal without fjall's journal lock, so a sync
    /// does not hold up a concurrent apply (`journal_sync.rs`).
    journal: JournalSync,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DiskStore {
    /// Opens the store in `dir`, creating the directory and an empty store
    /// when missing. Fails with a clear error when another process holds
    /// it, when it cannot be read, or when it holds another format version.
    pub fn open(dir: impl AsRef<Path>) -> Result<DiskStore, StoreError> {
        let path = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| {
            StoreError::io(format!("creating data directory {}", path.display()), e)
        })?;
        let db = Database::builder(&path)
            .open()
            .map_err(|e| fjall_error(e, &path, "opening the store"))?;
        let keyspaces = Keyspaces::open(&db, &path)?;
        format::check_or_init(&db, &keyspaces, &path)?;
        let inflight = InflightKeys::load(&keyspaces, &path)?;
        Ok(DiskStore {
            db,
            keyspaces,
            journal: JournalSync::new(&path),
            path,
            apply_lock: Mutex::new(inflight),
        })
    }

    /// Writes every in-memory table out to disk tables and waits, so the
    /// journal no longer has to be replayed on the next open (shorter
    /// recovery; call before a planned shutdown or a backup).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let _serial = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for keyspace in self.keyspaces.all() {
            keyspace
                .rotate_memtable_and_wait()
                .map_err(|e| fjall_error(e, &self.path, "writing tables"))?;
        }
        self.sync()
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for DiskStore {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        let mut inflight = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut overlay = Overlay::new(&self.keyspaces, &self.path, &inflight);
        for delta in batch {
            overlay.add(delta)?;
        }
        let changes = overlay.commit(&self.db)?;
        inflight.update(changes);
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        // fdatasync, not fsync: everything a restart needs is the journal's
        // content. fjall sizes a journal once when it creates it (and
        // fsyncs it then), so later writes change no metadata that reading
        // the data back needs, and fdatasync (POSIX: the data plus the
        // metadata needed to retrieve it) is as durable for it as fsync,
        // without writing the inode's times on every group.
        //
        // Through a descriptor of our own (`journal_sync.rs`): the writer
        // applies the next group meanwhile (`writer/pipeline.rs`).
        self.journal.sync(&self.db)
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        load::load(&self.db, &self.keyspaces, &self.path).map(|s| s.into_snapshot())
    }
}

/// Maps a fjall error to a [`StoreError`] that names the directory.
pub(crate) fn fjall_error(e: fjall::Error, path: &Path, doing: &str) -> StoreError {
    match e {
        fjall::Error::Locked => StoreError::Locked {
            path: path.to_path_buf(),
        },
        fjall::Error::Io(io) => StoreError::io(format!("{doing} in {}", path.display()), io),
        fjall::Error::InvalidVersion(v) => StoreError::Backend {
            backend: "disk",
            message: format!(
                "{doing} in {}: fjall on-disk version {v:?} is not readable by this build",
                path.display()
            ),
        },
        other => StoreError::Backend {
            backend: "disk",
            message: format!("{doing} in {}: {other}", path.display()),
        },
    }
}
