//! How topic names and topic filters split into levels, shared by the
//! subscription trie, the retained index and the naive reference matcher, so
//! all three agree on every input, valid or not.

/// One level of a topic filter, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterLevel<'a> {
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
/// is a literal. Valid filters never contain those, but the router must not
/// panic or misbehave when handed one, and this rule keeps the trie and the
/// naive matcher in agreement.
pub(crate) fn filter_levels(filter: &str) -> impl Iterator<Item = FilterLevel<'_>> {
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
pub(crate) fn is_dollar_topic(topic: &str) -> bool {
    topic.starts_with('$')
}

/// Naive reference matcher: does `filter` match `topic`?
///
/// Walks both strings level by level. `+` matches one level (possibly empty),
/// a trailing `#` matches the parent level and everything below it, and a
/// filter whose first level is a wildcard never matches a topic starting with
/// `$` [MQTT-4.7.2-1]. No normalisation is done [MQTT-4.7.3-4]. It is the
/// oracle the trie is tested against, and is fine for one-off checks (ACLs,
/// tests); use [`crate::Router`] for routing.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
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
        assert!(topic_matches("a+/b#", "a+/b#"));
        assert!(!topic_matches("a+/b#", "ax/b"));
    }
}
