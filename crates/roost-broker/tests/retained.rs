//! Retained messages through the whole broker (MQTT 5.0 and 3.1.1 section
//! 3.3.1 RETAIN, Retain Handling and Retain As Published of 3.8.3.1, Message
//! Expiry of 3.3.2.3.3): store, replace, delete, delivery flags, limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "retained/api.rs"]
mod api;
mod common;
#[path = "retained/policy.rs"]
mod policy;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use roost_codec::{
    Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{publish, subscribe_with, unique_id};

use common::barrier::assert_quiet;
use common::clients::{open, sub};

const T: Duration = Duration::from_secs(5);
const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];

/// A PUBLISH with RETAIN set.
fn retained(topic: &str, payload: &'static [u8], qos: QoS, packet_id: Option<u16>) -> Publish {
    let mut p = publish(topic, payload, qos, packet_id);
    p.retain = true;
    p
}

/// Sends a PUBLISH and, for QoS > 0, waits for its acknowledgement, so the
/// retained store is updated when this returns.
async fn publish_acked(client: &mut RawClient, message: Publish) {
    let qos = message.qos;
    client.send(message).await.unwrap();
    if qos == QoS::AtMostOnce {
        // PINGRESP comes after the PUBLISH was handled.
        client.send(Packet::PingReq).await.unwrap();
        assert_eq!(client.recv(T).await.unwrap(), Packet::PingResp);
    } else {
        let ack = client.recv(T).await.unwrap();
        assert!(
            matches!(ack, Packet::PubAck(_) | Packet::PubRec(_)),
            "{ack:?}"
        );
    }
}

/// Subscribes with these options; returns the SUBACK code.
async fn sub_with(
    client: &mut RawClient,
    filter: &str,
    options: SubscriptionOptions,
) -> ReasonCode {
    client
        .send(subscribe_with(1, filter, options))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::SubAck(ack) => ack.reason_codes[0],
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn handling(retain_handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling,
        ..SubscriptionOptions::default()
    }
}

