//! Retained messages: a trie keyed by topic levels, queried by filter.
//!
//! Kept apart from the subscription trie (as Mosquitto does): here the
//! stored keys are topic names and the query is a filter, the reverse of
//! routing. Children are `BTreeMap`s: ordered iteration gives stable
//! pagination, and ordered maps cannot be hash-flooded.

use std::collections::BTreeMap;
use std::collections::btree_map::Range;
use std::fmt;
use std::ops::Bound;

use smallvec::SmallVec;

use roost_codec::topic::{FilterLevel, filter_levels, is_dollar_topic};

/// One topic level. The root stands for "before the first level" and never
/// holds a message (every topic has at least one level).
struct RetainedNode<M> {
    children: BTreeMap<Box<str>, RetainedNode<M>>,
    msg: Option<M>,
}

impl<M> Default for RetainedNode<M> {
    fn default() -> Self {
        Self {
            children: BTreeMap::new(),
            msg: None,
        }
    }
}

impl<M> RetainedNode<M> {
    /// The node of `topic` below this one, if it exists.
    fn descendant_mut(&mut self, topic: &str) -> Option<&mut RetainedNode<M>> {
        let mut node = self;
        for level in topic.split('/') {
            node = node.children.get_mut(level)?;
        }
        Some(node)
    }
}

impl<M> Drop for RetainedNode<M> {
    fn drop(&mut self) {
        // Iterative teardown: a topic can have 32,768 levels.
        if self.children.is_empty() {
            return;
        }
        let mut stack: Vec<RetainedNode<M>> = Vec::new();
        stack.extend(std::mem::take(&mut self.children).into_values());
        while let Some(mut node) = stack.pop() {
            stack.extend(std::mem::take(&mut node.children).into_values());
        }
    }
}

/// Retained messages indexed by topic, queried by filter.
///
/// `M` is whatever the broker stores per topic (typically `Arc<Message>`,
/// so [`RetainedIndex::matches`] clones cheaply). Bounding the number and size
/// of retained messages is the caller's policy; this index only stores them.
pub struct RetainedIndex<M> {
    root: RetainedNode<M>,
    len: usize,
}

impl<M> fmt::Debug for RetainedIndex<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedIndex")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<M: Clone> Default for RetainedIndex<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Clone> RetainedIndex<M> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            root: RetainedNode::default(),
            len: 0,
        }
    }

    /// Stores `msg` as the retained message of `topic`; returns the one it replaces.
    pub fn insert(&mut self, topic: &str, msg: M) -> Option<M> {
        // Fast path, no allocation: the topic's node exists (a device
        // updating its retained state).
        if let Some(node) = self.root.descendant_mut(topic) {
            let previous = node.msg.replace(msg);
            if previous.is_none() {
                self.len += 1;
            }
            return previous;
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        let previous = node.msg.replace(msg);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes the retained message of `topic`, freeing nodes left empty.
    pub fn remove(&mut self, topic: &str) -> Option<M> {
        let node = self.root.descendant_mut(topic)?;
        let removed = node.msg.take()?;
        self.len -= 1;
        if node.children.is_empty() {
            self.prune(topic);
        }
        Some(removed)
    }

    /// Cuts the longest tail of `topic`'s path that holds nothing else.
    fn prune(&mut self, topic: &str) {
        let mut cut = None;
        let mut node = &self.root;
        let mut levels = topic.split('/').enumerate().peekable();
        while let Some((depth, level)) = levels.next() {
            let Some(child) = node.children.get(level) else {
                return;
            };
            node = child;
            let edges_allowed = usize::from(levels.peek().is_some());
            if node.msg.is_none() && node.children.len() == edges_allowed {
                cut.get_or_insert(depth);
            } else {
                cut = None;
            }
        }
        let Some(cut) = cut else {
            return;
        };
        let mut parent = &mut self.root;
        for level in topic.split('/').take(cut) {
            let Some(next) = parent.children.get_mut(level) else {
                return;
            };
            parent = next;
        }
        if let Some(level) = topic.split('/').nth(cut) {
            parent.children.remove(level);
        }
    }

    /// The retained message of `topic`.
    pub fn get(&self, topic: &str) -> Option<&M> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.msg.as_ref()
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of trie nodes below the root: 0 when empty. For tests (pruning)
    /// and metrics; walks the whole index.
    pub fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += node.children.len();
            stack.extend(node.children.values());
        }
        count
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends (clones of) every retained message whose topic matches
    /// `filter`, in no particular order. Wildcards at the first level skip
    /// `$` topics [MQTT-4.7.2-1]; `a/#` includes `a` itself.
    pub fn matches(&self, filter: &str, out: &mut Vec<M>) {
        let levels: SmallVec<[FilterLevel<'_>; 16]> = filter_levels(filter).collect();
        let mut stack: Vec<(&RetainedNode<M>, usize)> = vec![(&self.root, 0)];
        while let Some((node, depth)) = stack.pop() {
            let Some(level) = levels.get(depth) else {
                out.extend(node.msg.iter().cloned());
                continue;
            };
            let first = depth == 0;
            match *level {
                FilterLevel::Literal(text) => {
                    if let Some(child) = node.children.get(text) {
                        stack.push((child, depth + 1));
                    }
                }
                FilterLevel::Plus => {
                    for (name, child) in &node.children {
                        if !(first && is_dollar_topic(name)) {
                            stack.push((child, depth + 1));
                        }
                    }
                }
                FilterLevel::Hash => {
                    out.extend(node.msg.iter().cloned());
                    let mut below: Vec<&RetainedNode<M>> = node
                        .children
                        .iter()
                        .filter(|(name, _)| !(first && is_dollar_topic(name)))
                        .map(|(_, child)| child)
                        .collect();
                    while let Some(n) = below.pop() {
                        out.extend(n.msg.iter().cloned());
                        below.extend(n.children.values());
                    }
                }
            }
        }
    }

    /// Keeps only the messages for which `keep(topic, msg)` is true (expiry
    /// sweeps). Allocates only for the topics it removes.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &M) -> bool) {
        let mut doomed = Vec::new();
        let mut walk = Iter::new(&self.root, None);
        while let Some(msg) = walk.advance() {
            if !keep(&walk.topic, msg) {
                doomed.push(walk.topic.clone());
            }
        }
        for topic in doomed {
            self.remove(&topic);
        }
    }

    /// Calls `visit(topic, msg)` for every message in topic order (see
    /// [`RetainedIndex::iter`]), without allocating per message.
    pub fn for_each(&self, mut visit: impl FnMut(&str, &M)) {
        let mut walk = Iter::new(&self.root, None);
        while let Some(msg) = walk.advance() {
            visit(&walk.topic, msg);
        }
    }

    /// Every (topic, message) in topic order: topics compare level by level
    /// (bytewise within a level), so `a/b` precedes `a-b` and a topic
    /// precedes the topics below it.
    pub fn iter(&self) -> Iter<'_, M> {
        Iter::new(&self.root, None)
    }

    /// Like [`RetainedIndex::iter`], starting just after `topic` (which need
    /// not exist): pass the last topic of one page to get the next page.
    pub fn iter_after(&self, topic: &str) -> Iter<'_, M> {
        Iter::new(&self.root, Some(topic))
    }
}

