//! Routing to non-shared subscriptions: overlap merging, No Local,
//! replacement, removal and pruning.

mod common;

use common::{receivers, route, sub, sub_id};
use roost_codec::{QoS, SubscriptionOptions};
use roost_router::{Router, SharedStrategy, Subscription};

fn router() -> Router<&'static str> {
    Router::new(SharedStrategy::RoundRobin)
}

fn overlapping_subscriptions_deliver_once_at_max_qos() {
    let mut r = router();
    r.subscribe("c", "a/+", None, sub(0), 0);
    r.subscribe("c", "a/#", None, sub(2), 0);
    r.subscribe("c", "a/b", None, sub(1), 0);
    r.subscribe("d", "#", None, sub(1), 0);
    let targets = route(&r, "a/b");
    assert_eq!(targets.len(), 2);
    assert_eq!((targets[0].key, targets[0].qos), ("c", QoS::ExactlyOnce));
    assert_eq!((targets[1].key, targets[1].qos), ("d", QoS::AtLeastOnce));
}

/// 5.0 [MQTT-3.3.4-2]: one copy, respecting the maximum QoS of all matches.
#[test]
fn v5_mqtt_3_3_4_2_overlapping_subscriptions_deliver_once_at_max_qos() {
    overlapping_subscriptions_deliver_once_at_max_qos();
}

/// 3.1.1 [MQTT-3.3.5-1]: the same rule.
#[test]
fn v311_mqtt_3_3_5_1_overlapping_subscriptions_deliver_once_at_max_qos() {
    overlapping_subscriptions_deliver_once_at_max_qos();
}

/// 5.0 [MQTT-3.3.4-3] [MQTT-3.3.4-4]: the single copy carries the identifiers
/// of every matching subscription that has one.
#[test]
fn v5_mqtt_3_3_4_3_and_v5_mqtt_3_3_4_4_merged_target_carries_every_subscription_id() {
    let mut r = router();
    r.subscribe("c", "a/+", None, sub_id(0, 7), 0);
    r.subscribe("c", "a/#", None, sub(1), 0);
    r.subscribe("c", "+/b", None, sub_id(0, 9), 0);
    r.subscribe("c", "a/b", None, sub_id(0, 7), 0);
    let targets = route(&r, "a/b");
    assert_eq!(targets.len(), 1);
    let mut ids = targets[0].subscription_ids.to_vec();
    ids.sort_unstable();
    assert_eq!(ids, [7, 9], "every id once");
    assert_eq!(targets[0].qos, QoS::AtLeastOnce);
}

/// 5.0 [MQTT-3.3.4-5]: a shared copy is a separate PUBLISH carrying the
/// identifier of its own subscription only.
#[test]
fn v5_mqtt_3_3_4_5_separate_copies_carry_their_own_subscription_id() {
    let mut r = router();
    r.subscribe("c", "a/+", None, sub_id(0, 1), 0);
    r.subscribe("c", "a/b", Some("g"), sub_id(2, 2), 0);
    let targets = route(&r, "a/b");
    assert_eq!(targets.len(), 2);
    assert!(!targets[0].shared);
    assert_eq!(targets[0].subscription_ids.as_slice(), [1]);
    assert!(targets[1].shared);
    assert_eq!(targets[1].subscription_ids.as_slice(), [2]);
    assert_eq!(targets[1].qos, QoS::ExactlyOnce);
}

fn no_local(qos: u8) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            no_local: true,
            ..sub(qos).options
        },
        identifier: None,
    }
}

/// 5.0 [MQTT-3.8.3-3]: with No Local, a client's own messages are not
/// forwarded to it; its other (non-No-Local) matching subscriptions and other
/// clients still get them.
#[test]
fn v5_mqtt_3_8_3_3_no_local_skips_the_publishing_client() {
    let mut r = router();
    r.subscribe("me", "a/b", None, no_local(1), 0);
    r.subscribe("other", "a/b", None, no_local(1), 0);
    let mut out = Vec::new();
    r.route("a/b", Some(&"me"), "me", &mut out);
    assert_eq!(out.iter().map(|t| t.key).collect::<Vec<_>>(), ["other"]);

    // Another of my subscriptions without No Local still matches, alone.
    r.subscribe("me", "a/#", None, sub_id(0, 5), 0);
    out.clear();
    r.route("a/b", Some(&"me"), "me", &mut out);
    out.sort_by_key(|t| t.key);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].key, "me");
    assert_eq!(
        out[0].qos,
        QoS::AtMostOnce,
        "the No Local sub must not merge"
    );
    assert_eq!(out[0].subscription_ids.as_slice(), [5]);

    // Broker-originated messages have no publisher: No Local never applies.
    assert_eq!(receivers(&r, "a/b"), ["me", "other"]);
}

