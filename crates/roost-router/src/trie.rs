//! The subscription trie: one node per filter level, literal children in a
//! hash map, `+` in a dedicated child, `#` in a dedicated subscriber slot.
//!
//! Every walk is a loop, never recursion: a 65,535-byte filter can have
//! 32,768 levels, and recursing that deep would overflow a worker's stack.
//! For the same reason dropping a node tears its subtree down iteratively.

use smallvec::SmallVec;

use crate::children::Children;
use crate::keyed::KeyedVec;
use crate::shared::SharedGroup;
use crate::{Routed, SubscriberKey};
use roost_codec::topic::{FilterLevel, filter_levels};

/// One level of the trie. The root stands for "before the first level".
#[derive(Debug)]
pub(crate) struct Node<K> {
    /// Nodes are inline in their parent's table, not boxed: boxing them
    /// saved 67 bytes per leaf subscription but cost up to 9% route time at
    /// 1M subscriptions (measured). The table itself is boxed and made by
    /// the first child ([`Children`]).
    children: Children<K>,
    plus: Option<Box<Node<K>>>,
    /// Subscriptions to `<path to here>/#` (or `#` at the root).
    hash: Option<Box<Subscribers<K>>>,
    /// Subscriptions whose filter ends exactly here.
    exact: Option<Box<Subscribers<K>>>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Self {
            children: Children::default(),
            plus: None,
            hash: None,
            exact: None,
        }
    }
}

impl<K> Drop for Node<K> {
    fn drop(&mut self) {
        if self.is_leaf() {
            return;
        }
        // Move descendants that have children of their own onto a heap stack;
        // each is then dropped with no children left, so depth stays 1.
        let mut stack: Vec<Node<K>> = Vec::new();
        self.detach_children(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.detach_children(&mut stack);
        }
    }
}

/// The subscriptions stored in one slot (exact or `#`) of one node.
#[derive(Debug)]
pub(crate) struct Subscribers<K> {
    /// Non-shared subscriptions, one per subscriber key.
    pub(crate) direct: KeyedVec<K, Routed>,
    /// Shared groups at this filter. Usually none (boxed: 8 bytes in every
    /// slot instead of 24), else one or two, so a `Vec` searched by name;
    /// every matching group is visited per message anyway.
    #[expect(
        clippy::box_collection,
        reason = "most slots have no shared group: 8 bytes instead of an empty Vec's 24"
    )]
    shared: Option<Box<Vec<SharedGroup<K>>>>,
}

impl<K> Default for Subscribers<K> {
    fn default() -> Self {
        Self {
            direct: KeyedVec::default(),
            shared: None,
        }
    }
}

impl<K: SubscriberKey> Subscribers<K> {
    pub(crate) fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.shared.is_none()
    }

    /// The shared groups at this filter.
    pub(crate) fn groups(&self) -> &[SharedGroup<K>] {
        self.shared.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Inserts or replaces; returns the replaced subscription.
    fn insert(&mut self, filter: &str, key: K, group: Option<&str>, sub: Routed) -> Option<Routed> {
        let Some(name) = group else {
            return self.direct.insert(key, sub);
        };
        let groups = self.shared.get_or_insert_default();
        if let Some(existing) = groups.iter_mut().find(|g| &*g.name == name) {
            return existing.members.insert(key, sub);
        }
        let mut created = SharedGroup::new(name, filter);
        created.members.insert(key, sub);
        groups.push(created);
        None
    }

    /// Removes; returns the removed subscription.
    fn remove(&mut self, key: &K, group: Option<&str>) -> Option<Routed> {
        let Some(name) = group else {
            return self.direct.remove(key).map(|(_, sub)| sub);
        };
        let groups = self.shared.as_mut()?;
        let at = groups.iter().position(|g| &*g.name == name)?;
        let group = groups.get_mut(at)?;
        let removed = group.remove(key);
        if group.members.is_empty() {
            groups.swap_remove(at);
            if groups.is_empty() {
                self.shared = None;
            }
        }
        removed
    }

    /// The subscription of `key` in this slot.
    pub(crate) fn get(&self, key: &K, group: Option<&str>) -> Option<&Routed> {
        match group {
            None => self.direct.get(key),
            Some(name) => self.group(name)?.members.get(key),
        }
    }

    /// The shared group called `name`.
    pub(crate) fn group(&self, name: &str) -> Option<&SharedGroup<K>> {
        self.groups().iter().find(|g| &*g.name == name)
    }
}

