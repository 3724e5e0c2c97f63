//! A bounded queue from the broker's tasks to one cluster thread: pushes
//! never block (a full queue refuses), the thread takes everything queued
//! in one go (that is the batching: under load a batch grows by itself,
//! idle it is one item with no added wait).
//!
//! The bound counts weight, not items: an item may stand for several
//! messages (a connection's read staged as one, `staged.rs`), and weighs
//! as many.
//!
//! A queue may **linger** ([`Linger`]): once an item waits, the taker
//! waits until `fill` weight is queued or `time` has passed since that
//! item came, whichever is first (Kafka's `linger.ms`). The writer's costs
//! are per round trip (a Redis command, the publishers' and subscribers'
//! socket writes that follow it, the receiving node's read and wake-ups),
//! so under load fewer, fuller round trips cost less per message; an idle
//! queue's first item waits at most `time`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

struct State<T> {
    items: VecDeque<T>,
    /// The items' total weight.
    weight: usize,
    /// When the oldest item waiting came (set as the queue stops being
    /// empty; kept while some stay after a take).
    since: Option<Instant>,
    stopped: bool,
}

/// How long a taker waits for a fuller batch (see the module comment).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linger {
    /// At most this long after the first item came.
    pub(crate) time: Duration,
    /// Until this much weight waits.
    pub(crate) fill: usize,
}

/// The queue; `cap` weight at most.
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    cap: usize,
    /// What an item weighs (1 unless `weighted`).
    weigh: fn(&T) -> usize,
    /// `None`: a take takes what waits at once.
    linger: Option<Linger>,
    /// `weight` as of the last change, readable without the lock (a
    /// producer's admission check against the cap).
    queued: AtomicUsize,
}

impl<T> Queue<T> {
    /// A queue of `cap` items.
    pub(crate) fn new(cap: usize) -> Self {
        Self::weighted(cap, |_| 1)
    }

