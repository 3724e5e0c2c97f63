//! The ACL file authorizer: rule syntax, first match, placeholders, `$SYS`,
//! subscription coverage, reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, client_from};
use roost_auth::{AclFile, AclFileConfig, FileError, NoMatch};
use roost_hooks::{AclResult, Action, Authorizer, QoS};

const PUB: Action = Action::Publish {
    qos: QoS::AtLeastOnce,
    retain: false,
};
const SUB: Action = Action::Subscribe {
    qos: QoS::AtLeastOnce,
};

fn acl(text: &str) -> AclFile {
    AclFile::from_text("test.acl", text).unwrap()
}

#[test]
fn first_matching_rule_wins_and_no_match_is_ignore() {
    let a = acl("# comment\n\
         deny  user:alice publish sensors/secret\n\
         allow user:alice all     sensors/#\n\
         \n\
         allow all        subscribe public/#\n");
    let alice = client("c1", Some("alice"));
    let bob = client("c2", Some("bob"));
    assert_eq!(a.authorize(&alice, PUB, "sensors/secret"), AclResult::Deny);
    assert_eq!(a.authorize(&alice, PUB, "sensors/a/temp"), AclResult::Allow);
    assert_eq!(
        a.authorize(&alice, PUB, "sensors"),
        AclResult::Allow,
        "# matches the parent"
    );
    assert_eq!(a.authorize(&bob, PUB, "sensors/a"), AclResult::Ignore);
    assert_eq!(a.authorize(&bob, SUB, "public/+/x"), AclResult::Allow);
    assert_eq!(
        a.authorize(&bob, PUB, "public/x"),
        AclResult::Ignore,
        "subscribe-only rule"
    );
}

#[test]
fn no_match_policy_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl");
    std::fs::write(&path, "allow all publish a\n").unwrap();
    let c = client("c", None);
    for (policy, expected) in [
        (NoMatch::Ignore, AclResult::Ignore),
        (NoMatch::Allow, AclResult::Allow),
        (NoMatch::Deny, AclResult::Deny),
    ] {
        let a = AclFile::from_config(&AclFileConfig {
            path: path.clone(),
            no_match: policy,
        })
        .unwrap();
        assert_eq!(a.authorize(&c, PUB, "b"), expected);
        assert_eq!(a.authorize(&c, PUB, "a"), AclResult::Allow);
    }
    let parsed: AclFileConfig = toml::from_str("path = \"/x\"\nno_match = \"deny\"").unwrap();
    assert_eq!(parsed.no_match, NoMatch::Deny);
    assert!(toml::from_str::<AclFileConfig>("path = \"/x\"\ndefault = \"deny\"").is_err());
}

#[test]
fn who_matches_client_id_and_ip_networks() {
    let a = acl("allow client:dev-1 publish up/dev-1\n\
         allow ip:10.0.0.0/8 publish lan/#\n\
         allow ip:2001:db8::/32 publish v6/#\n\
         allow ip:192.168.1.7 publish host/#\n");
    let dev1 = client("dev-1", None);
    assert_eq!(a.authorize(&dev1, PUB, "up/dev-1"), AclResult::Allow);
    assert_eq!(
        a.authorize(&client("dev-2", None), PUB, "up/dev-1"),
        AclResult::Ignore
    );
    let lan = client_from("x", None, "10.1.2.3:1000");
    assert_eq!(a.authorize(&lan, PUB, "lan/a"), AclResult::Allow);
    // An IPv4-mapped IPv6 peer is the IPv4 address.
    let mapped = client_from("x", None, "[::ffff:10.9.9.9]:1000");
    assert_eq!(a.authorize(&mapped, PUB, "lan/a"), AclResult::Allow);
    let v6 = client_from("x", None, "[2001:db8::1]:1000");
    assert_eq!(a.authorize(&v6, PUB, "v6/a"), AclResult::Allow);
    let host = client_from("x", None, "192.168.1.7:1");
    assert_eq!(a.authorize(&host, PUB, "host/a"), AclResult::Allow);
    let other = client_from("x", None, "192.168.1.8:1");
    assert_eq!(a.authorize(&other, PUB, "host/a"), AclResult::Ignore);
}

