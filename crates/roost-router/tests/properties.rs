//! Property tests: the trie and the retained index agree with the naive
//! matcher over random filters and topics (including `$` topics, empty
//! levels, leading and trailing separators), and removal prunes everything.
//! The router keeps no list of a subscriber's filters: the model plays the
//! broker's session, passing its own list to `remove_all` (with stale
//! entries mixed in), or none to `purge`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use roost_codec::topic::matches as topic_matches;
use roost_codec::{QoS, SubscriptionOptions};
use roost_router::{RetainedIndex, Router, SharedStrategy, Subscription};

/// Level texts: few and short so random filters and topics collide often.
fn topic_level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just(String::new()),
        Just("$a".to_string()),
        Just("$SYS".to_string()),
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(topic_level(), 1..5).prop_map(|levels| levels.join("/"))
}

fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![3 => topic_level(), 2 => Just("+".to_string())];
    (prop::collection::vec(level, 0..5), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash || levels.is_empty() {
            levels.push("#".to_string());
        }
        levels.join("/")
    })
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u32..4),
    )
        .prop_map(
            |(qos, no_local, retain_as_published, identifier)| Subscription {
                options: SubscriptionOptions {
                    qos: QoS::from_u8(qos).unwrap_or_default(),
                    no_local,
                    retain_as_published,
                    ..SubscriptionOptions::default()
                },
                identifier,
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe(u8, String, Option<&'static str>, Subscription),
    Unsubscribe(u8, String, Option<&'static str>),
    /// The key's filters as the model lists them, plus these (held by other
    /// keys, or by nobody): what a caller with a stale list passes.
    RemoveAll(u8, Vec<(String, Option<&'static str>)>),
    Purge(u8),
}

fn group() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![4 => Just(None), 1 => Just(Some("g1")), 1 => Just(Some("g2"))]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..5, filter(), group(), subscription())
            .prop_map(|(k, f, g, s)| Op::Subscribe(k, f, g, s)),
        3 => (0u8..5, filter(), group()).prop_map(|(k, f, g)| Op::Unsubscribe(k, f, g)),
        1 => (0u8..5, prop::collection::vec((filter(), group()), 0..3))
            .prop_map(|(k, extra)| Op::RemoveAll(k, extra)),
        1 => (0u8..5).prop_map(Op::Purge),
    ]
}

type Model = BTreeMap<(u8, String, Option<&'static str>), Subscription>;

/// Expected non-shared targets: key -> (qos, retain_as_published, ids).
fn expected_direct(
    model: &Model,
    topic: &str,
    publisher: Option<u8>,
) -> BTreeMap<u8, (QoS, bool, BTreeSet<u32>)> {
    let mut expected: BTreeMap<u8, (QoS, bool, BTreeSet<u32>)> = BTreeMap::new();
    for ((key, filter, group), sub) in model {
        if group.is_some() || !topic_matches(filter, topic) {
            continue;
        }
        if sub.options.no_local && publisher == Some(*key) {
            continue;
        }
        let entry = expected
            .entry(*key)
            .or_insert((QoS::AtMostOnce, false, BTreeSet::new()));
        entry.0 = entry.0.max(sub.options.qos);
        entry.1 |= sub.options.retain_as_published;
        entry.2.extend(sub.identifier);
    }
    expected
}

fn apply(router: &mut Router<u8>, model: &mut Model, op: &Op) {
    match op {
        Op::Subscribe(k, f, g, s) => {
            let existed = model.insert((*k, f.clone(), *g), *s).is_some();
            assert_eq!(router.subscribe(*k, f, *g, *s, 0), existed);
        }
        Op::Unsubscribe(k, f, g) => {
            let existed = model.remove(&(*k, f.clone(), *g)).is_some();
            assert_eq!(router.unsubscribe(k, f, *g), existed);
        }
        Op::RemoveAll(k, extra) => {
            let mut listed: Vec<(String, Option<&'static str>)> = model
                .keys()
                .filter(|(key, _, _)| key == k)
                .map(|(_, f, g)| (f.clone(), *g))
                .collect();
            listed.extend(extra.iter().cloned());
            let before = model.len();
            for (f, g) in &listed {
                model.remove(&(*k, f.clone(), *g));
            }
            let removed = router.remove_all(k, listed.iter().map(|(f, g)| (f.as_str(), *g)));
            assert_eq!(removed, before - model.len());
        }
        Op::Purge(k) => {
            let before = model.len();
            model.retain(|(key, _, _), _| key != k);
            assert_eq!(router.purge(k), before - model.len());
        }
    }
    assert_eq!(router.subscription_count(), model.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn route_agrees_with_the_naive_matcher(
        ops in prop::collection::vec(op(), 1..40),
        topics in prop::collection::vec(topic(), 1..8),
        publisher in prop::option::of(0u8..5),
    ) {
        let mut router = Router::new(SharedStrategy::Random);
        let mut model = Model::new();
        for op in &ops {
            apply(&mut router, &mut model, op);
        }
        for topic in &topics {
            let mut out = Vec::new();
            router.route(topic, publisher.as_ref(), "pub", &mut out);

            let mut direct = BTreeMap::new();
            for t in out.iter().filter(|t| !t.shared) {
                let ids: BTreeSet<u32> = t.subscription_ids.iter().copied().collect();
                prop_assert_eq!(ids.len(), t.subscription_ids.len(), "duplicate ids");
                prop_assert!(
                    direct.insert(t.key, (t.qos, t.retain_as_published, ids)).is_none(),
                    "subscriber {} twice", t.key
                );
            }
            prop_assert_eq!(&direct, &expected_direct(&model, topic, publisher), "topic {}", topic);

            // One shared target per matching (filter, group), from its members.
            let mut groups: HashMap<(&str, &str), Vec<(u8, Subscription)>> = HashMap::new();
            for ((key, filter, group), sub) in &model {
                if let Some(g) = group && topic_matches(filter, topic) {
                    groups.entry((filter.as_str(), g)).or_default().push((*key, *sub));
                }
            }
            let shared: Vec<_> = out.iter().filter(|t| t.shared).collect();
            prop_assert_eq!(shared.len(), groups.len(), "topic {}", topic);
            for t in shared {
                let ids: Vec<u32> = t.subscription_ids.to_vec();
                prop_assert!(groups.values().flatten().any(|(k, s)| {
                    *k == t.key
                        && s.options.qos == t.qos
                        && s.options.retain_as_published == t.retain_as_published
                        && s.identifier.into_iter().collect::<Vec<_>>() == ids
                }), "shared target {:?} is no member", t);
            }
        }

        // subscriptions_of agrees with the model.
        for key in 0u8..5 {
            let mut got = router.subscriptions_of(&key);
            got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            let want: Vec<_> = model
                .iter()
                .filter(|((k, _, _), _)| *k == key)
                .map(|((_, f, g), s)| (f.clone(), g.map(String::from), *s))
                .collect();
            let mut want = want;
            want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            prop_assert_eq!(got, want);
        }

        let keys: BTreeSet<u8> = model.keys().map(|(k, _, _)| *k).collect();
        prop_assert_eq!(router.subscriber_count(), keys.len());

        // Removing everything leaves no node behind: half the keys through
        // their listed filters, half by purging.
        for key in 0u8..5 {
            if key % 2 == 0 {
                let listed: Vec<(String, Option<&'static str>)> = model
                    .keys()
                    .filter(|(k, _, _)| *k == key)
                    .map(|(_, f, g)| (f.clone(), *g))
                    .collect();
                router.remove_all(&key, listed.iter().map(|(f, g)| (f.as_str(), *g)));
            } else {
                router.purge(&key);
            }
        }
        prop_assert_eq!(router.subscription_count(), 0);
        prop_assert_eq!(router.node_count(), 0);
    }

    #[test]
    fn retained_matches_agree_with_the_naive_matcher(
        inserts in prop::collection::vec(topic(), 0..30),
        removes in prop::collection::vec(topic(), 0..10),
        filters in prop::collection::vec(filter(), 1..10),
    ) {
        let mut index = RetainedIndex::new();
        let mut model = BTreeMap::new();
        for (i, t) in inserts.iter().enumerate() {
            prop_assert_eq!(index.insert(t, i), model.insert(t.clone(), i));
        }
        for t in &removes {
            prop_assert_eq!(index.remove(t), model.remove(t));
        }
        prop_assert_eq!(index.len(), model.len());
        for f in &filters {
            let mut got = Vec::new();
            index.matches(f, &mut got);
            got.sort_unstable();
            let mut want: Vec<usize> = model
                .iter()
                .filter(|(t, _)| topic_matches(f, t))
                .map(|(_, m)| *m)
                .collect();
            want.sort_unstable();
            prop_assert_eq!(got, want, "filter {}", f);
        }
        let listed: Vec<String> = index.iter().map(|(t, _)| t).collect();
        let mut want: Vec<String> = model.keys().cloned().collect();
        want.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        prop_assert_eq!(&listed, &want);
        if let Some(mid) = listed.get(listed.len() / 2) {
            let rest: Vec<String> = index.iter_after(mid).map(|(t, _)| t).collect();
            prop_assert_eq!(&rest[..], &listed[listed.len() / 2 + 1..]);
        }
        index.retain(|_, _| false);
        prop_assert!(index.is_empty());
        prop_assert_eq!(index.node_count(), 0);
    }
}
