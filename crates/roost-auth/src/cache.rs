//! A small bounded cache with a time-to-live, evicting oldest-inserted first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

struct Entry<V> {
    value: V,
    expires: Instant,
    generation: u64,
}

struct Inner<K, V> {
    map: HashMap<K, Entry<V>>,
    order: VecDeque<(K, u64)>,
    next_generation: u64,
}

/// Entries live `ttl`; beyond `max_entries` the oldest insertions go first.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner<K, V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache; `max_entries` 0 or `ttl` zero disables storing.
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_generation: 0,
            }),
        }
    }

    fn enabled(&self) -> bool {
        self.max_entries > 0 && !self.ttl.is_zero()
    }

    /// The live value for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut inner = self.inner.lock();
        let now = Instant::now();
        match inner.map.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                inner.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` for `key`, evicting the oldest entries beyond the bound.
    pub(crate) fn insert(&self, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock();
        let generation = inner.next_generation;
        inner.next_generation += 1;
        let expires = Instant::now() + self.ttl;
        inner.map.insert(
            key.clone(),
            Entry {
                value,
                expires,
                generation,
            },
        );
        inner.order.push_back((key, generation));
        while inner.map.len() > self.max_entries {
            let Some((old, g)) = inner.order.pop_front() else {
                break;
            };
            if inner.map.get(&old).is_some_and(|e| e.generation == g) {
                inner.map.remove(&old);
            }
        }
        // Re-inserted keys leave stale queue items behind; keep the queue bounded.
        if inner.order.len() > 2 * self.max_entries + 16 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    /// Number of stored entries (expired ones included until touched).
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.map.clear();
        inner.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_max_entries_oldest_first() {
        let c = TtlCache::new(Duration::from_secs(60), 2);
        c.insert(1, "a");
        c.insert(2, "b");
        c.insert(1, "a2");
        c.insert(3, "c");
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&2), None);
        assert_eq!(c.get(&1), Some("a2"));
        assert_eq!(c.get(&3), Some("c"));
    }

    #[test]
    fn entries_expire() {
        let c = TtlCache::new(Duration::from_millis(1), 10);
        c.insert(1, 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.get(&1), None);
    }

    #[test]
    fn queue_stays_bounded_under_reinsertion() {
        let c = TtlCache::new(Duration::from_secs(60), 4);
        for i in 0..1000 {
            c.insert(i % 3, i);
        }
        assert!(c.inner.lock().order.len() <= 2 * 4 + 16 + 1);
        assert_eq!(c.len(), 3);
    }
}
