//! A small ordered map: a `Vec` of entries scanned linearly while short, with a
//! hash index added once it grows. Subscriber lists are usually one or two
//! entries (a `Vec` is the smallest and fastest thing to iterate on the route
//! path), but a popular filter can have 100k subscribers, where a linear scan
//! on every SUBSCRIBE would be quadratic.
//!
//! The first entry lives inline (no allocation): a filter with a single
//! subscriber, and a subscriber with a single filter, are the common case.

use std::collections::HashMap;
use std::hash::{Hash, RandomState};

use smallvec::SmallVec;

/// Above this many entries a hash index is kept beside the vector.
const INDEX_ABOVE: usize = 16;
/// The index is dropped again when the list shrinks below this (hysteresis, so
/// a list hovering at the threshold does not rebuild on every change).
const UNINDEX_BELOW: usize = INDEX_ABOVE / 2;

/// Entries in a dense vector (iteration order = insertion order, except that a
/// removal moves the last entry into the freed slot), looked up by key.
#[derive(Debug, Clone)]
pub(crate) struct KeyedVec<K, V> {
    items: SmallVec<[(K, V); 1]>,
    /// Key -> position in `items`; present only when `items` is long. Boxed
    /// so the common short list costs one pointer for it, not a whole map.
    #[expect(
        clippy::box_collection,
        reason = "an unboxed map is 48 bytes in every short list that never needs it"
    )]
    index: Option<Box<HashMap<K, usize, RandomState>>>,
}

impl<K, V> Default for KeyedVec<K, V> {
    fn default() -> Self {
        Self {
            items: SmallVec::new(),
            index: None,
        }
    }
}

impl<K: Eq + Hash + Clone, V> KeyedVec<K, V> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The entries, densely packed.
    pub(crate) fn items(&self) -> &[(K, V)] {
        &self.items
    }

    /// Position of `key` in [`Self::items`].
    pub(crate) fn position(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.items.iter().position(|(k, _)| k == key),
        }
    }

    /// The value stored under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let at = self.position(key)?;
        self.items.get(at).map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(at) = self.position(&key)
            && let Some((_, slot)) = self.items.get_mut(at)
        {
            return Some(std::mem::replace(slot, value));
        }
        let at = self.items.len();
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), at);
        }
        self.items.push((key, value));
        if self.index.is_none() && self.items.len() > INDEX_ABOVE {
            self.index = Some(Box::new(
                self.items
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect(),
            ));
        }
        None
    }

    /// Removes `key`. Returns the position it had and its value; the entry
    /// that was last (if any other) now sits at that position.
    pub(crate) fn remove(&mut self, key: &K) -> Option<(usize, V)> {
        let at = match &mut self.index {
            Some(index) => index.remove(key)?,
            None => self.items.iter().position(|(k, _)| k == key)?,
        };
        if at >= self.items.len() {
            return None;
        }
        let (_, value) = self.items.swap_remove(at);
        if let Some(index) = &mut self.index {
            if let Some((moved, _)) = self.items.get(at)
                && let Some(slot) = index.get_mut(moved)
            {
                *slot = at;
            }
            if self.items.len() < UNINDEX_BELOW {
                self.index = None;
            }
        }
        if self.items.capacity() > 64 && self.items.len() * 4 < self.items.capacity() {
            // Cannot fail: the new capacity holds every entry.
            let _ = self.items.try_grow(self.items.len() * 2);
        }
        Some((at, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_an_index_and_stays_consistent() {
        let mut map = KeyedVec::default();
        for i in 0..100u32 {
            assert_eq!(map.insert(i, i * 10), None);
        }
        assert!(map.index.is_some());
        assert_eq!(map.insert(7, 1), Some(70));
        for i in (0..100u32).step_by(3) {
            assert!(map.remove(&i).is_some());
            assert_eq!(map.get(&i), None);
        }
        for (at, (k, _)) in map.items().iter().enumerate() {
            assert_eq!(map.position(k), Some(at));
        }
        for i in 0..100u32 {
            map.remove(&i);
        }
        assert!(map.is_empty());
        assert!(map.index.is_none());
    }

    #[test]
    fn remove_reports_the_slot_the_last_entry_moved_into() {
        let mut map = KeyedVec::default();
        for i in 0..4u8 {
            map.insert(i, ());
        }
        assert_eq!(map.remove(&1), Some((1, ())));
        assert_eq!(map.items()[1].0, 3);
        assert_eq!(map.remove(&9), None);
    }
}