impl<K> Node<K> {
    fn is_leaf(&self) -> bool {
        self.children.is_empty() && self.plus.is_none()
    }

    fn detach_children(&mut self, stack: &mut Vec<Node<K>>) {
        for child in self.children.take_all() {
            if !child.is_leaf() {
                stack.push(child);
            }
        }
        if let Some(plus) = self.plus.take() {
            stack.push(*plus);
        }
    }

    fn child(&self, level: FilterLevel<'_>) -> Option<&Node<K>> {
        match level {
            FilterLevel::Literal(text) => self.children.get(text),
            FilterLevel::Plus => self.plus.as_deref(),
            FilterLevel::Hash => None,
        }
    }

    fn child_mut(&mut self, level: FilterLevel<'_>) -> Option<&mut Node<K>> {
        match level {
            FilterLevel::Literal(text) => self.children.get_mut(text),
            FilterLevel::Plus => self.plus.as_deref_mut(),
            FilterLevel::Hash => None,
        }
    }

    fn edge_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    /// Nothing but (at most) the one child on the path being pruned.
    fn is_prunable(&self, last_on_path: bool) -> bool {
        self.exact.is_none()
            && self.hash.is_none()
            && self.edge_count() == usize::from(!last_on_path)
    }

    /// Nodes below this one (for tests and metrics).
    pub(crate) fn descendant_count(&self) -> usize {
        let mut count = 0;
        let mut stack: Vec<&Node<K>> = vec![self];
        while let Some(node) = stack.pop() {
            for child in node.children.values().chain(node.plus.as_deref()) {
                count += 1;
                stack.push(child);
            }
        }
        count
    }

