//! Per-filter SUBSCRIBE refusals that depend only on configuration, so the
//! broker can answer them without touching the router.

use roost_codec::topic::{has_wildcards, parse_shared, validate_topic_filter};
use roost_codec::{ReasonCode, Subscribe};

use crate::config::SessionConfig;
use crate::connect::too_deep;

/// Early refusals for each filter of `subscribe`, in order (`None` = go on
/// with authorization and the router):
///
/// - 0x8F Topic Filter invalid: bad syntax, bad `$share/` form, or more
///   levels than `max_topic_levels`;
/// - 0x9E Shared Subscriptions not supported;
/// - 0xA2 Wildcard Subscriptions not supported [MQTT-3.8.3-2 (3.1.1)];
/// - 0xA1 Subscription Identifiers not supported;
/// - 0x97 Quota exceeded: the filter would take this packet past
///   `max_subscriptions` (counting only this packet; see
///   [`crate::Session::validate_subscribe`] to count existing subscriptions too).
///
/// 3.1.1 clients see every refusal as 0x80 (the session maps it in SUBACK).
pub fn validate_subscribe(
    subscribe: &Subscribe,
    config: &SessionConfig,
) -> Vec<Option<ReasonCode>> {
    validate_with_existing(subscribe, config, 0, |_| false)
}

/// [`validate_subscribe`] for a session that already holds `existing`
/// subscriptions; `is_existing(filter)` tells a replacement (which takes no
/// new quota) from a new subscription.
pub(crate) fn validate_with_existing(
    subscribe: &Subscribe,
    config: &SessionConfig,
    existing: usize,
    is_existing: impl Fn(&str) -> bool,
) -> Vec<Option<ReasonCode>> {
    let mut count = existing;
    let sub_id = subscribe.properties.subscription_identifier;
    subscribe
        .filters
        .iter()
        .map(|(filter, _)| {
            let refusal = filter_refusal(filter, sub_id.is_some(), config);
            if refusal.is_some() || is_existing(filter) {
                return refusal;
            }
            count += 1;
            (count > config.max_subscriptions).then_some(ReasonCode::QUOTA_EXCEEDED)
        })
        .collect()
}

fn filter_refusal(filter: &str, has_sub_id: bool, config: &SessionConfig) -> Option<ReasonCode> {
    // Checks the `$share/{group}/` form too.
    if validate_topic_filter(filter).is_err() {
        return Some(ReasonCode::TOPIC_FILTER_INVALID);
    }
    let shared = parse_shared(filter);
    let inner = shared.as_ref().map_or(filter, |s| s.filter);
    if too_deep(inner, config.max_topic_levels) {
        return Some(ReasonCode::TOPIC_FILTER_INVALID);
    }
    if shared.is_some() && !config.shared_subscription_available {
        return Some(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if !config.wildcard_subscription_available && has_wildcards(inner) {
        return Some(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if has_sub_id && !config.subscription_identifiers_available {
        return Some(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
    }
    None
}
