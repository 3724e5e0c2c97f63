//! The one error type of every backend and of the writer.

use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong while storing or restoring. `Clone`, so the writer can
/// hand the same failure to every ticket of a group commit.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system I/O error, with what the store was doing.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing (e.g. "opening data directory /var/lib/roost").
        context: String,
        /// The underlying error.
        source: Arc<std::io::Error>,
    },
    /// Another process (or another store in this process) holds the data
    /// directory. Two brokers must never write one directory.
    #[error("data directory {path} is locked by another process (another broker running on it?)")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// Another broker keeps renewing the Redis key prefix's lease. Two
    /// brokers must never write one prefix (until the cluster mode).
    #[error(
        "redis key prefix {prefix:?} is in use by another broker (its lease keeps being renewed)"
    )]
    PrefixInUse {
        /// The key prefix.
        prefix: String,
    },
    /// The stored data uses a format this build does not read (written by a
    /// newer Roost, or by an old one whose format is no longer supported).
    #[error(
        "stored data has format version {found}; this build reads version {supported} (written by a newer Roost?)"
    )]
    UnsupportedFormat {
        /// The version found in the store.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// Stored bytes do not decode: the store is damaged or not a Roost store.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A delta this backend cannot store (e.g. a client id longer than 65,535 bytes).
    #[error("invalid delta: {0}")]
    Invalid(String),
    /// The backend reported an error (fjall, Redis); the text is its message.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend ("disk", "redis").
        backend: &'static str,
        /// The backend's own message.
        message: String,
    },
    /// The backend cannot be reached or cannot take writes right now
    /// (connection refused, reset or timed out; Redis `LOADING`, `BUSY`,
    /// `TRYAGAIN`, `MASTERDOWN`, `READONLY`, `CLUSTERDOWN`). The same
    /// operation may succeed later: the [`crate::Writer`] retries it.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend ("redis").
        backend: &'static str,
        /// The backend's own message.
        message: String,
    },
    /// A failure injected by [`crate::FaultyStore`] (tests).
    #[error("injected failure at operation {op}")]
    Injected {
        /// The 1-based operation count that failed.
        op: u64,
    },
    /// The writer was shut down (or its thread ended) before the batch was handled.
    #[error("store writer is closed")]
    Closed,
}

impl StoreError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// Whether retrying the same operation later may succeed: only
    /// [`StoreError::Unavailable`]. Everything else (a bad delta, corrupt or
    /// foreign data, a disk I/O error) fails the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
