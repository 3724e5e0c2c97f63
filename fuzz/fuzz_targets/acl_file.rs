//! The ACL-file parser and the decisions of whatever it accepts.
//!
//! Input: UTF-8 text `rules \x1e user \x1e client id \x1e topic` (later parts
//! optional). The rules are parsed like a file; when they parse, the client
//! is checked for PUBLISH and SUBSCRIBE on the topic. Invariants: nothing
//! panics, a decision is the same when asked twice, `$SYS` and malformed
//! topics are never writable, and an empty user name or client id never
//! gets access through a placeholder.
#![no_main]

use bytestring::ByteString;
use libfuzzer_sys::fuzz_target;
use roost_auth::AclFile;
use roost_auth::acl::Rule;
use roost_hooks::{AclResult, Action, ClientInfo, ListenerKind, ProtocolVersion, QoS};

fuzz_target!(|data: &[u8]| {
    // The broker reads the file with read_to_string: only UTF-8 gets this far.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\x1e');
    let rules = parts.next().unwrap_or("");
    let user = parts.next();
    let client_id = parts.next().unwrap_or("fuzz");
    let topic = parts.next().unwrap_or("a/b");

    let Ok(acl) = AclFile::from_text("fuzz.acl", rules) else {
        return;
    };
    let client = ClientInfo::new(
        ByteString::from(client_id),
        user.map(ByteString::from),
        "127.0.0.1:1883".parse().expect("literal address"),
        ProtocolVersion::V5,
        ListenerKind::Tcp,
    );
    let publish = Action::Publish {
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    let subscribe = Action::Subscribe {
        qos: QoS::AtLeastOnce,
    };
    let p = acl.check(&client, publish, topic);
    let s = acl.check(&client, subscribe, topic);
    assert_eq!(p, acl.check(&client, publish, topic), "publish decision is stable");
    assert_eq!(s, acl.check(&client, subscribe, topic), "subscribe decision is stable");
    if topic == "$SYS" || topic.starts_with("$SYS/") {
        assert_eq!(p, AclResult::Deny, "$SYS is never writable");
    }
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        assert_eq!(p, AclResult::Deny, "a malformed topic name is never writable");
    }
    // A placeholder rule is the only way a rule can name "this client"; with
    // an empty value it must not allow. Compare with a rule set whose
    // placeholder rules are removed: the empty-named client may not get more.
    if user == Some("") || client_id.is_empty() {
        // Only rules whose filter holds a placeholder go (a `client:%u`
        // rule names a literal client id and stays).
        let fixed: String = rules
            .lines()
            .filter(|l| {
                Rule::parse(l.trim()).map_or(true, |r| {
                    let f = r.filter.as_str();
                    !f.contains("%u") && !f.contains("%c")
                })
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(without) = AclFile::from_text("fuzz.acl", &fixed) {
            if p == AclResult::Allow {
                assert_eq!(
                    without.check(&client, publish, topic),
                    AclResult::Allow,
                    "an empty placeholder value granted a publish"
                );
            }
            if s == AclResult::Allow {
                assert_eq!(
                    without.check(&client, subscribe, topic),
                    AclResult::Allow,
                    "an empty placeholder value granted a subscription"
                );
            }
        }
    }
});
