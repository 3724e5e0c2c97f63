//! The cluster route table as this node sees it (cluster-redis.md §3.2):
//! which other nodes have subscribers for which filters, in a trie (the
//! broker's own `Router`, keyed by node number), rebuilt at start from the
//! nodes' route sets and kept current from the route log. Also the set of
//! filters this node itself has published, the truth its route updates and
//! re-registrations are made from.
//!
//! **Shared groups weighted by member count.** A node's route for a group
//! names its member count: `$share/g/f` for one member, `$share/g+N/f` for
//! N (a `+` cannot be part of a share name [MQTT-4.8.2-2], so the form is
//! unambiguous), capped at [`MAX_WEIGHT`]. The cache subscribes N *replicas*
//! of the node to the group (router key = node number + replica << 16), so
//! every strategy picks a node in proportion to its members: under
//! `round_robin` a node with 10 members gets 10 of every 11 messages of a
//! group it shares with a node with 1.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use roost_router::{Router, SharedStrategy, Subscription, Target};
use smallvec::SmallVec;

use crate::wire::Entry;

thread_local! {
    /// [`Routes::plan`]'s match buffer, reused (a broker thread plans one
    /// message at a time; the buffer is emptied after each).
    static TARGETS: std::cell::RefCell<Vec<Target<u32>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// [`Routes::plan`]'s plans remembered per topic (`Remembered`).
    static PLANS: std::cell::RefCell<Remembered> = std::cell::RefCell::new(Remembered::default());
}

/// Topics whose plan a thread remembers at most; past it, no more until the
/// table changes (topics that never repeat then cost one probe each, not an
/// insert and an allocation).
const REMEMBERED: usize = 1024;

/// A thread's plans of one route table at one version, by topic: the
/// destination nodes of a topic matched by no shared group (a group's node
/// is picked per message, so such a plan is not remembered). Topics repeat
/// (a device publishes on its own), and one hash probe replaces the trie
/// match and the table's lock (a cache line every publishing thread
/// writes) per message.
#[derive(Default)]
struct Remembered {
    /// The table ([`Routes::id`]) and its version these plans are of.
    table: u64,
    version: u64,
    plans: HashMap<Box<str>, SmallVec<[u16; 4]>>,
}

impl Remembered {
    /// The remembered plan of `topic` at (`table`, `version`).
    fn get(&mut self, table: u64, version: u64, topic: &str) -> Option<Plan> {
        if self.table != table || self.version != version {
            return None;
        }
        let nodes = self.plans.get(topic)?;
        Some(Plan {
            to: nodes
                .iter()
                .map(|&node| Dest {
                    node,
                    direct: true,
                    groups: Vec::new(),
                })
                .collect(),
            elsewhere: Vec::new(),
        })
    }

    fn remember(&mut self, table: u64, version: u64, topic: &str, plan: &Plan) {
        if self.table != table || self.version != version {
            self.plans.clear();
            self.table = table;
            self.version = version;
        }
        if self.plans.len() >= REMEMBERED {
            return;
        }
        let nodes = plan.to.iter().map(|d| d.node).collect();
        self.plans.insert(topic.into(), nodes);
    }
}

/// Numbers route tables for [`Remembered`] (a process normally has one;
/// tests have many).
static TABLES: AtomicU64 = AtomicU64::new(1);

/// The most replicas a node gets in a group (its member count, capped: a
/// node with more members gets the share of this many).
pub(crate) const MAX_WEIGHT: usize = 64;

/// The router key of replica `replica` of node `n`.
fn key(n: u16, replica: u32) -> u32 {
    u32::from(n) | (replica << 16)
}

/// The node number of a router key.
fn node_of(key: u32) -> u16 {
    u16::try_from(key & 0xFFFF).unwrap_or(u16::MAX)
}

