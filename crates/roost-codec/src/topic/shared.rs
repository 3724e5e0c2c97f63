//! The one parser of shared-subscription filters: `$share/{group}/{filter}`
//! (MQTT 5.0, 4.8.2), which the broker routes as a group, and the older
//! `$queue/{filter}`, which authorization reads as the filter it names.

/// The prefix that marks a shared subscription (MQTT 5.0, 4.8.2).
pub const SHARED_PREFIX: &str = "$share/";

/// The prefix of a queue subscription (`$queue/{filter}`, a pre-5.0 broker
/// convention): authorization applies to the filter after it.
pub const QUEUE_PREFIX: &str = "$queue/";

/// A parsed shared-subscription filter `$share/{group}/{filter}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedFilter<'a> {
    /// The share name.
    pub group: &'a str,
    /// The topic filter after the share name.
    pub filter: &'a str,
}

/// Splits `$share/{group}/{filter}` into its parts. Returns `None` for
/// anything else. It does not validate the parts: call
/// [`super::validate_topic_filter`] first.
pub fn parse_shared(s: &str) -> Option<SharedFilter<'_>> {
    let rest = s.strip_prefix(SHARED_PREFIX)?;
    let (group, filter) = rest.split_once('/')?;
    Some(SharedFilter { group, filter })
}

/// The filter whose messages a subscription brings: `$share/{group}/` or
/// `$queue/` removed, anything else unchanged. Authorization applies to it,
/// not to the group name.
pub fn strip_shared_prefix(filter: &str) -> &str {
    if let Some(shared) = parse_shared(filter) {
        shared.filter
    } else if let Some(rest) = filter.strip_prefix(QUEUE_PREFIX) {
        rest
    } else {
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_shared_splits_group_and_filter() {
        assert_eq!(
            parse_shared("$share/g/a/b"),
            Some(SharedFilter {
                group: "g",
                filter: "a/b"
            })
        );
        assert_eq!(parse_shared("$share/g"), None);
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$SHARE/g/a"), None);
    }

    #[test]
    fn shared_prefix_is_removed() {
        assert_eq!(strip_shared_prefix("$share/g/a/#"), "a/#");
        assert_eq!(strip_shared_prefix("$queue/a"), "a");
        assert_eq!(strip_shared_prefix("a/b"), "a/b");
        // Not a shared filter: kept whole.
        assert_eq!(strip_shared_prefix("$share/g"), "$share/g");
    }
}
