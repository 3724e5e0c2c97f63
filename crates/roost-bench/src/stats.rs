//! Counters each client returns at the end of a run, summable across clients
//! and across processes (they travel as JSON from `--procs` children).

use serde::{Deserialize, Serialize};

use crate::seq::SeqCounts;

/// Publishing side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubStats {
    /// Publishers that ran.
    pub clients: u64,
    /// Messages written.
    pub sent: u64,
    /// Messages written inside the measurement window.
    pub sent_window: u64,
    /// QoS 1/2 messages the broker acknowledged with success.
    pub acked: u64,
    /// QoS 1/2 messages the broker refused (reason code ≥ 0x80).
    pub rejected: u64,
    /// QoS 1/2 messages still unacknowledged when the publisher gave up waiting.
    pub unacked: u64,
    /// Largest delay behind the pacing schedule, nanoseconds (open-loop rate only).
    pub max_lag_ns: u64,
}

impl PubStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &PubStats) {
        self.clients += other.clients;
        self.sent += other.sent;
        self.sent_window += other.sent_window;
        self.acked += other.acked;
        self.rejected += other.rejected;
        self.unacked += other.unacked;
        self.max_lag_ns = self.max_lag_ns.max(other.max_lag_ns);
    }
}

/// Receiving side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecvStats {
    /// Receivers that ran.
    pub clients: u64,
    /// PUBLISH packets received (duplicates included).
    pub received: u64,
    /// PUBLISH packets received inside the measurement window.
    pub received_window: u64,
    /// Received payloads without a benchmark header (too short or foreign).
    pub foreign: u64,
    /// Sequence accounting over the benchmark payloads.
    pub seq: SeqCounts,
    /// Monotonic time of the last receive (0 if none).
    pub last_ns: u64,
}

impl RecvStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &RecvStats) {
        self.clients += other.clients;
        self.received += other.received;
        self.received_window += other.received_window;
        self.foreign += other.foreign;
        self.seq.merge(&other.seq);
        self.last_ns = self.last_ns.max(other.last_ns);
    }
}