/// A group route as (group, weight, filter): `$share/g/f` weighs 1,
/// `$share/g+N/f` N.
pub(crate) fn weighted(route: &str) -> Option<(&str, u32, &str)> {
    let (group, filter) = split_shared(route)?;
    match group.split_once('+') {
        Some((name, n)) => {
            let cap = u32::try_from(MAX_WEIGHT).unwrap_or(1);
            Some((name, n.parse::<u32>().unwrap_or(1).clamp(1, cap), filter))
        }
        None => Some((group, 1, filter)),
    }
}

/// The route naming `members` members of group `group` at `filter`
/// (capped at [`MAX_WEIGHT`]).
pub(crate) fn group_route(group: &str, filter: &str, members: usize) -> String {
    match members.min(MAX_WEIGHT) {
        0 | 1 => format!("$share/{group}/{filter}"),
        n => format!("$share/{group}+{n}/{filter}"),
    }
}

/// How the publishing node picks the one node that delivers a shared
/// group's copy of a message (docs/cluster.md, "Shared subscriptions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedPick {
    /// The strategy among the nodes with members (the broker's own).
    pub strategy: SharedStrategy,
    /// `local`: this node whenever it has members; `strategy` otherwise.
    pub prefer_local: bool,
}

impl Default for SharedPick {
    fn default() -> Self {
        Self {
            strategy: SharedStrategy::RoundRobin,
            prefer_local: false,
        }
    }
}

/// Nodes by number (numbers are never reused while the process runs;
/// this node has one too, for its shared groups) and the cluster's shared
/// groups by number.
#[derive(Default)]
struct Cache {
    /// Route `f` of node n: `subscribe(n, f, None)`; route `$share/g/f`:
    /// `subscribe(n, f, Some(g))` with the group's number as the
    /// subscription identifier, so a routed shared target names its group.
    router: Router<u32>,
    /// Replicas per (node, `$share/g/f`): the weight of the node's latest
    /// route for the group.
    weights: HashMap<(u16, Arc<str>), u32>,
    names: Vec<String>,
    numbers: HashMap<String, u16>,
    /// `$share/g/f` by group number (kept for the process' life: one
    /// entry per group name and filter ever seen).
    groups: Vec<Arc<str>>,
    group_numbers: HashMap<Arc<str>, u32>,
    /// This node's own number, once it has one (its first shared route):
    /// read on every message, so not looked up by name each time.
    mine: Option<u16>,
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

    fn group_number(&mut self, shared: &str) -> u32 {
        if let Some(n) = self.group_numbers.get(shared) {
            return *n;
        }
        let n = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = shared.into();
        self.groups.push(Arc::clone(&name));
        self.group_numbers.insert(name, n);
        n
    }

    /// Adds route `route` (`f`, `$share/g/f` or `$share/g+N/f`) of node
    /// `n`: a group's weight becomes the route's (replicas added or removed).
    fn add(&mut self, n: u16, route: &str) {
        match weighted(route) {
            Some((group, weight, filter)) => {
                let canonical: Arc<str> = format!("$share/{group}/{filter}").into();
                let id = self.group_number(&canonical);
                let had = self
                    .weights
                    .insert((n, Arc::clone(&canonical)), weight)
                    .unwrap_or(0);
                for replica in weight..had {
                    self.router
                        .unsubscribe(&key(n, replica), filter, Some(group));
                }
                for replica in had..weight {
                    let sub = Subscription {
                        identifier: Some(id),
                        ..Subscription::default()
                    };
                    self.router
                        .subscribe(key(n, replica), filter, Some(group), sub, 0);
                }
            }
            None => {
                self.router
                    .subscribe(key(n, 0), route, None, Subscription::default(), 0);
            }
        }
    }

