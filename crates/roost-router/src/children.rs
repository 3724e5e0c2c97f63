//! The literal children of a trie node, keyed by their level text.
//!
//! Boxed, and made by the first child: most nodes are leaves (the last
//! level of a filter, one per subscription in a wide trie), where an empty
//! `HashMap` cost 32 bytes inline in every node, each node sitting inline
//! in its parent's table. Node 56 → 32 bytes, a parent's table slot 72 → 48
//! (docs/performance.md §5, "A subscription").

use std::collections::HashMap;
use std::collections::hash_map::{Entry, Iter, Values};

use crate::hasher::LevelHasher;
use crate::trie::Node;

/// The table. Topic levels come from clients, so it must resist hash
/// flooding: std's randomly keyed SipHash-1-3 (keys
/// drawn once per process, so the hasher takes no room in each node).
/// Measured with `benches/trie.rs`: foldhash (randomly seeded, but with no
/// claim of flooding resistance) made a whole route 16-21% faster (190 -> 149
/// ns with 1k subscriptions, 446 -> 355 ns with 100k, 809 -> 678 ns with 1M).
/// Kept SipHash: secure by default; revisit if routing shows up in profiles.
type Map<K> = HashMap<Box<str>, Node<K>, LevelHasher>;

#[derive(Debug)]
pub(crate) struct Children<K>(Option<Box<Map<K>>>);

impl<K> Default for Children<K> {
    fn default() -> Self {
        Self(None)
    }
}

impl<K> Children<K> {
    pub(crate) fn get(&self, level: &str) -> Option<&Node<K>> {
        self.0.as_ref()?.get(level)
    }

    pub(crate) fn get_mut(&mut self, level: &str) -> Option<&mut Node<K>> {
        self.0.as_mut()?.get_mut(level)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Node<K>> {
        self.0
            .iter()
            .flat_map(|map| -> Values<'_, Box<str>, Node<K>> { map.values() })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Box<str>, &Node<K>)> {
        self.0
            .iter()
            .flat_map(|map| -> Iter<'_, Box<str>, Node<K>> { map.iter() })
    }

    /// The child at `level`, made (with its table) if missing.
    pub(crate) fn get_or_insert(&mut self, level: &str) -> &mut Node<K> {
        let map = self.0.get_or_insert_default();
        match map.entry(Box::from(level)) {
            Entry::Occupied(child) => child.into_mut(),
            Entry::Vacant(slot) => slot.insert(Node::default()),
        }
    }

    /// Removes the child at `level`; the table goes with the last child and
    /// shrinks when mostly empty.
    pub(crate) fn remove(&mut self, level: &str) {
        let Some(map) = self.0.as_mut() else {
            return;
        };
        map.remove(level);
        if map.is_empty() {
            self.0 = None;
        } else if map.capacity() > 64 && map.len() * 4 < map.capacity() {
            map.shrink_to(map.len() * 2);
        }
    }

    /// Every child, leaving none (and no table).
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Node<K>> {
        self.0.take().into_iter().flat_map(|map| map.into_values())
    }
}

#[cfg(test)]
mod tests {
    use super::Children;
    use crate::trie::Node;

    #[test]
    fn a_leaf_node_holds_no_table() {
        // Four pointers: literal children, `+`, `#` and exact subscribers.
        assert_eq!(std::mem::size_of::<Node<u32>>(), 32);
        assert!(Children::<u32>::default().0.is_none());
    }

    #[test]
    fn the_table_comes_with_the_first_child_and_goes_with_the_last() {
        let mut children = Children::<u32>::default();
        children.get_or_insert("a");
        children.get_or_insert("b");
        assert_eq!(children.len(), 2);
        assert!(children.get("a").is_some() && children.get("c").is_none());
        children.remove("a");
        assert!(children.0.is_some());
        children.remove("b");
        assert!(children.0.is_none(), "the last child took the table");
        children.remove("b");
        assert!(children.is_empty());
    }
}
