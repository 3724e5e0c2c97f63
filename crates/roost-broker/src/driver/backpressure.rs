//! Back-pressure, the publisher's side (issue 21; the outbox's side is
//! `credit.rs`). When a message this connection published leaves a
//! subscriber's outbox at its high-water mark, the connection stops
//! handling the packets it has read (the rest stay in its read buffer) and
//! stops reading its socket, so TCP slows the publisher down instead of the
//! broker routing messages the outbox would drop. It goes on when that
//! subscriber's driver drains the outbox, or after `[limits]
//! publisher_wait_ms`; the subscriber is then marked slow and holds nobody
//! back until it catches up (its deliveries beyond `max_outbox` are
//! dropped and counted, as before).
//!
//! While paused, the connection still writes (acknowledgements, its own
//! deliveries) and obeys commands and deadlines: only reading stops.
//!
//! The subscriber's side has one more part here: a driver whose session
//! already queues deliveries beyond its QoS 1/2 window ([`may_take`])
//! leaves new ones in the outbox, so a subscriber that acknowledges slowly
//! shows as a full outbox too (otherwise the session's queue would hide it).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use parking_lot::Mutex;

use crate::core::Core;
use crate::metrics::Metrics;
use crate::slot::SessionSlot;

/// One connection's pause, if any.
#[derive(Debug, Default)]
pub(crate) struct Credit {
    /// Set while paused: what the per-packet check reads, without a lock.
    paused: AtomicBool,
    /// The pause ended with packets left in the read buffer.
    unread: AtomicBool,
    /// The outbox waited for, and until when (boxed: most connections never
    /// pause, and this lives in every awake connection's future).
    blocked: Mutex<Option<Box<Blocked>>>,
}

#[derive(Debug)]
struct Blocked {
    slot: Arc<SessionSlot>,
    until: tokio::time::Instant,
}

impl Credit {
    /// A delivery of this connection's message left `slot`'s outbox at its
    /// high-water mark: pause (unless paused already).
    pub(crate) fn note(&self, core: &Core, slot: Arc<SessionSlot>) {
        if self.is_paused() {
            return;
        }
        let wait = std::time::Duration::from_millis(core.config.limits.publisher_wait_ms);
        tracing::trace!(subscriber = %slot.client_id, "publisher paused: outbox at its high-water mark");
        *self.blocked.lock() = Some(Box::new(Blocked {
            slot,
            until: tokio::time::Instant::now() + wait,
        }));
        self.paused.store(true, Ordering::Relaxed);
        Metrics::inc(&core.metrics.publisher_pauses);
    }

    /// Whether the connection is paused (reads nothing, handles nothing).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Packet handling stopped for a pause with bytes left in the buffer.
    pub(crate) fn left_unread(&self) {
        self.unread.store(true, Ordering::Relaxed);
    }

    /// Whether a pause that has ended left packets to handle (once).
    pub(crate) fn take_unread(&self) -> bool {
        !self.is_paused() && self.unread.swap(false, Ordering::Relaxed)
    }

    /// When the pause gives up on its subscriber.
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        if !self.is_paused() {
            return None;
        }
        self.blocked.lock().as_ref().map(|b| b.until)
    }

    /// Ready when the outbox waited for has room (its driver drained it, or
    /// it is gone); the pause is over then.
    pub(crate) fn room<'a>(&'a self, core: &'a Core) -> impl Future<Output = ()> + 'a {
        std::future::poll_fn(move |cx| {
            let mut blocked = self.blocked.lock();
            let full = blocked.as_ref().is_some_and(|b| {
                b.slot
                    .wait_for_room(cx.waker(), core.config.limits.pause_at())
            });
            if full {
                return Poll::Pending;
            }
            *blocked = None;
            self.paused.store(false, Ordering::Relaxed);
            Poll::Ready(())
        })
    }

    /// At the deadline: if the subscriber's client is behind, it is slow;
    /// stop waiting for it. If its driver has not run since (the broker's
    /// core is busy), wait another bound.
    pub(crate) fn expire(&self, core: &Core) {
        let now = tokio::time::Instant::now();
        let mut blocked = self.blocked.lock();
        let Some(b) = blocked.as_mut() else {
            return;
        };
        if b.until > now {
            return;
        }
        if !b.slot.give_up() {
            b.until = now + std::time::Duration::from_millis(core.config.limits.publisher_wait_ms);
            return;
        }
        tracing::debug!(subscriber = %b.slot.client_id, "subscriber slow: publishers stop waiting for it");
        *blocked = None;
        self.paused.store(false, Ordering::Relaxed);
        Metrics::inc(&core.metrics.publisher_waits_expired);
    }
}

/// Whether a subscriber's driver takes more deliveries from its outbox: not
/// while its session queues `pause_at` or more beyond its QoS 1/2 window
/// (they wait in the outbox, where publishers see them). Always with
/// back-pressure off.
pub(crate) fn may_take(session: &roost_session::Session, pause_at: usize) -> bool {
    pause_at == 0 || session.state().queued_len() < pause_at
}