#[test]
fn no_local_is_not_applied_to_shared_subscriptions() {
    let mut r = router();
    r.subscribe("me", "a/b", Some("g"), no_local(1), 0);
    let mut out = Vec::new();
    r.route("a/b", Some(&"me"), "me", &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].shared);
}

#[test]
fn retain_as_published_is_set_if_any_merged_subscription_has_it() {
    let mut r = router();
    let rap = Subscription {
        options: SubscriptionOptions {
            retain_as_published: true,
            ..sub(0).options
        },
        identifier: None,
    };
    r.subscribe("c", "a/#", None, sub(0), 0);
    r.subscribe("c", "a/b", None, rap, 0);
    r.subscribe("d", "a/#", None, sub(0), 0);
    let targets = route(&r, "a/b");
    assert!(targets[0].retain_as_published);
    assert!(!targets[1].retain_as_published);
    assert!(!route(&r, "a/c")[0].retain_as_published);
}

/// The broker's authorization tag: one merged subscription authorized as a
/// whole under the rules in force (the highest tag) spares the check.
#[test]
fn the_cleared_tag_is_the_highest_of_the_merged_subscriptions() {
    let mut r = router();
    r.subscribe("c", "a/#", None, sub(0), 0);
    r.subscribe("c", "a/+", None, sub(0), 7);
    r.subscribe("c", "+/b", None, sub(0), 3);
    r.subscribe("g", "a/#", Some("grp"), sub(0), 5);
    let targets = route(&r, "a/b");
    assert_eq!(targets.len(), 2);
    assert_eq!((targets[0].key, targets[0].cleared), ("c", 7));
    assert_eq!((targets[1].key, targets[1].cleared), ("g", 5));
    assert_eq!(route(&r, "a/b/c")[0].cleared, 0, "only a/# matches");
}

fn identical_filter_replaces_the_subscription() {
    let mut r = router();
    assert!(!r.subscribe("c", "a/b", None, sub_id(0, 1), 0));
    assert!(r.subscribe("c", "a/b", None, sub_id(2, 2), 0));
    assert_eq!(r.subscription_count(), 1);
    let targets = route(&r, "a/b");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].qos, QoS::ExactlyOnce);
    assert_eq!(targets[0].subscription_ids.as_slice(), [2]);
    assert_eq!(
        r.subscriptions_of(&"c"),
        [("a/b".into(), None, sub_id(2, 2))]
    );
}

/// 5.0 [MQTT-3.8.4-3]: an identical filter replaces the existing
/// subscription; `subscribe` reports that it existed (Retain Handling 1).
#[test]
fn v5_mqtt_3_8_4_3_identical_filter_replaces_the_subscription() {
    identical_filter_replaces_the_subscription();
}

/// 3.1.1 [MQTT-3.8.4-3]: the same rule.
#[test]
fn v311_mqtt_3_8_4_3_identical_filter_replaces_the_subscription() {
    identical_filter_replaces_the_subscription();
}

#[test]
fn shared_and_non_shared_on_the_same_filter_are_distinct_subscriptions() {
    let mut r = router();
    assert!(!r.subscribe("c", "a", None, sub(0), 0));
    assert!(!r.subscribe("c", "a", Some("g"), sub(0), 0));
    assert!(!r.subscribe("c", "a", Some("h"), sub(0), 0));
    assert!(r.subscribe("c", "a", Some("g"), sub(1), 0));
    assert_eq!(r.subscription_count(), 3);
    let mut subs = r.subscriptions_of(&"c");
    subs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        subs,
        [
            ("a".into(), None, sub(0)),
            ("a".into(), Some("g".into()), sub(1)),
            ("a".into(), Some("h".into()), sub(0)),
        ]
    );
    assert!(r.unsubscribe(&"c", "a", Some("g")));
    assert!(!r.unsubscribe(&"c", "a", Some("g")));
    assert_eq!(r.subscription_count(), 2);
}

