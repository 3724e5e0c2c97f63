//! The public subscription router: the trie, and nothing beside it.
//!
//! Each subscription is stored once, in its trie slot. There is no
//! per-subscriber index of filters: the broker's session already keeps its
//! own map of them, so ending a session passes that list to
//! [`Router::remove_all`] (an index here cost ~100 B per subscription, a
//! third of the router's memory). [`Router::purge`] and
//! [`Router::subscriptions_of`] walk the whole trie instead, for the rare
//! caller that has lost the list, tests and diagnostics.

use std::collections::HashSet;
use std::fmt;

use smallvec::SmallVec;

use crate::route::{Collector, Target};
use crate::shared::{PickInput, SharedStrategy, SplitMix};
use crate::trie::Node;
use crate::{Routed, SubscriberKey, Subscription};
use roost_codec::topic::is_dollar_topic;

/// Which part of a match [`Router::route_select`] returns.
pub struct Select<'a> {
    /// Include the non-shared subscribers.
    pub direct: bool,
    /// Include the shared group named by the first argument at the filter
    /// given as the second (e.g. `("g", "jobs/+")` for `$share/g/jobs/+`).
    pub group: &'a dyn Fn(&str, &str) -> bool,
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

/// Subscriptions of every subscriber, matched against topics.
///
/// Mutation takes `&mut self`; [`Router::route`] takes `&self` and is safe to
/// call concurrently (shared-group state is atomic), so the broker can keep
/// the router behind a read-mostly lock.
pub struct Router<K: SubscriberKey> {
    root: Node<K>,
    strategy: SharedStrategy,
    rng: SplitMix,
    count: usize,
}

impl<K: SubscriberKey> fmt::Debug for Router<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("strategy", &self.strategy)
            .field("subscriptions", &self.count)
            .finish_non_exhaustive()
    }
}

impl<K: SubscriberKey> Default for Router<K> {
    fn default() -> Self {
        Self::new(SharedStrategy::default())
    }
}

impl<K: SubscriberKey> Router<K> {
    /// An empty router picking shared-group members with `strategy`.
    pub fn new(strategy: SharedStrategy) -> Self {
        Self::with_seed(strategy, SplitMix::random_seed())
    }

    /// Like [`Router::new`] with a fixed seed for the random and sticky
    /// strategies, for reproducible tests and simulations.
    pub fn with_seed(strategy: SharedStrategy, seed: u64) -> Self {
        Self {
            root: Node::default(),
            strategy,
            rng: SplitMix::new(seed),
            count: 0,
        }
    }

    /// The strategy used for shared groups.
    pub fn strategy(&self) -> SharedStrategy {
        self.strategy
    }

    /// Changes the strategy (e.g. on configuration reload); group state is kept.
    pub fn set_strategy(&mut self, strategy: SharedStrategy) {
        self.strategy = strategy;
    }

    /// Adds or replaces (same key, filter and group) a subscription
    /// [MQTT-3.8.4-3]. Returns true if it already existed (Retain Handling 1
    /// sends retained messages only when it did not).
    ///
    /// `filter` should already be validated; any string is accepted without
    /// panicking (see the crate docs for how invalid filters behave).
    /// `cleared` is the broker's authorization tag (`0`: none), carried into
    /// [`Target::cleared`].
    pub fn subscribe(
        &mut self,
        key: K,
        filter: &str,
        share_group: Option<&str>,
        sub: Subscription,
        cleared: u32,
    ) -> bool {
        let routed = Routed { sub, cleared };
        let existed = self.root.insert(filter, key, share_group, routed).is_some();
        if !existed {
            self.count += 1;
        }
        existed
    }

    /// Removes one subscription; returns true if it existed. Trie nodes left
    /// empty are freed.
    pub fn unsubscribe(&mut self, key: &K, filter: &str, share_group: Option<&str>) -> bool {
        if self.root.remove(filter, key, share_group).is_none() {
            return false;
        }
        self.count -= 1;
        true
    }

