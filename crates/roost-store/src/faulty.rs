//! A store wrapper that fails on command, to prove failures surface as
//! [`StoreError`] and never as silent loss (redb's fault-injection habit).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::delta::Delta;
use crate::error::StoreError;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// Wraps a store; every operation after the first `fail_after` ones (apply,
/// sync and restore each count as one) fails with [`StoreError::Injected`]
/// without reaching the inner store.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    fail_after: AtomicU64,
    ops: AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// Lets `fail_after` operations through, then fails every one.
    pub fn new(inner: S, fail_after: u64) -> Self {
        Self {
            inner,
            fail_after: AtomicU64::new(fail_after),
            ops: AtomicU64::new(0),
        }
    }

    /// Lets `more` further operations through (counting from now).
    pub fn heal(&self, more: u64) {
        let done = self.ops.load(Ordering::SeqCst);
        self.fail_after
            .store(done.saturating_add(more), Ordering::SeqCst);
    }

    /// Operations attempted so far.
    pub fn operations(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check(&self) -> Result<(), StoreError> {
        let op = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if op > self.fail_after.load(Ordering::SeqCst) {
            return Err(StoreError::Injected { op });
        }
        Ok(())
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn apply(&self, batch: &[Delta]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.apply(batch)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.sync()
    }

    fn restore(&self) -> Result<Snapshot, StoreError> {
        self.check()?;
        self.inner.restore()
    }
}
