//! Shared subscriptions (MQTT 5.0 §4.8.2): one member per group per message,
//! and the picking strategies.

mod common;

use std::collections::HashMap;

use common::{route, sub, sub_id};
use roost_codec::QoS;
use roost_router::{Router, SharedStrategy, Target};

const MEMBERS: [&str; 3] = ["m1", "m2", "m3"];

fn group_router(strategy: SharedStrategy) -> Router<&'static str> {
    let mut r = Router::with_seed(strategy, 42);
    for m in MEMBERS {
        r.subscribe(m, "jobs/+", Some("workers"), sub(1), 0);
    }
    r
}

fn pick_once(r: &Router<&'static str>, topic: &str, publisher_id: &str) -> &'static str {
    let mut out = Vec::new();
    r.route(topic, None, publisher_id, &mut out);
    assert_eq!(out.len(), 1, "one member per group per message");
    assert!(out[0].shared);
    out[0].key
}

fn tally(picks: impl IntoIterator<Item = &'static str>) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for p in picks {
        *counts.entry(p).or_default() += 1;
    }
    counts
}

#[test]
fn each_matching_group_gets_exactly_one_copy() {
    let mut r = Router::new(SharedStrategy::Random);
    r.subscribe("a", "t/#", Some("g1"), sub(0), 0);
    r.subscribe("b", "t/#", Some("g1"), sub(0), 0);
    r.subscribe("a", "t/#", Some("g2"), sub(0), 0);
    r.subscribe("c", "t/x", Some("g1"), sub(0), 0); // same name, other filter: another group
    r.subscribe("a", "t/x", None, sub(0), 0);
    let targets = route(&r, "t/x");
    assert_eq!(targets.iter().filter(|t| t.shared).count(), 3);
    assert_eq!(targets.iter().filter(|t| !t.shared).count(), 1);
    assert_eq!(route(&r, "t/y").len(), 2, "g1 and g2 at t/#");
}

/// [MQTT-4.8.2-3]: the copy sent through a shared subscription respects the
/// QoS granted to that member.
#[test]
fn v5_mqtt_4_8_2_3_shared_target_carries_the_members_granted_qos() {
    let mut r = Router::new(SharedStrategy::RoundRobin);
    r.subscribe("a", "t", Some("g"), sub_id(0, 1), 0);
    r.subscribe("b", "t", Some("g"), sub_id(2, 2), 0);
    let mut seen = HashMap::new();
    for _ in 0..4 {
        let t: Target<&str> = route(&r, "t").remove(0);
        seen.insert(t.key, (t.qos, t.subscription_ids.to_vec()));
    }
    assert_eq!(seen["a"], (QoS::AtMostOnce, vec![1]));
    assert_eq!(seen["b"], (QoS::ExactlyOnce, vec![2]));
}

#[test]
fn round_robin_cycles_members_fairly() {
    let r = group_router(SharedStrategy::RoundRobin);
    let picks: Vec<_> = (0..300).map(|_| pick_once(&r, "jobs/1", "p")).collect();
    let counts = tally(picks.iter().copied());
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    // Strictly cyclic: no member twice in a row.
    assert!(picks.windows(2).all(|w| w[0] != w[1]));
}

#[test]
fn round_robin_skips_unavailable_members() {
    let r = group_router(SharedStrategy::RoundRobin);
    let online = |k: &&str| *k != "m2";
    let mut picks = Vec::new();
    for _ in 0..100 {
        let mut out = Vec::new();
        r.route_with("jobs/1", None, "p", &online, &mut out);
        picks.push(out[0].key);
    }
    let counts = tally(picks);
    assert_eq!(counts.get("m2"), None);
    assert_eq!(counts["m1"] + counts["m3"], 100);
    assert!(counts["m1"].abs_diff(counts["m3"]) <= 2, "{counts:?}");
}

#[test]
fn when_no_member_is_available_one_is_still_picked() {
    for strategy in [
        SharedStrategy::RoundRobin,
        SharedStrategy::Random,
        SharedStrategy::Sticky,
        SharedStrategy::HashClientId,
        SharedStrategy::HashTopic,
    ] {
        let r = group_router(strategy);
        let mut out = Vec::new();
        r.route_with("jobs/1", None, "p", &|_| false, &mut out);
        assert_eq!(out.len(), 1, "{strategy:?}: queued for an offline member");
    }
}

