//! The in-process backend: ordered maps behind a mutex. Lost on restart;
//! the reference semantics for the other backends.

use std::sync::{Mutex, PoisonError};

use crate::delta::Delta;
use crate::error::StoreError;
use crate::snapshot::Snapshot;
use crate::state::StoreState;
use crate::store::Store;

/// Keeps everything in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        // Applying to maps cannot fail, so in-place application is already
        // all-or-nothing. It does not panic either; should a panic elsewhere
        // poison the lock, the maps are still whole, so take the guard back.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for delta in batch {
            state.apply(delta);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(state.clone().into_snapshot())
    }
}
