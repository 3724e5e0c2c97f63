//! The bounded hand-off between submitters and the writer thread, counted in
//! deltas. A group is everything waiting, up to a size: one apply, one fsync.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::delta::Delta;
use crate::writer::ticket::TicketCell;

/// One submitted batch waiting for the writer.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) deltas: Vec<Delta>,
    pub(crate) ticket: Arc<TicketCell>,
    /// A flush barrier: sync after this group whatever the durability.
    pub(crate) force_sync: bool,
}

impl Pending {
    /// Room it takes in the queue: its deltas, and at least one (a barrier).
    fn weight(&self) -> usize {
        self.deltas.len().max(1)
    }
}

/// Why a batch did not enter the queue.
#[derive(Debug)]
pub(crate) enum PushError {
    /// Full and the caller would not wait.
    Full(Pending),
    /// The writer is shut down.
    Closed(Pending),
}

/// What the writer thread got.
#[derive(Debug)]
pub(crate) enum Popped {
    /// One or more batches, oldest first.
    Group(Vec<Pending>),
    /// Nothing arrived before the timeout.
    Timeout,
    /// Closed and drained.
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Pending>,
    weight: usize,
    closed: bool,
    /// Submitters blocked waiting for room.
    waiting: usize,
    /// The writer thread is blocked waiting for a batch. Pushes signal only
    /// then: a condvar signal is a futex syscall even with nobody waiting,
    /// and a busy writer would pay one per submitted batch for nothing.
    writer_waiting: bool,
}

/// The queue. `capacity` bounds the deltas waiting; a single batch larger
/// than the capacity is admitted only into an empty queue (else it would
/// never fit).
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

/// How long a submitter waited for room, when it had to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stall(pub(crate) Duration);

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fits(&self, inner: &Inner, weight: usize) -> bool {
        inner.items.is_empty() || inner.weight + weight <= self.capacity
    }

    /// Adds a batch. With `block`, waits for room (returning how long it
    /// waited, if it did); without, fails with `Full`.
    pub(crate) fn push(&self, p: Pending, block: bool) -> Result<Option<Stall>, PushError> {
        let mut inner = self.lock();
        let weight = p.weight();
        let mut stalled_since = None;
        loop {
            if inner.closed {
                return Err(PushError::Closed(p));
            }
            if self.fits(&inner, weight) {
                break;
            }
            if !block {
                return Err(PushError::Full(p));
            }
            stalled_since.get_or_insert_with(Instant::now);
            inner.waiting += 1;
            inner = self
                .not_full
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
            inner.waiting -= 1;
        }
        inner.weight += weight;
        inner.items.push_back(p);
        let wake = inner.writer_waiting;
        drop(inner);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(stalled_since.map(|t| Stall(t.elapsed())))
    }

    /// Takes batches until `max_weight` deltas are taken (at least one
    /// batch). Waits up to `timeout` (`None` = until something arrives).
    pub(crate) fn pop_group(&self, max_weight: usize, timeout: Option<Duration>) -> Popped {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = self.lock();
        while inner.items.is_empty() {
            if inner.closed {
                return Popped::Closed;
            }
            inner.writer_waiting = true;
            inner = match deadline {
                None => self
                    .not_empty
                    .wait(inner)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()) else {
                        inner.writer_waiting = false;
                        return Popped::Timeout;
                    };
                    self.not_empty
                        .wait_timeout(inner, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            inner.writer_waiting = false;
        }
        let mut group = Vec::with_capacity(inner.items.len().min(max_weight.max(1)));
        let mut taken = 0;
        while let Some(front) = inner.items.front() {
            if !group.is_empty() && taken + front.weight() > max_weight {
                break;
            }
            let Some(p) = inner.items.pop_front() else {
                break;
            };
            taken += p.weight();
            group.push(p);
        }
        inner.weight -= taken;
        let blocked = inner.waiting > 0;
        drop(inner);
        if blocked {
            self.not_full.notify_all();
        }
        Popped::Group(group)
    }

    /// Refuses further pushes; what is queued is still popped.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Whether [`Queue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits up to `timeout` (the writer's retry backoff), returning early
    /// when the queue is closed. Returns whether it is closed.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        // Spurious wake-ups happen: loop until closed or the deadline.
        while !inner.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            inner = self
                .not_empty
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        inner.closed
    }

    /// Closes and hands back whatever is still queued.
    pub(crate) fn close_and_drain(&self) -> Vec<Pending> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.weight = 0;
        let rest = inner.items.drain(..).collect();
        drop(inner);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        rest
    }

    /// Deltas waiting (barriers count one) and submitters blocked for room.
    pub(crate) fn lag(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.weight, inner.waiting)
    }
}
