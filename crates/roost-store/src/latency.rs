//! A latency histogram that costs its writers a few relaxed atomic adds and
//! no lock: the store writer times its applies with it, and the broker its
//! hooks and authenticators, for the Prometheus histograms of the management
//! plane (docs/management.md). Read only when someone scrapes.
//!
//! Fixed buckets from 100 µs to 10 s (upper bounds, cumulative when read,
//! as Prometheus histograms are).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the last bucket, +Inf, is
/// implicit).
pub const BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000, 10_000_000,
];

/// Observations by bucket, their count and sum.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

/// A histogram as read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// Observations at or below each of [`BUCKETS_MICROS`], cumulative.
    pub cumulative: [u64; BUCKETS_MICROS.len()],
    /// All observations (the +Inf bucket).
    pub count: u64,
    /// Their sum, in microseconds.
    pub sum_micros: u64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let at = BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS_MICROS.len());
        if let Some(bucket) = self.buckets.get(at) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The counts now (each read on its own: a scrape racing an
    /// observation may see it in one number and not yet in another).
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut out = LatencySnapshot {
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            ..LatencySnapshot::default()
        };
        let mut running = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            running += bucket.load(Ordering::Relaxed);
            if let Some(slot) = out.cumulative.get_mut(i) {
                *slot = running;
            }
        }
        out.count = running;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets_with_count_and_sum() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative[0], 2, "<= 100 µs");
        assert_eq!(s.cumulative[4], 2, "<= 2.5 ms");
        assert_eq!(s.cumulative[5], 3, "<= 5 ms");
        assert_eq!(s.cumulative[11], 3, "<= 10 s: the minute is only in +Inf");
        assert_eq!(s.sum_micros, 50 + 100 + 3_000 + 60_000_000);
    }
}
