//! Latency histograms: nanoseconds, 3 significant figures, 1 ns to 100 s.
//!
//! One histogram per process and per kind (end-to-end, CONNACK, SUBACK), not
//! per client: a histogram of this precision is ~230 KB, which times 10,000
//! subscribers would dwarf the broker being measured. Receivers collect a
//! read batch of samples locally and add them under the lock once per batch.
//! Across processes a histogram travels as its non-empty buckets.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency recorded exactly; larger ones are clamped to it.
const MAX_NS: u64 = 100_000_000_000;

/// A latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct LatencyHist {
    // Creation only fails for invalid bounds, and ours are constants; `None`
    // would make every record a no-op rather than crash the run.
    hist: Option<Histogram<u64>>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHist {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).ok(),
        }
    }

    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        if let Some(h) = &mut self.hist {
            h.saturating_record(ns.max(1));
        }
    }

    /// Records `count` samples of the same latency.
    pub fn record_n(&mut self, ns: u64, count: u64) {
        if let Some(h) = &mut self.hist {
            h.saturating_record_n(ns.max(1), count);
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHist) {
        if let Some(o) = &other.hist {
            for v in o.iter_recorded() {
                self.record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, Histogram::len)
    }

    /// The non-empty buckets as (value, count), to send to another process.
    pub fn to_buckets(&self) -> Vec<(u64, u64)> {
        self.hist.as_ref().map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        })
    }

    /// Rebuilds a histogram from [`Self::to_buckets`].
    pub fn from_buckets(buckets: &[(u64, u64)]) -> Self {
        let mut hist = Self::new();
        for &(value, count) in buckets {
            hist.record_n(value, count);
        }
        hist
    }

    /// The value at quantile `q` (0..=1) in microseconds (0 when empty).
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist
            .as_ref()
            .filter(|h| !h.is_empty())
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1e3)
    }

    /// Percentiles in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let Some(h) = self.hist.as_ref().filter(|h| !h.is_empty()) else {
            return LatencySummary::default();
        };
        let us = |ns: u64| ns as f64 / 1e3;
        LatencySummary {
            count: h.len(),
            mean_us: h.mean() / 1e3,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

/// A histogram shared by the tasks of one process.
#[derive(Debug, Clone, Default)]
pub struct SharedHist(Arc<Mutex<LatencyHist>>);

impl SharedHist {
    /// Adds a batch of samples under one lock.
    pub fn add_batch(&self, samples: &[u64]) {
        if samples.is_empty() {
            return;
        }
        let mut hist = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for &ns in samples {
            hist.record(ns);
        }
    }

    /// Adds one sample.
    pub fn add(&self, ns: u64) {
        self.add_batch(&[ns]);
    }

    /// A copy of the histogram as it is now.
    pub fn snapshot(&self) -> LatencyHist {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
