//! A session's granted subscriptions, keyed by the full filter text.
//!
//! Most clients hold a handful of subscriptions, and a `BTreeMap` allocates
//! a whole leaf (11 slots, ~500 B here) for the first one. So the map is a
//! sorted vector while it is small (one entry costs one 48-byte slot) and a
//! `BTreeMap` once it grows, where inserting into a long vector would move
//! too much. Both iterate in filter order, so behaviour does not depend on
//! the representation.

use std::borrow::Borrow;
use std::collections::{BTreeMap, btree_map};
use std::fmt;

use bytestring::ByteString;

use roost_codec::Subscription;

/// Above this many entries the map becomes a `BTreeMap`.
const SMALL_MAX: usize = 32;

/// Subscriptions keyed by the full filter text as sent (including any
/// `$share/<group>/` prefix), iterated in filter order. The subset of the
/// `BTreeMap` API the broker uses, with the same signatures.
#[derive(Clone, Default)]
pub struct Subscriptions {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Sorted by filter, no duplicates.
    Small(Vec<(ByteString, Subscription)>),
    /// Boxed: the enum is then no larger than the vector (24 bytes in every
    /// session, and in every hibernating one).
    #[expect(
        clippy::box_collection,
        reason = "24 bytes in every session instead of 32; large maps are rare"
    )]
    Large(Box<BTreeMap<ByteString, Subscription>>),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

/// Position of `key` in a sorted small map.
fn search<Q>(items: &[(ByteString, Subscription)], key: &Q) -> Result<usize, usize>
where
    ByteString: Borrow<Q>,
    Q: Ord + ?Sized,
{
    items.binary_search_by(|(k, _)| k.borrow().cmp(key))
}

impl Subscriptions {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(items) => items.len(),
            Repr::Large(map) => map.len(),
        }
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The subscription for `filter`.
    pub fn get<Q>(&self, filter: &Q) -> Option<&Subscription>
    where
        ByteString: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get_key_value(filter).map(|(_, v)| v)
    }

    /// The stored filter and subscription for `filter`.
    pub fn get_key_value<Q>(&self, filter: &Q) -> Option<(&ByteString, &Subscription)>
    where
        ByteString: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &self.repr {
            Repr::Small(items) => {
                let at = search(items, filter).ok()?;
                items.get(at).map(|(k, v)| (k, v))
            }
            Repr::Large(map) => map.get_key_value(filter),
        }
    }

    /// The subscription for `filter`, for changing it.
    pub fn get_mut<Q>(&mut self, filter: &Q) -> Option<&mut Subscription>
    where
        ByteString: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.repr {
            Repr::Small(items) => {
                let at = search(items, filter).ok()?;
                items.get_mut(at).map(|(_, v)| v)
            }
            Repr::Large(map) => map.get_mut(filter),
        }
    }

    /// True when `filter` is subscribed.
    pub fn contains_key<Q>(&self, filter: &Q) -> bool
    where
        ByteString: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get_key_value(filter).is_some()
    }

    /// Inserts or replaces; returns the replaced subscription.
    pub fn insert(&mut self, filter: ByteString, sub: Subscription) -> Option<Subscription> {
        let items = match &mut self.repr {
            Repr::Large(map) => return map.insert(filter, sub),
            Repr::Small(items) => items,
        };
        match search(items, &filter) {
            Ok(at) => items.get_mut(at).map(|(_, v)| std::mem::replace(v, sub)),
            Err(_) if items.len() >= SMALL_MAX => {
                let mut map: BTreeMap<_, _> = std::mem::take(items).into_iter().collect();
                map.insert(filter, sub);
                self.repr = Repr::Large(Box::new(map));
                None
            }
            Err(at) => {
                if items.is_empty() {
                    // Most sessions hold one or two filters: no spare slots.
                    items.reserve_exact(1);
                }
                items.insert(at, (filter, sub));
                None
            }
        }
    }

    /// Removes `filter`; returns its subscription.
    pub fn remove<Q>(&mut self, filter: &Q) -> Option<Subscription>
    where
        ByteString: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match &mut self.repr {
            Repr::Small(items) => {
                let at = search(items, filter).ok()?;
                let (_, sub) = items.remove(at);
                if items.is_empty() {
                    *items = Vec::new();
                }
                Some(sub)
            }
            Repr::Large(map) => map.remove(filter),
        }
    }

    /// Removes every subscription.
    pub fn clear(&mut self) {
        self.repr = Repr::default();
    }

    /// Subscriptions in filter order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.repr {
            Repr::Small(items) => IterRepr::Small(items.iter()),
            Repr::Large(map) => IterRepr::Large(map.iter()),
        })
    }

    /// Filters in order.
    pub fn keys(&self) -> impl Iterator<Item = &ByteString> {
        self.iter().map(|(k, _)| k)
    }

    /// Subscriptions in filter order.
    pub fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.iter().map(|(_, v)| v)
    }
}