    /// A queue of `cap` weight, each item weighing `weigh(item)`.
    pub(crate) fn weighted(cap: usize, weigh: fn(&T) -> usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                weight: 0,
                since: None,
                stopped: false,
            }),
            ready: Condvar::new(),
            cap: cap.max(1),
            weigh,
            linger: None,
            queued: AtomicUsize::new(0),
        }
    }

    /// The same queue, its taker lingering (`None` or a zero time: not).
    pub(crate) fn lingering(mut self, linger: Option<Linger>) -> Self {
        self.linger = linger.filter(|l| !l.time.is_zero() && l.fill > 1);
        self
    }

    /// Queues `item` unless `limit` weight or more waits (give the cap, or
    /// a multiple of it for what must not be dropped lightly); gives it back
    /// when refused or stopped.
    pub(crate) fn push_within(&self, item: T, limit: usize) -> Result<(), T> {
        let mut state = self.state.lock();
        if state.stopped || state.weight >= limit {
            return Err(item);
        }
        let before = state.weight;
        state.weight = state.weight.saturating_add((self.weigh)(&item));
        if state.items.is_empty() {
            state.since = Some(Instant::now());
        }
        state.items.push_back(item);
        self.queued.store(state.weight, Ordering::Relaxed);
        // The taker waits for a first item, or (lingering) for `fill`: a
        // wake-up per push would cost it a futex call each.
        let wake = before == 0
            || self
                .linger
                .is_some_and(|l| before < l.fill && state.weight >= l.fill);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Queues `item` within the cap.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        self.push_within(item, self.cap)
    }

    /// Queues `item` whatever the weight waiting (the caller admitted what
    /// it holds against [`Queue::queued`]); gives it back when stopped.
    pub(crate) fn push_admitted(&self, item: T) -> Result<(), T> {
        self.push_within(item, usize::MAX)
    }

    /// How much weight waits, without the lock (a moment ago).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Up to `max` items, waiting at most `wait` for the first; `None` once
    /// stopped and empty.
    pub(crate) fn take(&self, max: usize, wait: Duration) -> Option<Vec<T>> {
        let mut into = VecDeque::new();
        self.take_into(max, wait, &mut into)
            .then(|| into.into_iter().collect())
    }

    /// [`Queue::take`] into `into` (emptied by the caller since the last
    /// take), `max` counting weight (at least one item is taken): when all
    /// that waits fits in `max`, the two buffers are swapped, so the lock is
    /// held for no copy and neither side allocates once both buffers have
    /// grown. False once stopped and empty.
    pub(crate) fn take_into(&self, max: usize, wait: Duration, into: &mut VecDeque<T>) -> bool {
        let mut state = self.state.lock();
        if state.items.is_empty() && !state.stopped {
            self.ready.wait_for(&mut state, wait);
        }
        if state.items.is_empty() && state.stopped {
            return false;
        }
        if let (Some(linger), Some(since)) = (self.linger, state.since) {
            let until = since + linger.time;
            while state.weight < linger.fill.min(max) && !state.stopped {
                if self.ready.wait_until(&mut state, until).timed_out() {
                    break;
                }
            }
        }
        if state.weight <= max && into.is_empty() {
            std::mem::swap(&mut state.items, into);
            state.weight = 0;
        } else {
            let mut taken = 0usize;
            while let Some(item) = state.items.pop_front() {
                taken = taken.saturating_add((self.weigh)(&item));
                into.push_back(item);
                if taken >= max {
                    break;
                }
            }
            state.weight = state.weight.saturating_sub(taken);
        }
        if state.items.is_empty() {
            state.since = None;
        }
        self.queued.store(state.weight, Ordering::Relaxed);
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
        assert_eq!(q.queued(), 2);
        assert!(q.take_into(3, Duration::ZERO, &mut into));
        assert_eq!(into.drain(..).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(q.queued(), 0);
        assert!(q.push(5).is_ok());
        q.stop();
        assert!(q.take_into(3, Duration::ZERO, &mut into));
        assert_eq!(into.drain(..).collect::<Vec<_>>(), vec![5]);
        assert!(!q.take_into(3, Duration::ZERO, &mut into));
    }

    fn lingering(time: Duration, fill: usize) -> std::sync::Arc<Queue<u32>> {
        std::sync::Arc::new(Queue::new(100).lingering(Some(Linger { time, fill })))
    }

    #[test]
    fn a_lingering_take_waits_for_its_fill_not_its_whole_time() {
        let q = lingering(Duration::from_secs(30), 4);
        assert!(q.push(0).is_ok());
        let pusher = {
            let q = std::sync::Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 1..4 {
                    assert!(q.push(i).is_ok());
                }
            })
        };
        let started = Instant::now();
        assert_eq!(q.take(10, Duration::from_secs(30)), Some(vec![0, 1, 2, 3]));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "woken at the fill, not at the linger's end"
        );
        pusher.join().expect("pusher");
    }

    #[test]
    fn a_lingering_take_waits_its_time_at_most_from_the_first_item() {
        let linger = Duration::from_millis(50);
        let q = lingering(linger, 4);
        let queued = Instant::now();
        assert!(q.push(7).is_ok());
        assert_eq!(q.take(10, Duration::from_secs(30)), Some(vec![7]));
        let waited = queued.elapsed();
        assert!(waited >= linger, "lingered for more: {waited:?}");
        assert!(
            waited < Duration::from_secs(20),
            "not past its time: {waited:?}"
        );
        // A full batch goes at once; what it left waits out the time of
        // the first item it came with, not a time of its own.
        let pushed = Instant::now();
        for i in 0..6 {
            assert!(q.push(i).is_ok());
        }
        assert_eq!(q.take(4, Duration::ZERO), Some(vec![0, 1, 2, 3]));
        assert_eq!(q.take(4, Duration::ZERO), Some(vec![4, 5]));
        let waited = pushed.elapsed();
        assert!(waited >= linger, "the rest lingered: {waited:?}");
        assert!(
            waited < Duration::from_secs(20),
            "from the first item: {waited:?}"
        );
    }

    #[test]
    fn a_queue_lingers_not_with_a_zero_time() {
        let q = lingering(Duration::ZERO, 4);
        assert!(q.linger.is_none());
        assert!(q.push(1).is_ok());
        assert_eq!(q.take(10, Duration::ZERO), Some(vec![1]));
    }

    #[test]
    fn the_bound_counts_weight() {
        // An item of weight n stands for n messages.
        let q: Queue<usize> = Queue::weighted(10, |n| *n);
        assert!(q.push(6).is_ok());
        assert_eq!(q.queued(), 6);
        assert!(q.push(3).is_ok(), "9 < 10 waiting");
        assert!(q.push(1).is_ok());
        assert_eq!(q.push(1), Err(1), "full: 10 waiting");
        assert!(q.push_admitted(5).is_ok(), "admitted by the caller");
        assert_eq!(q.queued(), 15);
        assert_eq!(
            q.take(7, Duration::ZERO),
            Some(vec![6, 3]),
            "until 7 is reached"
        );
        assert_eq!(q.queued(), 6);
        assert_eq!(q.take(0, Duration::ZERO), Some(vec![1]), "one at least");
        q.stop();
        assert_eq!(q.push_admitted(1), Err(1));
    }
}