    /// Calls `visit` with every subscriber slot and its filter, rebuilt from
    /// the path (`a/+/#`). A loop with its own stack, like every walk here;
    /// it builds one string per node, so it is for rare callers (purging a
    /// key whose filters are unknown, tests, diagnostics), not per message.
    pub(crate) fn for_each_slot<'n>(&'n self, mut visit: impl FnMut(&str, &'n Subscribers<K>)) {
        // (node, its filter, whether it is the root: the root has no level,
        // while a node reached through an empty level has the filter "").
        let mut stack: Vec<(&'n Node<K>, String, bool)> = vec![(self, String::new(), true)];
        while let Some((node, path, root)) = stack.pop() {
            let below = |level: &str| {
                if root {
                    level.to_string()
                } else {
                    format!("{path}/{level}")
                }
            };
            if let Some(hash) = node.hash.as_deref() {
                visit(&below("#"), hash);
            }
            if let Some(exact) = node.exact.as_deref() {
                visit(&path, exact);
            }
            for (level, child) in node.children.iter() {
                stack.push((child, below(level), false));
            }
            if let Some(plus) = node.plus.as_deref() {
                stack.push((plus, below("+"), false));
            }
        }
    }

    /// The subscriber slot of `filter`, if the path exists.
    pub(crate) fn slot(&self, filter: &str) -> Option<&Subscribers<K>> {
        let mut node = self;
        for level in filter_levels(filter) {
            if level == FilterLevel::Hash {
                return node.hash.as_deref();
            }
            node = node.child(level)?;
        }
        node.exact.as_deref()
    }

    /// The subscriber slot of `filter`, if it exists, for changing it.
    fn slot_mut(&mut self, filter: &str) -> Option<&mut Subscribers<K>> {
        let mut node = self;
        for level in filter_levels(filter) {
            if level == FilterLevel::Hash {
                return node.hash.as_deref_mut();
            }
            node = node.child_mut(level)?;
        }
        node.exact.as_deref_mut()
    }

    /// Calls `visit` for every slot whose filter matches `topic_levels`.
    /// `dollar` applies the rule that wildcards at the first level do not
    /// match `$` topics [MQTT-4.7.2-1].
    pub(crate) fn for_each_match<'n>(
        &'n self,
        topic_levels: &[&str],
        dollar: bool,
        mut visit: impl FnMut(&'n Subscribers<K>),
    ) {
        let mut stack: SmallVec<[(&'n Node<K>, usize); 16]> = SmallVec::new();
        stack.push((self, 0));
        while let Some((node, depth)) = stack.pop() {
            let wildcards = !(dollar && depth == 0);
            if wildcards && let Some(hash) = node.hash.as_deref() {
                visit(hash);
            }
            let Some(level) = topic_levels.get(depth) else {
                if let Some(exact) = node.exact.as_deref() {
                    visit(exact);
                }
                continue;
            };
            if wildcards && let Some(plus) = node.plus.as_deref() {
                stack.push((plus, depth + 1));
            }
            if let Some(child) = node.children.get(level) {
                stack.push((child, depth + 1));
            }
        }
    }
}

impl<K: SubscriberKey> Node<K> {
    /// Stores a subscription, creating the path; returns the replaced one.
    pub(crate) fn insert(
        &mut self,
        filter: &str,
        key: K,
        group: Option<&str>,
        sub: Routed,
    ) -> Option<Routed> {
        // Fast path, no allocation: the filter already has a slot.
        if let Some(slot) = self.slot_mut(filter) {
            return slot.insert(filter, key, group, sub);
        }
        let mut node = self;
        let mut hash = false;
        for level in filter_levels(filter) {
            node = match level {
                FilterLevel::Hash => {
                    hash = true;
                    break;
                }
                FilterLevel::Plus => node.plus.get_or_insert_with(Box::default),
                FilterLevel::Literal(text) => node.children.get_or_insert(text),
            };
        }
        let slot = if hash {
            &mut node.hash
        } else {
            &mut node.exact
        };
        slot.get_or_insert_with(Box::default)
            .insert(filter, key, group, sub)
    }

    /// Removes a subscription and prunes the nodes it leaves empty; returns it.
    pub(crate) fn remove(&mut self, filter: &str, key: &K, group: Option<&str>) -> Option<Routed> {
        let mut node = &mut *self;
        let mut hash = false;
        for level in filter_levels(filter) {
            if level == FilterLevel::Hash {
                hash = true;
                break;
            }
            node = node.child_mut(level)?;
        }
        let slot = if hash {
            &mut node.hash
        } else {
            &mut node.exact
        };
        let subscribers = slot.as_deref_mut()?;
        let removed = subscribers.remove(key, group)?;
        if subscribers.is_empty() {
            *slot = None;
            self.prune(filter);
        }
        Some(removed)
    }

    /// Cuts the longest empty tail of `filter`'s path. Two passes (find the
    /// cut read-only, then detach it) so no parent pointers are needed.
    fn prune(&mut self, filter: &str) {
        let path = || filter_levels(filter).take_while(|l| *l != FilterLevel::Hash);
        let mut cut = None;
        let mut node = &*self;
        let mut levels = path().enumerate().peekable();
        while let Some((depth, level)) = levels.next() {
            let Some(child) = node.child(level) else {
                return;
            };
            node = child;
            if node.is_prunable(levels.peek().is_none()) {
                cut.get_or_insert(depth);
            } else {
                cut = None;
            }
        }
        let Some(cut) = cut else {
            return;
        };
        let mut parent = &mut *self;
        for level in path().take(cut) {
            let Some(next) = parent.child_mut(level) else {
                return;
            };
            parent = next;
        }
        match path().nth(cut) {
            Some(FilterLevel::Literal(text)) => parent.children.remove(text),
            Some(FilterLevel::Plus) => parent.plus = None,
            Some(FilterLevel::Hash) | None => {}
        }
    }
}