    /// Removes route `route` of node `n`; a group's route only if it is
    /// still the node's latest (a weight change adds the new route and
    /// removes the old one, in either order).
    fn remove(&mut self, n: u16, route: &str) {
        match weighted(route) {
            Some((group, weight, filter)) => {
                let canonical: Arc<str> = format!("$share/{group}/{filter}").into();
                let slot = (n, canonical);
                if self.weights.get(&slot) != Some(&weight) {
                    return;
                }
                self.weights.remove(&slot);
                for replica in 0..weight {
                    self.router
                        .unsubscribe(&key(n, replica), filter, Some(group));
                }
            }
            None => {
                self.router.unsubscribe(&key(n, 0), route, None);
            }
        }
    }

    /// Forgets every route of node `n`.
    fn purge(&mut self, n: u16) {
        self.weights.retain(|(node, _), _| *node != n);
        for replica in 0..u32::try_from(MAX_WEIGHT).unwrap_or(1) {
            self.router.purge(&key(n, replica));
        }
    }
}

/// `$share/g/f` as (g, f).
pub(crate) fn split_shared(route: &str) -> Option<(&str, &str)> {
    route.strip_prefix("$share/")?.split_once('/')
}

/// Where one message goes: per other node, whether its non-shared
/// subscribers get it and which shared groups it delivers.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) to: SmallVec<[Dest; 4]>,
    /// Groups assigned to other nodes (`$share/g/f`): this node skips them.
    pub(crate) elsewhere: Vec<Arc<str>>,
}

/// One destination node of a message.
#[derive(Debug, Clone)]
pub(crate) struct Dest {
    pub(crate) node: u16,
    /// Deliver to the node's non-shared subscribers.
    pub(crate) direct: bool,
    /// The shared groups (`$share/g/f`) the node delivers, one member each.
    pub(crate) groups: Vec<Arc<str>>,
}

/// The route table cache and this node's published filters.
pub(crate) struct Routes {
    /// Whether the cache holds any route (another node's, or a shared one
    /// of this node): set under the cache's write lock after each change
    /// ([`Routes::noted`]). While it is false a message goes nowhere else,
    /// known without the lock, whose cache line every publishing thread
    /// would write ([`Routes::any`]): local delivery in cluster mode.
    any: std::sync::atomic::AtomicBool,
    me: String,
    pick: SharedPick,
    cache: RwLock<Cache>,
    /// Filters this node has (or is about to have) in its route set. Held
    /// while an update is queued so updates reach the writer in the order
    /// the set changed.
    pub(crate) published: Mutex<HashSet<String>>,
    /// This node's route per share group (`$share/g/f` → its weighted
    /// route), held while a weight change is queued.
    pub(crate) group_routes: Mutex<HashMap<String, String>>,
    /// This table's number (`Remembered`).
    id: u64,
    /// Bumped under the cache's write lock by every change: plans
    /// remembered at an older version are not used.
    version: AtomicU64,
}

impl Routes {
    pub(crate) fn new(me: &str, pick: SharedPick) -> Self {
        Self {
            any: std::sync::atomic::AtomicBool::new(false),
            me: me.to_string(),
            pick,
            cache: RwLock::new(Self::empty(pick)),
            published: Mutex::new(HashSet::new()),
            group_routes: Mutex::new(HashMap::new()),
            id: TABLES.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
        }
    }