#[test]
fn placeholders_expand_to_user_name_and_client_id() {
    let a = acl("allow all all users/%u/#\n\
         allow all publish devices/%c/state\n");
    let alice = client("dev7", Some("alice"));
    assert_eq!(a.authorize(&alice, PUB, "users/alice/x"), AclResult::Allow);
    assert_eq!(a.authorize(&alice, SUB, "users/alice/#"), AclResult::Allow);
    assert_eq!(a.authorize(&alice, PUB, "users/bob/x"), AclResult::Ignore);
    assert_eq!(
        a.authorize(&alice, PUB, "devices/dev7/state"),
        AclResult::Allow
    );
    assert_eq!(
        a.authorize(&alice, PUB, "devices/dev8/state"),
        AclResult::Ignore
    );
}

#[test]
fn placeholder_values_with_wildcards_or_separators_do_not_widen_access() {
    let a = acl("allow all all users/%u/#\nallow all subscribe c/%c\n");
    for bad in ["+", "#", "a/b", "$SYS", ""] {
        let c = client("id", Some(bad));
        assert_eq!(
            a.authorize(&c, SUB, "users/+/#"),
            AclResult::Ignore,
            "user {bad:?}"
        );
        assert_eq!(
            a.authorize(&c, SUB, "users/#"),
            AclResult::Ignore,
            "user {bad:?}"
        );
        assert_eq!(
            a.authorize(&c, PUB, "users/x/y"),
            AclResult::Ignore,
            "user {bad:?}"
        );
    }
    let anonymous = client("id", None);
    assert_eq!(
        a.authorize(&anonymous, PUB, "users/id/x"),
        AclResult::Ignore
    );
    let wild = client("#", None);
    assert_eq!(a.authorize(&wild, SUB, "c/#"), AclResult::Ignore);

    // For a deny rule, an unsafe value makes the rule apply (fail closed).
    let d = acl("deny all all private/%u/#\nallow all all #\n");
    assert_eq!(
        d.authorize(&client("i", Some("a/b")), PUB, "public"),
        AclResult::Deny
    );
    assert_eq!(
        d.authorize(&client("i", Some("ann")), PUB, "public"),
        AclResult::Allow
    );
    assert_eq!(
        d.authorize(&client("i", Some("ann")), PUB, "private/ann/x"),
        AclResult::Deny
    );
}

#[test]
fn a_placeholder_in_a_user_name_is_not_expanded_again() {
    // The user name is put in first; were the result scanned again, a user
    // named `%c` would get the client id it chose (here another user's
    // name) and with it that user's tree.
    let a = acl("allow all all users/%u/#\nallow all all devices/%c/%u\n");
    let mallory = client("bob", Some("%c"));
    assert_eq!(
        a.authorize(&mallory, PUB, "users/bob/inbox"),
        AclResult::Ignore
    );
    assert_eq!(a.authorize(&mallory, SUB, "users/bob/#"), AclResult::Ignore);
    // Their own (odd but level-safe) name still works literally.
    assert_eq!(
        a.authorize(&mallory, PUB, "users/%c/inbox"),
        AclResult::Allow
    );
    // A client id `%u` is not replaced by the user name either.
    let odd_id = client("%u", Some("carol"));
    assert_eq!(
        a.authorize(&odd_id, PUB, "devices/%u/carol"),
        AclResult::Allow
    );
    assert_eq!(
        a.authorize(&odd_id, PUB, "devices/carol/carol"),
        AclResult::Ignore
    );
    // A user `a/#` or `+` never matches its own pattern (as in Mosquitto).
    for name in ["a/#", "+", "#"] {
        let c = client("x", Some(name));
        assert_eq!(a.authorize(&c, SUB, "users/#"), AclResult::Ignore, "{name}");
        assert_eq!(
            a.authorize(&c, PUB, "users/a/b"),
            AclResult::Ignore,
            "{name}"
        );
    }
}

