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
///
/// Separately, [`FaultyStore::outage`] makes the next applies fail with the
/// transient [`StoreError::Unavailable`] (as a Redis server that went away
/// would), to exercise the writer's retries. Those failed applies are not
/// counted as operations.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    fail_after: AtomicU64,
    ops: AtomicU64,
    /// Applies still to fail transiently; `u64::MAX`: until `end_outage`.
    outage_left: AtomicU64,
    /// Applies failed transiently so far.
    unavailable: AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// Lets `fail_after` operations through, then fails every one.
    pub fn new(inner: S, fail_after: u64) -> Self {
        Self {
            inner,
            fail_after: AtomicU64::new(fail_after),
            ops: AtomicU64::new(0),
            outage_left: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
        }
    }

    /// The next `applies` applies fail with [`StoreError::Unavailable`]
    /// without reaching the inner store; `u64::MAX` keeps failing until
    /// [`FaultyStore::end_outage`].
    pub fn outage(&self, applies: u64) {
        self.outage_left.store(applies, Ordering::SeqCst);
    }

    /// Ends an outage: applies reach the inner store again.
    pub fn end_outage(&self) {
        self.outage_left.store(0, Ordering::SeqCst);
    }

    /// Applies failed with [`StoreError::Unavailable`] so far.
    pub fn unavailable_failures(&self) -> u64 {
        self.unavailable.load(Ordering::SeqCst)
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

    /// Fails the apply transiently while an outage lasts.
    fn check_outage(&self) -> Result<(), StoreError> {
        let left = self
            .outage_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u64::MAX => Some(u64::MAX),
                n => Some(n - 1),
            });
        if left.is_ok() {
            let n = self.unavailable.fetch_add(1, Ordering::SeqCst) + 1;
            return Err(StoreError::Unavailable {
                backend: "faulty",
                message: format!("injected outage (failed apply {n})"),
            });
        }
        Ok(())
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
        self.check_outage()?;
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
