//! The cluster route table as this node sees it (cluster-redis.md §3.2):
//! which other nodes have subscribers for which filters, in a trie (the
//! broker's own `Router`, keyed by node number), rebuilt at start from the
//! nodes' route sets and kept current from the route log. Also the set of
//! filters this node itself has published, the truth its route updates and
//! re-registrations are made from.

use std::collections::{HashMap, HashSet};

use parking_lot::{Mutex, RwLock};
use roost_router::{Router, SharedStrategy, Subscription, Target};
use smallvec::SmallVec;

use crate::wire::Entry;

/// Other nodes by number (numbers are never reused while the process runs).
#[derive(Default)]
struct Cache {
    router: Router<u16>,
    names: Vec<String>,
    numbers: HashMap<String, u16>,
}

impl Cache {
    fn number(&mut self, node: &str) -> Option<u16> {
        if let Some(n) = self.numbers.get(node) {
            return Some(*n);
        }
        let n = u16::try_from(self.names.len()).ok()?;
        self.names.push(node.to_string());
        self.numbers.insert(node.to_string(), n);
        Some(n)
    }
}

/// The route table cache and this node's published filters.
pub(crate) struct Routes {
    me: String,
    cache: RwLock<Cache>,
    /// Filters this node has (or is about to have) in its route set. Held
    /// while an update is queued so updates reach the writer in the order
    /// the set changed.
    pub(crate) published: Mutex<HashSet<String>>,
}

impl Routes {
    pub(crate) fn new(me: &str) -> Self {
        Self {
            me: me.to_string(),
            cache: RwLock::new(Cache {
                router: Router::new(SharedStrategy::Random),
                ..Cache::default()
            }),
            published: Mutex::new(HashSet::new()),
        }
    }

    /// Other nodes with a subscriber for `topic` (by number), no Redis call.
    pub(crate) fn destinations(&self, topic: &str) -> SmallVec<[u16; 4]> {
        let mut out: Vec<Target<u16>> = Vec::new();
        let cache = self.cache.read();
        if cache.names.is_empty() {
            return SmallVec::new();
        }
        cache.router.route(topic, None, "", &mut out);
        out.into_iter().map(|t| t.key).collect()
    }

    /// A node's name by number.
    pub(crate) fn name(&self, number: u16) -> Option<String> {
        self.cache.read().names.get(usize::from(number)).cloned()
    }

    /// Adds a node's whole route set (bootstrap).
    pub(crate) fn load(&self, node: &str, filters: &[String]) {
        if node == self.me {
            return;
        }
        let mut cache = self.cache.write();
        let Some(n) = cache.number(node) else { return };
        for filter in filters {
            cache
                .router
                .subscribe(n, filter, None, Subscription::default(), 0);
        }
    }

    /// Applies one route log entry (last op wins per node and filter).
    pub(crate) fn apply(&self, entry: &Entry) {
        let Some(node) = entry.text("n") else { return };
        if node == self.me {
            return;
        }
        let reset = entry.text("r").unwrap_or("0");
        let mut cache = self.cache.write();
        let Some(n) = cache.number(node) else { return };
        if reset != "0" {
            cache.router.purge(&n);
            if reset == "down" {
                tracing::info!(node, "cluster node down: its routes are removed");
            }
        }
        for filter in split(entry.field("a")) {
            cache
                .router
                .subscribe(n, filter, None, Subscription::default(), 0);
        }
        for filter in split(entry.field("d")) {
            cache.router.unsubscribe(&n, filter, None);
        }
    }

    /// Forgets every route (before a full reload).
    pub(crate) fn clear(&self) {
        let mut cache = self.cache.write();
        cache.router = Router::new(SharedStrategy::Random);
    }

    /// How many (node, filter) routes the cache holds.
    pub(crate) fn len(&self) -> usize {
        self.cache.read().router.subscription_count()
    }
}

/// The `\0`-joined filters of a log field.
fn split(field: Option<&[u8]>) -> impl Iterator<Item = &str> {
    field
        .and_then(|f| std::str::from_utf8(f).ok())
        .unwrap_or("")
        .split('\0')
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn log_entries_add_remove_and_reset_routes() {
        let routes = Routes::new("me");
        routes.apply(&entry(&[
            ("n", "b"),
            ("r", "0"),
            ("a", "a/+\0x/#"),
            ("d", ""),
        ]));
        routes.apply(&entry(&[("n", "me"), ("r", "0"), ("a", "a/#")]));
        let b = routes.destinations("a/1");
        assert_eq!(b.len(), 1);
        assert_eq!(routes.name(b[0]).as_deref(), Some("b"));
        assert!(
            routes.destinations("q").is_empty(),
            "own routes are not cached"
        );
        routes.apply(&entry(&[("n", "b"), ("r", "0"), ("a", ""), ("d", "a/+")]));
        assert!(routes.destinations("a/1").is_empty());
        assert_eq!(routes.destinations("x/y").len(), 1);
        routes.apply(&entry(&[("n", "b"), ("r", "down")]));
        assert!(routes.destinations("x/y").is_empty());
    }

    #[test]
    fn a_topic_matched_by_two_filters_of_one_node_goes_there_once() {
        let routes = Routes::new("me");
        routes.load("b", &["s/+".into(), "s/#".into()]);
        assert_eq!(routes.destinations("s/1").len(), 1);
    }
}
