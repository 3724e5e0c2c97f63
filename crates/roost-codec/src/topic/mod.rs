//! The one home of MQTT's topic rules: Topic Name and Topic Filter validation
//! (the codec on decode, the session and the broker on anything from
//! elsewhere), the validated [`TopicName`] / [`TopicFilter`] types, matching
//! and the filter relations the router and the ACL use ([`matches`],
//! [`covers`], [`intersects`]), and the shared-subscription parser
//! ([`parse_shared`], [`strip_shared_prefix`]), so every crate agrees exactly.
//!
//! | rule | 5.0 id | 3.1.1 id |
//! | --- | --- | --- |
//! | at least one character | MQTT-4.7.3-1 | MQTT-4.7.3-1 |
//! | no U+0000 | MQTT-4.7.3-2 | MQTT-4.7.3-2 |
//! | at most 65,535 bytes | MQTT-4.7.3-3 | MQTT-4.7.3-3 |
//! | no wildcard in a Topic Name | MQTT-4.7.0-1, MQTT-3.3.2-2 | MQTT-4.7.1-1, MQTT-3.3.2-2 |
//! | `#` alone in the last level | MQTT-4.7.1-1 | MQTT-4.7.1-2 |
//! | `+` alone in its level | MQTT-4.7.1-2 | MQTT-4.7.1-3 |
//! | `$share/{group}/{filter}` shape | MQTT-4.8.2-1, MQTT-4.8.2-2 | — |

mod relations;
mod shared;
mod types;

pub use relations::{FilterLevel, covers, filter_levels, intersects, is_dollar_topic, matches};
pub use shared::{QUEUE_PREFIX, SHARED_PREFIX, SharedFilter, parse_shared, strip_shared_prefix};
pub use types::{TopicFilter, TopicName};

/// The longest string MQTT can carry (a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Why a Topic Name or Topic Filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic is the empty string [MQTT-4.7.3-1].
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// The topic is longer than 65,535 bytes [MQTT-4.7.3-3].
    #[error("topic is {len} bytes, more than 65535 [MQTT-4.7.3-3]")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The topic contains U+0000 [MQTT-4.7.3-2].
    #[error("topic contains U+0000 [MQTT-4.7.3-2]")]
    NullCharacter,
    /// A Topic Name contains `+` or `#` [MQTT-4.7.0-1].
    #[error("topic name contains a wildcard character [MQTT-4.7.0-1]")]
    WildcardInName,
    /// `#` is not alone in the last level of a filter [MQTT-4.7.1-1].
    #[error("'#' must be the last character and alone in its level [MQTT-4.7.1-1]")]
    MultiLevelWildcardMisplaced,
    /// `+` shares its level with other characters [MQTT-4.7.1-2].
    #[error("'+' must occupy an entire level [MQTT-4.7.1-2]")]
    SingleLevelWildcardMisplaced,
    /// `$share/` is not followed by a non-empty share name [MQTT-4.8.2-1].
    #[error("shared subscription has an empty share name [MQTT-4.8.2-1]")]
    SharedEmptyGroup,
    /// The share name contains `+` or `#`, or is not followed by `/` and a filter [MQTT-4.8.2-2].
    #[error(
        "share name contains a wildcard or is not followed by '/' and a topic filter [MQTT-4.8.2-2]"
    )]
    SharedInvalidGroup,
    /// `$share/{group}/` is followed by an empty or invalid topic filter [MQTT-4.8.2-2].
    #[error("shared subscription has no valid topic filter after the share name [MQTT-4.8.2-2]")]
    SharedInvalidFilter,
}

