//! Validated topic strings: a [`TopicName`] or [`TopicFilter`] can only be
//! built through the rules of [`super::validate_topic_name`] and
//! [`super::validate_topic_filter`], so code that holds one never checks it
//! again.

use std::fmt;
use std::ops::Deref;

use bytestring::ByteString;

use super::{
    SharedFilter, TopicError, covers, intersects, matches, parse_shared, validate_topic_filter,
    validate_topic_name,
};

/// A valid Topic Name (PUBLISH, Will Topic): non-empty, at most 65,535
/// bytes, no U+0000, no wildcard.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `topic` as a Topic Name.
    pub fn new(topic: impl Into<ByteString>) -> Result<Self, TopicError> {
        let topic = topic.into();
        validate_topic_name(&topic)?;
        Ok(Self(topic))
    }

    /// The topic as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying string (shares the buffer it was built from).
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// True when `filter` matches this topic (see [`super::matches`]).
    pub fn is_matched_by(&self, filter: &TopicFilter) -> bool {
        filter.matches(self)
    }
}

/// A valid Topic Filter (SUBSCRIBE, UNSUBSCRIBE, ACL rules): non-empty, at
/// most 65,535 bytes, no U+0000, wildcards only as whole levels (`#` last),
/// and a well-formed `$share/{group}/{filter}` when shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(ByteString);

impl TopicFilter {
    /// Validates `filter` as a Topic Filter.
    pub fn new(filter: impl Into<ByteString>) -> Result<Self, TopicError> {
        let filter = filter.into();
        validate_topic_filter(&filter)?;
        Ok(Self(filter))
    }

    /// The filter as a string slice, `$share/{group}/` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying string (shares the buffer it was built from).
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// The share name and inner filter of `$share/{group}/{filter}`.
    pub fn shared(&self) -> Option<SharedFilter<'_>> {
        parse_shared(&self.0)
    }

    /// The filter messages are matched against: without `$share/{group}/`.
    pub fn matching_part(&self) -> &str {
        self.shared().map_or(self.as_str(), |s| s.filter)
    }

    /// True if the filter has a `+` or `#` level.
    pub fn has_wildcards(&self) -> bool {
        super::has_wildcards(self.matching_part())
    }

    /// True when this filter matches `topic` (a shared filter by its inner
    /// filter).
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self.matching_part(), topic.as_str())
    }

    /// True when every topic `other` matches, this filter matches too.
    pub fn covers(&self, other: &TopicFilter) -> bool {
        covers(self.matching_part(), other.matching_part())
    }

    /// True when some topic name is matched by both filters.
    pub fn intersects(&self, other: &TopicFilter) -> bool {
        intersects(self.matching_part(), other.matching_part())
    }
}

macro_rules! string_like {
    ($t:ty) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl From<$t> for ByteString {
            fn from(t: $t) -> ByteString {
                t.0
            }
        }

        impl TryFrom<ByteString> for $t {
            type Error = TopicError;
            fn try_from(s: ByteString) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }
    };
}

string_like!(TopicName);
string_like!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_strings_become_topic_names_and_filters() {
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(
            TopicFilter::new("a/#/b"),
            Err(TopicError::MultiLevelWildcardMisplaced)
        );
        assert_eq!(
            TopicFilter::new("$share//a"),
            Err(TopicError::SharedEmptyGroup)
        );
        let name = TopicName::new("a/b").expect("valid");
        assert_eq!(name.as_str(), "a/b");
        assert_eq!(ByteString::from(name), "a/b");
    }

    #[test]
    fn a_shared_filter_matches_and_covers_by_its_inner_filter() {
        let shared = TopicFilter::new("$share/g/a/+").expect("valid");
        assert_eq!(
            shared.shared(),
            Some(SharedFilter {
                group: "g",
                filter: "a/+"
            })
        );
        assert_eq!(shared.matching_part(), "a/+");
        assert!(shared.has_wildcards());
        let topic = TopicName::new("a/b").expect("valid");
        assert!(shared.matches(&topic));
        assert!(topic.is_matched_by(&shared));
        let wide = TopicFilter::new("a/#").expect("valid");
        assert!(wide.covers(&shared));
        assert!(!shared.covers(&wide));
        assert!(shared.intersects(&wide));
        let dollar = TopicName::new("$SYS/x").expect("valid");
        assert!(!TopicFilter::new("#").expect("valid").matches(&dollar));
    }
}