#[test]
fn sticky_keeps_the_same_member_until_it_leaves() {
    let mut r = group_router(SharedStrategy::Sticky);
    let first = pick_once(&r, "jobs/1", "p");
    for i in 0..50 {
        assert_eq!(pick_once(&r, &format!("jobs/{i}"), &format!("p{i}")), first);
    }
    assert!(r.unsubscribe(&first, "jobs/+", Some("workers")));
    let second = pick_once(&r, "jobs/1", "p");
    assert_ne!(second, first);
    for _ in 0..20 {
        assert_eq!(pick_once(&r, "jobs/2", "p"), second);
    }
    // Removing another member (which moves entries around) keeps the choice.
    let other = MEMBERS
        .into_iter()
        .find(|m| *m != first && *m != second)
        .unwrap_or_default();
    r.unsubscribe(&other, "jobs/+", Some("workers"));
    assert_eq!(pick_once(&r, "jobs/3", "p"), second);
}

#[test]
fn sticky_moves_away_from_an_unavailable_member_and_stays() {
    let r = group_router(SharedStrategy::Sticky);
    let first = pick_once(&r, "jobs/1", "p");
    let not_first = |k: &&str| *k != first;
    let mut out = Vec::new();
    r.route_with("jobs/1", None, "p", &not_first, &mut out);
    let moved = out[0].key;
    assert_ne!(moved, first);
    for _ in 0..20 {
        assert_eq!(pick_once(&r, "jobs/1", "p"), moved);
    }
}

#[test]
fn hash_client_id_is_deterministic_and_spreads_publishers() {
    let a = group_router(SharedStrategy::HashClientId);
    let b = group_router(SharedStrategy::HashClientId);
    for i in 0..100 {
        let id = format!("client-{i}");
        let picked = pick_once(&a, "jobs/1", &id);
        assert_eq!(
            pick_once(&a, "jobs/2", &id),
            picked,
            "same publisher, same member"
        );
        assert_eq!(
            pick_once(&b, "jobs/3", &id),
            picked,
            "same on another router"
        );
    }
    let spread = tally((0..300).map(|i| pick_once(&a, "jobs/1", &format!("client-{i}"))));
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.values().all(|&c| c > 50), "{spread:?}");
}

#[test]
fn hash_topic_is_deterministic_and_spreads_topics() {
    let a = group_router(SharedStrategy::HashTopic);
    let b = group_router(SharedStrategy::HashTopic);
    for i in 0..100 {
        let topic = format!("jobs/{i}");
        let picked = pick_once(&a, &topic, "p1");
        assert_eq!(
            pick_once(&a, &topic, "p2"),
            picked,
            "same topic, same member"
        );
        assert_eq!(pick_once(&b, &topic, "p3"), picked);
    }
    let spread = tally((0..300).map(|i| pick_once(&a, &format!("jobs/{i}"), "p")));
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.values().all(|&c| c > 50), "{spread:?}");
}

#[test]
fn hash_strategies_skip_unavailable_members_deterministically() {
    let r = group_router(SharedStrategy::HashClientId);
    let natural = pick_once(&r, "jobs/1", "client-7");
    let avoid = |k: &&str| *k != natural;
    let mut first = Vec::new();
    r.route_with("jobs/1", None, "client-7", &avoid, &mut first);
    let mut second = Vec::new();
    r.route_with("jobs/1", None, "client-7", &avoid, &mut second);
    assert_ne!(first[0].key, natural);
    assert_eq!(first[0].key, second[0].key);
}