/// A fresh subscriber to `filter`: the retained messages it got, in order.
async fn retained_for(addr: SocketAddr, version: ProtocolVersion, filter: &str) -> Vec<Publish> {
    let mut client = open(addr, version, "probe").await;
    sub(&mut client, filter, QoS::ExactlyOnce).await;
    let mut got = Vec::new();
    client.send(Packet::PingReq).await.unwrap();
    loop {
        match client.recv(T).await.unwrap() {
            Packet::Publish(p) => got.push(p),
            Packet::PingResp => return got,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_1_5_retained_message_is_stored_and_replaced() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "store").await;
    publish_acked(
        &mut publisher,
        retained("rs/t", b"one", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    publish_acked(
        &mut publisher,
        retained("rs/t", b"two", QoS::AtLeastOnce, Some(2)),
    )
    .await;
    let got = retained_for(broker.addr, ProtocolVersion::V5, "rs/t").await;
    assert_eq!(got.len(), 1);
    assert_eq!((&got[0].payload[..], got[0].retain), (&b"two"[..], true));
    assert_eq!(broker.handle.stats().retained_messages, 1);
}

#[tokio::test]
async fn v311_mqtt_3_3_1_5_retained_message_is_stored_with_its_qos() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "storeqos").await;
    publish_acked(
        &mut publisher,
        retained("rq/1", b"q1", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    publish_acked(
        &mut publisher,
        retained("rq/2", b"q2", QoS::ExactlyOnce, Some(2)),
    )
    .await;
    let mut got = retained_for(broker.addr, ProtocolVersion::V311, "rq/+").await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let seen: Vec<_> = got.iter().map(|p| (&*p.topic, p.qos, p.retain)).collect();
    assert_eq!(
        seen,
        vec![
            ("rq/1", QoS::AtLeastOnce, true),
            ("rq/2", QoS::ExactlyOnce, true)
        ]
    );
}

#[tokio::test]
async fn v311_mqtt_3_3_1_6_new_subscription_gets_the_last_retained_message_of_each_matching_topic()
{
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "each").await;
    for (topic, payload) in [
        ("e/1", &b"old"[..]),
        ("e/1", b"new"),
        ("e/2", b"two"),
        ("f/1", b"other"),
    ] {
        let mut p = publish(topic, payload.to_vec(), QoS::AtMostOnce, None);
        p.retain = true;
        publish_acked(&mut publisher, p).await;
    }
    let mut got = retained_for(broker.addr, ProtocolVersion::V311, "e/#").await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let seen: Vec<_> = got.iter().map(|p| (&*p.topic, &p.payload[..])).collect();
    assert_eq!(seen, vec![("e/1", &b"new"[..]), ("e/2", &b"two"[..])]);
}

#[tokio::test]
async fn v311_mqtt_3_3_1_7_qos_0_retained_message_replaces_the_previous_one() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "q0replace").await;
    publish_acked(
        &mut publisher,
        retained("q0r/t", b"old", QoS::ExactlyOnce, Some(1)),
    )
    .await;
    publish_acked(
        &mut publisher,
        retained("q0r/t", b"new", QoS::AtMostOnce, None),
    )
    .await;
    let got = retained_for(broker.addr, ProtocolVersion::V311, "q0r/t").await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (&got[0].payload[..], got[0].qos),
        (&b"new"[..], QoS::AtMostOnce)
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_1_6_v5_mqtt_3_3_1_7_v311_mqtt_3_3_1_10_v311_mqtt_3_3_1_11_empty_retained_payload_deletes_and_is_still_forwarded()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "delete-sub").await;
        sub(&mut subscriber, "del/t", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "delete").await;
        publish_acked(
            &mut publisher,
            retained("del/t", b"kept", QoS::AtLeastOnce, Some(1)),
        )
        .await;
        assert_eq!(
            &subscriber.recv_publish(T).await.unwrap().payload[..],
            b"kept"
        );
        assert_eq!(broker.handle.stats().retained_messages, 1);

        publish_acked(
            &mut publisher,
            retained("del/t", b"", QoS::AtLeastOnce, Some(2)),
        )
        .await;
        // Processed as a normal message: existing subscribers get it.
        assert!(subscriber.recv_publish(T).await.unwrap().payload.is_empty());
        // And nothing is retained, not even the empty message.
        assert_eq!(broker.handle.stats().retained_messages, 0);
        assert!(retained_for(broker.addr, version, "del/t").await.is_empty());
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_1_8_v311_mqtt_3_3_1_12_publish_without_retain_neither_stores_nor_removes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut publisher = open(broker.addr, version, "noretain").await;
        publish_acked(
            &mut publisher,
            publish("nr/other", &b"plain"[..], QoS::AtLeastOnce, Some(1)),
        )
        .await;
        publish_acked(
            &mut publisher,
            retained("nr/t", b"kept", QoS::AtLeastOnce, Some(2)),
        )
        .await;
        publish_acked(
            &mut publisher,
            publish("nr/t", &b"live"[..], QoS::AtLeastOnce, Some(3)),
        )
        .await;
        publish_acked(
            &mut publisher,
            publish("nr/t", &b""[..], QoS::AtLeastOnce, Some(4)),
        )
        .await;
        let got = retained_for(broker.addr, version, "nr/#").await;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (&*got[0].topic, &got[0].payload[..]),
            ("nr/t", &b"kept"[..])
        );
        publish_acked(&mut publisher, retained("nr/t", b"", QoS::AtMostOnce, None)).await;
    }
}