/// Equal when they hold the same subscriptions, whatever the representation.
impl PartialEq for Subscriptions {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Subscriptions {}

impl fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q> std::ops::Index<&Q> for Subscriptions
where
    ByteString: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = Subscription;

    /// Like `BTreeMap`'s: panics when `filter` is not subscribed (only
    /// for callers that know it is, e.g. tests).
    fn index(&self, filter: &Q) -> &Subscription {
        match self.get(filter) {
            Some(sub) => sub,
            None => panic!("no subscription for this filter"),
        }
    }
}

impl FromIterator<(ByteString, Subscription)> for Subscriptions {
    fn from_iter<I: IntoIterator<Item = (ByteString, Subscription)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

impl Extend<(ByteString, Subscription)> for Subscriptions {
    fn extend<I: IntoIterator<Item = (ByteString, Subscription)>>(&mut self, iter: I) {
        for (filter, sub) in iter {
            self.insert(filter, sub);
        }
    }
}

impl<'a> IntoIterator for &'a Subscriptions {
    type Item = (&'a ByteString, &'a Subscription);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over `(filter, subscription)` in filter order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Small(std::slice::Iter<'a, (ByteString, Subscription)>),
    Large(btree_map::Iter<'a, ByteString, Subscription>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a ByteString, &'a Subscription);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(it) => it.next().map(|(k, v)| (k, v)),
            IterRepr::Large(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Small(it) => it.size_hint(),
            IterRepr::Large(it) => it.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Small(it) => it.next_back().map(|(k, v)| (k, v)),
            IterRepr::Large(it) => it.next_back(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    #[test]
    fn the_map_is_no_larger_than_its_small_vector() {
        assert_eq!(std::mem::size_of::<super::Subscriptions>(), 24);
    }

    use super::*;
    use roost_codec::{QoS, SubscriptionOptions};

    fn sub(qos: QoS) -> Subscription {
        Subscription {
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
            identifier: None,
        }
    }

    /// The same operations on this map and on a `BTreeMap` give the same
    /// answers and the same order, on both sides of the representation switch.
    #[test]
    fn behaves_like_a_btreemap_across_the_switch() {
        let mut ours = Subscriptions::new();
        let mut model = BTreeMap::new();
        // A deterministic shuffle of 0..100 (37 is coprime with 100).
        let keys: Vec<String> = (0..100u32)
            .map(|i| format!("t/{}", (i * 37) % 100))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            assert_eq!(
                ours.insert(ByteString::from(k.as_str()), sub(qos)),
                model.insert(ByteString::from(k.as_str()), sub(qos))
            );
            assert_eq!(ours.len(), model.len());
            assert!(ours.iter().eq(model.iter()));
        }
        assert_eq!(
            ours.insert("t/5".into(), sub(QoS::ExactlyOnce)),
            model.insert("t/5".into(), sub(QoS::ExactlyOnce))
        );
        for k in keys.iter().step_by(3) {
            assert_eq!(ours.remove(k.as_str()), model.remove(k.as_str()));
            assert_eq!(
                ours.contains_key(k.as_str()),
                model.contains_key(k.as_str())
            );
        }
        assert!(ours.iter().eq(model.iter()));
        assert!(ours.iter().rev().eq(model.iter().rev()));
        assert_eq!(ours["t/5"], model["t/5"]);
        assert_eq!(ours.get("missing"), None);
    }

    #[test]
    fn small_map_stays_sorted_and_frees_when_emptied() {
        let mut ours = Subscriptions::new();
        for k in ["b", "a", "c", "a"] {
            ours.insert(k.into(), sub(QoS::AtMostOnce));
        }
        assert!(ours.keys().map(|k| &**k).eq(["a", "b", "c"]));
        for k in ["a", "b", "c"] {
            assert!(ours.remove(k).is_some());
        }
        assert!(ours.is_empty());
        assert_eq!(ours.remove("a"), None);
        assert_eq!(ours, Subscriptions::new());
    }
}