#[test]
fn random_hits_every_member_roughly_evenly() {
    let r = group_router(SharedStrategy::Random);
    let counts = tally((0..3000).map(|_| pick_once(&r, "jobs/1", "p")));
    assert_eq!(counts.len(), 3);
    // Expected 1000 each; 800..1200 is > 10 standard deviations wide.
    assert!(
        counts.values().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn random_with_availability_only_picks_available_members() {
    let r = group_router(SharedStrategy::Random);
    let online = |k: &&str| *k != "m1";
    let mut picks = Vec::new();
    for _ in 0..300 {
        let mut out = Vec::new();
        r.route_with("jobs/1", None, "p", &online, &mut out);
        picks.push(out[0].key);
    }
    let counts = tally(picks);
    assert_eq!(counts.get("m1"), None);
    assert_eq!(counts.len(), 2);
}

#[test]
fn pick_shared_member_never_returns_the_excluded_member() {
    for strategy in [
        SharedStrategy::RoundRobin,
        SharedStrategy::Random,
        SharedStrategy::Sticky,
        SharedStrategy::HashClientId,
        SharedStrategy::HashTopic,
    ] {
        let mut r = group_router(strategy);
        for i in 0..30 {
            let (key, s) = r
                .pick_shared_member("workers", "jobs/+", &"m1", &format!("p{i}"), "jobs/1")
                .unwrap_or(("none", sub(0)));
            assert!(key == "m2" || key == "m3", "{strategy:?} picked {key}");
            assert_eq!(s, sub(1));
        }
        assert_eq!(
            r.pick_shared_member("nope", "jobs/+", &"m1", "p", "t"),
            None
        );
        assert_eq!(
            r.pick_shared_member("workers", "jobs/x", &"m1", "p", "t"),
            None
        );
        r.unsubscribe(&"m2", "jobs/+", Some("workers"));
        r.unsubscribe(&"m3", "jobs/+", Some("workers"));
        assert_eq!(
            r.pick_shared_member("workers", "jobs/+", &"m1", "p", "t"),
            None,
            "only the excluded member is left"
        );
    }
}

#[test]
fn leaving_members_never_leave_a_stale_pick() {
    for strategy in [SharedStrategy::RoundRobin, SharedStrategy::Sticky] {
        let mut r = group_router(strategy);
        for _ in 0..5 {
            pick_once(&r, "jobs/1", "p");
        }
        r.unsubscribe(&"m3", "jobs/+", Some("workers"));
        r.unsubscribe(&"m1", "jobs/+", Some("workers"));
        for _ in 0..5 {
            assert_eq!(pick_once(&r, "jobs/1", "p"), "m2", "{strategy:?}");
        }
        r.unsubscribe(&"m2", "jobs/+", Some("workers"));
        assert!(route(&r, "jobs/1").is_empty());
        assert_eq!(r.node_count(), 0);
    }
}

#[test]
fn default_strategy_is_round_robin() {
    assert_eq!(SharedStrategy::default(), SharedStrategy::RoundRobin);
    let r: Router<u8> = Router::default();
    assert_eq!(r.strategy(), SharedStrategy::RoundRobin);
}

/// Cluster mode: a node routes only the part of a match it was assigned —
/// the groups `select.group` names (by name *and* filter) and the
/// non-shared subscribers only when `select.direct`.
#[test]
fn route_select_takes_only_the_selected_groups_and_direct_when_asked() {
    let mut r = Router::new(SharedStrategy::RoundRobin);
    r.subscribe("a", "t/#", Some("g1"), sub(0), 0);
    r.subscribe("b", "t/x", Some("g1"), sub(0), 0); // same name, other filter
    r.subscribe("c", "t/x", Some("g2"), sub(0), 0);
    r.subscribe("d", "t/x", None, sub(0), 0);
    let only_g1_hash = |g: &str, f: &str| g == "g1" && f == "t/#";
    let mut out = Vec::new();
    let select = roost_router::Select {
        direct: false,
        group: &only_g1_hash,
    };
    r.route_select("t/x", None, "p", &|_| true, &select, &mut out);
    let keys: Vec<_> = out.iter().map(|t| t.key).collect();
    assert_eq!(keys, ["a"], "one group selected, no direct subscriber");
    out.clear();
    let none = |_: &str, _: &str| false;
    let select = roost_router::Select {
        direct: true,
        group: &none,
    };
    r.route_select("t/x", None, "p", &|_| true, &select, &mut out);
    let keys: Vec<_> = out.iter().map(|t| t.key).collect();
    assert_eq!(keys, ["d"], "direct subscribers only");
    assert!(r.has_members("t/x", None));
    assert!(r.has_members("t/x", Some("g2")));
    assert!(!r.has_members("t/#", None));
    assert!(!r.has_members("t/x", Some("g3")));
}

/// Round robin when no member is available (e.g. all offline, or a
/// cluster's `local` pick on a node without members) still alternates: the
/// failed first pass does not use up a turn.
#[test]
fn round_robin_with_no_member_available_still_takes_turns() {
    let mut r = Router::new(SharedStrategy::RoundRobin);
    r.subscribe("a", "t", Some("g"), sub(0), 0);
    r.subscribe("b", "t", Some("g"), sub(0), 0);
    let picks: Vec<_> = (0..4)
        .map(|_| {
            let mut out = Vec::new();
            r.route_with("t", None, "p", &|_| false, &mut out);
            out[0].key
        })
        .collect();
    assert_eq!(tally(picks).len(), 2, "both members get turns");
}
