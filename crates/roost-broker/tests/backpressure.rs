//! Back-pressure under overload (issue 21; docs/performance.md, "Overload"):
//! publishers that write faster than the broker routes are slowed down
//! (their sockets are not read) instead of their messages being dropped,
//! while a subscriber that stops reading holds them back for at most
//! `limits.publisher_wait_ms` and then loses its own deliveries (counted).
//! Counts only, no timing: the outboxes are made tiny, so that one read of a
//! burst would overflow them many times over without back-pressure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use roost_codec::{Encoder, Packet, ProtocolVersion, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::{publish, unique_id};

use common::clients::{open, subscribed};

/// Per message the test waits on (a generous bound, never a sleep).
const T: Duration = Duration::from_secs(10);

/// `count` QoS 0 PUBLISH packets to `topic`, encoded into one buffer, so
/// the client writes them as one burst.
fn burst(topic: &str, count: usize, payload: usize) -> Bytes {
    let encoder = Encoder::new(ProtocolVersion::V311);
    let mut out = BytesMut::new();
    let body = Bytes::from(vec![b'x'; payload]);
    for _ in 0..count {
        encoder
            .encode(
                &Packet::Publish(publish(topic, body.clone(), QoS::AtMostOnce, None)),
                &mut out,
            )
            .unwrap();
    }
    out.freeze()
}

/// Receives exactly `count` PUBLISH packets (each within `T`).
async fn receive_all(client: &mut RawClient, count: usize) {
    for i in 0..count {
        if let Err(e) = client.recv_publish(T).await {
            panic!("message {i} of {count} did not arrive: {e:?}");
        }
    }
}

/// Outboxes of 64 deliveries, publishers paused at 16: one 64 KiB read of a
/// burst holds thousands of messages.
fn tiny_outboxes(wait_ms: u64) -> roost_broker::Config {
    common::config(&format!(
        "[mqtt]\nmax_outbox = 64\n[limits]\noutbox_high_water = 16\npublisher_wait_ms = {wait_ms}\n"
    ))
}

/// Four publishers each write `PER_PUBLISHER` messages in one burst to a
/// subscriber that reads everything; returns what the broker dropped.
async fn fan_in_burst(config: roost_broker::Config) -> (usize, u64) {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 5_000;
    let broker = common::start_with(config, None).await;
    let topic = unique_id("bp/fanin");
    let mut subscriber = open(broker.addr, ProtocolVersion::V311, "bp-sub").await;
    subscribed(&mut subscriber, &topic, QoS::AtMostOnce).await;
    let mut writers = Vec::new();
    for _ in 0..PUBLISHERS {
        let mut publisher = open(broker.addr, ProtocolVersion::V311, "bp-pub").await;
        let bytes = burst(&topic, PER_PUBLISHER, 16);
        writers.push(tokio::spawn(async move {
            publisher.send_bytes(&bytes).await.unwrap();
            publisher
        }));
    }
    let sent = PUBLISHERS * PER_PUBLISHER;
    let mut received = 0;
    while received < sent {
        match subscriber.recv_publish(Duration::from_secs(2)).await {
            Ok(_) => received += 1,
            // Without back-pressure the rest was dropped: nothing more comes.
            Err(_) => break,
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    (received, broker.handle.stats().messages_dropped)
}

#[tokio::test]
async fn a_subscriber_that_keeps_up_loses_no_qos0_message_when_publishers_burst_faster_than_routing()
 {
    let (received, dropped) = fan_in_burst(tiny_outboxes(60_000)).await;
    assert_eq!(received, 4 * 5_000, "every message reached the subscriber");
    assert_eq!(dropped, 0);
}

#[tokio::test]
async fn without_back_pressure_the_same_burst_overflows_the_outbox() {
    // The control for the test above: its burst does overload the broker.
    let (received, dropped) = fan_in_burst(tiny_outboxes(0)).await;
    assert!(dropped > 0, "nothing dropped: the burst did not overload");
    assert_eq!(received as u64 + dropped, 4 * 5_000);
}

#[tokio::test]
async fn a_stalled_subscriber_holds_a_publisher_back_only_for_its_bound_and_its_drops_are_counted()
{
    const N: usize = 30_000;
    // 1 KiB payloads: 30 MB, far more than the stalled subscriber's socket
    // buffers and connection output hold.
    let broker = common::start_with(tiny_outboxes(1_000), None).await;
    let topic = unique_id("bp/stall");
    let fast_id = unique_id("bp-fast");
    let stalled_id = unique_id("bp-stalled");
    let mut fast = common::clients::open_with(
        broker.addr,
        roost_testkit::packets::connect(ProtocolVersion::V311, &fast_id),
    )
    .await;
    subscribed(&mut fast, &topic, QoS::AtMostOnce).await;
    let mut stalled = common::clients::open_with(
        broker.addr,
        roost_testkit::packets::connect(ProtocolVersion::V311, &stalled_id),
    )
    .await;
    subscribed(&mut stalled, &topic, QoS::AtMostOnce).await;
    // From here on `stalled` reads nothing.
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "bp-stall-pub").await;
    let bytes = burst(&topic, N, 1024);
    let writer = tokio::spawn(async move {
        publisher.send_bytes(&bytes).await.unwrap();
        publisher
    });
    receive_all(&mut fast, N).await;
    let _publisher = writer.await.unwrap();

    let stats = broker.handle.stats();
    assert!(
        stats.publisher_waits_expired >= 1,
        "the stalled subscriber was given up on: {stats:?}"
    );
    let clients = broker.handle.clients();
    let dropped_for = |id: &str| {
        clients
            .iter()
            .find(|c| c.client_id == id)
            .map(|c| c.dropped)
            .unwrap()
    };
    assert_eq!(dropped_for(&fast_id), 0, "the fast subscriber lost nothing");
    assert!(
        dropped_for(&stalled_id) > 0,
        "the stalled subscriber's drops are counted"
    );
    assert!(stats.messages_dropped >= dropped_for(&stalled_id));
    drop(stalled);
}
