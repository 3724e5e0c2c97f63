//! Bounded backlog for `pubsub` at maximum rate. Without it, publishers
//! on loopback can push tens of megabytes into kernel socket buffers in
//! the first second; the "send rate" then measures memcpy into the kernel,
//! the broker works through a backlog for the rest of the run, latency
//! grows without bound and the drain times out. With it, publishers keep
//! at most `cap` deliveries outstanding (sent × fan-out − received), so
//! "max rate" means the saturation throughput of the whole path with a
//! bounded queue, and latency at that rate is meaningful.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::instant_at;
use crate::phase::Progress;

/// Shared by the publishers of one process.
#[derive(Debug)]
pub struct Backlog {
    sent: AtomicU64,
    /// Deliveries this process's receivers should see per message its publishers send.
    fan: f64,
    /// Deliveries allowed outstanding.
    cap: f64,
    progress: Arc<Progress>,
}

impl Backlog {
    /// A backlog of at most `cap` deliveries, `fan` deliveries per message.
    pub fn new(cap: u64, fan: f64, progress: Arc<Progress>) -> Self {
        Self {
            sent: AtomicU64::new(0),
            fan: fan.max(f64::MIN_POSITIVE),
            cap: cap as f64,
            progress,
        }
    }

    /// Messages that may be sent now without exceeding the cap.
    pub fn room(&self) -> u64 {
        let sent = self.sent.load(Ordering::Relaxed) as f64;
        let received = self.progress.unique.load(Ordering::Relaxed) as f64;
        let outstanding = (sent * self.fan - received).max(0.0);
        ((self.cap - outstanding) / self.fan).max(0.0) as u64
    }

    /// Counts `n` messages sent.
    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Waits until some room opens (receivers progress) or `deadline_ns`;
    /// returns the room (0 at the deadline).
    pub async fn wait_for_room(&self, deadline_ns: u64) -> u64 {
        loop {
            let notified = self.progress.notify.notified();
            let room = self.room();
            if room > 0 {
                return room;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(instant_at(deadline_ns)) => return 0,
            }
        }
    }
}
