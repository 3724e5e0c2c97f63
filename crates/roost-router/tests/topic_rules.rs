//! Topic matching rules of MQTT 5.0 §4.7 / 3.1.1 §4.7, checked on all three
//! matchers at once: the naive `topic_matches`, the subscription trie and the
//! retained index.

mod common;

use common::{receivers, router_with};
use roost_codec::topic::matches as topic_matches;
use roost_router::RetainedIndex;

/// Asserts that `filter` matches `topic` exactly when `expected`, for every
/// matcher of the crate.
fn check(filter: &'static str, topic: &str, expected: bool) {
    assert_eq!(
        topic_matches(filter, topic),
        expected,
        "topic_matches({filter:?}, {topic:?})"
    );
    let router = router_with(&[filter]);
    assert_eq!(
        receivers(&router, topic) == [filter],
        expected,
        "router: {filter:?} vs {topic:?}"
    );
    let mut retained = RetainedIndex::new();
    retained.insert(topic, topic.to_string());
    let mut found = Vec::new();
    retained.matches(filter, &mut found);
    assert_eq!(
        found == [topic.to_string()],
        expected,
        "retained: {filter:?} vs {topic:?}"
    );
}

fn matches(filter: &'static str, topics: &[&str]) {
    for topic in topics {
        check(filter, topic, true);
    }
}

fn does_not_match(filter: &'static str, topics: &[&str]) {
    for topic in topics {
        check(filter, topic, false);
    }
}

fn multi_level_wildcard_matches_parent_and_descendants() {
    matches(
        "sport/tennis/player1/#",
        &[
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ],
    );
    matches("sport/#", &["sport", "sport/", "sport/tennis/player1"]);
    matches("#", &["sport", "/", "a/b/c", "", "//"]);
    does_not_match(
        "sport/tennis/player1/#",
        &["sport/tennis", "sport/tennis/player2"],
    );
    does_not_match("sport/#", &["sports", "Sport", "x/sport"]);
}

/// 5.0 [MQTT-4.7.1-1]: `#` on its own or after a separator, last: the trie
/// gives it multi-level meaning only there.
#[test]
fn v5_mqtt_4_7_1_1_multi_level_wildcard_matches_parent_and_descendants() {
    multi_level_wildcard_matches_parent_and_descendants();
}

/// 3.1.1 [MQTT-4.7.1-2]: the same rule, numbered differently.
#[test]
fn v311_mqtt_4_7_1_2_multi_level_wildcard_matches_parent_and_descendants() {
    multi_level_wildcard_matches_parent_and_descendants();
}

fn single_level_wildcard_occupies_one_whole_level() {
    matches(
        "sport/tennis/+",
        &[
            "sport/tennis/player1",
            "sport/tennis/player2",
            "sport/tennis/",
        ],
    );
    does_not_match(
        "sport/tennis/+",
        &["sport/tennis/player1/ranking", "sport/tennis"],
    );
    matches("+", &["sport", ""]);
    does_not_match("+", &["/sport", "sport/"]);
    matches("+/+", &["/finance", "a/b", "/"]);
    does_not_match("+/+", &["finance", "a/b/c"]);
    matches("/+", &["/finance"]);
    does_not_match("/+", &["finance"]);
    matches("+/tennis/#", &["sport/tennis", "sport/tennis/player1"]);
    matches(
        "sport/+/player1",
        &["sport/tennis/player1", "sport//player1"],
    );
}

/// 5.0 [MQTT-4.7.1-2]: `+` matches exactly one level, first or last included.
#[test]
fn v5_mqtt_4_7_1_2_single_level_wildcard_occupies_one_whole_level() {
    single_level_wildcard_occupies_one_whole_level();
}

/// 3.1.1 [MQTT-4.7.1-3]: the same rule.
#[test]
fn v311_mqtt_4_7_1_3_single_level_wildcard_occupies_one_whole_level() {
    single_level_wildcard_occupies_one_whole_level();
}

/// Wildcards are a filter-only notion, so a name containing them (the decoder
/// refuses such a Topic Name [MQTT-4.7.0-1]; the tests named after that
/// statement are in roost-codec and roost-broker) is matched literally and
/// never acts as a wildcard. Not named after the statement: this tests
/// matching, not the refusal.
#[test]
fn wildcard_characters_in_a_name_match_only_literally() {
    does_not_match("sport/tennis", &["sport/+", "sport/#", "#"]);
    matches("sport/+", &["sport/#"]);
    // A partial wildcard in a filter is a literal level.
    matches("sport/tennis#", &["sport/tennis#"]);
    does_not_match("sport/tennis#", &["sport/tennis", "sport/tennis/x"]);
    matches("sport+", &["sport+"]);
    does_not_match("sport+", &["sports"]);
    // `#` before the last level is a literal level too.
    matches("sport/#/ranking", &["sport/#/ranking"]);
    does_not_match("sport/#/ranking", &["sport/x/ranking", "sport/ranking"]);
}

/// [MQTT-4.7.2-1]: filters starting with a wildcard do not match `$` topics;
/// filters naming the `$` level do.
#[test]
fn mqtt_4_7_2_1_leading_wildcards_do_not_match_dollar_topics() {
    does_not_match("#", &["$SYS", "$SYS/broker/uptime", "$", "$x/y"]);
    does_not_match("+/monitor/Clients", &["$SYS/monitor/Clients"]);
    does_not_match("+", &["$SYS"]);
    does_not_match("+/#", &["$SYS/a"]);
    matches("$SYS/#", &["$SYS", "$SYS/broker/uptime"]);
    matches("$SYS/monitor/+", &["$SYS/monitor/Clients"]);
    matches("$SYS/+/Clients", &["$SYS/monitor/Clients"]);
    does_not_match("$SYS/#", &["$SYS2/x", "SYS/x"]);
    // Only the first character of the topic counts.
    matches("#", &["a/$SYS", "x$"]);
    matches("+/$SYS", &["a/$SYS"]);
}

/// [MQTT-4.7.3-4]: no normalisation: case, empty levels, leading and trailing
/// separators and Unicode forms are all significant.
#[test]
fn mqtt_4_7_3_4_matching_does_not_normalise() {
    does_not_match("ACCOUNTS", &["Accounts", "accounts"]);
    matches("a//b", &["a//b"]);
    does_not_match("a//b", &["a/b"]);
    does_not_match("/finance", &["finance", "finance/"]);
    does_not_match("finance/", &["finance"]);
    matches("finance/", &["finance/"]);
    // U+00E9 precomposed vs e + U+0301 combining.
    matches("caf\u{e9}", &["caf\u{e9}"]);
    does_not_match("caf\u{e9}", &["cafe\u{301}"]);
    matches("caf\u{e9}/+", &["caf\u{e9}/\u{1f600}"]);
}

/// Invalid input never panics and is matched consistently (the codec rejects
/// it first; this is defence in depth).
#[test]
fn odd_filters_and_topics_are_handled_without_panicking() {
    matches("", &[""]);
    does_not_match("", &["a", "/"]);
    matches("\0", &["\0"]);
    let deep_filter: &'static str = Box::leak("/".repeat(40_000).into_boxed_str());
    check(deep_filter, &"/".repeat(40_000), true);
    check(deep_filter, &"/".repeat(39_999), false);
    let deep_hash: &'static str = Box::leak(format!("{}#", "a/".repeat(30_000)).into_boxed_str());
    check(deep_hash, &"a/".repeat(30_000), true);
}
