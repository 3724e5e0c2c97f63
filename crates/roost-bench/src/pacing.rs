//! Open-loop pacing: when each message is due, how a publisher sleeps until
//! then, and how well the schedule was kept (lag behind it, and the gaps
//! between consecutive writes of the process, which show whether sends were
//! spread evenly or bunched).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::clock::sleep_until_ns;
use crate::hrtimer::HrTimer;
use crate::latency::{LatencyHist, SharedHist};

/// Samples a publisher keeps before adding them to the shared histograms.
const FLUSH_EVERY: usize = 256;

/// Messages of a schedule starting at `start_ns` with one message every
/// `interval_ns` that are due at `now_ns` (message k is due at
/// `start + k * interval`, so the first is due at the start).
pub fn due_by(now_ns: u64, start_ns: u64, interval_ns: u64) -> u64 {
    if now_ns < start_ns || interval_ns == 0 {
        0
    } else {
        (now_ns - start_ns) / interval_ns + 1
    }
}

/// When message `k` (from 0) of the schedule is due.
pub fn due_at(start_ns: u64, k: u64, interval_ns: u64) -> u64 {
    start_ns.saturating_add(k.saturating_mul(interval_ns))
}

/// Until when a launcher starting item `k` of the schedule must sleep, or
/// `None` when the item is already due. tokio's timer rounds every sleep up
/// to its next 1 ms tick, so sleeping before every item, even one whose time
/// has come, would start at most about one item per millisecond (`-R 20000`
/// gave ~920 connections/s); items already due start at once instead, in
/// bursts of up to a millisecond's worth.
pub fn wait_before(now_ns: u64, start_ns: u64, k: u64, interval_ns: u64) -> Option<u64> {
    let due = due_at(start_ns, k, interval_ns);
    (interval_ns > 0 && due > now_ns).then_some(due)
}

/// How paced publishers sleep until their next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacerKind {
    /// One timerfd per process: sub-millisecond deadlines, sends spread evenly.
    #[default]
    Timerfd,
    /// tokio's timer: 1 ms ticks, so sends bunch on each tick (for comparison).
    Tokio,
}

/// A pacing clock shared by the publishers of a process.
#[derive(Debug, Clone, Default)]
pub enum Pacer {
    /// tokio's 1 ms timer wheel.
    #[default]
    Tokio,
    /// The process's timerfd.
    Hr(HrTimer),
}

impl Pacer {
    /// The pacer of `kind`; falls back to tokio's timer (with a warning) if
    /// the timerfd cannot be had. Must run inside the runtime.
    pub fn start(kind: PacerKind) -> Self {
        match kind {
            PacerKind::Tokio => Self::Tokio,
            PacerKind::Timerfd => match HrTimer::start() {
                Ok(timer) => Self::Hr(timer),
                Err(e) => {
                    eprintln!(
                        "roost-bench: warning: no timerfd ({e:#}); pacing with tokio's 1 ms timer"
                    );
                    Self::Tokio
                }
            },
        }
    }

    /// Which clock this is.
    pub fn kind(&self) -> PacerKind {
        match self {
            Self::Tokio => PacerKind::Tokio,
            Self::Hr(_) => PacerKind::Timerfd,
        }
    }

    /// Sleeps until the monotonic clock reads `deadline_ns`.
    pub async fn sleep_until(&self, deadline_ns: u64) {
        match self {
            Self::Tokio => sleep_until_ns(deadline_ns).await,
            Self::Hr(timer) => timer.sleep_until(deadline_ns).await,
        }
    }
}

/// Pacing accuracy of one process: lag of each paced write behind its due
/// time, and the gap since the process's previous paced write.
#[derive(Debug, Default)]
pub struct PaceStats {
    lag: SharedHist,
    gaps: SharedHist,
    last_write_ns: AtomicU64,
}

impl PaceStats {
    /// Snapshots: (lag, gaps).
    pub fn snapshot(&self) -> (LatencyHist, LatencyHist) {
        (self.lag.snapshot(), self.gaps.snapshot())
    }
}

