//! The raw result of one process's run: counters, histogram buckets and
//! times, everything needed to merge `--procs` children before deriving the
//! figures users see (see `report`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::latency::LatencyHist;
use crate::pacing::PacerKind;
use crate::phase::Window;
use crate::stats::{PubStats, RecvStats};

/// Distinct error messages kept; the rest are counted under one key.
const MAX_ERROR_KINDS: usize = 16;

/// A phase in which each client does one thing once (connect, subscribe).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OnceRaw {
    /// Clients that tried.
    pub attempted: u64,
    /// Clients that succeeded.
    pub ok: u64,
    /// Clients that failed or were refused.
    pub failed: u64,
    /// When the phase started (monotonic ns; 0 = never).
    pub first_ns: u64,
    /// When the last success arrived (monotonic ns).
    pub last_ns: u64,
    /// Latency histogram buckets (ns, count).
    pub latency: Vec<(u64, u64)>,
}

impl OnceRaw {
    /// Adds another process's figures.
    pub fn merge(&mut self, other: &OnceRaw) {
        self.attempted += other.attempted;
        self.ok += other.ok;
        self.failed += other.failed;
        self.first_ns = min_nonzero(self.first_ns, other.first_ns);
        self.last_ns = self.last_ns.max(other.last_ns);
        self.latency = merge_buckets(&self.latency, &other.latency);
    }
}

/// Everything one process measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawResult {
    /// Processes merged into this result.
    pub procs: u64,
    /// Connect phase.
    pub connect: OnceRaw,
    /// Subscribe phase.
    pub subscribe: OnceRaw,
    /// Publishers.
    pub publish: PubStats,
    /// Receivers.
    pub receive: RecvStats,
    /// End-to-end latency buckets (ns, count) of messages sent in the window.
    pub e2e_latency: Vec<(u64, u64)>,
    /// The clock paced publishers slept on (None: nobody paced).
    #[serde(default)]
    pub pacer: Option<PacerKind>,
    /// Paced writes in the window: lag behind the schedule, buckets (ns, count).
    #[serde(default)]
    pub schedule_lag: Vec<(u64, u64)>,
    /// Paced writes in the window: time since the process's previous paced
    /// write, buckets (ns, count).
    #[serde(default)]
    pub send_gaps: Vec<(u64, u64)>,
    /// The run window; `end_ns` is when publishing actually stopped.
    pub window: Window,
    /// Messages were still arriving when the drain timeout ended the run:
    /// "lost" then includes messages that were merely late.
    pub drain_timed_out: bool,
    /// Established connections that broke before the end.
    pub lost_connections: u64,
    /// CPU seconds the load generator itself used.
    pub loadgen_cpu_s: f64,
    /// Seconds the load generator's threads waited for a CPU.
    #[serde(default)]
    pub loadgen_wait_s: f64,
    /// Error messages and how often each happened.
    pub errors: BTreeMap<String, u64>,
}

impl RawResult {
    /// Counts one error, keeping at most a few distinct messages.
    pub fn add_error(&mut self, message: String) {
        self.add_errors(message, 1);
    }

    /// Counts `count` occurrences of an error.
    pub fn add_errors(&mut self, message: String, count: u64) {
        let key = if self.errors.contains_key(&message) || self.errors.len() < MAX_ERROR_KINDS {
            message
        } else {
            "(other errors)".to_owned()
        };
        *self.errors.entry(key).or_default() += count;
    }

    /// Adds another process's result.
    pub fn merge(&mut self, other: &RawResult) {
        self.procs += other.procs;
        self.connect.merge(&other.connect);
        self.subscribe.merge(&other.subscribe);
        self.publish.merge(&other.publish);
        self.receive.merge(&other.receive);
        self.e2e_latency = merge_buckets(&self.e2e_latency, &other.e2e_latency);
        self.pacer = self.pacer.or(other.pacer);
        self.schedule_lag = merge_buckets(&self.schedule_lag, &other.schedule_lag);
        self.send_gaps = merge_buckets(&self.send_gaps, &other.send_gaps);
        self.window = Window {
            start_ns: min_nonzero(self.window.start_ns, other.window.start_ns),
            warm_ns: min_nonzero(self.window.warm_ns, other.window.warm_ns),
            end_ns: self.window.end_ns.max(other.window.end_ns),
        };
        self.drain_timed_out |= other.drain_timed_out;
        self.lost_connections += other.lost_connections;
        self.loadgen_cpu_s += other.loadgen_cpu_s;
        self.loadgen_wait_s += other.loadgen_wait_s;
        for (message, count) in &other.errors {
            self.add_errors(message.clone(), *count);
        }
    }
}

fn min_nonzero(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (x, y) => x.min(y),
    }
}

fn merge_buckets(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut hist = LatencyHist::from_buckets(a);
    hist.merge(&LatencyHist::from_buckets(b));
    hist.to_buckets()
}
