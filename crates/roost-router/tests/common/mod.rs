//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use roost_codec::{QoS, SubscriptionOptions};
use roost_router::{Router, SharedStrategy, Subscription, Target};

/// A subscription granted at `qos` with default options.
pub fn sub(qos: u8) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos: QoS::from_u8(qos).unwrap_or_default(),
            ..SubscriptionOptions::default()
        },
        identifier: None,
    }
}

/// A subscription granted at `qos` carrying identifier `id`.
pub fn sub_id(qos: u8, id: u32) -> Subscription {
    Subscription {
        identifier: Some(id),
        ..sub(qos)
    }
}

/// Routes `topic` as published by nobody; targets sorted by (shared, key).
pub fn route(router: &Router<&'static str>, topic: &str) -> Vec<Target<&'static str>> {
    let mut out = Vec::new();
    router.route(topic, None, "", &mut out);
    out.sort_by(|a, b| (a.shared, a.key).cmp(&(b.shared, b.key)));
    out
}

/// Keys that receive `topic`, sorted.
pub fn receivers(router: &Router<&'static str>, topic: &str) -> Vec<&'static str> {
    route(router, topic).into_iter().map(|t| t.key).collect()
}

/// A router with one non-shared QoS 0 subscription per filter, each under
/// its own key (the filter itself).
pub fn router_with(filters: &[&'static str]) -> Router<&'static str> {
    let mut router = Router::new(SharedStrategy::RoundRobin);
    for filter in filters {
        router.subscribe(*filter, filter, None, sub(0), 0);
    }
    router
}
