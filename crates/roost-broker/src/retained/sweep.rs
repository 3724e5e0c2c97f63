//! The periodic sweep: removes retained messages whose expiry or TTL ran out
//! even when no lookup meets them, so a store of forgotten topics does not
//! keep its memory. Each tick scans a bounded slice of the index and resumes
//! where the previous tick stopped.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::RetainedStore;

/// How often the sweep runs.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Topics scanned per tick: a full pass over a million messages takes about
/// a hundred ticks, each holding the read lock for a few milliseconds.
pub(crate) const SWEEP_BUDGET: usize = 10_000;

impl RetainedStore {
    /// One sweep tick: scans up to `budget` topics after the previous tick's
    /// last one (wrapping around at the end) and removes the dead ones.
    /// Returns how many it removed. Does nothing while no stored message can
    /// expire.
    pub(crate) fn sweep(&self, now: Instant, budget: usize) -> usize {
        if self.inner.read().mortal == 0 {
            return 0;
        }
        let mut cursor = self.sweep_cursor.lock();
        let mut dead: Vec<String> = Vec::new();
        {
            let inner = self.inner.read();
            let walk = match cursor.as_deref() {
                Some(topic) => inner.index.iter_after(topic),
                None => inner.index.iter(),
            };
            let mut last = None;
            let mut scanned = 0;
            for (topic, entry) in walk.take(budget) {
                scanned += 1;
                if entry.is_dead(now) {
                    dead.push(topic.clone());
                }
                last = Some(topic);
            }
            // A short slice means the end was reached: start over next tick.
            *cursor = if scanned < budget { None } else { last };
        }
        drop(cursor);
        self.purge(&dead, now)
    }

    /// Sweeps every [`SWEEP_EVERY`] until `shutdown` turns true (or its sender
    /// is gone).
    pub(crate) async fn sweep_until(&self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let removed = self.sweep(Instant::now(), SWEEP_BUDGET);
                    if removed > 0 {
                        tracing::debug!(removed, "expired retained messages swept");
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use roost_codec::{PublishProperties, QoS};

    use super::RetainedStore;
    use crate::config::MqttConfig;
    use crate::metrics::Stats;

    fn store_with(ttl: u64, topics: &[&str], now: Instant) -> RetainedStore {
        let store = RetainedStore::new(&MqttConfig {
            retain_ttl: ttl,
            ..MqttConfig::default()
        });
        for topic in topics {
            let set = store.set_from_api(
                topic,
                Bytes::from_static(b"x"),
                QoS::AtMostOnce,
                PublishProperties::default(),
                now,
            );
            assert!(set.is_ok(), "{set:?}");
        }
        store
    }

    #[test]
    fn each_tick_scans_its_budget_and_the_next_resumes_after_it() {
        let now = Instant::now();
        let store = store_with(1, &["a", "b", "c", "d", "e"], now);
        let later = now + Duration::from_secs(2);
        assert_eq!(store.sweep(later, 2), 2);
        assert_eq!(store.sweep(later, 2), 2);
        assert_eq!(store.sweep(later, 2), 1);
        assert_eq!(store.len(), 0);
        let mut stats = Stats::default();
        store.fill_stats(&mut stats);
        assert_eq!((stats.retained_expired, stats.retained_bytes), (5, 0));
    }

    #[test]
    fn a_pass_that_reaches_the_end_starts_over() {
        let now = Instant::now();
        let store = store_with(1, &["a", "b", "c"], now);
        // Nothing is due yet: the first pass only moves the cursor to the end.
        assert_eq!(store.sweep(now, 2), 0);
        assert_eq!(store.sweep(now, 2), 0);
        let later = now + Duration::from_secs(2);
        assert_eq!(store.sweep(later, 10), 3);
    }

    #[test]
    fn no_deadline_no_sweep() {
        let now = Instant::now();
        let store = store_with(0, &["a"], now);
        assert_eq!(store.sweep(now + Duration::from_secs(3600), 10), 0);
        assert_eq!(store.len(), 1);
    }
}
