//! The retained-message index: storage, filter queries, sweeps, ordered listing.

use roost_router::RetainedIndex;

fn index(topics: &[&str]) -> RetainedIndex<String> {
    let mut idx = RetainedIndex::new();
    for t in topics {
        idx.insert(t, format!("msg:{t}"));
    }
    idx
}

fn matching(idx: &RetainedIndex<String>, filter: &str) -> Vec<String> {
    let mut out = Vec::new();
    idx.matches(filter, &mut out);
    out.sort();
    out.into_iter()
        .map(|m| m.trim_start_matches("msg:").to_string())
        .collect()
}

#[test]
fn insert_replaces_and_remove_returns_the_message() {
    let mut idx = RetainedIndex::new();
    assert_eq!(idx.insert("a/b", 1), None);
    assert_eq!(idx.insert("a/b", 2), Some(1));
    assert_eq!(idx.insert("a", 3), None);
    assert_eq!(idx.len(), 2);
    assert_eq!(idx.get("a/b"), Some(&2));
    assert_eq!(idx.get("a/c"), None);
    assert_eq!(idx.remove("a/b"), Some(2));
    assert_eq!(idx.remove("a/b"), None);
    assert_eq!(idx.get("a"), Some(&3));
    assert_eq!(idx.remove("a"), Some(3));
    assert!(idx.is_empty());
    assert_eq!(idx.iter().count(), 0);
}

#[test]
fn wildcard_queries_find_matching_topics() {
    let idx = index(&[
        "sport",
        "sport/tennis",
        "sport/tennis/player1",
        "sport/golf",
        "sport//x",
        "/finance",
        "$SYS/uptime",
        "$SYS",
    ]);
    assert_eq!(
        matching(&idx, "sport/#"),
        [
            "sport",
            "sport//x",
            "sport/golf",
            "sport/tennis",
            "sport/tennis/player1"
        ]
    );
    assert_eq!(matching(&idx, "sport/+"), ["sport/golf", "sport/tennis"]);
    assert_eq!(
        matching(&idx, "sport/+/+"),
        ["sport//x", "sport/tennis/player1"]
    );
    assert_eq!(
        matching(&idx, "+/+"),
        ["/finance", "sport/golf", "sport/tennis"]
    );
    assert_eq!(matching(&idx, "sport/tennis"), ["sport/tennis"]);
    assert!(matching(&idx, "sport/x").is_empty());
}

/// [MQTT-4.7.2-1]: a subscription to `#` or `+/...` receives no retained `$` topics.
#[test]
fn mqtt_4_7_2_1_retained_dollar_topics_need_an_explicit_first_level() {
    let idx = index(&["$SYS", "$SYS/uptime", "a/$SYS", "a"]);
    assert_eq!(matching(&idx, "#"), ["a", "a/$SYS"]);
    assert_eq!(matching(&idx, "+"), ["a"]);
    assert_eq!(matching(&idx, "+/+"), ["a/$SYS"]);
    assert_eq!(matching(&idx, "$SYS/#"), ["$SYS", "$SYS/uptime"]);
    assert_eq!(matching(&idx, "$SYS/+"), ["$SYS/uptime"]);
}

#[test]
fn retain_removes_rejected_messages_and_prunes() {
    let mut idx = RetainedIndex::new();
    for i in 0..100u32 {
        idx.insert(&format!("dev/{}/temp", i), i);
    }
    idx.retain(|topic, msg| {
        assert_eq!(topic, format!("dev/{msg}/temp"));
        msg % 10 == 0
    });
    assert_eq!(idx.len(), 10);
    assert_eq!(idx.get("dev/20/temp"), Some(&20));
    assert_eq!(idx.get("dev/21/temp"), None);
    idx.retain(|_, _| false);
    assert!(idx.is_empty());
    assert_eq!(idx.iter().count(), 0);
    assert_eq!(idx.node_count(), 0);
}

#[test]
fn iteration_is_in_level_order_and_pages_resume_after_a_topic() {
    let topics = ["b", "a/b", "a", "a-b", "a/b/c", "a//", "", "c/d"];
    let idx = index(&topics);
    let all: Vec<String> = idx.iter().map(|(t, _)| t).collect();
    let mut expected: Vec<&str> = topics.to_vec();
    expected.sort_by(|x, y| x.split('/').cmp(y.split('/')));
    assert_eq!(all, expected);
    assert_eq!(all, ["", "a", "a//", "a/b", "a/b/c", "a-b", "b", "c/d"]);
    for (i, after) in all.iter().enumerate() {
        let rest: Vec<String> = idx.iter_after(after).map(|(t, _)| t).collect();
        assert_eq!(rest, all[i + 1..], "after {after:?}");
    }
    // A cursor that is not (or no longer) stored still resumes in order.
    let rest: Vec<String> = idx.iter_after("a/a").map(|(t, _)| t).collect();
    assert_eq!(rest, ["a/b", "a/b/c", "a-b", "b", "c/d"]);
    let rest: Vec<String> = idx.iter_after("a/b/c/d").map(|(t, _)| t).collect();
    assert_eq!(rest, ["a-b", "b", "c/d"]);
    let mut visited = Vec::new();
    idx.for_each(|t, m| visited.push((t.to_string(), m.clone())));
    assert_eq!(visited.len(), topics.len());
    assert!(visited.iter().all(|(t, m)| *m == format!("msg:{t}")));
}

#[test]
fn very_deep_topics_do_not_overflow_the_stack() {
    let deep = "x/".repeat(50_000);
    let mut idx = RetainedIndex::new();
    idx.insert(&deep, 1u8);
    idx.insert("x", 2);
    let mut out = Vec::new();
    idx.matches("#", &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(idx.iter().count(), 2);
    assert_eq!(idx.remove(&deep), Some(1));
    idx.insert(&deep, 3);
    drop(idx);
}
