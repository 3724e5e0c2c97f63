//! A sub-millisecond timer for the paced publishers, independent of tokio's
//! timer wheel.
//!
//! tokio rounds every sleep up to its 1 ms tick, so publishers whose
//! messages are due at different microseconds all wake on the same tick and
//! write in a burst (at 20,000 msg/s, ~20 messages per tick): each message
//! then waits in the broker and in the load generator behind the rest of its
//! burst, and the latency measured is the tool's queueing, not the system's.
//!
//! Here one `timerfd` (an hrtimer: no timer slack, nanosecond deadlines)
//! per process is registered with tokio's reactor and always armed for the
//! earliest deadline any sleeper waits for; a driver task wakes the sleepers
//! whose deadline has passed and re-arms it. Per wake-up that costs one
//! `timerfd_settime`; a sleeper whose deadline is not the earliest costs a
//! heap push under an uncontended lock, no syscall.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use anyhow::Context as _;
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;

use crate::clock::now_ns;

/// "Not armed": no deadline is pending.
const DISARMED: u64 = u64::MAX;

/// The deadlines sleepers wait for, earliest first, and the deadline the
/// timer is armed for. Pure bookkeeping: the caller arms the timer.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<Entry>>,
    armed: Option<u64>,
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    deadline_ns: u64,
    // Insertion order breaks ties, so equal deadlines wake first-come first.
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline_ns, self.seq).cmp(&(other.deadline_ns, other.seq))
    }
}

impl Deadlines {
    /// Adds a sleeper. Returns the deadline to arm the timer for when it
    /// becomes the earliest one (None: the timer is already armed earlier).
    pub fn push(&mut self, deadline_ns: u64, waker: Waker) -> Option<u64> {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            deadline_ns,
            seq: self.seq,
            waker,
        }));
        match self.armed {
            Some(armed) if armed <= deadline_ns => None,
            _ => {
                self.armed = Some(deadline_ns);
                Some(deadline_ns)
            }
        }
    }

    /// The timer fired at `now_ns`: moves the wakers of every deadline that
    /// has passed into `due` and returns the deadline to arm the timer for
    /// next (None: nobody waits; the timer stays disarmed).
    pub fn expire(&mut self, now_ns: u64, due: &mut Vec<Waker>) -> Option<u64> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.deadline_ns > now_ns {
                break;
            }
            if let Some(Reverse(entry)) = self.heap.pop() {
                due.push(entry.waker);
            }
        }
        self.armed = self.heap.peek().map(|Reverse(top)| top.deadline_ns);
        self.armed
    }

    /// Sleepers waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The process's high-resolution timer (cheap to clone). The driver task
/// stops when the last handle (and so the last sleep) is dropped.
#[derive(Debug, Clone)]
pub struct HrTimer {
    shared: Arc<Shared>,
    _driver: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Shared {
    fd: AsyncFd<OwnedFd>,
    deadlines: Mutex<Deadlines>,
}

impl Shared {
    fn arm(&self, deadline_ns: u64) {
        let (value, flags) = if deadline_ns == DISARMED {
            (Timespec::default(), TimerfdTimerFlags::empty())
        } else {
            (timespec(deadline_ns.max(1)), TimerfdTimerFlags::ABSTIME)
        };
        let spec = Itimerspec {
            it_interval: Timespec::default(),
            it_value: value,
        };
        // Cannot fail for a valid timerfd and a normalised time; if it
        // did, the sleeper would still wake at its next poll by any event.
        let _ = timerfd_settime(self.fd.get_ref(), flags, &spec);
    }
}

fn timespec(ns: u64) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from(ns % 1_000_000_000).unwrap_or(0),
    }
}

impl HrTimer {
    /// Creates the timer and spawns its driver task on the current runtime.
    pub fn start() -> anyhow::Result<Self> {
        // CLOCK_MONOTONIC: the clock of `now_ns`, so deadlines need no conversion.
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .context("timerfd_create")?;
        // tokio deprecated `AsyncFd::new` because a type may return
        // different raw fds over time; an `OwnedFd` owned by the `AsyncFd`
        // keeps one open fd until it is dropped, which is the condition of
        // the (unsafe, forbidden here) `AsyncFd::register` that replaces it.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd).context("register the timerfd with the runtime")?;
        let shared = Arc::new(Shared {
            fd,
            deadlines: Mutex::new(Deadlines::default()),
        });
        let driver = tokio::spawn(drive(Arc::clone(&shared))).abort_handle();
        Ok(Self {
            shared,
            _driver: Arc::new(AbortOnDrop(driver)),
        })
    }