#[test]
fn unsubscribe_stops_delivery_and_reports_existence() {
    let mut r = router();
    r.subscribe("c", "a/+", None, sub(0), 0);
    r.subscribe("d", "a/+", None, sub(0), 0);
    assert!(!r.unsubscribe(&"c", "a/b", None), "different filter");
    assert!(!r.unsubscribe(&"x", "a/+", None), "different key");
    assert!(!r.unsubscribe(&"c", "a/+", Some("g")), "not shared");
    assert!(r.unsubscribe(&"c", "a/+", None));
    assert_eq!(receivers(&r, "a/b"), ["d"]);
    assert_eq!(r.subscription_count(), 1);
}

#[test]
fn unsubscribing_everything_prunes_every_node() {
    let mut r = router();
    let filters = [
        "a/b/c", "a/b", "a/+/c", "a/#", "#", "+", "+/+/#", "$SYS/#", "a//b", "/", "", "x/y/z/w",
    ];
    for (i, f) in filters.iter().enumerate() {
        let group = (i % 3 == 0).then_some("g");
        r.subscribe("c", f, group, sub(0), 0);
        r.subscribe("d", f, None, sub(1), 0);
    }
    assert!(r.node_count() > 0);
    // Remove in an order different from insertion.
    for f in filters.iter().rev() {
        assert!(r.unsubscribe(&"d", f, None));
    }
    assert!(r.node_count() > 0, "c still holds the paths");
    for (i, f) in filters.iter().enumerate() {
        let group = (i % 3 == 0).then_some("g");
        assert!(r.unsubscribe(&"c", f, group), "{f}");
    }
    assert_eq!(r.subscription_count(), 0);
    assert_eq!(r.subscriber_count(), 0);
    assert_eq!(r.node_count(), 0);
    assert!(route(&r, "a/b/c").is_empty());
}

#[test]
fn pruning_keeps_nodes_still_in_use() {
    let mut r = router();
    r.subscribe("c", "a/b/c/d", None, sub(0), 0);
    r.subscribe("c", "a/b", None, sub(0), 0);
    assert_eq!(r.node_count(), 4);
    r.unsubscribe(&"c", "a/b/c/d", None);
    assert_eq!(r.node_count(), 2, "a and b remain");
    assert_eq!(receivers(&r, "a/b"), ["c"]);
    r.subscribe("c", "a/b/#", None, sub(0), 0);
    r.unsubscribe(&"c", "a/b", None);
    assert_eq!(r.node_count(), 2, "b still holds a # slot");
    r.unsubscribe(&"c", "a/b/#", None);
    assert_eq!(r.node_count(), 0);
}

#[test]
fn remove_all_drops_the_listed_subscriptions_of_one_key() {
    let mut r = router();
    for f in ["a", "a/b", "a/#", "+/b"] {
        r.subscribe("c", f, None, sub(0), 0);
        r.subscribe("d", f, None, sub(0), 0);
    }
    r.subscribe("c", "a", Some("g"), sub(0), 0);
    let of_c = [
        ("a", None),
        ("a/b", None),
        ("a/#", None),
        ("+/b", None),
        ("a", Some("g")),
    ];
    assert_eq!(r.remove_all(&"c", of_c), 5);
    assert_eq!(r.remove_all(&"c", of_c), 0, "a second call finds nothing");
    assert_eq!(r.subscription_count(), 4);
    assert!(r.subscriptions_of(&"c").is_empty());
    assert_eq!(receivers(&r, "a/b"), ["d"]);
    // Entries the key does not hold (another group, never subscribed) are skipped.
    assert_eq!(
        r.remove_all(&"d", [("a", Some("g")), ("x", None), ("a", None)]),
        1
    );
    assert_eq!(r.subscription_count(), 3);
    assert_eq!(r.subscriber_count(), 1);
    assert_eq!(r.remove_all(&"d", [("a/b", None), ("a/#", None)]), 2);
    assert_eq!(receivers(&r, "z/b"), ["d"], "+/b was not listed: it stays");
    assert_eq!(r.remove_all(&"d", [("+/b", None)]), 1);
    assert_eq!(r.node_count(), 0);
}

