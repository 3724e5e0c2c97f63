//! Property tests: `matches`, `covers` and `intersects` agree with brute
//! force over every topic of a small alphabet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use roost_codec::topic::{covers, intersects, matches, validate_filter_syntax};

/// Literal levels used in filters; topics also use `z`, a level no filter names.
const FILTER_LEVELS: [&str; 4] = ["a", "b", "", "$s"];
const TOPIC_LEVELS: [&str; 5] = ["a", "b", "", "$s", "z"];
const MAX_FILTER_LEVELS: usize = 4;

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FILTER_LEVELS.to_vec()).prop_map(str::to_owned),
        2 => Just("+".to_owned()),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(level(), 0..=MAX_FILTER_LEVELS),
        any::<bool>(),
    )
        .prop_filter_map("valid filters only", |(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            let f = levels.join("/");
            validate_filter_syntax(&f).is_ok().then_some(f)
        })
}

/// Every topic of up to MAX_FILTER_LEVELS + 1 levels over TOPIC_LEVELS.
fn all_topics() -> Vec<String> {
    let mut out: Vec<Vec<&str>> = vec![vec![]];
    let mut topics = Vec::new();
    for _ in 0..=MAX_FILTER_LEVELS {
        let mut next = Vec::new();
        for prefix in &out {
            for l in TOPIC_LEVELS {
                let mut t = prefix.clone();
                t.push(l);
                topics.push(t.join("/"));
                next.push(t);
            }
        }
        out = next;
    }
    // The one-empty-level topic "" is not a valid topic name, but the
    // relations treat it as one: that only makes `covers` stricter and
    // `intersects` wider in that corner, both safe for authorization.
    topics
}

/// The specification's matching rule, written level by level without
/// shortcuts, as the reference for `matches`.
fn reference_match(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if topic.starts_with('$') && (f[0] == "+" || f[0] == "#") {
        return false;
    }
    for (i, fl) in f.iter().enumerate() {
        if *fl == "#" {
            return true;
        }
        match t.get(i) {
            None => return false,
            Some(tl) if *fl == "+" || fl == tl => {}
            Some(_) => return false,
        }
    }
    f.len() == t.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matches_agrees_with_the_reference(f in filter()) {
        for t in all_topics() {
            prop_assert_eq!(matches(&f, &t), reference_match(&f, &t), "filter {:?} topic {:?}", f, t);
        }
    }

    #[test]
    fn covers_is_inclusion_of_matched_topics(rule in filter(), req in filter()) {
        let topics = all_topics();
        let brute = topics.iter().all(|t| !matches(&req, t) || matches(&rule, t));
        prop_assert_eq!(covers(&rule, &req), brute, "rule {:?} request {:?}", rule, req);
    }

    #[test]
    fn intersects_is_a_shared_matched_topic(a in filter(), b in filter()) {
        let topics = all_topics();
        let brute = topics.iter().any(|t| matches(&a, t) && matches(&b, t));
        prop_assert_eq!(intersects(&a, &b), brute, "{:?} and {:?}", a, b);
        prop_assert_eq!(intersects(&b, &a), brute);
    }

    /// The ACL file relies on this: a filter without wildcards (a topic at
    /// delivery) is checked with `matches` alone, whatever the semantics.
    #[test]
    fn on_a_topic_name_covers_and_intersects_are_matches(rule in filter()) {
        for t in all_topics().iter().filter(|t| !t.is_empty()) {
            let m = matches(&rule, t);
            prop_assert_eq!(covers(&rule, t), m, "rule {:?} topic {:?}", rule, t);
            prop_assert_eq!(intersects(&rule, t), m, "rule {:?} topic {:?}", rule, t);
        }
    }

    #[test]
    fn every_filter_covers_itself(f in filter()) {
        prop_assert!(covers(&f, &f));
        prop_assert!(intersects(&f, &f));
    }
}