#[test]
fn sys_topics_are_never_writable_and_readable_only_where_allowed() {
    let a = acl("allow all all #\nallow user:admin all $SYS/#\n");
    let admin = client("a", Some("admin"));
    let user = client("u", Some("user"));
    assert_eq!(
        a.authorize(&admin, PUB, "$SYS/broker/uptime"),
        AclResult::Deny
    );
    assert_eq!(a.authorize(&admin, PUB, "$SYS"), AclResult::Deny);
    assert_eq!(a.authorize(&admin, SUB, "$SYS/#"), AclResult::Allow);
    assert_eq!(a.authorize(&admin, SUB, "$SYS/broker/+"), AclResult::Allow);
    // `#` grants everything except `$` topics (MQTT-4.7.2-1 matching).
    assert_eq!(a.authorize(&user, SUB, "#"), AclResult::Allow);
    assert_eq!(a.authorize(&user, SUB, "$SYS/#"), AclResult::Deny);
    assert_eq!(
        a.authorize(&user, SUB, "$SYS/broker/uptime"),
        AclResult::Deny
    );

    // Even with no-match = allow, an unmatched $SYS subscription is denied.
    let open = acl("allow all publish x\n").with_no_match(NoMatch::Allow);
    assert_eq!(open.authorize(&user, SUB, "$SYS/#"), AclResult::Deny);
    assert_eq!(open.authorize(&user, SUB, "other"), AclResult::Allow);
}

#[test]
fn subscriptions_need_a_covering_allow_and_overlapping_deny_wins() {
    let a = acl("deny  all subscribe sensors/secret\n\
         allow all subscribe sensors/#\n\
         allow all subscribe rooms/+\n");
    let c = client("c", None);
    assert_eq!(a.authorize(&c, SUB, "sensors/+/temp"), AclResult::Allow);
    assert_eq!(a.authorize(&c, SUB, "sensors/public"), AclResult::Allow);
    assert_eq!(
        a.authorize(&c, SUB, "sensors/#"),
        AclResult::Deny,
        "would receive sensors/secret"
    );
    assert_eq!(
        a.authorize(&c, SUB, "sensors/+"),
        AclResult::Deny,
        "would receive sensors/secret"
    );
    assert_eq!(a.authorize(&c, SUB, "rooms/kitchen"), AclResult::Allow);
    assert_eq!(
        a.authorize(&c, SUB, "rooms/#"),
        AclResult::Ignore,
        "rooms/+ does not cover rooms/#"
    );
    // Shared subscriptions are judged by their topic filter.
    assert_eq!(
        a.authorize(&c, SUB, "$share/g/rooms/kitchen"),
        AclResult::Allow
    );
    assert_eq!(a.authorize(&c, SUB, "$share/g/sensors/#"), AclResult::Deny);
    // Malformed requests are denied.
    assert_eq!(a.authorize(&c, SUB, "rooms/#/x"), AclResult::Deny);
    assert_eq!(a.authorize(&c, PUB, "rooms/+"), AclResult::Deny);
}

#[test]
fn per_message_a_deny_must_cover_the_filter_and_an_allow_may_overlap_it() {
    let a = acl("deny  all subscribe test/nosubscribe\n\
         deny  all subscribe private/#\n\
         allow all subscribe sensors/+/temp\n");
    let c = client("c", None);
    let per_message = |f: &str| a.authorize_per_message(&c, QoS::AtLeastOnce, f);
    // The deny overlaps `#` and `+/+` but does not cover them: the
    // subscription stands, its messages are checked one by one.
    assert_eq!(
        per_message("#"),
        AclResult::Allow,
        "overlaps sensors/+/temp"
    );
    assert_eq!(per_message("+/+"), AclResult::Ignore, "overlaps no allow");
    assert_eq!(a.authorize(&c, SUB, "#"), AclResult::Deny, "whole filter");
    // A deny covering the whole request still refuses it.
    assert_eq!(per_message("test/nosubscribe"), AclResult::Deny);
    assert_eq!(per_message("private/#"), AclResult::Deny);
    assert_eq!(per_message("private/+/x"), AclResult::Deny);
    assert_eq!(per_message("$share/g/private/#"), AclResult::Deny);
    // An allow that overlaps allows; at delivery each topic is checked.
    assert_eq!(per_message("sensors/#"), AclResult::Allow);
    assert_eq!(a.authorize(&c, SUB, "sensors/#"), AclResult::Ignore);
    assert_eq!(a.authorize(&c, SUB, "sensors/k/temp"), AclResult::Allow);
    assert_eq!(a.authorize(&c, SUB, "sensors/k/hum"), AclResult::Ignore);
    assert_eq!(a.authorize(&c, SUB, "test/nosubscribe"), AclResult::Deny);
    assert_eq!(a.authorize(&c, SUB, "private/x"), AclResult::Deny);
    // Malformed filters are denied in both modes.
    assert_eq!(per_message("a/#/b"), AclResult::Deny);
}

