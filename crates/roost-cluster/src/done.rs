//! A one-shot answer from a cluster thread to whoever waits for it: a
//! future (the connection driver awaits it) completed by a plain thread,
//! with no runtime of its own. A completer dropped unanswered answers
//! [`ClusterError::Stopped`], so a waiter never hangs on a thread that died.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::ClusterError;

/// The answer once given, and who to wake for it.
type Slot<T> = (Option<Result<T, ClusterError>>, Option<Waker>);

struct Cell<T> {
    slot: Mutex<Slot<T>>,
}

/// The waiting side: `.await` it.
#[must_use = "says when (and whether) the cluster did it"]
pub struct Done<T> {
    cell: Arc<Cell<T>>,
}

impl<T> std::fmt::Debug for Done<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done").finish_non_exhaustive()
    }
}

/// The answering side, held by a cluster thread.
pub(crate) struct Completer<T> {
    cell: Option<Arc<Cell<T>>>,
}

/// A new pair.
pub(crate) fn pair<T>() -> (Done<T>, Completer<T>) {
    let cell = Arc::new(Cell {
        slot: Mutex::new((None, None)),
    });
    (
        Done {
            cell: Arc::clone(&cell),
        },
        Completer { cell: Some(cell) },
    )
}

impl<T> Completer<T> {
    /// Answers; wakes the waiter.
    pub(crate) fn complete(mut self, result: Result<T, ClusterError>) {
        self.answer(result);
    }

    fn answer(&mut self, result: Result<T, ClusterError>) {
        if let Some(cell) = self.cell.take() {
            let waker = {
                let mut slot = cell.slot.lock();
                slot.0 = Some(result);
                slot.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.answer(Err(ClusterError::Stopped));
    }
}

impl<T> Done<T> {
    /// Blocks the calling thread (a cluster thread, never the runtime's)
    /// until answered, at most `timeout`: `None` when it was not.
    pub(crate) fn wait(mut self, timeout: std::time::Duration) -> Option<Result<T, ClusterError>> {
        /// Wakes the blocked thread.
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Poll::Ready(result) = Pin::new(&mut self).poll(&mut cx) {
                return Some(result);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::park_timeout(left);
        }
    }
}

impl<T> Future for Done<T> {
    type Output = Result<T, ClusterError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.cell.slot.lock();
        if let Some(result) = slot.0.take() {
            return Poll::Ready(result);
        }
        slot.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wait_returns_the_answer_given_on_another_thread() {
        let (done, completer) = pair::<u32>();
        let answering = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            completer.complete(Ok(7));
        });
        assert_eq!(done.wait(Duration::from_secs(10)).unwrap().unwrap(), 7);
        answering.join().unwrap();
    }

    #[test]
    fn wait_gives_up_after_its_timeout_and_a_dropped_completer_answers_stopped() {
        let (done, completer) = pair::<u32>();
        assert!(done.wait(Duration::from_millis(20)).is_none());
        let (done, dropped) = pair::<u32>();
        drop(dropped);
        assert!(matches!(
            done.wait(Duration::from_secs(1)),
            Some(Err(ClusterError::Stopped))
        ));
        drop(completer);
    }
}