impl TopicError {
    /// The MQTT 5.0 statement this error violates.
    pub fn spec_id(self) -> &'static str {
        match self {
            Self::Empty => "MQTT-4.7.3-1",
            Self::NullCharacter => "MQTT-4.7.3-2",
            Self::TooLong { .. } => "MQTT-4.7.3-3",
            Self::WildcardInName => "MQTT-4.7.0-1",
            Self::MultiLevelWildcardMisplaced => "MQTT-4.7.1-1",
            Self::SingleLevelWildcardMisplaced => "MQTT-4.7.1-2",
            Self::SharedEmptyGroup => "MQTT-4.8.2-1",
            Self::SharedInvalidGroup | Self::SharedInvalidFilter => "MQTT-4.8.2-2",
        }
    }

    /// The MQTT 3.1.1 statement this error violates (3.1.1 numbers the
    /// wildcard rules differently and has no shared subscriptions).
    pub fn spec_id_v311(self) -> Option<&'static str> {
        match self {
            Self::Empty => Some("MQTT-4.7.3-1"),
            Self::NullCharacter => Some("MQTT-4.7.3-2"),
            Self::TooLong { .. } => Some("MQTT-4.7.3-3"),
            Self::WildcardInName => Some("MQTT-4.7.1-1"),
            Self::MultiLevelWildcardMisplaced => Some("MQTT-4.7.1-2"),
            Self::SingleLevelWildcardMisplaced => Some("MQTT-4.7.1-3"),
            Self::SharedEmptyGroup | Self::SharedInvalidGroup | Self::SharedInvalidFilter => None,
        }
    }
}

/// Checks the length and U+0000 rules common to names and filters.
fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    Ok(())
}

/// Validates a Topic Name (PUBLISH, Will Topic, Response Topic): non-empty,
/// at most 65,535 bytes, no U+0000, no `+` or `#`.
pub fn validate_topic_name(s: &str) -> Result<(), TopicError> {
    check_common(s)?;
    // One pass over the bytes: these three are ASCII, so a byte test is exact.
    for b in s.bytes() {
        match b {
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            0 => return Err(TopicError::NullCharacter),
            _ => {}
        }
    }
    Ok(())
}

/// Validates a Topic Filter (SUBSCRIBE, UNSUBSCRIBE): non-empty, at most
/// 65,535 bytes, no U+0000, `#` only alone in the last level, `+` only alone
/// in a level; `$share/{group}/{filter}` needs a non-empty group without
/// `+`, `#` or `/` followed by a valid non-empty filter.
pub fn validate_topic_filter(s: &str) -> Result<(), TopicError> {
    check_common(s)?;
    match s.strip_prefix(SHARED_PREFIX) {
        Some(rest) => {
            let Some((group, filter)) = rest.split_once('/') else {
                return Err(if rest.is_empty() {
                    TopicError::SharedEmptyGroup
                } else {
                    TopicError::SharedInvalidGroup
                });
            };
            if group.is_empty() {
                return Err(TopicError::SharedEmptyGroup);
            }
            if has_wildcards(group) {
                return Err(TopicError::SharedInvalidGroup);
            }
            if filter.is_empty() {
                return Err(TopicError::SharedInvalidFilter);
            }
            validate_levels(filter)
        }
        None => validate_levels(s),
    }
}

/// Validates a Topic Filter's syntax alone: non-empty, at most 65,535 bytes,
/// no U+0000, `#` only alone in the last level, `+` only alone in a level.
/// A `$share/` prefix is read as ordinary levels: for filters that are not
/// subscribed as such, e.g. ACL rules and the inner filter of a shared one.
pub fn validate_filter_syntax(s: &str) -> Result<(), TopicError> {
    check_common(s)?;
    validate_levels(s)
}

/// Level rules of a (non-shared) filter; the filter is non-empty.
fn validate_levels(filter: &str) -> Result<(), TopicError> {
    if filter.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    if !has_wildcards(filter) {
        return Ok(());
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MultiLevelWildcardMisplaced);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::SingleLevelWildcardMisplaced);
        }
    }
    Ok(())
}