/// Children of one node still to visit, and the length of that node's topic.
struct Frame<'a, M> {
    children: Range<'a, Box<str>, RetainedNode<M>>,
    topic_len: usize,
    is_root: bool,
}

/// Iterator over retained messages in topic order; see [`RetainedIndex::iter`].
pub struct Iter<'a, M> {
    stack: Vec<Frame<'a, M>>,
    topic: String,
}

impl<M> fmt::Debug for Iter<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("at", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<'a, M> Iter<'a, M> {
    fn new(root: &'a RetainedNode<M>, after: Option<&str>) -> Self {
        let mut iter = Self {
            stack: Vec::new(),
            topic: String::new(),
        };
        let Some(after) = after else {
            iter.stack.push(Frame {
                children: root.children.range::<str, _>(..),
                topic_len: 0,
                is_root: true,
            });
            return iter;
        };
        // Seek: at each level of `after`, resume that node's children after
        // the level, and descend into it; below `after` itself, everything
        // comes after it (a topic precedes its descendants).
        let mut node = root;
        let mut is_root = true;
        for level in after.split('/') {
            iter.stack.push(Frame {
                children: node
                    .children
                    .range::<str, _>((Bound::Excluded(level), Bound::Unbounded)),
                topic_len: iter.topic.len(),
                is_root,
            });
            let Some(child) = node.children.get(level) else {
                return iter;
            };
            if !is_root {
                iter.topic.push('/');
            }
            iter.topic.push_str(level);
            node = child;
            is_root = false;
        }
        iter.stack.push(Frame {
            children: node.children.range::<str, _>(..),
            topic_len: iter.topic.len(),
            is_root: false,
        });
        iter
    }

    /// Moves to the next message; its topic is then in `self.topic`.
    fn advance(&mut self) -> Option<&'a M> {
        loop {
            let frame = self.stack.last_mut()?;
            let Some((level, child)) = frame.children.next() else {
                self.stack.pop();
                continue;
            };
            self.topic.truncate(frame.topic_len);
            if !frame.is_root {
                self.topic.push('/');
            }
            self.topic.push_str(level);
            self.stack.push(Frame {
                children: child.children.range::<str, _>(..),
                topic_len: self.topic.len(),
                is_root: false,
            });
            if let Some(msg) = &child.msg {
                return Some(msg);
            }
        }
    }
}

impl<'a, M> Iterator for Iter<'a, M> {
    type Item = (String, &'a M);

    fn next(&mut self) -> Option<Self::Item> {
        let msg = self.advance()?;
        Some((self.topic.clone(), msg))
    }
}