#[test]
fn per_message_sys_is_refused_only_for_filters_inside_it() {
    let open = acl("allow all publish x\n").with_no_match(NoMatch::Allow);
    let c = client("c", None);
    let per_message = |f: &str| open.authorize_per_message(&c, QoS::AtMostOnce, f);
    assert_eq!(per_message("$SYS/#"), AclResult::Deny);
    assert_eq!(per_message("$SYS/broker/+"), AclResult::Deny);
    assert_eq!(per_message("+/broker"), AclResult::Allow);
    // ... and each `$SYS` topic is refused at delivery.
    assert_eq!(open.authorize(&c, SUB, "$SYS/broker"), AclResult::Deny);
    assert_eq!(open.authorize(&c, SUB, "x/broker"), AclResult::Allow);
}

#[test]
fn parse_errors_name_the_line() {
    let cases = [
        (
            "allow all publish a\npermit all publish b\n",
            2,
            "allow or deny",
        ),
        ("allow someone publish a\n", 1, "user:<name>"),
        ("allow all read a\n", 1, "unknown action"),
        ("allow all publish\n", 1, "missing topic filter"),
        (
            "\n# x\nallow all publish a/#/b\n",
            3,
            "not a valid topic filter",
        ),
        ("allow ip:10.0.0.300/8 publish a\n", 1, "not an IP address"),
        ("allow user: publish a\n", 1, "empty value"),
    ];
    for (text, line, what) in cases {
        let err = AclFile::from_text("rules.acl", text).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, FileError::Parse { line: l, .. } if l == line),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("rules.acl:{line}: ")), "{msg}");
        assert!(msg.contains(what), "{msg}");
    }
}

#[test]
fn topic_filters_may_contain_spaces() {
    let a = acl("allow all publish living room/lamp\n");
    assert_eq!(
        a.authorize(&client("c", None), PUB, "living room/lamp"),
        AclResult::Allow
    );
}

#[test]
fn reload_keeps_rules_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl");
    std::fs::write(&path, "allow all publish a\n").unwrap();
    let a = AclFile::load(&path).unwrap();
    let c = client("c", None);
    assert_eq!(a.authorize(&c, PUB, "a"), AclResult::Allow);
    std::fs::write(&path, "deny all publish a\n").unwrap();
    a.reload().unwrap();
    assert_eq!(a.authorize(&c, PUB, "a"), AclResult::Deny);
    std::fs::write(&path, "deny all publish a\nbroken\n").unwrap();
    let err = a.reload().unwrap_err();
    assert!(err.to_string().contains(":2: "), "{err}");
    assert_eq!(
        a.authorize(&c, PUB, "a"),
        AclResult::Deny,
        "previous rules stay"
    );
    assert_eq!(a.len(), 1);
    // A file caught between truncation and write (0 bytes) is not taken:
    // the deny rules would vanish until the next reload.
    std::fs::write(&path, "").unwrap();
    let err = a.reload().unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(a.authorize(&c, PUB, "a"), AclResult::Deny);
    // A file meant to have no rules says so with a comment.
    std::fs::write(&path, "# no rules\n").unwrap();
    a.reload().unwrap();
    assert!(a.is_empty());
}