/// A publisher's samples, added to the shared [`PaceStats`] in batches so
/// the hot path takes no lock per message.
#[derive(Debug)]
pub struct PaceRecorder {
    stats: Arc<PaceStats>,
    lag: Vec<u64>,
    gaps: Vec<u64>,
}

impl PaceRecorder {
    /// A recorder adding into `stats`.
    pub fn new(stats: Arc<PaceStats>) -> Self {
        Self {
            stats,
            lag: Vec::with_capacity(FLUSH_EVERY),
            gaps: Vec::with_capacity(FLUSH_EVERY),
        }
    }

    /// A paced write at `write_ns` whose oldest message was due at `due_ns`.
    pub fn write(&mut self, write_ns: u64, due_ns: u64) {
        self.lag.push(write_ns.saturating_sub(due_ns));
        let prev = self.stats.last_write_ns.swap(write_ns, Ordering::Relaxed);
        if prev != 0 {
            self.gaps.push(write_ns.saturating_sub(prev));
        }
        if self.lag.len() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Adds the pending samples.
    pub fn flush(&mut self) {
        self.stats.lag.add_batch(&self.lag);
        self.stats.gaps.add_batch(&self.gaps);
        self.lag.clear();
        self.gaps.clear();
    }
}

impl Drop for PaceRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_is_due_at_the_start_then_one_per_interval() {
        assert_eq!(due_by(999, 1_000, 50), 0);
        assert_eq!(due_by(1_000, 1_000, 50), 1);
        assert_eq!(due_by(1_049, 1_000, 50), 1);
        assert_eq!(due_by(1_050, 1_000, 50), 2);
        assert_eq!(due_by(2_000, 1_000, 50), 21);
        for k in 0..100 {
            let at = due_at(1_000, k, 50);
            assert_eq!(
                due_by(at, 1_000, 50),
                k + 1,
                "message {k} is due at its time"
            );
            assert_eq!(due_by(at - 1, 1_000, 50), k, "and not a nanosecond before");
        }
    }

    #[test]
    fn no_interval_means_nothing_is_ever_due_by_the_clock() {
        assert_eq!(due_by(5_000, 1_000, 0), 0);
        assert_eq!(due_at(7, u64::MAX, 2), u64::MAX);
    }

    #[test]
    fn the_recorder_measures_lag_and_the_gaps_between_writes_of_all_publishers() {
        let stats = Arc::new(PaceStats::default());
        let mut a = PaceRecorder::new(Arc::clone(&stats));
        let mut b = PaceRecorder::new(Arc::clone(&stats));
        a.write(1_000, 1_000); // on time; first write: no gap yet
        b.write(1_070, 1_050); // 20 late, 70 after a's write
        a.write(1_100, 1_100); // 30 after b's
        drop(a);
        drop(b);
        let (lag, gaps) = stats.snapshot();
        assert_eq!(lag.count(), 3);
        assert_eq!(gaps.count(), 2);
        let lags = lag.to_buckets();
        assert_eq!(lags.iter().map(|&(_, n)| n).sum::<u64>(), 3);
        assert!(lags.iter().any(|&(v, _)| v == 20));
        let gap_values: Vec<u64> = gaps.to_buckets().iter().map(|&(v, _)| v).collect();
        assert_eq!(gap_values, vec![30, 70]);
    }

    #[test]
    fn samples_reach_the_shared_histograms_in_batches() {
        let stats = Arc::new(PaceStats::default());
        let mut r = PaceRecorder::new(Arc::clone(&stats));
        for k in 0..FLUSH_EVERY as u64 - 1 {
            r.write(10 + k, 10 + k);
        }
        assert_eq!(
            stats.snapshot().0.count(),
            0,
            "below the batch size: nothing shared yet"
        );
        r.write(10_000, 10_000);
        assert_eq!(stats.snapshot().0.count(), FLUSH_EVERY as u64);
    }
}
