//! The run's phases and the events clients report back. The orchestrator
//! moves every client through the phases at once (a `watch` channel), which
//! is what makes "connect everyone, then subscribe everyone, then publish"
//! measurable phase by phase.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients connect; connected clients idle (answering pings).
    Connect,
    /// Subscribers send their SUBSCRIBE.
    Subscribe,
    /// Publishers publish within the window; subscribers receive.
    Run(Window),
    /// Everyone disconnects.
    Stop,
}

/// The measurement window of the run phase, on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Window {
    /// Publishing starts.
    pub start_ns: u64,
    /// Warm-up ends: rates, latency and broker CPU count from here.
    pub warm_ns: u64,
    /// Publishing stops (`u64::MAX` while unbounded; the actual stop time in results).
    pub end_ns: u64,
}

impl Window {
    /// A window starting at `start_ns`; `duration_ns == 0` means unbounded.
    pub fn new(start_ns: u64, warmup_ns: u64, duration_ns: u64) -> Self {
        let warm_ns = start_ns.saturating_add(warmup_ns);
        let end_ns = if duration_ns == 0 {
            u64::MAX
        } else {
            warm_ns.saturating_add(duration_ns)
        };
        Self {
            start_ns,
            warm_ns,
            end_ns,
        }
    }

    /// True if `t_ns` falls in the measured part (after warm-up, before the end).
    pub fn measures(&self, t_ns: u64) -> bool {
        t_ns >= self.warm_ns && t_ns < self.end_ns
    }

    /// True when the window has an end.
    pub fn is_bounded(&self) -> bool {
        self.end_ns != u64::MAX
    }
}

/// The kind of a client's role, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Holds its connection.
    Idle,
    /// Subscribes and receives.
    Subscriber,
    /// Publishes.
    Publisher,
}

/// What a client tells the orchestrator as it goes.
#[derive(Debug)]
pub enum Event {
    /// CONNACK received after `latency_ns`.
    Connected {
        /// TCP connect start → CONNACK.
        latency_ns: u64,
        /// What the client will do.
        kind: RoleKind,
    },
    /// The connection attempt failed.
    ConnectFailed(String),
    /// SUBACK received.
    Subscribed {
        /// SUBSCRIBE sent → SUBACK received.
        latency_ns: u64,
        /// False if the broker refused the filter.
        granted: bool,
    },
    /// The connection failed while waiting for the SUBACK.
    SubscribeFailed(String),
    /// A publisher stopped publishing after `sent` messages.
    PublisherDone {
        /// Messages this publisher wrote.
        sent: u64,
    },
    /// An established connection broke.
    Lost(String),
}

/// Counters every receiver updates once per read batch, so the orchestrator
/// can tell when the messages in flight have all arrived.
#[derive(Debug, Default)]
pub struct Progress {
    /// Distinct messages received by all receivers of this process.
    pub unique: AtomicU64,
    /// Messages received, duplicates and foreign payloads included.
    pub received: AtomicU64,
    /// Messages written by all publishers of this process.
    pub sent: AtomicU64,
    /// Monotonic time of the last receive.
    pub last_recv_ns: AtomicU64,
    /// Woken when receivers make progress (publishers waiting on the backlog).
    pub notify: tokio::sync::Notify,
}

/// What each client task holds to follow the run.
#[derive(Debug, Clone)]
pub struct Control {
    /// The current phase.
    pub phase: watch::Receiver<Phase>,
    /// Set together with `Phase::Stop`; cheap to poll in hot loops.
    pub stop: Arc<AtomicBool>,
    /// Where to report events.
    pub events: mpsc::UnboundedSender<Event>,
    /// Shared receive progress.
    pub progress: Arc<Progress>,
    /// Outstanding-delivery cap for max-rate publishers, if any.
    pub backlog: Option<Arc<crate::backlog::Backlog>>,
    /// The clock paced publishers sleep on.
    pub pacer: crate::pacing::Pacer,
    /// How well paced publishers kept their schedule.
    pub pace: Arc<crate::pacing::PaceStats>,
}

impl Control {
    /// True once the run is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Reports an event; the orchestrator may be gone at the very end, which is fine.
    pub fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
