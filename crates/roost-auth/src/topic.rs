//! Topic-name and topic-filter relations used by the ACL: does a filter match
//! a topic, does one filter cover another, do two filters overlap.
//!
//! All three follow MQTT matching (§4.7): `+` matches one level, a trailing
//! `#` matches the parent level and any number of levels below, and a
//! wildcard in the first level never matches a topic starting with `$`
//! (so a rule `#` grants nothing under `$SYS/`).
//!
//! `covers` and `intersects` treat the empty topic (one empty level) as if
//! it were a topic name. It is not valid, so in that corner `covers` is
//! stricter and `intersects` wider than necessary: both err on the safe side
//! for authorization. `tests/topic_relations.rs` checks all three against
//! brute force.

/// True when `filter` is a valid MQTT topic filter: non-empty, no NUL, `+`
/// and `#` only as whole levels, `#` only as the last level.
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// True when `topic` is a valid topic name: non-empty, no wildcard, no NUL.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// True when the topic name `topic` matches the (valid) filter `filter`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            _ => return false,
        }
    }
}

/// True when every topic matched by the filter `requested` is also matched by
/// the filter `rule`: a subscription to `requested` can receive nothing the
/// rule does not allow. `sensors/#` covers `sensors/+/temp`; `sensors/+`
/// does not cover `sensors/#`. Both filters must be valid.
pub fn covers(rule: &str, requested: &str) -> bool {
    let rule: Vec<&str> = rule.split('/').collect();
    let requested: Vec<&str> = requested.split('/').collect();
    covers_levels(&rule, &requested, true)
}

fn covers_levels(rule: &[&str], req: &[&str], first: bool) -> bool {
    match (rule.split_first(), req.split_first()) {
        (Some((&"#", _)), None) => true,
        (Some((&"#", _)), Some((ql, _))) => {
            // A first-level `#` matches no `$` topic; a literal `$x` level in
            // the request matches only `$` topics.
            !(first && is_dollar_literal(ql))
        }
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((rl, r_rest)), Some((ql, q_rest))) => {
            let level_ok = match (*rl, *ql) {
                // The request matches this level's parent and anything below
                // it. Only a rule `#` (handled above) matches the parent too,
                // except in the first level, where there is no parent topic
                // and `+/#` matches every topic `#` does.
                (_, "#") => return first && r_rest == ["#"] && *rl == "+",
                ("+", "+") => true,
                (_, "+") => false,
                ("+", q) => !(first && q.starts_with('$')),
                (r, q) => r == q,
            };
            level_ok && covers_levels(r_rest, q_rest, false)
        }
    }
}

/// True when some topic name is matched by both filters (a subscription to one
/// could receive a message the other names). Both filters must be valid.
pub fn intersects(a: &str, b: &str) -> bool {
    let a: Vec<&str> = a.split('/').collect();
    let b: Vec<&str> = b.split('/').collect();
    intersects_levels(&a, &b, true)
}

fn intersects_levels(a: &[&str], b: &[&str], first: bool) -> bool {
    match (a.split_first(), b.split_first()) {
        (Some((&"#", _)), other) | (other, Some((&"#", _))) => match other {
            // `#` matches the parent level too, so an exhausted filter meets it.
            None => true,
            // Any valid filter matches some topic; only a `$` literal in the
            // first level escapes a first-level `#`.
            Some((level, _)) => !(first && is_dollar_literal(level)),
        },
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((al, a_rest)), Some((bl, b_rest))) => {
            let level_ok = match (*al, *bl) {
                ("+", "+") => true,
                ("+", l) | (l, "+") => !(first && l.starts_with('$')),
                (x, y) => x == y,
            };
            level_ok && intersects_levels(a_rest, b_rest, false)
        }
    }
}

fn is_dollar_literal(level: &str) -> bool {
    level.starts_with('$')
}

/// Removes a `$share/<group>/` (MQTT 5.0) or `$queue/` prefix: authorization
/// applies to the filter the messages come from, not to the group name.
pub fn strip_shared_prefix(filter: &str) -> &str {
    if let Some(rest) = filter.strip_prefix("$share/") {
        match rest.split_once('/') {
            Some((_, inner)) => inner,
            None => filter,
        }
    } else if let Some(rest) = filter.strip_prefix("$queue/") {
        rest
    } else {
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_per_mqtt_4_7() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(!matches("#", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
        assert!(matches("+/+", "/x"));
    }

    #[test]
    fn covers_examples_from_the_issue() {
        assert!(covers("sensors/#", "sensors/+/temp"));
        assert!(!covers("sensors/+", "sensors/#"));
        assert!(covers("sensors/+", "sensors/a"));
        assert!(covers("#", "#"));
        assert!(!covers("#", "$SYS/#"));
        assert!(covers("$SYS/#", "$SYS/broker/#"));
        assert!(covers("a/#", "a"));
        assert!(!covers("a", "a/#"));
        assert!(covers("+/#", "+/+"));
        assert!(covers("+/#", "#"));
        assert!(!covers("a/+/#", "a/#"));
    }

    #[test]
    fn intersection_examples() {
        assert!(intersects("sensors/secret", "sensors/#"));
        assert!(!intersects("sensors/secret", "sensors/public"));
        assert!(!intersects("#", "$SYS/x"));
        assert!(intersects("+/x", "a/+"));
        assert!(intersects("a/#", "a"));
    }

    #[test]
    fn filter_validity() {
        assert!(is_valid_filter("a/+/#"));
        assert!(is_valid_filter("/"));
        assert!(!is_valid_filter("a/#/b"));
        assert!(!is_valid_filter("a+/b"));
        assert!(!is_valid_filter(""));
    }

    #[test]
    fn shared_prefix_is_removed() {
        assert_eq!(strip_shared_prefix("$share/g/a/#"), "a/#");
        assert_eq!(strip_shared_prefix("$queue/a"), "a");
        assert_eq!(strip_shared_prefix("a/b"), "a/b");
    }
}
