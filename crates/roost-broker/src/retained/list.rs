//! Listing retained messages by filter, one page at a time.
//!
//! Pages are keyed by topic, not by position: `after` is the last topic of
//! the previous page and the next page starts just after it in topic order.
//! A topic that stays stored during the whole listing is therefore returned
//! exactly once, whatever is inserted or deleted meanwhile; topics added or
//! removed during the listing may or may not show.

use std::time::Instant;

use roost_codec::topic::{
    has_wildcards, matches as topic_matches, parse_shared, validate_topic_filter,
};

use super::{Entry, RetainedError, RetainedMessage, RetainedPage, RetainedStore};

/// Most messages in one page.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most topics one call looks at, so a selective filter over a large store
/// cannot hold the index lock for long; the page then ends early with a
/// `next` to continue from.
const MAX_SCAN: usize = 10_000;

impl RetainedStore {
    /// Up to `limit` (1..=[`MAX_PAGE`]) live messages matching `filter`, in
    /// topic order, starting after the topic `after`.
    pub(crate) fn list(
        &self,
        filter: &str,
        after: Option<&str>,
        limit: usize,
        now: Instant,
    ) -> Result<RetainedPage, RetainedError> {
        validate_topic_filter(filter).map_err(|e| RetainedError::InvalidFilter(e.to_string()))?;
        if parse_shared(filter).is_some() {
            return Err(RetainedError::InvalidFilter(
                "shared subscription filters match no retained message".into(),
            ));
        }
        if !has_wildcards(filter) {
            let past_cursor = after.is_none_or(|a| topic_order(filter, a).is_gt());
            let messages = past_cursor
                .then(|| self.get(filter, now))
                .flatten()
                .into_iter()
                .collect();
            return Ok(RetainedPage {
                messages,
                next: None,
            });
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let mut dead: Vec<String> = Vec::new();
        let page = {
            let inner = self.inner.read();
            let scope = Scope::of(filter);
            let start = scope.start(after);
            let first = match start {
                Start::At(prefix) => inner.index.get(prefix).map(|e| (prefix.to_owned(), e)),
                _ => None,
            };
            let rest = match start {
                Start::All => inner.index.iter(),
                Start::At(topic) | Start::After(topic) => inner.index.iter_after(topic),
            };
            let candidates = first
                .into_iter()
                .chain(rest)
                .take_while(|(topic, _)| scope.contains(topic));
            collect_page(candidates, filter, limit, now, &mut dead)
        };
        self.purge(&dead, now);
        Ok(page)
    }
}

/// Walks `candidates` (in topic order) into a page, noting dead entries.
fn collect_page<'a>(
    candidates: impl Iterator<Item = (String, &'a Entry)>,
    filter: &str,
    limit: usize,
    now: Instant,
    dead: &mut Vec<String>,
) -> RetainedPage {
    let mut page = RetainedPage::default();
    for (scanned, (topic, entry)) in candidates.enumerate() {
        let full = if entry.is_dead(now) {
            dead.push(topic.clone());
            false
        } else if topic_matches(filter, &topic) {
            page.messages.push(RetainedMessage::new(entry, now));
            page.messages.len() == limit
        } else {
            false
        };
        if full || scanned + 1 == MAX_SCAN {
            // The next page resumes after the last topic looked at.
            page.next = Some(topic);
            return page;
        }
    }
    page
}

/// Where a listing starts.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// At the first stored topic.
    All,
    /// At this topic itself (then after it).
    At(&'a str),
    /// Just after this topic.
    After(&'a str),
}

/// The topics a filter can match: everything, or one literal prefix and the
/// topics below it (contiguous in topic order).
struct Scope<'a> {
    prefix: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The literal levels before the first wildcard of `filter`.
    fn of(filter: &'a str) -> Self {
        let mut end = 0;
        for level in filter.split('/') {
            if level == "+" || level == "#" {
                break;
            }
            end += level.len() + 1;
        }
        let prefix = (end > 0).then(|| &filter[..end - 1]);
        Self { prefix }
    }

    fn start(&self, after: Option<&'a str>) -> Start<'a> {
        match (self.prefix, after) {
            (Some(prefix), Some(after)) if topic_order(after, prefix).is_lt() => Start::At(prefix),
            (_, Some(after)) => Start::After(after),
            (Some(prefix), None) => Start::At(prefix),
            (None, None) => Start::All,
        }
    }

    fn contains(&self, topic: &str) -> bool {
        self.prefix.is_none_or(|prefix| {
            topic
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// The order of the retained index: level by level, bytewise within a level,
/// a topic before the topics below it.
fn topic_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_the_literal_prefix() {
        assert_eq!(Scope::of("a/b/+/c").prefix, Some("a/b"));
        assert_eq!(Scope::of("a/#").prefix, Some("a"));
        assert_eq!(Scope::of("+/a").prefix, None);
        assert_eq!(Scope::of("#").prefix, None);
        assert_eq!(Scope::of("/+").prefix, Some(""));
    }

    #[test]
    fn scope_holds_the_prefix_and_below_only() {
        let scope = Scope::of("a/#");
        assert!(scope.contains("a"));
        assert!(scope.contains("a/b/c"));
        assert!(!scope.contains("ab"));
        assert!(!scope.contains("a-b"));
    }

    #[test]
    fn topic_order_puts_a_topic_before_its_children() {
        assert!(topic_order("a", "a/b").is_lt());
        assert!(topic_order("a/b", "a-b").is_lt());
        assert!(topic_order("a/z", "b").is_lt());
    }
}
