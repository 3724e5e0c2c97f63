//! Flow control through the whole broker (MQTT 5.0 section 4.9, 3.3.4,
//! Maximum Packet Size of 3.1.2 / 3.2.2): Receive Maximum both ways, packet
//! size limits both ways, and the bounded queues with their drop counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, puback, publish, pubrec, subscribe, unique_id, unsubscribe};

use common::barrier::next_is_broker_marker;
use common::clients::{open_with, sub};

const T: Duration = Duration::from_secs(5);

/// A 5.0 client that accepts at most `receive_maximum` unacknowledged
/// QoS 1/2 PUBLISH packets.
fn with_receive_maximum(prefix: &str, receive_maximum: u16) -> Connect {
    let mut c = connect(ProtocolVersion::V5, &unique_id(prefix));
    c.properties.receive_maximum = Some(receive_maximum);
    c
}

fn payload(i: u8) -> Bytes {
    Bytes::from(vec![i])
}

#[tokio::test]
async fn v5_mqtt_3_3_4_7_more_unacknowledged_publishes_than_our_receive_maximum_is_0x93() {
    let broker = common::start_with(common::config("[mqtt]\nreceive_maximum = 2\n"), None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("rm-in"))
        .await
        .unwrap();
    assert_eq!(connack.properties.receive_maximum, Some(2));
    for id in 1..=2 {
        client
            .send(publish("rm/t", &b"x"[..], QoS::ExactlyOnce, Some(id)))
            .await
            .unwrap();
        assert!(matches!(client.recv(T).await.unwrap(), Packet::PubRec(_)));
    }
    // Neither QoS 2 flow is complete (no PUBREL): a third one is over the limit.
    client
        .send(publish("rm/t", &b"x"[..], QoS::ExactlyOnce, Some(3)))
        .await
        .unwrap();
    let disconnect = client.expect_closed(T).await.unwrap();
    assert_eq!(
        disconnect.map(|d| d.reason_code),
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_4_9_v5_mqtt_4_9_0_1_v5_mqtt_4_9_0_2_broker_never_exceeds_the_clients_receive_maximum()
 {
    let broker = common::start().await;
    let mut subscriber = open_with(broker.addr, with_receive_maximum("rm-out", 3)).await;
    sub(&mut subscriber, "rmo/#", QoS::ExactlyOnce).await;
    for i in 0..8u8 {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        broker.handle.publish("rmo/t", payload(i), qos, false);
    }
    let mut inflight = Vec::new();
    for i in 0..3u8 {
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(&got.payload[..], &[i]);
        inflight.push(got);
    }
    // The send quota is zero: nothing but QoS 0 may come now.
    next_is_broker_marker(&broker, &mut subscriber, "rmo/marker").await;

    // Completing one flow frees exactly one slot. QoS 2 frees it at PUBCOMP.
    let first = inflight.remove(0);
    subscriber
        .send(puback(first.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[3]);
    next_is_broker_marker(&broker, &mut subscriber, "rmo/marker").await;

    let second = inflight.remove(0);
    assert_eq!(second.qos, QoS::ExactlyOnce);
    subscriber
        .send(pubrec(second.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert!(matches!(
        subscriber.recv(T).await.unwrap(),
        Packet::PubRel(_)
    ));
    next_is_broker_marker(&broker, &mut subscriber, "rmo/marker").await;
    subscriber
        .send(Packet::PubComp(roost_codec::PubResponse::success(
            second.packet_id.unwrap(),
        )))
        .await
        .unwrap();
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[4]);
    next_is_broker_marker(&broker, &mut subscriber, "rmo/marker").await;
}

#[tokio::test]
async fn v5_mqtt_3_3_4_10_v5_mqtt_4_9_0_3_other_packets_flow_while_the_send_quota_is_zero() {
    let broker = common::start().await;
    let mut subscriber = open_with(broker.addr, with_receive_maximum("quota0", 1)).await;
    sub(&mut subscriber, "q0/#", QoS::AtLeastOnce).await;
    broker
        .handle
        .publish("q0/a", payload(1), QoS::AtLeastOnce, false);
    broker
        .handle
        .publish("q0/b", payload(2), QoS::AtLeastOnce, false);
    let held = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*held.topic, "q0/a");

    subscriber
        .send(subscribe(2, "other/#", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(
        matches!(subscriber.recv(T).await.unwrap(), Packet::SubAck(a) if a.packet_id.get() == 2)
    );
    subscriber.send(Packet::PingReq).await.unwrap();
    assert_eq!(subscriber.recv(T).await.unwrap(), Packet::PingResp);
    subscriber.send(unsubscribe(3, "other/#")).await.unwrap();
    assert!(
        matches!(subscriber.recv(T).await.unwrap(), Packet::UnsubAck(a) if a.packet_id.get() == 3)
    );
    // Its own QoS 1 publish is acknowledged too.
    subscriber
        .send(publish("elsewhere", &b"x"[..], QoS::AtLeastOnce, Some(9)))
        .await
        .unwrap();
    assert!(
        matches!(subscriber.recv(T).await.unwrap(), Packet::PubAck(a) if a.packet_id.get() == 9)
    );
    // And QoS 0 deliveries are not held back by the quota.
    next_is_broker_marker(&broker, &mut subscriber, "q0/marker").await;

    subscriber
        .send(puback(held.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert_eq!(&*subscriber.recv_publish(T).await.unwrap().topic, "q0/b");
}

#[tokio::test]
async fn max_inflight_caps_the_window_when_the_client_allows_more() {
    let broker = common::start_with(common::config("[mqtt]\nmax_inflight = 2\n"), None).await;
    let mut subscriber = open_with(
        broker.addr,
        connect(ProtocolVersion::V5, &unique_id("maxinf")),
    )
    .await;
    sub(&mut subscriber, "mi/#", QoS::AtLeastOnce).await;
    for i in 0..4u8 {
        broker
            .handle
            .publish("mi/t", payload(i), QoS::AtLeastOnce, false);
    }
    let first = subscriber.recv_publish(T).await.unwrap();
    subscriber.recv_publish(T).await.unwrap();
    next_is_broker_marker(&broker, &mut subscriber, "mi/marker").await;
    subscriber
        .send(puback(first.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[2]);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_15_packet_above_the_servers_maximum_packet_size_is_0x95() {
    let broker = common::start_with(common::config("[mqtt]\nmax_packet_size = 128\n"), None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("big-in"))
        .await
        .unwrap();
    assert_eq!(connack.properties.maximum_packet_size, Some(128));
    client
        .send(publish("big/t", vec![7u8; 200], QoS::AtMostOnce, None))
        .await
        .unwrap();
    let disconnect = client.expect_closed(T).await.unwrap();
    assert_eq!(
        disconnect.map(|d| d.reason_code),
        Some(ReasonCode::PACKET_TOO_LARGE)
    );
}

#[tokio::test]
async fn v311_packet_above_the_servers_maximum_packet_size_closes() {
    let broker = common::start_with(common::config("[mqtt]\nmax_packet_size = 128\n"), None).await;
    let mut client = open_with(
        broker.addr,
        connect(ProtocolVersion::V311, &unique_id("big-in311")),
    )
    .await;
    client
        .send(publish("big/t", vec![7u8; 200], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_24_v5_mqtt_3_1_2_25_publish_too_large_for_the_client_is_dropped_as_if_delivered()
 {
    let broker = common::start().await;
    let mut c = with_receive_maximum("big-out", 1);
    c.properties.maximum_packet_size = Some(128);
    let mut subscriber = open_with(broker.addr, c).await;
    sub(&mut subscriber, "bo/#", QoS::AtLeastOnce).await;
    let dropped_before = broker.handle.stats().messages_dropped;
    broker
        .handle
        .publish("bo/t", Bytes::from(vec![1u8; 300]), QoS::AtLeastOnce, false);
    broker.handle.publish(
        "bo/t",
        Bytes::from_static(b"small"),
        QoS::AtLeastOnce,
        false,
    );
    // With a window of one, the small message only gets through because the
    // large one was treated as delivered rather than left in flight.
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"small");
    assert_eq!(broker.handle.stats().messages_dropped, dropped_before + 1);
}

#[tokio::test]
async fn full_session_queue_drops_newest_and_counts_it() {
    let broker =
        common::start_with(common::config("[mqtt]\nmax_queued_messages = 2\n"), None).await;
    let mut subscriber = open_with(broker.addr, with_receive_maximum("qfull", 1)).await;
    sub(&mut subscriber, "qf/#", QoS::AtLeastOnce).await;
    for i in 0..5u8 {
        broker
            .handle
            .publish("qf/t", payload(i), QoS::AtLeastOnce, false);
    }
    // One in flight, two queued, two dropped.
    let mut got = Vec::new();
    for _ in 0..3 {
        let publish = subscriber.recv_publish(T).await.unwrap();
        got.push(publish.payload[0]);
        subscriber
            .send(puback(publish.packet_id.unwrap().get()))
            .await
            .unwrap();
    }
    assert_eq!(got, vec![0, 1, 2]);
    next_is_broker_marker(&broker, &mut subscriber, "qf/marker").await;
    assert_eq!(broker.handle.stats().messages_dropped, 2);
}

#[tokio::test]
async fn full_session_queue_drops_oldest_when_configured_and_counts_it() {
    let toml = "[mqtt]\nmax_queued_messages = 2\nqueue_full_policy = \"drop_oldest\"\n";
    let broker = common::start_with(common::config(toml), None).await;
    let mut subscriber = open_with(broker.addr, with_receive_maximum("qoldest", 1)).await;
    sub(&mut subscriber, "qo/#", QoS::AtLeastOnce).await;
    for i in 0..5u8 {
        broker
            .handle
            .publish("qo/t", payload(i), QoS::AtLeastOnce, false);
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let publish = subscriber.recv_publish(T).await.unwrap();
        got.push(publish.payload[0]);
        subscriber
            .send(puback(publish.packet_id.unwrap().get()))
            .await
            .unwrap();
    }
    assert_eq!(got, vec![0, 3, 4]);
    assert_eq!(broker.handle.stats().messages_dropped, 2);
}

#[tokio::test]
async fn offline_queue_is_bounded_and_drops_are_counted() {
    let broker =
        common::start_with(common::config("[mqtt]\nmax_queued_messages = 2\n"), None).await;
    let id = unique_id("offq");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.session_expiry_interval = Some(600);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "oq/#", QoS::AtLeastOnce).await;
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..4u8 {
        broker
            .handle
            .publish("oq/t", payload(i), QoS::AtLeastOnce, false);
    }
    // QoS 0 is not kept for offline sessions by default, and that is a drop too.
    broker
        .handle
        .publish("oq/t", payload(9), QoS::AtMostOnce, false);
    assert_eq!(broker.handle.stats().messages_dropped, 3);

    c.clean_start = false;
    let mut subscriber = open_with(broker.addr, c).await;
    for i in 0..2u8 {
        assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[i]);
    }
    next_is_broker_marker(&broker, &mut subscriber, "oq/marker").await;
}

#[tokio::test]
async fn offline_queue_drop_oldest_keeps_the_newest_and_counts_the_drops() {
    let toml = "[mqtt]\nmax_queued_messages = 2\nqueue_full_policy = \"drop_oldest\"\n";
    let broker = common::start_with(common::config(toml), None).await;
    let id = unique_id("offold");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.session_expiry_interval = Some(600);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "oo/#", QoS::AtLeastOnce).await;
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..5u8 {
        broker
            .handle
            .publish("oo/t", payload(i), QoS::AtLeastOnce, false);
    }
    assert_eq!(broker.handle.stats().messages_dropped, 3);

    c.clean_start = false;
    let mut subscriber = open_with(broker.addr, c).await;
    for i in 3..5u8 {
        assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[i]);
    }
    next_is_broker_marker(&broker, &mut subscriber, "oo/marker").await;
}

#[tokio::test]
async fn qos_0_is_kept_for_offline_sessions_when_configured() {
    let broker =
        common::start_with(common::config("[mqtt]\nqueue_qos0_offline = true\n"), None).await;
    let id = unique_id("q0off");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.session_expiry_interval = Some(600);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "qz/#", QoS::AtLeastOnce).await;
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker
        .handle
        .publish("qz/t", payload(1), QoS::AtMostOnce, false);
    broker
        .handle
        .publish("qz/t", payload(2), QoS::AtLeastOnce, false);
    c.clean_start = false;
    let mut subscriber = open_with(broker.addr, c).await;
    let first = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(
        (&first.payload[..], first.qos),
        (&[1u8][..], QoS::AtMostOnce)
    );
    assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], &[2]);
    assert_eq!(broker.handle.stats().messages_dropped, 0);
}