/// True if the string contains `+` or `#`.
pub fn has_wildcards(s: &str) -> bool {
    s.bytes().any(|b| b == b'+' || b == b'#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_4_7_3_1_empty_name_and_filter_are_invalid() {
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
    }

    #[test]
    fn mqtt_4_7_3_2_null_character_is_invalid() {
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(
            validate_topic_filter("a/\0"),
            Err(TopicError::NullCharacter)
        );
    }

    #[test]
    fn mqtt_4_7_3_3_topics_longer_than_65535_bytes_are_invalid() {
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic_name(&long),
            Err(TopicError::TooLong { len: 65_536 })
        );
        assert_eq!(
            validate_topic_filter(&long),
            Err(TopicError::TooLong { len: 65_536 })
        );
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    #[test]
    fn v5_mqtt_4_7_0_1_wildcards_are_not_allowed_in_topic_names() {
        for t in ["+", "#", "a/+/b", "a/#", "a+b"] {
            assert_eq!(
                validate_topic_name(t),
                Err(TopicError::WildcardInName),
                "{t}"
            );
        }
        assert_eq!(validate_topic_name("a/b/c"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name("$SYS/x"), Ok(()));
    }

    #[test]
    fn v5_mqtt_4_7_1_1_multi_level_wildcard_must_be_last_and_alone() {
        for t in ["#/a", "a/#/b", "a#", "a/b#", "##"] {
            assert_eq!(
                validate_topic_filter(t),
                Err(TopicError::MultiLevelWildcardMisplaced),
                "{t}"
            );
        }
        for t in ["#", "a/#", "/#", "+/#"] {
            assert_eq!(validate_topic_filter(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn v5_mqtt_4_7_1_2_single_level_wildcard_must_occupy_a_level() {
        for t in ["a+", "+a", "a/b+/c", "++"] {
            assert_eq!(
                validate_topic_filter(t),
                Err(TopicError::SingleLevelWildcardMisplaced),
                "{t}"
            );
        }
        for t in ["+", "+/+", "a/+/c", "+/", "/+"] {
            assert_eq!(validate_topic_filter(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn v311_mqtt_4_7_1_2_multi_level_wildcard_must_be_last() {
        assert_eq!(
            validate_topic_filter("sport/tennis#"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            validate_topic_filter("sport/tennis/#/ranking"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            TopicError::MultiLevelWildcardMisplaced.spec_id_v311(),
            Some("MQTT-4.7.1-2")
        );
    }

    #[test]
    fn v311_mqtt_4_7_1_3_single_level_wildcard_must_occupy_a_level() {
        assert_eq!(
            validate_topic_filter("sport+"),
            Err(TopicError::SingleLevelWildcardMisplaced)
        );
        assert_eq!(validate_topic_filter("+/tennis/#"), Ok(()));
        assert_eq!(
            TopicError::SingleLevelWildcardMisplaced.spec_id_v311(),
            Some("MQTT-4.7.1-3")
        );
    }

    #[test]
    fn v5_mqtt_4_8_2_1_shared_filter_needs_a_share_name() {
        assert_eq!(
            validate_topic_filter("$share/"),
            Err(TopicError::SharedEmptyGroup)
        );
        assert_eq!(
            validate_topic_filter("$share//a"),
            Err(TopicError::SharedEmptyGroup)
        );
        assert_eq!(validate_topic_filter("$share/g/a"), Ok(()));
    }

    #[test]
    fn v5_mqtt_4_8_2_2_share_name_has_no_wildcards_and_is_followed_by_a_filter() {
        assert_eq!(
            validate_topic_filter("$share/g+/a"),
            Err(TopicError::SharedInvalidGroup)
        );
        assert_eq!(
            validate_topic_filter("$share/#/a"),
            Err(TopicError::SharedInvalidGroup)
        );
        assert_eq!(
            validate_topic_filter("$share/g"),
            Err(TopicError::SharedInvalidGroup)
        );
        assert_eq!(
            validate_topic_filter("$share/g/"),
            Err(TopicError::SharedInvalidFilter)
        );
        assert_eq!(
            validate_topic_filter("$share/g/a#"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(validate_topic_filter("$share/g/+/x/#"), Ok(()));
    }

    #[test]
    fn filter_validity() {
        assert_eq!(validate_filter_syntax("a/+/#"), Ok(()));
        assert_eq!(validate_filter_syntax("/"), Ok(()));
        assert!(validate_filter_syntax("a/#/b").is_err());
        assert!(validate_filter_syntax("a+/b").is_err());
        assert!(validate_filter_syntax("").is_err());
        // `$share/` is ordinary levels here, unlike validate_topic_filter.
        assert_eq!(validate_filter_syntax("$share//a"), Ok(()));
    }

    #[test]
    fn has_wildcards_detects_plus_and_hash() {
        assert!(has_wildcards("a/+"));
        assert!(has_wildcards("#"));
        assert!(!has_wildcards("a/b"));
    }
}
