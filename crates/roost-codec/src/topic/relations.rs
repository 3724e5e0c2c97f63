//! How topic names and filters relate, one set of rules for the
//! subscription trie and the retained index (roost-router), the ACL
//! (roost-auth) and one-off checks: how a filter splits into levels, does a
//! filter match a topic, does one filter cover another, do two overlap.
//!
//! All follow MQTT matching (§4.7): `+` matches one level (possibly empty), a
//! trailing `#` matches the parent level and any number of levels below, a
//! wildcard in the first level never matches a topic starting with `$`
//! [MQTT-4.7.2-1] (so an ACL rule `#` grants nothing under `$SYS/`), and
//! levels are never normalised [MQTT-4.7.3-4].
//!
//! [`covers`] and [`intersects`] treat the empty topic (one empty level) as
//! if it were a topic name. It is not valid, so in that corner `covers` is
//! stricter and `intersects` wider than necessary: both err on the safe side
//! for authorization. `tests/topic_relations.rs` checks all three against
//! brute force.

/// One level of a topic filter, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLevel<'a> {
    /// Matches exactly this level (no normalisation [MQTT-4.7.3-4]).
    Literal(&'a str),
    /// `+`: exactly one level, which may be empty.
    Plus,
    /// `#` as the last level: this level's parent and any number of levels below.
    Hash,
}

/// Splits a filter into classified levels.
///
/// A level is a wildcard only when it is exactly `+` (anywhere) or exactly `#`
/// (last level). Anything else, including `#` before the last level or `a+`,
/// is a literal. Valid filters never contain those, but a matcher must not
/// panic or misbehave when handed one, and this rule keeps the router's trie
/// and [`matches`] in agreement.
#[inline]
pub fn filter_levels(filter: &str) -> impl Iterator<Item = FilterLevel<'_>> {
    let mut levels = filter.split('/').peekable();
    std::iter::from_fn(move || {
        let level = levels.next()?;
        let last = levels.peek().is_none();
        Some(match level {
            "+" => FilterLevel::Plus,
            "#" if last => FilterLevel::Hash,
            other => FilterLevel::Literal(other),
        })
    })
}

/// True for topics such as `$SYS/...`, which wildcards at the first level
/// never match [MQTT-4.7.2-1].
#[inline]
pub fn is_dollar_topic(topic: &str) -> bool {
    topic.starts_with('$')
}

/// Does `filter` match the topic name `topic`?
///
/// Walks both strings level by level (see [`filter_levels`] for how an
/// invalid filter is read). It is the oracle the router's trie is tested
/// against, and is fine for one-off checks (ACLs, tests); route with
/// `roost_router::Router`.
#[inline]
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut filter_levels = filter_levels(filter).peekable();
    if is_dollar_topic(topic)
        && matches!(
            filter_levels.peek(),
            Some(FilterLevel::Plus | FilterLevel::Hash)
        )
    {
        return false;
    }
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some(FilterLevel::Hash), _) => return true,
            (Some(FilterLevel::Plus), Some(_)) => {}
            (Some(FilterLevel::Literal(f)), Some(t)) if f == t => {}
            (None, None) => return true,
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
            !(first && is_dollar_topic(ql))
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
                ("+", q) => !(first && is_dollar_topic(q)),
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
            Some((level, _)) => !(first && is_dollar_topic(level)),
        },
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((al, a_rest)), Some((bl, b_rest))) => {
            let level_ok = match (*al, *bl) {
                ("+", "+") => true,
                ("+", l) | (l, "+") => !(first && is_dollar_topic(l)),
                (x, y) => x == y,
            };
            level_ok && intersects_levels(a_rest, b_rest, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_literal_unless_last() {
        let levels: Vec<_> = filter_levels("a/#/+/#").collect();
        assert_eq!(
            levels,
            [
                FilterLevel::Literal("a"),
                FilterLevel::Literal("#"),
                FilterLevel::Plus,
                FilterLevel::Hash
            ]
        );
    }

    #[test]
    fn partial_wildcards_are_literal() {
        assert!(matches("a+/b#", "a+/b#"));
        assert!(!matches("a+/b#", "ax/b"));
    }

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
}