#[test]
fn purge_finds_every_subscription_of_one_key_without_a_list() {
    let mut r = router();
    let filters = [
        "a",
        "a/b",
        "a/#",
        "+/b",
        "#",
        "",
        "/",
        "a//b",
        "+/+/#",
        "$SYS/#",
        "sport/#/x",
        "x+/y",
    ];
    for f in filters {
        r.subscribe("c", f, None, sub(0), 0);
        r.subscribe("d", f, None, sub(1), 0);
    }
    r.subscribe("c", "a/+", Some("g"), sub(0), 0);
    r.subscribe("c", "#", Some("h"), sub(0), 0);
    let mut listed = r.subscriptions_of(&"c");
    listed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut want: Vec<(String, Option<String>, Subscription)> = filters
        .iter()
        .map(|f| (f.to_string(), None, sub(0)))
        .chain([
            ("a/+".into(), Some("g".into()), sub(0)),
            ("#".into(), Some("h".into()), sub(0)),
        ])
        .collect();
    want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(listed, want, "filters are rebuilt from the trie path");
    assert_eq!(r.subscriber_count(), 2);
    assert_eq!(r.purge(&"c"), filters.len() + 2);
    assert_eq!(r.purge(&"c"), 0);
    assert_eq!(r.subscription_count(), filters.len());
    assert_eq!(r.subscriber_count(), 1);
    assert_eq!(receivers(&r, "a/b"), ["d"]);
    assert_eq!(r.purge(&"d"), filters.len());
    assert_eq!(r.node_count(), 0);
}

#[test]
fn large_fan_out_through_overlapping_filters_is_merged() {
    // Crosses the linear-dedup limit so the hash-index path is exercised.
    let mut r: Router<u32> = Router::new(SharedStrategy::RoundRobin);
    for key in 0..500u32 {
        r.subscribe(key, "t/+", None, sub(0), 0);
        if key % 2 == 0 {
            r.subscribe(key, "t/#", None, sub_id(1, key), 0);
        }
        if key % 3 == 0 {
            r.subscribe(key, "t/x", None, sub_id(2, key + 1000), 0);
        }
    }
    let mut out = vec![];
    r.route("t/x", None, "", &mut out);
    assert_eq!(out.len(), 500);
    for t in &out {
        let expected_qos = if t.key % 3 == 0 {
            QoS::ExactlyOnce
        } else if t.key % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        assert_eq!(t.qos, expected_qos, "key {}", t.key);
        let ids = usize::from(t.key % 2 == 0) + usize::from(t.key % 3 == 0);
        assert_eq!(t.subscription_ids.len(), ids, "key {}", t.key);
    }
}

#[test]
fn route_appends_after_existing_entries() {
    let mut r = router();
    r.subscribe("c", "a", None, sub(0), 0);
    r.subscribe("c", "#", None, sub(1), 0);
    let mut out = Vec::new();
    r.route("a", None, "", &mut out);
    r.route("a", None, "", &mut out);
    assert_eq!(out.len(), 2, "each call merges only its own targets");
}

#[test]
fn many_subscribers_on_one_filter_subscribe_and_leave_quickly() {
    // Guards against quadratic subscriber lists: 20k subscribe/unsubscribe
    // on one node would take seconds if each were a linear scan.
    let mut r: Router<u32> = Router::default();
    for key in 0..20_000 {
        r.subscribe(key, "hot/topic", None, sub(0), 0);
    }
    let mut out = vec![];
    r.route("hot/topic", None, "", &mut out);
    assert_eq!(out.len(), 20_000);
    for key in 0..20_000 {
        assert!(r.unsubscribe(&key, "hot/topic", None));
    }
    assert_eq!(r.node_count(), 0);
}

#[test]
fn very_deep_filters_subscribe_route_and_prune_without_overflow() {
    let mut r: Router<u8> = Router::default();
    let deep = "l/".repeat(40_000);
    let deep_plus = format!("{}+", "l/".repeat(40_000));
    r.subscribe(1, &deep, None, sub(0), 0);
    r.subscribe(2, &deep_plus, None, sub(0), 0);
    let mut out = vec![];
    r.route(&deep, None, "", &mut out);
    assert_eq!(out.len(), 2);
    assert!(r.unsubscribe(&1, &deep, None));
    assert!(
        r.node_count() >= 40_000,
        "the + path still needs the shared prefix"
    );
    assert!(r.unsubscribe(&2, &deep_plus, None));
    assert_eq!(r.node_count(), 0);
    r.subscribe(3, &deep, Some("g"), sub(0), 0);
    drop(r);
}

#[test]
fn router_and_retained_index_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Router<u64>>();
    assert_send_sync::<roost_router::RetainedIndex<std::sync::Arc<[u8]>>>();
}
