//! Batch dedupe (cluster-redis.md §3.3): every forwarded batch carries its
//! origin node, the origin's route incarnation and a batch sequence number
//! that only grows within the origin's process. A reader drops a batch at
//! or below the highest sequence it saw from the same origin incarnation,
//! so a batch written twice (the writer retrying after an ambiguous
//! failure: the first `XADD` landed but its reply was lost) or read twice
//! (a reader rewind, a handoff replaying what the reader had already
//! handled) is delivered once.
//!
//! A batch from another incarnation of the origin than the last one seen
//! resets that origin's mark instead of being compared: a restarted origin
//! starts its sequence again, and a Redis restarted without persistence
//! restarts the incarnations too. A retried batch always reaches the inbox
//! before the writer's next batch (one writer thread, retries first), so a
//! reset never lets a duplicate through in practice.

use std::collections::HashMap;

/// Origins remembered at most (one per node that ever sent to this one):
/// beyond it the mark of an arbitrary origin is forgotten (its next retried
/// batch, if any, is delivered again).
const MAX_ORIGINS: usize = 4096;

/// The highest batch seen per origin node.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    marks: HashMap<String, (u64, u64)>,
}

impl Seen {
    /// Whether the batch `seq` of `origin`'s incarnation `incarnation` is
    /// new (deliver it); records it.
    pub(crate) fn fresh(&mut self, origin: &str, incarnation: u64, seq: u64) -> bool {
        if let Some(mark) = self.marks.get_mut(origin) {
            if mark.0 == incarnation && seq <= mark.1 {
                return false;
            }
            *mark = (incarnation, seq);
            return true;
        }
        if self.marks.len() >= MAX_ORIGINS
            && let Some(any) = self.marks.keys().next().cloned()
        {
            self.marks.remove(&any);
        }
        self.marks.insert(origin.to_string(), (incarnation, seq));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_at_or_below_the_mark_of_its_incarnation_is_dropped() {
        let mut seen = Seen::default();
        assert!(seen.fresh("a", 3, 10));
        assert!(!seen.fresh("a", 3, 10), "the same batch again (a retry)");
        assert!(!seen.fresh("a", 3, 9), "an older batch (a rewind)");
        assert!(seen.fresh("a", 3, 12), "sequence numbers may skip");
        assert!(seen.fresh("b", 3, 1), "marks are per origin");
    }

    #[test]
    fn another_incarnation_resets_the_mark() {
        let mut seen = Seen::default();
        assert!(seen.fresh("a", 3, 500));
        assert!(seen.fresh("a", 4, 1), "a restarted origin counts from 1");
        assert!(!seen.fresh("a", 4, 1));
        assert!(seen.fresh("a", 4, 2));
    }

    #[test]
    fn the_number_of_origins_is_bounded() {
        let mut seen = Seen::default();
        for i in 0..MAX_ORIGINS + 10 {
            assert!(seen.fresh(&format!("n{i}"), 1, 1));
        }
        assert!(seen.marks.len() <= MAX_ORIGINS);
    }
}
