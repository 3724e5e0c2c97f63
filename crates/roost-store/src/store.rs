//! The trait every backend implements.

use std::sync::Arc;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::snapshot::Snapshot;

/// A place the broker's persistent state is written to and restored from.
///
/// The trait is synchronous on purpose: the [`crate::Writer`] calls it from
/// its own thread, and a broker that calls it directly from async code wraps
/// the call in `spawn_blocking`. Backends that talk to the network (Redis)
/// block the calling thread.
pub trait Store: Send + Sync {
    /// Applies `batch` in order. Atomic per batch where the backend allows
    /// it (memory, disk, Redis MULTI/EXEC): after a crash either the whole
    /// batch is there or none of it. After `Ok` the batch survives the broker
    /// process being killed (for disk: it is in the OS page cache); it
    /// survives power loss only after [`Store::sync`].
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError>;

    /// Makes everything applied so far durable (fsync for disk).
    fn sync(&self) -> Result<(), StoreError>;

    /// Reads the whole stored state.
    fn restore(&self) -> Result<Snapshot, StoreError>;
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        (**self).apply(batch)
    }

    fn sync(&self) -> Result<(), StoreError> {
        (**self).sync()
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        (**self).restore()
    }
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        (**self).apply(batch)
    }

    fn sync(&self) -> Result<(), StoreError> {
        (**self).sync()
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        (**self).restore()
    }
}
