//! Turning verified JWT claims into a [`Grant`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roost_hooks::Grant;
use serde_json::{Map, Value};

use crate::acl::rule::{safe_value, substitute};
use roost_hooks::topic::validate_filter_syntax;

/// How claims map onto the grant.
#[derive(Debug, Clone)]
pub(crate) struct ClaimMapping {
    pub(crate) username_claim: Option<String>,
    pub(crate) acl_claim: Option<String>,
    pub(crate) superuser_claim: Option<String>,
}

/// Builds the grant. `%u`/`${username}` in the ACL claim stand for the
/// token's own username claim only: the CONNECT user name is the client's
/// free choice, so without a username claim such filters are dropped
/// (otherwise `users/%u/#` would reach every user's tree).
pub(crate) fn grant_from_claims(
    claims: &Map<String, Value>,
    mapping: &ClaimMapping,
    client_id: &str,
) -> Grant {
    let mut grant = Grant::default();
    if let Some(name) = &mapping.username_claim {
        grant.username = claims.get(name).and_then(claim_as_string);
    }
    grant.expires_at = claims.get("exp").and_then(timestamp);
    if let Some(name) = &mapping.superuser_claim {
        grant.superuser = claims.get(name).and_then(Value::as_bool).unwrap_or(false);
    }
    if let Some(acl) = mapping.acl_claim.as_ref().and_then(|n| claims.get(n)) {
        let username = grant.username.as_deref();
        let (publish, subscribe) = acl_lists(acl, username, client_id);
        grant.publish_acl = Some(publish);
        grant.subscribe_acl = Some(subscribe);
    }
    grant
}

/// The user name a claim holds (strings, or numbers written as text).
pub(crate) fn claim_as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn timestamp(value: &Value) -> Option<SystemTime> {
    let secs = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Publish and subscribe allow-lists from an ACL claim. Two shapes:
///
/// * `{"pub": [...], "sub": [...], "all": [...]}` (also `publish`,
///   `subscribe`, `pubsub`): filters per action.
/// * `[{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all",
///   "topic": "t" | "topics": [...]}, ...]` (EMQX): rules in order. The grant
///   can only carry allow-lists, so the rules are read up to the first `deny`
///   and the rest are dropped (narrower, never wider, than first-match
///   semantics). Allow rules restricted by `qos` or `retain` are dropped too.
///
/// `${username}`/`%u` and `${clientid}`/`%c` are replaced; a filter whose
/// value is unsafe, or that is not a valid filter, is dropped. Anything
/// else yields empty lists: an ACL claim never widens access.
fn acl_lists(acl: &Value, username: Option<&str>, client_id: &str) -> (Vec<String>, Vec<String>) {
    let mut publish = Vec::new();
    let mut subscribe = Vec::new();
    let mut add = |filter: &str, to_pub: bool, to_sub: bool| {
        if let Some(f) = expand(filter, username, client_id) {
            if to_pub {
                publish.push(f.clone());
            }
            if to_sub {
                subscribe.push(f);
            }
        }
    };
    match acl {
        Value::Object(map) => {
            for (key, list) in map {
                let (p, s) = match key.as_str() {
                    "pub" | "publish" => (true, false),
                    "sub" | "subscribe" => (false, true),
                    "all" | "pubsub" => (true, true),
                    _ => continue,
                };
                for filter in list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    add(filter, p, s);
                }
            }
        }
        Value::Array(rules) => {
            for rule in rules {
                let Some(rule) = rule.as_object() else { break };
                if rule.get("permission").and_then(Value::as_str) != Some("allow") {
                    break;
                }
                if rule.contains_key("qos") || rule.contains_key("retain") {
                    continue;
                }
                let (p, s) = match rule.get("action").and_then(Value::as_str) {
                    Some("publish") => (true, false),
                    Some("subscribe") => (false, true),
                    Some("all") | None => (true, true),
                    Some(_) => continue,
                };
                let topics = rule.get("topic").and_then(Value::as_str).into_iter().chain(
                    rule.get("topics")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                );
                for filter in topics {
                    add(filter, p, s);
                }
            }
        }
        _ => {}
    }
    (publish, subscribe)
}

