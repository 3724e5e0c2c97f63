//! When to wake which hibernating connection: its keep-alive or credentials
//! deadline.
//!
//! Ids sit in coarse buckets ([`TICK`]), 4 bytes each, and a bucket is due
//! at its end, so a deadline is met at most one tick late. An exact ordered
//! set of `(Instant, id)` cost ~50 B per sleeper in B-tree nodes, the
//! largest share of the dormitory's own bookkeeping.
//!
//! A woken connection's entry stays where it is: it is not worth finding.
//! A connection that sleeps again gets a new id (ids are reused only after
//! 2^32 hibernations), so a stale entry finds no bed and is ignored, and [`Deadlines::sweep`]
//! drops the stale entries once they could outnumber the live ones.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The buckets' width: how late a deadline may be met.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Stale entries tolerated beyond the live ones before a sweep.
const SWEEP_SLACK: usize = 1024;

#[derive(Debug)]
pub(crate) struct Deadlines {
    /// Tick 0 starts here.
    epoch: Instant,
    /// Ids by the tick at whose end they are due.
    buckets: BTreeMap<u64, Vec<u32>>,
    /// Entries in all buckets, stale ones included.
    entries: usize,
}

impl Deadlines {
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            buckets: BTreeMap::new(),
            entries: 0,
        }
    }

    /// Wakes `id` at `at`, or up to one tick later.
    pub(crate) fn insert(&mut self, at: Instant, id: u32) {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        let tick = u64::try_from(since.div_ceil(TICK.as_nanos())).unwrap_or(u64::MAX);
        self.buckets.entry(tick).or_default().push(id);
        self.entries += 1;
    }

    /// When the first bucket is due.
    pub(crate) fn next(&self) -> Option<Instant> {
        let (&tick, _) = self.buckets.first_key_value()?;
        let offset = u32::try_from(tick)
            .ok()
            .and_then(|tick| TICK.checked_mul(tick))?;
        self.epoch.checked_add(offset)
    }

    /// Moves the ids of every bucket due at `now` into `due` (stale ones
    /// too: the caller finds their beds empty).
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<u32>) {
        while let Some(at) = self.next()
            && at <= now
        {
            if let Some((_, ids)) = self.buckets.pop_first() {
                self.entries -= ids.len();
                due.extend(ids);
            }
        }
    }

    /// Drops the entries of connections no longer asleep, when they may
    /// outnumber the `live` sleepers (amortized: at least `live` + slack
    /// wakes between two sweeps).
    pub(crate) fn sweep(&mut self, live: usize, asleep: impl Fn(u32) -> bool) {
        if self.entries <= live.saturating_mul(2).saturating_add(SWEEP_SLACK) {
            return;
        }
        self.buckets.retain(|_, ids| {
            ids.retain(|&id| asleep(id));
            ids.shrink_to_fit();
            !ids.is_empty()
        });
        self.entries = self.buckets.values().map(Vec::len).sum();
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_due_no_earlier_than_its_deadline_and_at_most_one_tick_later() {
        let epoch = Instant::now();
        let mut deadlines = Deadlines::new(epoch);
        let at = epoch + Duration::from_millis(1_234);
        deadlines.insert(at, 7);
        let Some(next) = deadlines.next() else {
            panic!("no bucket after an insert");
        };
        assert!(next >= at && next - at < TICK, "due at {:?}", next - epoch);

        let mut due = Vec::new();
        deadlines.take_due(at - Duration::from_millis(1), &mut due);
        assert!(due.is_empty());
        deadlines.take_due(next, &mut due);
        assert_eq!(due, [7]);
        assert_eq!(deadlines.next(), None);
        assert_eq!(deadlines.len(), 0);
    }

    #[test]
    fn buckets_fall_due_in_order_and_only_once() {
        let epoch = Instant::now();
        let mut deadlines = Deadlines::new(epoch);
        deadlines.insert(epoch + Duration::from_secs(3), 3);
        deadlines.insert(epoch + Duration::from_secs(1), 1);
        deadlines.insert(epoch + Duration::from_millis(1_050), 2);
        let mut due = Vec::new();
        deadlines.take_due(epoch + Duration::from_secs(2), &mut due);
        assert_eq!(due, [1, 2]);
        deadlines.take_due(epoch + Duration::from_secs(2), &mut due);
        assert_eq!(due, [1, 2]);
        deadlines.take_due(epoch + Duration::from_secs(4), &mut due);
        assert_eq!(due, [1, 2, 3]);
    }

    #[test]
    fn a_deadline_already_past_is_due_at_once() {
        let epoch = Instant::now();
        let mut deadlines = Deadlines::new(epoch + Duration::from_secs(5));
        deadlines.insert(epoch, 1);
        let mut due = Vec::new();
        deadlines.take_due(epoch + Duration::from_secs(5), &mut due);
        assert_eq!(due, [1]);
    }

    #[test]
    fn a_sweep_drops_woken_ids_only_once_they_could_outnumber_the_sleepers() {
        let epoch = Instant::now();
        let mut deadlines = Deadlines::new(epoch);
        let count = 3 * SWEEP_SLACK as u32;
        for id in 0..count {
            deadlines.insert(epoch + Duration::from_secs(60 + u64::from(id % 7)), id);
        }
        let asleep = |id: u32| id.is_multiple_of(10);
        let sleepers = (0..count).filter(|&id| asleep(id)).count();
        // Few enough stale entries: nothing is swept.
        deadlines.sweep(count as usize, asleep);
        assert_eq!(deadlines.len(), count as usize);
        deadlines.sweep(sleepers, asleep);
        assert_eq!(deadlines.len(), sleepers);

        let mut due = Vec::new();
        deadlines.take_due(epoch + Duration::from_secs(120), &mut due);
        due.sort_unstable();
        let expected: Vec<u32> = (0..count).filter(|&id| asleep(id)).collect();
        assert_eq!(due, expected);
    }
}