    /// Completes once the monotonic clock reads `deadline_ns`.
    pub fn sleep_until(&self, deadline_ns: u64) -> HrSleep {
        HrSleep {
            timer: self.clone(),
            deadline_ns,
            registered: None,
        }
    }
}

/// Wakes the sleepers whose deadline passed each time the timerfd fires.
async fn drive(timer: Arc<Shared>) {
    let mut due = Vec::new();
    loop {
        match timer.fd.readable().await {
            // Clear before re-arming: an expiry after this point is a new
            // edge and makes the fd ready again. No read() is needed:
            // timerfd_settime resets the expiry count and the reactor is
            // edge-triggered.
            Ok(mut guard) => guard.clear_ready(),
            Err(_) => return,
        }
        let next = timer
            .deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expire(now_ns(), &mut due);
        timer.arm(next.unwrap_or(DISARMED));
        for waker in due.drain(..) {
            waker.wake();
        }
    }
}

/// The future of [`HrTimer::sleep_until`].
#[derive(Debug)]
pub struct HrSleep {
    timer: HrTimer,
    deadline_ns: u64,
    // The waker already queued, so that a spurious poll does not queue it again.
    registered: Option<Waker>,
}

impl Future for HrSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if now_ns() >= self.deadline_ns {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let arm = self
            .timer
            .shared
            .deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.deadline_ns, cx.waker().clone());
        if let Some(deadline) = arm {
            self.timer.shared.arm(deadline);
        }
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn the_timer_is_armed_only_for_a_new_earliest_deadline() {
        let mut d = Deadlines::default();
        let (_, w) = counting();
        assert_eq!(d.push(500, w.clone()), Some(500));
        assert_eq!(
            d.push(700, w.clone()),
            None,
            "later than the armed deadline"
        );
        assert_eq!(d.push(500, w.clone()), None, "equal to the armed deadline");
        assert_eq!(d.push(300, w), Some(300), "a new earliest deadline");
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn expire_wakes_what_is_due_in_deadline_order_and_rearms_for_the_rest() {
        let mut d = Deadlines::default();
        let (late, late_w) = counting();
        let (early, early_w) = counting();
        d.push(900, late_w);
        d.push(100, early_w.clone());
        d.push(200, early_w);
        let mut due = Vec::new();
        assert_eq!(d.expire(250, &mut due), Some(900));
        assert_eq!(due.len(), 2);
        due.drain(..).for_each(Waker::wake);
        assert_eq!(early.0.load(AtomicOrdering::Relaxed), 2);
        assert_eq!(late.0.load(AtomicOrdering::Relaxed), 0);
        // After an expiry the timer is armed for the remaining earliest
        // deadline, so a later one does not re-arm it...
        let (_, w) = counting();
        assert_eq!(d.push(950, w.clone()), None);
        // ...and once everything expired it is disarmed: the next push arms.
        assert_eq!(d.expire(1_000, &mut due), None);
        assert_eq!(due.len(), 2);
        assert!(d.is_empty());
        assert_eq!(d.push(2_000, w), Some(2_000));
    }

    #[test]
    fn an_expiry_before_any_deadline_wakes_nobody() {
        let mut d = Deadlines::default();
        let (count, w) = counting();
        d.push(1_000, w);
        let mut due = Vec::new();
        assert_eq!(d.expire(999, &mut due), Some(1_000));
        assert!(due.is_empty());
        assert_eq!(count.0.load(AtomicOrdering::Relaxed), 0);
    }

    #[test]
    fn timespec_splits_seconds_and_nanoseconds() {
        let t = timespec(3_000_000_007);
        assert_eq!((t.tv_sec, t.tv_nsec), (3, 7));
    }

    // The timer wakes sleepers at all, in deadline order, on a
    // single-threaded runtime (how the load generator runs by default).
    // Bounded by a generous timeout; no assertion on timing accuracy.
    #[tokio::test(flavor = "current_thread")]
    async fn sleepers_wake_in_deadline_order() {
        let timer = HrTimer::start().unwrap();
        let start = now_ns();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, delay_us) in [(0u64, 900u64), (1, 300), (2, 600)] {
            let sleep = timer.sleep_until(start + delay_us * 1_000);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                sleep.await;
                order.lock().unwrap().push(i);
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the sleeper woke")
                .unwrap();
        }
        assert!(now_ns() >= start + 900_000, "no sleeper woke early");
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_past_deadline_is_ready_at_once_and_works_across_threads() {
        let timer = HrTimer::start().unwrap();
        timer.sleep_until(0).await;
        let deadline = now_ns() + 200_000;
        let t = timer.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::spawn(async move { t.sleep_until(deadline).await }),
        )
        .await
        .expect("the sleeper woke")
        .unwrap();
        assert!(now_ns() >= deadline);
    }
}
