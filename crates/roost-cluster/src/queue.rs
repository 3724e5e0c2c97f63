//! A bounded queue from the broker's tasks to one cluster thread: pushes
//! never block (a full queue refuses), the thread takes everything queued
//! in one go (that is the batching: under load a batch grows by itself,
//! idle it is one item with no added wait).

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

struct State<T> {
    items: VecDeque<T>,
    stopped: bool,
}

/// The queue; `cap` items at most.
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    cap: usize,
}

impl<T> Queue<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                stopped: false,
            }),
            ready: Condvar::new(),
            cap: cap.max(1),
        }
    }

    /// Queues `item` unless more than `limit` items wait (give the cap, or
    /// a multiple of it for what must not be dropped lightly); gives it back
    /// when refused or stopped.
    pub(crate) fn push_within(&self, item: T, limit: usize) -> Result<(), T> {
        let mut state = self.state.lock();
        if state.stopped || state.items.len() >= limit {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues `item` within the cap.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        self.push_within(item, self.cap)
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Up to `max` items, waiting at most `wait` for the first; `None` once
    /// stopped and empty.
    pub(crate) fn take(&self, max: usize, wait: Duration) -> Option<Vec<T>> {
        let mut state = self.state.lock();
        if state.items.is_empty() && !state.stopped {
            self.ready.wait_for(&mut state, wait);
        }
        if state.items.is_empty() && state.stopped {
            return None;
        }
        let n = state.items.len().min(max);
        Some(state.items.drain(..n).collect())
    }

    /// [`Queue::take`] into `into` (emptied by the caller since the last
    /// take): when all that waits fits in `max`, the two buffers are
    /// swapped, so the lock is held for no copy and neither side allocates
    /// once both buffers have grown. False once stopped and empty.
    pub(crate) fn take_into(&self, max: usize, wait: Duration, into: &mut VecDeque<T>) -> bool {
        let mut state = self.state.lock();
        if state.items.is_empty() && !state.stopped {
            self.ready.wait_for(&mut state, wait);
        }
        if state.items.is_empty() && state.stopped {
            return false;
        }
        if state.items.len() <= max && into.is_empty() {
            std::mem::swap(&mut state.items, into);
        } else {
            let n = state.items.len().min(max);
            into.extend(state.items.drain(..n));
        }
        true
    }

    /// Refuses further pushes and wakes the thread; queued items are still
    /// taken.
    pub(crate) fn stop(&self) {
        self.state.lock().stopped = true;
        self.ready.notify_all();
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_drained_in_one_take() {
        let q = Queue::new(2);
        assert!(q.push(1).is_ok());
        assert!(q.push(2).is_ok());
        assert_eq!(q.push(3), Err(3));
        assert!(q.push_within(3, 4).is_ok());
        assert_eq!(q.take(10, Duration::ZERO), Some(vec![1, 2, 3]));
        q.stop();
        assert_eq!(q.push(4), Err(4));
        assert_eq!(q.take(10, Duration::ZERO), None);
    }

    #[test]
    fn take_into_swaps_what_fits_and_splits_what_does_not() {
        let q = Queue::new(10);
        let mut into = VecDeque::new();
        for i in 0..5 {
            assert!(q.push(i).is_ok());
        }
        assert!(q.take_into(3, Duration::ZERO, &mut into));
        assert_eq!(into.drain(..).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(q.take_into(3, Duration::ZERO, &mut into));
        assert_eq!(into.drain(..).collect::<Vec<_>>(), vec![3, 4]);
        assert!(q.push(5).is_ok());
        q.stop();
        assert!(q.take_into(3, Duration::ZERO, &mut into));
        assert_eq!(into.drain(..).collect::<Vec<_>>(), vec![5]);
        assert!(!q.take_into(3, Duration::ZERO, &mut into));
    }
}