#[tokio::test]
async fn v311_mqtt_3_3_1_8_v311_mqtt_3_3_1_9_retain_flag_is_1_only_for_messages_sent_because_of_a_new_subscription()
 {
    let broker = common::start().await;
    let mut established = open(broker.addr, ProtocolVersion::V311, "flag-old").await;
    sub(&mut established, "fl/t", QoS::AtLeastOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "flag-pub").await;
    publish_acked(
        &mut publisher,
        retained("fl/t", b"r", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    assert!(!established.recv_publish(T).await.unwrap().retain);
    let got = retained_for(broker.addr, ProtocolVersion::V311, "fl/t").await;
    assert!(got[0].retain);
}

#[tokio::test]
async fn v5_mqtt_3_3_1_9_retain_handling_0_sends_retained_messages_on_every_subscribe() {
    let broker = common::start().await;
    broker
        .handle
        .publish("rh/t", Bytes::from_static(b"r"), QoS::AtLeastOnce, true);
    let mut client = open(broker.addr, ProtocolVersion::V5, "rh0").await;
    for _ in 0..2 {
        sub_with(
            &mut client,
            "rh/t",
            handling(RetainHandling::SendAtSubscribe),
        )
        .await;
        let got = client.recv_publish(T).await.unwrap();
        assert_eq!((&got.payload[..], got.retain), (&b"r"[..], true));
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_1_10_retain_handling_1_sends_retained_messages_only_for_a_new_subscription() {
    let broker = common::start().await;
    broker
        .handle
        .publish("rh/t", Bytes::from_static(b"r"), QoS::AtLeastOnce, true);
    let mut client = open(broker.addr, ProtocolVersion::V5, "rh1").await;
    sub_with(&mut client, "rh/t", handling(RetainHandling::SendIfNew)).await;
    assert!(client.recv_publish(T).await.unwrap().retain);
    // The subscription exists now: no retained message this time.
    sub_with(&mut client, "rh/t", handling(RetainHandling::SendIfNew)).await;
    assert_quiet(&mut client).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_1_11_retain_handling_2_never_sends_retained_messages() {
    let broker = common::start().await;
    broker
        .handle
        .publish("rh/t", Bytes::from_static(b"r"), QoS::AtLeastOnce, true);
    let mut client = open(broker.addr, ProtocolVersion::V5, "rh2").await;
    for _ in 0..2 {
        sub_with(&mut client, "rh/#", handling(RetainHandling::DoNotSend)).await;
        assert_quiet(&mut client).await;
    }
    // Live messages still arrive.
    broker
        .handle
        .publish("rh/t", Bytes::from_static(b"live"), QoS::AtMostOnce, false);
    assert_eq!(&client.recv_publish(T).await.unwrap().payload[..], b"live");
}

#[tokio::test]
async fn v5_mqtt_3_3_1_12_retain_as_published_0_clears_the_retain_flag() {
    let broker = common::start().await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "rap0").await;
    sub_with(
        &mut subscriber,
        "rap/t",
        handling(RetainHandling::SendAtSubscribe),
    )
    .await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rap0-pub").await;
    publish_acked(
        &mut publisher,
        retained("rap/t", b"r", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    assert!(!subscriber.recv_publish(T).await.unwrap().retain);
}

#[tokio::test]
async fn v5_mqtt_3_3_1_13_retain_as_published_1_keeps_the_retain_flag() {
    let broker = common::start().await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "rap1").await;
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_as_published: true,
        ..SubscriptionOptions::default()
    };
    sub_with(&mut subscriber, "rap/#", options).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rap1-pub").await;
    publish_acked(
        &mut publisher,
        retained("rap/t", b"r", QoS::AtLeastOnce, Some(1)),
    )
    .await;
    assert!(subscriber.recv_publish(T).await.unwrap().retain);
    publish_acked(
        &mut publisher,
        publish("rap/t", &b"plain"[..], QoS::AtLeastOnce, Some(2)),
    )
    .await;
    assert!(!subscriber.recv_publish(T).await.unwrap().retain);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_14_retain_when_retain_is_unavailable_is_0x9a() {
    let broker =
        common::start_with(common::config("[mqtt]\nretain_available = false\n"), None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("noretain"))
        .await
        .unwrap();
    assert_eq!(connack.properties.retain_available, Some(false));
    client
        .send(retained("nr/t", b"x", QoS::AtMostOnce, None))
        .await
        .unwrap();
    let disconnect = client.expect_closed(T).await.unwrap();
    assert_eq!(
        disconnect.map(|d| d.reason_code),
        Some(ReasonCode::RETAIN_NOT_SUPPORTED)
    );
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v311_retain_when_retain_is_unavailable_closes() {
    let broker =
        common::start_with(common::config("[mqtt]\nretain_available = false\n"), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V311, "noretain311").await;
    client
        .send(retained("nr/t", b"x", QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v5_mqtt_3_3_2_5_expired_retained_message_is_not_sent() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rexp").await;
    let mut message = retained("rx/t", b"short", QoS::AtLeastOnce, Some(1));
    message.properties.message_expiry_interval = Some(1);
    publish_acked(&mut publisher, message).await;
    publish_acked(
        &mut publisher,
        retained("rx/u", b"forever", QoS::AtLeastOnce, Some(2)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let got = retained_for(broker.addr, ProtocolVersion::V5, "rx/+").await;
    let topics: Vec<_> = got.iter().map(|p| &*p.topic).collect();
    assert_eq!(topics, vec!["rx/u"]);
    assert_eq!(
        broker.handle.stats().retained_messages,
        1,
        "the expired one was removed"
    );
}

#[tokio::test]
async fn v5_mqtt_3_3_2_6_retained_message_expiry_interval_counts_down() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rcount").await;
    let mut message = retained("rc/t", b"x", QoS::AtLeastOnce, Some(1));
    message.properties.message_expiry_interval = Some(10);
    publish_acked(&mut publisher, message).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = retained_for(broker.addr, ProtocolVersion::V5, "rc/t").await;
    let left = got[0]
        .properties
        .message_expiry_interval
        .expect("the interval is forwarded");
    assert!(
        (1..=9).contains(&left),
        "at least a second waited in the server: {left}"
    );
}

#[tokio::test]
async fn v311_subscriber_gets_retained_messages_without_expiry_properties_until_they_expire() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "r311exp").await;
    let mut message = retained("r3/t", b"x", QoS::AtLeastOnce, Some(1));
    message.properties.message_expiry_interval = Some(1);
    publish_acked(&mut publisher, message).await;
    assert_eq!(
        retained_for(broker.addr, ProtocolVersion::V311, "r3/t")
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        retained_for(broker.addr, ProtocolVersion::V311, "r3/t")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn mqtt_4_7_2_1_retained_dollar_topics_are_not_matched_by_first_level_wildcards() {
    let broker = common::start().await;
    for version in BOTH {
        let mut publisher = open(broker.addr, version, "rdollar").await;
        publish_acked(
            &mut publisher,
            retained("$data/x", b"d", QoS::AtMostOnce, None),
        )
        .await;
        publish_acked(
            &mut publisher,
            retained("data/x", b"p", QoS::AtMostOnce, None),
        )
        .await;
        for filter in ["#", "+/x"] {
            let got = retained_for(broker.addr, version, filter).await;
            let topics: Vec<_> = got.iter().map(|p| &*p.topic).collect();
            assert_eq!(topics, vec!["data/x"], "filter {filter}");
        }
        let got = retained_for(broker.addr, version, "$data/#").await;
        assert_eq!(got.len(), 1);
    }
}

#[tokio::test]
async fn max_retained_messages_limits_new_topics_but_not_replacements() {
    let broker =
        common::start_with(common::config("[mqtt]\nmax_retained_messages = 2\n"), None).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rlimit").await;
    for (topic, payload) in [
        ("rl/1", &b"a"[..]),
        ("rl/2", b"b"),
        ("rl/3", b"c"),
        ("rl/1", b"a2"),
    ] {
        let mut p = publish(topic, payload.to_vec(), QoS::AtMostOnce, None);
        p.retain = true;
        publish_acked(&mut publisher, p).await;
    }
    assert_eq!(broker.handle.stats().retained_messages, 2);
    let mut got = retained_for(broker.addr, ProtocolVersion::V5, "rl/+").await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let seen: Vec<_> = got.iter().map(|p| (&*p.topic, &p.payload[..])).collect();
    assert_eq!(seen, vec![("rl/1", &b"a2"[..]), ("rl/2", &b"b"[..])]);
}

#[tokio::test]
async fn max_retained_payload_keeps_large_messages_out_of_the_store_but_delivers_them() {
    let broker =
        common::start_with(common::config("[mqtt]\nmax_retained_payload = 4\n"), None).await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "rsize-sub").await;
    sub(&mut subscriber, "rz/t", QoS::AtMostOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rsize").await;
    publish_acked(
        &mut publisher,
        retained("rz/t", b"12345", QoS::AtMostOnce, None),
    )
    .await;
    assert_eq!(
        &subscriber.recv_publish(T).await.unwrap().payload[..],
        b"12345"
    );
    assert_eq!(broker.handle.stats().retained_messages, 0);
    publish_acked(
        &mut publisher,
        retained("rz/t", b"1234", QoS::AtMostOnce, None),
    )
    .await;
    assert_eq!(broker.handle.stats().retained_messages, 1);
}
