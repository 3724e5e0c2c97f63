//! Per-publisher sequence accounting on the receiving side: how many
//! distinct messages arrived, how many twice, how many out of order, and
//! which sequence numbers are still missing.
//!
//! Missing numbers are kept as ranges, so a burst of a million lost QoS 0
//! messages costs one map entry, and a late arrival splits its range.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Totals of sequence accounting, summable across receivers and processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqCounts {
    /// Distinct messages received.
    pub unique: u64,
    /// Messages received again after a first copy.
    pub duplicates: u64,
    /// Messages that arrived after a later message of the same publisher.
    pub reordered: u64,
    /// Sequence numbers below the highest one seen that never arrived.
    pub gaps: u64,
}

impl SeqCounts {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &SeqCounts) {
        self.unique += other.unique;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.gaps += other.gaps;
    }
}

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next number, or one past a gap: new and in order.
    InOrder,
    /// New, but a higher number had already arrived: it fills a gap.
    Reordered,
    /// Already received.
    Duplicate,
}

/// Sequence state of one publisher as seen by one receiver.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// One past the highest sequence number seen.
    next: u64,
    /// Missing numbers below `next`: start → end (exclusive).
    missing: BTreeMap<u64, u64>,
    counts: SeqCounts,
}

impl SeqTracker {
    /// Records the arrival of `seq`.
    pub fn observe(&mut self, seq: u32) -> Arrival {
        let seq = u64::from(seq);
        if seq >= self.next {
            if seq > self.next {
                self.missing.insert(self.next, seq);
            }
            self.next = seq + 1;
            self.counts.unique += 1;
            return Arrival::InOrder;
        }
        let hole = self
            .missing
            .range(..=seq)
            .next_back()
            .map(|(&start, &end)| (start, end));
        match hole {
            Some((start, end)) if seq < end => {
                self.missing.remove(&start);
                if start < seq {
                    self.missing.insert(start, seq);
                }
                if seq + 1 < end {
                    self.missing.insert(seq + 1, end);
                }
                self.counts.unique += 1;
                self.counts.reordered += 1;
                Arrival::Reordered
            }
            _ => {
                self.counts.duplicates += 1;
                Arrival::Duplicate
            }
        }
    }

    /// Totals so far; `gaps` counts the numbers still missing below the highest seen.
    pub fn counts(&self) -> SeqCounts {
        SeqCounts {
            gaps: self.missing.iter().map(|(start, end)| end - start).sum(),
            ..self.counts
        }
    }
}

/// The trackers of one receiver, one per publisher it hears from.
#[derive(Debug, Default)]
pub struct SeqBook {
    trackers: HashMap<u32, SeqTracker>,
}

impl SeqBook {
    /// Records the arrival of `seq` from `publisher`.
    pub fn observe(&mut self, publisher: u32, seq: u32) -> Arrival {
        self.trackers.entry(publisher).or_default().observe(seq)
    }

    /// Totals over every publisher.
    pub fn counts(&self) -> SeqCounts {
        let mut total = SeqCounts::default();
        for tracker in self.trackers.values() {
            total.merge(&tracker.counts());
        }
        total
    }
}