/// The filter with its placeholders replaced in one pass (a value is never
/// scanned again: a user name `%c` does not become the client id), or `None`
/// when a value it needs is unsafe or the result is not a valid filter.
fn expand(filter: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let user = if filter.contains("${username}") || filter.contains("%u") {
        safe_value(username)?
    } else {
        ""
    };
    let id = if filter.contains("${clientid}") || filter.contains("%c") {
        safe_value(Some(client_id))?
    } else {
        ""
    };
    let out = substitute(
        filter,
        &[
            ("${username}", user),
            ("%u", user),
            ("${clientid}", id),
            ("%c", id),
        ],
    );
    validate_filter_syntax(&out).is_ok().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            username_claim: Some("sub".into()),
            acl_claim: Some("acl".into()),
            superuser_claim: Some("su".into()),
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn pub_sub_object_maps_to_lists_with_placeholders() {
        let c = claims(json!({"sub": "dev1", "exp": 2_000_000_000u64,
            "acl": {"pub": ["up/${clientid}"], "sub": ["down/%u/#"], "all": ["both"]}}));
        let g = grant_from_claims(&c, &mapping(), "c1");
        assert_eq!(g.username.as_deref(), Some("dev1"));
        // Allow-lists are unordered; serde_json maps iterate keys sorted.
        assert_eq!(g.publish_acl.unwrap(), vec!["both", "up/c1"]);
        assert_eq!(g.subscribe_acl.unwrap(), vec!["both", "down/dev1/#"]);
        assert_eq!(
            g.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
    }

    #[test]
    fn emqx_rules_stop_at_the_first_deny() {
        let c = claims(json!({"acl": [
            {"permission": "allow", "action": "publish", "topic": "a"},
            {"permission": "allow", "action": "all", "topics": ["b", "c/+"]},
            {"permission": "allow", "action": "publish", "topic": "q", "qos": [0]},
            {"permission": "deny", "action": "all", "topic": "secret"},
            {"permission": "allow", "action": "all", "topic": "#"}
        ]}));
        let g = grant_from_claims(&c, &mapping(), "c");
        assert_eq!(g.publish_acl.unwrap(), vec!["a", "b", "c/+"]);
        assert_eq!(g.subscribe_acl.unwrap(), vec!["b", "c/+"]);
    }

    #[test]
    fn unsafe_placeholder_values_drop_the_filter() {
        let c = claims(json!({"sub": "x/#", "acl": {"pub": ["u/%u", "fixed"]}}));
        let g = grant_from_claims(&c, &mapping(), "c");
        assert_eq!(g.publish_acl.unwrap(), vec!["fixed"]);
        assert_eq!(g.subscribe_acl.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_placeholder_inside_the_user_name_is_not_expanded_again() {
        // User "%c" connecting as client "bob" must not get bob's tree.
        for user in ["%c", "a${clientid}"] {
            let c = claims(json!({"sub": user,
                "acl": {"pub": ["users/%u/#", "users/${username}/x"]}}));
            let g = grant_from_claims(&c, &mapping(), "bob");
            assert_eq!(
                g.publish_acl.unwrap(),
                vec![format!("users/{user}/#"), format!("users/{user}/x")]
            );
        }
    }

    #[test]
    fn without_a_username_claim_user_placeholders_are_dropped() {
        // The CONNECT user name is the client's choice: "users/%u/#" bound
        // to it would reach any user's tree.
        let no_user_claim = ClaimMapping {
            username_claim: None,
            ..mapping()
        };
        let c = claims(json!({"acl": {"pub": ["users/%u/#", "users/${username}/x", "up/%c"]}}));
        let g = grant_from_claims(&c, &no_user_claim, "dev1");
        assert_eq!(g.publish_acl.unwrap(), vec!["up/dev1"]);
    }

    #[test]
    fn superuser_claim_and_no_acl_claim() {
        let c = claims(json!({"su": true}));
        let g = grant_from_claims(&c, &mapping(), "c");
        assert!(g.superuser);
        assert_eq!(g.publish_acl, None);
    }
}
