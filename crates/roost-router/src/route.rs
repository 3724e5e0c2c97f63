//! Turning matched subscriptions into delivery targets: one per subscriber
//! for its non-shared subscriptions (merged), plus one per matched shared
//! group.

use std::collections::HashMap;
use std::hash::RandomState;

use roost_codec::QoS;
use smallvec::SmallVec;

use crate::keyed::KeyedVec;
use crate::{Routed, SubscriberKey};

/// One delivery the broker must make for a routed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<K> {
    /// Who receives the message.
    pub key: K,
    /// Maximum QoS granted over the merged subscriptions [MQTT-3.3.4-2]; the
    /// broker delivers at min(this, the message's QoS).
    pub qos: QoS,
    /// Keep the RETAIN flag as published (any merged subscription asked for it).
    pub retain_as_published: bool,
    /// Identifiers of every merged subscription that has one, without
    /// duplicates [MQTT-3.3.4-3] [MQTT-3.3.4-4]; for a shared target, the
    /// identifier of that one subscription [MQTT-3.3.4-5].
    pub subscription_ids: SmallVec<[u32; 2]>,
    /// Delivered through a shared subscription (never merged with the
    /// subscriber's non-shared target, which is a separate delivery).
    pub shared: bool,
    /// The highest authorization tag (the `cleared` argument of
    /// [`crate::Router::subscribe`]) over the merged subscriptions: one subscription authorized as a whole suffices.
    pub cleared: u32,
}

impl<K> Target<K> {
    fn new(key: K, routed: &Routed, shared: bool) -> Self {
        let sub = &routed.sub;
        Self {
            key,
            qos: sub.options.qos,
            retain_as_published: sub.options.retain_as_published,
            subscription_ids: sub.identifier.into_iter().collect(),
            shared,
            cleared: routed.cleared,
        }
    }

    fn merge(&mut self, routed: &Routed) {
        let sub = &routed.sub;
        self.qos = self.qos.max(sub.options.qos);
        self.retain_as_published |= sub.options.retain_as_published;
        self.cleared = self.cleared.max(routed.cleared);
        if let Some(id) = sub.identifier
            && !self.subscription_ids.contains(&id)
        {
            self.subscription_ids.push(id);
        }
    }
}

/// While a route has at most this many targets, finding a subscriber's
/// earlier target is a linear scan (no allocation, a few compares). Beyond
/// it, one `HashMap` key -> position is built for the rest of the call.
const LINEAR_DEDUP_MAX: usize = 32;

/// Appends targets to the caller's vector, merging a subscriber's
/// overlapping non-shared subscriptions into one target.
///
/// Cost: subscribers within one slot are unique, so the first matching slot
/// is appended without any check. Each entry of a later slot is looked up
/// among the targets so far: a scan of at most [`LINEAR_DEDUP_MAX`] entries,
/// then O(1) in a map built once per call (the only allocation besides the
/// growth of `out`, and only for fan-outs above that size that match through
/// more than one filter).
pub(crate) struct Collector<'a, K> {
    out: &'a mut Vec<Target<K>>,
    base: usize,
    publisher: Option<&'a K>,
    slots_seen: usize,
    index: Option<HashMap<K, usize, RandomState>>,
}

impl<'a, K: SubscriberKey> Collector<'a, K> {
    pub(crate) fn new(out: &'a mut Vec<Target<K>>, publisher: Option<&'a K>) -> Self {
        let base = out.len();
        Self {
            out,
            base,
            publisher,
            slots_seen: 0,
            index: None,
        }
    }

    /// Adds the non-shared subscriptions of one matched slot, honouring No
    /// Local [MQTT-3.8.3-3].
    pub(crate) fn add_direct(&mut self, direct: &KeyedVec<K, Routed>) {
        if direct.is_empty() {
            return;
        }
        let dedup = self.slots_seen > 0;
        self.slots_seen += 1;
        for (key, sub) in direct.items() {
            if sub.sub.options.no_local && self.publisher == Some(key) {
                continue;
            }
            if dedup
                && let Some(at) = self.find(key)
                && let Some(target) = self.out.get_mut(at)
            {
                target.merge(sub);
                continue;
            }
            if let Some(index) = &mut self.index {
                index.insert(key.clone(), self.out.len());
            }
            self.out.push(Target::new(key.clone(), sub, false));
        }
    }

    /// Adds the picked member of one shared group as its own target.
    pub(crate) fn add_shared(&mut self, key: &K, sub: &Routed) {
        self.out.push(Target::new(key.clone(), sub, true));
    }

    /// Position of `key`'s non-shared target, if any yet.
    fn find(&mut self, key: &K) -> Option<usize> {
        if let Some(index) = &self.index {
            return index.get(key).copied();
        }
        let ours = self.out.get(self.base..)?;
        if ours.len() <= LINEAR_DEDUP_MAX {
            return ours
                .iter()
                .position(|t| !t.shared && t.key == *key)
                .map(|at| at + self.base);
        }
        let index: HashMap<K, usize, RandomState> = ours
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.shared)
            .map(|(at, t)| (t.key.clone(), at + self.base))
            .collect();
        let found = index.get(key).copied();
        self.index = Some(index);
        found
    }
}
