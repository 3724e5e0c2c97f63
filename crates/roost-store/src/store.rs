//! The trait every backend implements.

use std::sync::Arc;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::record::WillRecord;
use crate::snapshot::{SessionSnapshot, Snapshot};

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

    /// Reads one client's session and will, for a store shared by several
    /// brokers (the Redis store in cluster mode: a client resumes on the node
    /// it reconnects to). Other stores hold only their own broker's
    /// sessions, all given by [`Store::restore`]: they answer
    /// [`StoreError::Invalid`].
    fn load_session(&self, client_id: &str) -> Result<LoadedSession, StoreError> {
        let _ = client_id;
        Err(StoreError::Invalid(
            "this store does not load single sessions".into(),
        ))
    }
}

/// One client's stored session and will (each `None` when absent).
pub type LoadedSession = (Option<SessionSnapshot>, Option<WillRecord>);

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

    fn load_session(&self, client_id: &str) -> Result<LoadedSession, StoreError> {
        (**self).load_session(client_id)
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

    fn load_session(&self, client_id: &str) -> Result<LoadedSession, StoreError> {
        (**self).load_session(client_id)
    }
}
