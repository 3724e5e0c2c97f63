//! Back-pressure from a subscriber's outbox to the publishers that feed it
//! (issue 21): the outbox's side. A publisher whose delivery takes an
//! outbox to its high-water mark stops reading its socket and leaves its
//! waker here (`driver/backpressure.rs` is the publisher's side); the
//! subscriber's driver wakes every waiter when it drains the outbox. A
//! publisher waits at most `[limits] publisher_wait_ms` for a subscriber
//! whose client does not take its output: that subscriber is slow, and stops
//! holding publishers back (its deliveries beyond `max_outbox` are dropped
//! and counted, as before) until it catches up.
//!
//! Lives inside the outbox's box (made by the first delivery), so an idle
//! client's slot carries none of it.

use std::task::Waker;

/// The outbox's waiting publishers and whether its subscriber is slow.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    /// Publishers paused until this outbox drains. Bounded: a publisher
    /// waits on one outbox at a time and enters once per pause (a second
    /// poll of the same task replaces nothing, see [`Waiting::register`]),
    /// and every drain empties the list.
    wakers: Vec<Waker>,
    /// A publisher waited its whole bound for this outbox: its subscriber is
    /// slow and holds no publisher back until it catches up: a drain finds
    /// the outbox below the high-water mark, or its connection has written
    /// all it had. The latter matters under overload: a subscriber marked
    /// slow by a moment's stall (its client descheduled) would otherwise
    /// never drain below the mark again, with publishers flooding it.
    slow: bool,
    /// The subscriber's driver stopped taking deliveries because its client
    /// does not take its output (or its QoS 1/2 acknowledgements) fast
    /// enough: only then may a publisher that waited its bound mark it
    /// slow. A driver that has merely not been scheduled yet (the broker's
    /// own core busy) is waited for again instead.
    output_full: bool,
}

impl Waiting {
    /// Whether a delivery that left `len` deliveries waiting should pause
    /// its publisher (`high_water` 0: back-pressure is off).
    pub(crate) fn congested(&self, len: usize, high_water: usize) -> bool {
        high_water > 0 && len >= high_water && !self.slow
    }

    /// Registers a paused publisher's waker (once per task).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// The subscriber's driver took `drained` deliveries, with everything it
    /// had before written to its socket (`idle`) or not. It caught up (no
    /// longer slow) when its connection was idle or the drain was below the
    /// high-water mark. Returns the publishers to wake (outside the slot's
    /// lock).
    pub(crate) fn drained(&mut self, drained: usize, high_water: usize, idle: bool) -> Vec<Waker> {
        if self.slow && (idle || drained < high_water) {
            tracing::debug!(drained, idle, "slow subscriber caught up");
            self.slow = false;
        }
        self.output_full = false;
        std::mem::take(&mut self.wakers)
    }

    /// The subscriber's driver leaves deliveries here because its client is
    /// behind (cleared by its next drain).
    pub(crate) fn output_full(&mut self) {
        self.output_full = true;
    }

    /// A publisher waited its bound: the subscriber is slow if its own
    /// client holds it up (then true), not if its driver has not run yet.
    pub(crate) fn give_up(&mut self) -> bool {
        if self.output_full {
            self.slow = true;
        }
        self.slow
    }

    /// Whether a publisher gave up on this outbox and it has not caught up since.
    #[cfg(test)]
    pub(crate) fn is_slow(&self) -> bool {
        self.slow
    }

    /// Wakes every waiter (the outbox is going away: detach, session end).
    pub(crate) fn wake_all(&mut self) {
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Waiting;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_subscriber_whose_client_is_behind_stops_pausing_publishers_until_it_catches_up() {
        let mut waiting = Waiting::default();
        assert!(!waiting.congested(9, 10));
        assert!(waiting.congested(10, 10));
        assert!(!waiting.congested(1_000, 0), "0 turns back-pressure off");
        assert!(!waiting.give_up(), "its driver has not run yet: not slow");
        waiting.output_full();
        assert!(waiting.give_up(), "its client is behind: slow");
        assert!(
            !waiting.congested(10, 10),
            "a slow subscriber holds nobody back"
        );
        let _ = waiting.drained(10, 10, false);
        assert!(
            waiting.is_slow(),
            "a full drain while still writing: behind"
        );
        let _ = waiting.drained(3, 10, false);
        assert!(!waiting.is_slow(), "caught up");
        assert!(waiting.congested(10, 10));
        waiting.output_full();
        assert!(waiting.give_up());
        let _ = waiting.drained(10, 10, true);
        assert!(
            !waiting.is_slow(),
            "a full drain into an idle connection: caught up"
        );
    }

    #[test]
    fn each_paused_task_is_woken_once_per_drain() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut waiting = Waiting::default();
        waiting.register(&waker);
        waiting.register(&waker);
        let wakers = waiting.drained(0, 10, false);
        assert_eq!(wakers.len(), 1, "the same task is registered once");
        wakers.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(
            waiting.drained(0, 10, false).is_empty(),
            "a drain empties the list"
        );
    }
}