    /// The cache, to change it: every plan remembered so far is stale.
    fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        let cache = self.cache.write();
        self.version.fetch_add(1, Ordering::Release);
        cache
    }

    fn empty(pick: SharedPick) -> Cache {
        Cache {
            router: Router::new(pick.strategy),
            ..Cache::default()
        }
    }

    /// Where a message on `topic` from `publisher_id` goes besides this
    /// node's non-shared subscribers, no Redis call: the other nodes with
    /// non-shared subscribers, and for every shared group matched in the
    /// cluster one node with members (this one included), picked per
    /// [`SharedPick`]. Nothing is allocated while no node has a route.
    pub(crate) fn plan(&self, topic: &str, publisher_id: &str) -> Plan {
        let version = self.version.load(Ordering::Acquire);
        if let Some(plan) = PLANS.with_borrow_mut(|p| p.get(self.id, version, topic)) {
            return plan;
        }
        let cache = self.cache.read();
        let mut plan = Plan::default();
        if cache.router.subscription_count() == 0 {
            return plan;
        }
        // Stable while the read lock is held: the version of this match.
        let version = self.version.load(Ordering::Acquire);
        let mut shared = false;
        let me = cache.mine;
        let local = |k: &u32| Some(node_of(*k)) == me;
        // The match's targets go into a buffer kept per thread: this runs
        // for every message published while other nodes have routes.
        TARGETS.with_borrow_mut(|out| {
            out.clear();
            if self.pick.prefer_local {
                cache
                    .router
                    .route_with(topic, None, publisher_id, &local, out);
            } else {
                cache.router.route(topic, None, publisher_id, out);
            }
            for target in out.drain(..) {
                shared |= target.shared;
                let group = if target.shared {
                    let Some(name) = target
                        .subscription_ids
                        .first()
                        .and_then(|id| usize::try_from(*id).ok())
                        .and_then(|id| cache.groups.get(id))
                    else {
                        continue;
                    };
                    if local(&target.key) {
                        continue; // delivered here
                    }
                    plan.elsewhere.push(Arc::clone(name));
                    Some(Arc::clone(name))
                } else {
                    None
                };
                let node = node_of(target.key);
                let at = match plan.to.iter().position(|d| d.node == node) {
                    Some(at) => at,
                    None => {
                        plan.to.push(Dest {
                            node,
                            direct: false,
                            groups: Vec::new(),
                        });
                        plan.to.len() - 1
                    }
                };
                let Some(dest) = plan.to.get_mut(at) else {
                    continue;
                };
                match group {
                    Some(name) => dest.groups.push(name),
                    None => dest.direct = true,
                }
            }
        });
        if !shared {
            PLANS.with_borrow_mut(|p| p.remember(self.id, version, topic, &plan));
        }
        plan
    }

    /// Another node than this one with members of `shared` (`$share/g/f`),
    /// picked per the strategy; for a message whose assigned node had no
    /// member left.
    pub(crate) fn other_member_node(
        &self,
        shared: &str,
        publisher_id: &str,
        topic: &str,
    ) -> Option<u16> {
        let (group, filter) = split_shared(shared)?;
        let cache = self.cache.read();
        let me = cache.numbers.get(&self.me).copied().unwrap_or(u16::MAX);
        // Only one key can be excluded: this node's other replicas are
        // skipped by picking again (a hash strategy picks the same: none).
        for _ in 0..=MAX_WEIGHT {
            let (picked, _) =
                cache
                    .router
                    .pick_shared_member(group, filter, &key(me, 0), publisher_id, topic)?;
            if node_of(picked) != me {
                return Some(node_of(picked));
            }
        }
        None
    }

    /// A node's name by number.
    pub(crate) fn name(&self, number: u16) -> Option<String> {
        self.cache.read().names.get(usize::from(number)).cloned()
    }

    /// This node gained (`present`) or lost its last member of a shared
    /// group: its own shared routes are in the cache too, so the
    /// publishing side can pick this node for a group. Non-shared routes
    /// of this node are not (its own trie delivers those).
    pub(crate) fn own(&self, route: &str, present: bool) {
        if split_shared(route).is_none() {
            return;
        }
        let mut cache = self.write();
        let Some(n) = cache.number(&self.me) else {
            return;
        };
        cache.mine = Some(n);
        if present {
            cache.add(n, route);
        } else {
            cache.remove(n, route);
        }
        self.noted(&cache);
    }

    /// Adds a node's whole route set (bootstrap).
    pub(crate) fn load(&self, node: &str, filters: &[String]) {
        if node == self.me {
            return;
        }
        let mut cache = self.write();
        let Some(n) = cache.number(node) else { return };
        for filter in filters {
            cache.add(n, filter);
        }
        self.noted(&cache);
    }

    /// Applies one route log entry (last op wins per node and filter).
    pub(crate) fn apply(&self, entry: &Entry) {
        let Some(node) = entry.text("n") else { return };
        if node == self.me {
            return;
        }
        let reset = entry.text("r").unwrap_or("0");
        let mut cache = self.write();
        let Some(n) = cache.number(node) else { return };
        if reset != "0" {
            cache.purge(n);
            if reset == "down" {
                tracing::info!(node, "cluster node down: its routes are removed");
            }
        }
        for filter in split(entry.field("a")) {
            cache.add(n, filter);
        }
        for filter in split(entry.field("d")) {
            cache.remove(n, filter);
        }
        self.noted(&cache);
    }

    /// Forgets every other node's route (before a full reload); this
    /// node's own shared routes stay.
    pub(crate) fn clear(&self) {
        // `published` before the cache: `route_present` holds it while it
        // updates the cache.
        let own: Vec<String> = self
            .published
            .lock()
            .iter()
            .filter(|r| split_shared(r).is_some())
            .cloned()
            .collect();
        let mut cache = self.write();
        *cache = Self::empty(self.pick);
        if let Some(n) = cache.number(&self.me) {
            cache.mine = Some(n);
            for route in &own {
                cache.add(n, route);
            }
        }
        self.noted(&cache);
    }

    /// Records whether `cache` (just changed, its write lock held) has a
    /// route, for [`Routes::any`].
    fn noted(&self, cache: &Cache) {
        let any = cache.router.subscription_count() > 0;
        self.any.store(any, std::sync::atomic::Ordering::Release);
    }

    /// False while no route is cached: no message goes to another node
    /// (what [`Routes::plan`] would find, without its lock).
    pub(crate) fn any(&self) -> bool {
        self.any.load(std::sync::atomic::Ordering::Acquire)
    }

    /// How many (node, filter) routes the cache holds.
    pub(crate) fn len(&self) -> usize {
        self.cache.read().router.subscription_count()
    }

    /// Node `name`'s number (given one if it has none yet): a destination
    /// whose routes this cache may not know yet (a replay to the adopters
    /// of a dead node's sessions, `spread.rs`).
    pub(crate) fn number_of(&self, name: &str) -> Option<u16> {
        self.cache.write().number(name)
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

    fn nodes(routes: &Routes, topic: &str) -> Vec<u16> {
        routes.plan(topic, "p").to.iter().map(|d| d.node).collect()
    }

    #[test]
    fn log_entries_add_remove_and_reset_routes() {
        let routes = Routes::new("me", SharedPick::default());
        routes.apply(&entry(&[
            ("n", "b"),
            ("r", "0"),
            ("a", "a/+\0x/#"),
            ("d", ""),
        ]));
        routes.apply(&entry(&[("n", "me"), ("r", "0"), ("a", "a/#")]));
        let b = nodes(&routes, "a/1");
        assert_eq!(b.len(), 1);
        assert_eq!(routes.name(b[0]).as_deref(), Some("b"));
        assert!(nodes(&routes, "q").is_empty(), "own routes are not cached");
        routes.apply(&entry(&[("n", "b"), ("r", "0"), ("a", ""), ("d", "a/+")]));
        assert!(nodes(&routes, "a/1").is_empty());
        assert_eq!(nodes(&routes, "x/y").len(), 1);
        routes.apply(&entry(&[("n", "b"), ("r", "down")]));
        assert!(nodes(&routes, "x/y").is_empty());
    }

    #[test]
    fn a_remembered_plan_follows_every_change_of_the_table() {
        let routes = Routes::new("me", SharedPick::default());
        routes.load("b", &["t/1".into()]);
        assert_eq!(nodes(&routes, "t/1").len(), 1);
        assert_eq!(nodes(&routes, "t/1").len(), 1, "remembered");
        assert!(nodes(&routes, "t/2").is_empty());
        // A new node's route for a topic remembered as going nowhere.
        routes.load("c", &["t/+".into()]);
        assert_eq!(nodes(&routes, "t/2").len(), 1);
        assert_eq!(nodes(&routes, "t/1").len(), 2);
        routes.apply(&entry(&[("n", "b"), ("r", "0"), ("d", "t/1")]));
        assert_eq!(nodes(&routes, "t/1").len(), 1);
        routes.clear();
        assert!(nodes(&routes, "t/1").is_empty());
        // Past the bound, more topics are planned but not remembered.
        routes.load("c", &["v/1".into()]);
        for i in 0..REMEMBERED + 10 {
            assert!(nodes(&routes, &format!("u/{i}")).is_empty());
        }
        assert_eq!(PLANS.with_borrow(|p| p.plans.len()), REMEMBERED);
        routes.load("b", &["u/+".into()]);
        assert_eq!(nodes(&routes, &format!("u/{}", REMEMBERED + 5)).len(), 1);
        // Another table on the same thread has plans of its own.
        let other = Routes::new("me", SharedPick::default());
        other.load("b", &["t/1".into()]);
        assert_eq!(nodes(&other, "t/1").len(), 1);
        assert!(nodes(&routes, "t/1").is_empty());
    }

    #[test]
    fn a_topic_matched_by_a_shared_group_is_picked_per_message_not_remembered() {
        let routes = Routes::new("me", SharedPick::default());
        routes.load("b", &["$share/g/s/1".into()]);
        routes.load("c", &["$share/g/s/1".into()]);
        let picked = picks(&routes, "s/1", 4);
        assert_eq!(picked.get("b"), Some(&2), "{picked:?}");
        assert_eq!(picked.get("c"), Some(&2), "{picked:?}");
    }

    #[test]
    fn a_topic_matched_by_two_filters_of_one_node_goes_there_once() {
        let routes = Routes::new("me", SharedPick::default());
        routes.load("b", &["s/+".into(), "s/#".into()]);
        assert_eq!(nodes(&routes, "s/1").len(), 1);
    }

    #[test]
    fn a_shared_group_goes_to_one_node_with_members_and_round_robin_visits_each() {
        let routes = Routes::new("me", SharedPick::default());
        routes.load("b", &["$share/g/j/+".into(), "j/1".into()]);
        routes.load("c", &["$share/g/j/+".into()]);
        routes.own("$share/g/j/+", true);
        let mut picked = HashMap::new();
        for _ in 0..30 {
            let plan = routes.plan("j/1", "p");
            let groups: usize = plan.to.iter().map(|d| d.groups.len()).sum();
            assert!(groups <= 1, "one node per group");
            let direct: Vec<_> = plan.to.iter().filter(|d| d.direct).collect();
            assert_eq!(direct.len(), 1, "b's non-shared route always");
            let at = plan
                .to
                .iter()
                .find(|d| !d.groups.is_empty())
                .and_then(|d| routes.name(d.node))
                .unwrap_or_else(|| "me".into());
            assert_eq!(plan.elsewhere.len(), usize::from(at != "me"));
            *picked.entry(at).or_insert(0) += 1;
        }
        assert_eq!(picked.len(), 3, "each node's turn: {picked:?}");
        assert!(picked.values().all(|n| *n == 10), "{picked:?}");
    }

    /// Which node (by name, "me" for this one) each of `n` messages on
    /// `topic` goes to for its one group.
    fn picks(routes: &Routes, topic: &str, n: usize) -> HashMap<String, usize> {
        let mut picked = HashMap::new();
        for _ in 0..n {
            let plan = routes.plan(topic, "p");
            let at = plan
                .to
                .iter()
                .find(|d| !d.groups.is_empty())
                .and_then(|d| routes.name(d.node))
                .unwrap_or_else(|| "me".into());
            *picked.entry(at).or_insert(0) += 1;
        }
        picked
    }

    #[test]
    fn a_group_is_weighted_by_each_nodes_member_count() {
        let routes = Routes::new("me", SharedPick::default());
        assert_eq!(group_route("g", "w/+", 10), "$share/g+10/w/+");
        assert_eq!(group_route("g", "w/+", 1), "$share/g/w/+");
        assert_eq!(group_route("g", "w/+", 1000), "$share/g+64/w/+");
        routes.load("b", &[group_route("g", "w/+", 10)]);
        routes.load("c", &[group_route("g", "w/+", 1)]);
        let picked = picks(&routes, "w/1", 110);
        assert_eq!(picked.get("b"), Some(&100), "{picked:?}");
        assert_eq!(picked.get("c"), Some(&10), "{picked:?}");
        // b drops to 1 member: its new route comes before the old one's
        // removal (or after: either order ends at weight 1).
        routes.apply(&entry(&[
            ("n", "b"),
            ("r", "0"),
            ("a", "$share/g/w/+"),
            ("d", "$share/g+10/w/+"),
        ]));
        let picked = picks(&routes, "w/1", 20);
        assert_eq!(picked.get("b"), Some(&10), "{picked:?}");
        assert_eq!(picked.get("c"), Some(&10), "{picked:?}");
        // A stale removal of a weight b no longer has changes nothing.
        routes.apply(&entry(&[("n", "b"), ("r", "0"), ("d", "$share/g+10/w/+")]));
        assert_eq!(picks(&routes, "w/1", 2).len(), 2);
        // The re-route never picks this node, whatever its weight.
        routes.own(&group_route("g", "w/+", 5), true);
        for _ in 0..20 {
            let other = routes.other_member_node("$share/g/w/+", "p", "w/1");
            assert!(other.is_some_and(|n| routes.name(n).as_deref() != Some("me")));
        }
        routes.apply(&entry(&[("n", "b"), ("r", "down")]));
        assert_eq!(picks(&routes, "w/1", 12).get("b"), None);
    }

    #[test]
    fn local_prefers_this_node_while_it_has_members() {
        let pick = SharedPick {
            strategy: SharedStrategy::RoundRobin,
            prefer_local: true,
        };
        let routes = Routes::new("me", pick);
        routes.load("b", &["$share/g/j".into()]);
        routes.own("$share/g/j", true);
        for _ in 0..5 {
            let plan = routes.plan("j", "p");
            assert!(plan.to.is_empty() && plan.elsewhere.is_empty());
        }
        routes.own("$share/g/j", false);
        let plan = routes.plan("j", "p");
        assert_eq!(plan.elsewhere.len(), 1, "the fallback picks b");
        assert_eq!(
            routes.other_member_node("$share/g/j", "p", "j"),
            plan.to.first().map(|d| d.node)
        );
    }

    #[test]
    fn any_says_whether_a_route_is_cached_through_every_change() {
        let routes = Routes::new("me", SharedPick::default());
        assert!(!routes.any(), "a new table");
        routes.load("me", &["t/1".into()]);
        routes.own("t/1", true);
        assert!(
            !routes.any(),
            "this node's non-shared routes are not cached"
        );
        routes.load("b", &["t/1".into()]);
        assert!(routes.any());
        routes.apply(&entry(&[("n", "b"), ("r", "0"), ("d", "t/1")]));
        assert!(!routes.any(), "b's last route removed");
        routes.apply(&entry(&[("n", "c"), ("r", "0"), ("a", "t/+")]));
        assert!(routes.any());
        routes.apply(&entry(&[("n", "c"), ("r", "down")]));
        assert!(!routes.any(), "c is down");
        routes.own("$share/g/j", true);
        assert!(routes.any(), "this node's shared route");
        routes.published.lock().insert("$share/g/j".into());
        routes.clear();
        assert!(routes.any(), "kept by a reload");
        routes.published.lock().remove("$share/g/j");
        routes.own("$share/g/j", false);
        assert!(!routes.any());
        routes.load("b", &["t/2".into()]);
        routes.clear();
        assert!(!routes.any(), "a reload forgets other nodes' routes");
    }
}
