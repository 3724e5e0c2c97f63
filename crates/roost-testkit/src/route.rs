//! Waiting for a cluster route: a subscription made on one node reaches the
//! other nodes' route caches a few milliseconds later, and nothing on the
//! wire says when. The only observable sign is a message crossing, so the
//! wait publishes QoS 0 probes until every subscriber got one.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use roost_codec::QoS;

use crate::RawClient;
use crate::packets;

/// Publishes QoS 0 `probe` messages on `topic` from `publisher` until each
/// of `subscribers` received one (panics after `within`), then drains the
/// probes still under way so they do not arrive before what the test sends
/// next (one ordered inbox per node).
pub async fn wait_for_route(
    publisher: &mut RawClient,
    topic: &str,
    subscribers: &mut [&mut RawClient],
    within: Duration,
) {
    let deadline = Instant::now() + within;
    let mut seen = vec![false; subscribers.len()];
    while seen.iter().any(|s| !s) {
        assert!(
            Instant::now() < deadline,
            "route to {topic} not seen in {within:?}"
        );
        publisher
            .send(packets::publish(
                topic,
                &b"probe"[..],
                QoS::AtMostOnce,
                None,
            ))
            .await
            .expect("send a probe");
        for (i, sub) in subscribers.iter_mut().enumerate() {
            while let Ok(p) = sub.recv_publish(Duration::from_millis(100)).await {
                assert_eq!(&p.payload[..], b"probe");
                seen[i] = true;
            }
        }
    }
    for sub in subscribers.iter_mut() {
        while sub.recv_publish(Duration::from_millis(200)).await.is_ok() {}
    }
}