    /// Removes the subscriptions of `key` named in `filters` as (filter,
    /// share group) pairs: the caller's own list of what `key` subscribed to
    /// (the broker passes the ending session's subscriptions). Returns how
    /// many existed; pairs `key` does not hold are skipped, so a stale or
    /// repeated entry is harmless. A subscription left out of `filters`
    /// stays: see [`Router::purge`] for when the list is lost.
    pub fn remove_all<'f>(
        &mut self,
        key: &K,
        filters: impl IntoIterator<Item = (&'f str, Option<&'f str>)>,
    ) -> usize {
        let mut removed = 0;
        for (filter, group) in filters {
            if self.root.remove(filter, key, group).is_some() {
                removed += 1;
            }
        }
        self.count -= removed;
        removed
    }

    /// Removes every subscription of `key`, found by walking the whole trie
    /// (time grows with all subscriptions, not with `key`'s); returns how
    /// many. For a caller that no longer knows `key`'s filters, e.g. a
    /// session whose state was lost in a takeover; otherwise use
    /// [`Router::remove_all`].
    pub fn purge(&mut self, key: &K) -> usize {
        let held = self.subscriptions_of(key);
        self.remove_all(
            key,
            held.iter()
                .map(|(filter, group, _)| (filter.as_str(), group.as_deref())),
        )
    }

    /// Appends the targets of one message published to `topic`.
    ///
    /// Every subscriber matched through non-shared subscriptions appears once,
    /// with the maximum QoS [MQTT-3.3.4-2], all subscription identifiers
    /// [MQTT-3.3.4-3], and `retain_as_published` if any of them has it. A
    /// non-shared subscription with No Local does not match when `publisher`
    /// is its subscriber [MQTT-3.8.3-3]. Each matched shared group adds one
    /// member as a separate target with `shared = true` (No Local is ignored
    /// there: setting it on a shared subscription is a protocol error
    /// [MQTT-3.8.3-4]). Wildcards at the first level do not match `$` topics
    /// [MQTT-4.7.2-1].
    ///
    /// `publisher` is the publishing subscriber (None for messages the broker
    /// makes up); `publisher_id` its client id, hashed by
    /// [`SharedStrategy::HashClientId`]. Besides the growth of `out`, nothing
    /// is allocated for topics of up to 16 levels, targets with up to two
    /// subscription identifiers, and fan-outs of up to 32 subscribers (larger
    /// fan-outs matched through several filters build one dedup map per call).
    pub fn route(
        &self,
        topic: &str,
        publisher: Option<&K>,
        publisher_id: &str,
        out: &mut Vec<Target<K>>,
    ) {
        self.route_inner(topic, publisher, publisher_id, None, None, out);
    }

    /// Like [`Router::route`], but a shared group's pick skips members for
    /// which `available` is false (e.g. offline) while any member is
    /// available; if none is, the pick is made among all members, so the
    /// message is queued for one of them rather than lost.
    pub fn route_with(
        &self,
        topic: &str,
        publisher: Option<&K>,
        publisher_id: &str,
        available: &dyn Fn(&K) -> bool,
        out: &mut Vec<Target<K>>,
    ) {
        self.route_inner(topic, publisher, publisher_id, Some(available), None, out);
    }

    /// Like [`Router::route_with`], restricted to part of the match: the
    /// non-shared subscribers only when `select.direct`, and only the
    /// shared groups for which `select.group` holds. For a cluster node
    /// that delivers a message's shared groups on one node each: it skips
    /// the groups assigned to another node, and a node receiving a
    /// forwarded message takes just the groups it was assigned.
    pub fn route_select(
        &self,
        topic: &str,
        publisher: Option<&K>,
        publisher_id: &str,
        available: &dyn Fn(&K) -> bool,
        select: &Select<'_>,
        out: &mut Vec<Target<K>>,
    ) {
        self.route_inner(
            topic,
            publisher,
            publisher_id,
            Some(available),
            Some(select),
            out,
        );
    }

    fn route_inner(
        &self,
        topic: &str,
        publisher: Option<&K>,
        publisher_id: &str,
        available: Option<&dyn Fn(&K) -> bool>,
        select: Option<&Select<'_>>,
        out: &mut Vec<Target<K>>,
    ) {
        let levels: SmallVec<[&str; 16]> = topic.split('/').collect();
        let pick = PickInput {
            strategy: self.strategy,
            rng: &self.rng,
            publisher_id,
            topic,
            available,
            exclude: None,
        };
        let mut collector = Collector::new(out, publisher);
        self.root
            .for_each_match(&levels, is_dollar_topic(topic), |subscribers| {
                if select.is_none_or(|s| s.direct) {
                    collector.add_direct(&subscribers.direct);
                }
                for group in subscribers.groups() {
                    if select.is_some_and(|s| !(s.group)(&group.name, &group.filter)) {
                        continue;
                    }
                    if let Some((key, sub)) = group.pick(&pick) {
                        collector.add_shared(key, sub);
                    }
                }
            });
    }

    /// Picks a member of the shared group `group` at `filter` other than
    /// `exclude`, with the router's strategy; for re-dispatching a message
    /// when the member it was sent to leaves. `publisher_id` and `topic` are
    /// those of the message (for the hash strategies).
    pub fn pick_shared_member(
        &self,
        group: &str,
        filter: &str,
        exclude: &K,
        publisher_id: &str,
        topic: &str,
    ) -> Option<(K, Subscription)> {
        let shared = self.root.slot(filter)?.group(group)?;
        let pick = PickInput {
            strategy: self.strategy,
            rng: &self.rng,
            publisher_id,
            topic,
            available: None,
            exclude: Some(exclude),
        };
        shared
            .pick(&pick)
            .map(|(key, routed)| (key.clone(), routed.sub))
    }

    /// Whether anyone (directly or in a share group) is subscribed to
    /// exactly `filter`; one trie walk down the filter's levels. The cluster
    /// uses it to learn that a filter lost its last subscriber.
    pub fn has_subscribers(&self, filter: &str) -> bool {
        self.root.slot(filter).is_some_and(|s| !s.is_empty())
    }

    /// Whether `filter` has non-shared subscribers (`group` None) or
    /// members of the shared group `group`. The cluster registers a
    /// filter's non-shared subscribers and each of its groups as separate
    /// routes.
    pub fn has_members(&self, filter: &str, group: Option<&str>) -> bool {
        self.root.slot(filter).is_some_and(|s| match group {
            None => !s.direct.is_empty(),
            Some(name) => s.group(name).is_some_and(|g| !g.members.is_empty()),
        })
    }

    /// Members of share group `group` at `filter` (0: none). The cluster
    /// weighs a node's share of a group by it.
    pub fn member_count(&self, filter: &str, group: &str) -> usize {
        self.root
            .slot(filter)
            .and_then(|s| s.group(group))
            .map_or(0, |g| g.members.len())
    }

    /// Number of subscriptions (shared memberships count one each).
    pub fn subscription_count(&self) -> usize {
        self.count
    }

    /// Number of subscribers with at least one subscription. Walks the whole
    /// trie (for tests and diagnostics).
    pub fn subscriber_count(&self) -> usize {
        let mut keys: HashSet<&K> = HashSet::new();
        self.root.for_each_slot(|_, slot| {
            keys.extend(slot.direct.items().iter().map(|(k, _)| k));
            for group in slot.groups() {
                keys.extend(group.members.items().iter().map(|(k, _)| k));
            }
        });
        keys.len()
    }

    /// Number of trie nodes below the root: 0 when empty. For tests (pruning)
    /// and metrics; walks the whole trie.
    pub fn node_count(&self) -> usize {
        self.root.descendant_count()
    }

    /// Every subscription as (filter, share group, key, subscription), in
    /// trie order. Walks the whole trie under the caller's borrow: for the
    /// management API's listings, never the message path.
    pub fn for_each_subscription(
        &self,
        mut visit: impl FnMut(&str, Option<&str>, &K, &Subscription),
    ) {
        self.root.for_each_slot(|filter, slot| {
            for (key, routed) in slot.direct.items() {
                visit(filter, None, key, &routed.sub);
            }
            for group in slot.groups() {
                for (key, routed) in group.members.items() {
                    visit(filter, Some(&group.name), key, &routed.sub);
                }
            }
        });
    }

    /// The subscriptions of `key` as (filter, share group, subscription), in
    /// no particular order. Walks the whole trie (time grows with all
    /// subscriptions): for [`Router::purge`], tests and diagnostics; the
    /// broker's sessions keep their own list.
    pub fn subscriptions_of(&self, key: &K) -> Vec<(String, Option<String>, Subscription)> {
        let mut found = Vec::new();
        self.root.for_each_slot(|filter, slot| {
            if let Some(sub) = slot.get(key, None) {
                found.push((filter.to_string(), None, sub.sub));
            }
            for group in slot.groups() {
                if let Some(sub) = group.members.get(key) {
                    found.push((filter.to_string(), Some(group.name.to_string()), sub.sub));
                }
            }
        });
        found
    }
}
