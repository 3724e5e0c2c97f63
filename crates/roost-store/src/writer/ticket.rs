//! The receipt of one submitted batch: wait for it (blocking or `.await`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::StoreError;

#[derive(Debug, Default)]
struct Slot {
    result: Option<Result<(), StoreError>>,
    waker: Option<Waker>,
    /// A thread waits on the condvar ([`Ticket::wait`]). Only then does
    /// completing notify it: a condvar notify is a futex syscall even with
    /// nobody waiting, and the writer completes a ticket per batch (most
    /// are `.await`ed, woken through `waker`).
    blocking: bool,
}

/// Shared between the writer thread (completes) and the [`CommitTicket`] (waits).
#[derive(Debug, Default)]
pub(crate) struct TicketCell {
    slot: Mutex<Slot>,
    done: Condvar,
}

impl TicketCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets the outcome (first call wins) and wakes the waiter.
    pub(crate) fn complete(&self, result: Result<(), StoreError>) {
        let waker = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.result.is_some() {
                return;
            }
            slot.result = Some(result);
            (slot.waker.take(), slot.blocking)
        };
        let (waker, blocking) = waker;
        if blocking {
            self.done.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Completes when the batch reached the durability the writer promises:
/// applied (durability `None`, `Async`) or applied and fsynced (`Sync`).
/// Blocking ([`CommitTicket::wait`]) or async (`.await`), on any runtime.
#[derive(Debug)]
#[must_use = "a ticket says when (and whether) the batch was stored"]
pub struct CommitTicket {
    cell: Arc<TicketCell>,
}

impl CommitTicket {
    pub(crate) fn new(cell: Arc<TicketCell>) -> Self {
        Self { cell }
    }

    /// Blocks until the batch is handled; returns the store's verdict.
    pub fn wait(self) -> Result<(), StoreError> {
        let mut slot = self
            .cell
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = slot.result.take() {
                return r;
            }
            slot.blocking = true;
            slot = self
                .cell
                .done
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Like [`CommitTicket::wait`], giving up after `timeout` (`None`; the ticket
    /// stays valid and can be waited on again).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), StoreError>> {
        let deadline = Instant::now() + timeout;
        let mut slot = self
            .cell
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(r) = slot.result.take() {
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            slot.blocking = true;
            slot = self
                .cell
                .done
                .wait_timeout(slot, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Future for CommitTicket {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self
            .cell
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
