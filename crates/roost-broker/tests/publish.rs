//! PUBLISH through the whole broker (MQTT 5.0 and 3.1.1 section 3.3, topic
//! rules of 4.7): fixed-header flags, topic names, matching, overlapping
//! subscriptions and the Maximum QoS / topic depth limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use roost_codec::{ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{publish, unique_id};

use common::barrier::next_is_marker;
use common::clients::{expect_closed, open, sub};
use common::raw::{framed, string};

const T: Duration = Duration::from_secs(5);
const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];

/// A QoS 0 PUBLISH with this raw topic (no properties for 3.1.1, an empty
/// property block for 5.0).
fn raw_publish(version: ProtocolVersion, topic: &[u8]) -> Vec<u8> {
    let mut body = string(topic);
    if version.is_v5() {
        body.push(0);
    }
    body.extend_from_slice(b"x");
    framed(0x30, &body)
}

#[tokio::test]
async fn mqtt_3_3_1_2_mqtt_4_3_1_1_v5_mqtt_2_2_1_2_v311_mqtt_2_3_1_5_qos_0_delivery_has_dup_0_and_no_packet_identifier()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "dup0-sub").await;
        sub(&mut subscriber, "dup0/t", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, ProtocolVersion::V5, "dup0-pub").await;
        let mut message = publish("dup0/t", &b"m"[..], QoS::AtLeastOnce, Some(1));
        message.dup = true;
        publisher.send(message).await.unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(
            (got.qos, got.dup, got.packet_id),
            (QoS::AtMostOnce, false, None)
        );
    }
}

#[tokio::test]
async fn mqtt_3_3_1_3_incoming_dup_is_not_propagated() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "dupin-sub").await;
        sub(&mut subscriber, "dupin/t", QoS::AtLeastOnce).await;
        let mut publisher = open(broker.addr, ProtocolVersion::V5, "dupin-pub").await;
        let mut message = publish("dupin/t", &b"m"[..], QoS::AtLeastOnce, Some(9));
        message.dup = true;
        publisher.send(message).await.unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(got.qos, QoS::AtLeastOnce);
        assert!(
            !got.dup,
            "first transmission to the subscriber must have DUP = 0"
        );
    }
}

#[tokio::test]
async fn mqtt_3_3_1_4_publish_with_qos_3_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "qos3").await;
        let mut body = string(b"q/t");
        body.extend_from_slice(&[0, 1]);
        if version.is_v5() {
            body.push(0);
        }
        client.send_bytes(&framed(0x36, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_2_1_topic_name_that_is_not_utf8_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "utf8").await;
        client
            .send_bytes(&raw_publish(version, &[b'a', 0xC3, 0x28]))
            .await
            .unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_2_2_v5_mqtt_4_7_0_1_v311_mqtt_4_7_1_1_wildcard_in_topic_name_closes() {
    let broker = common::start().await;
    for version in BOTH {
        for topic in [&b"a/+"[..], b"a/#", b"#", b"+"] {
            let mut client = open(broker.addr, version, "wild").await;
            client
                .send_bytes(&raw_publish(version, topic))
                .await
                .unwrap();
            expect_closed(&mut client, ReasonCode::TOPIC_NAME_INVALID).await;
        }
    }
}

#[tokio::test]
async fn mqtt_3_3_2_3_delivered_topic_name_matches_the_filter() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "match-sub").await;
        sub(&mut subscriber, "m/+/c", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "match-pub").await;
        for topic in ["m/b/c", "m//c"] {
            publisher
                .send(publish(topic, &b"x"[..], QoS::AtMostOnce, None))
                .await
                .unwrap();
            let got = subscriber.recv_publish(T).await.unwrap();
            assert_eq!(&*got.topic, topic);
        }
    }
}

#[tokio::test]
async fn mqtt_4_7_3_1_empty_topic_name_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "empty").await;
        client.send_bytes(&raw_publish(version, b"")).await.unwrap();
        // 5.0: an empty topic is only valid with a Topic Alias (3.3.2.1).
        expect_closed(&mut client, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_3_2_null_character_in_topic_name_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "null").await;
        client
            .send_bytes(&raw_publish(version, b"a\0b"))
            .await
            .unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_3_4_topics_are_matched_without_normalization() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "norm-sub").await;
        // "café" with a precomposed é (U+00E9).
        sub(&mut subscriber, "caf\u{e9}/x", QoS::AtMostOnce).await;
        sub(&mut subscriber, "norm/marker", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "norm-pub").await;
        // The same text with a combining accent, other case, a trailing
        // separator: all different topics.
        for topic in [
            "cafe\u{301}/x",
            "CAF\u{c9}/x",
            "caf\u{e9}/x/",
            "caf\u{e9}//x",
        ] {
            publisher
                .send(publish(topic, &b"no"[..], QoS::AtMostOnce, None))
                .await
                .unwrap();
        }
        next_is_marker(&mut publisher, &mut subscriber, "norm/marker").await;
        publisher
            .send(publish("caf\u{e9}/x", &b"yes"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(
            (&*got.topic, &got.payload[..]),
            ("caf\u{e9}/x", &b"yes"[..])
        );
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_4_2_v311_mqtt_3_3_5_1_overlapping_subscriptions_deliver_one_copy_at_the_maximum_qos()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "overlap-sub").await;
        sub(&mut subscriber, "ov/#", QoS::AtMostOnce).await;
        sub(&mut subscriber, "ov/+/c", QoS::ExactlyOnce).await;
        sub(&mut subscriber, "ov/b/c", QoS::AtLeastOnce).await;
        let mut publisher = open(broker.addr, version, "overlap-pub").await;
        publisher
            .send(publish("ov/b/c", &b"x"[..], QoS::ExactlyOnce, Some(1)))
            .await
            .unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(got.qos, QoS::ExactlyOnce);
        next_is_marker(&mut publisher, &mut subscriber, "ov/marker").await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_4_6_subscription_identifier_from_a_client_is_a_protocol_error() {
    let broker = common::start().await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "subid-pub").await;
    let mut body = string(b"s/t");
    // Property block: Subscription Identifier (0x0B) = 1.
    body.extend_from_slice(&[2, 0x0B, 1]);
    body.extend_from_slice(b"x");
    client.send_bytes(&framed(0x30, &body)).await.unwrap();
    expect_closed(&mut client, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn v5_mqtt_3_2_2_11_publish_above_maximum_qos_is_disconnected_with_0x9b() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 1\n"), None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("maxqos"))
        .await
        .unwrap();
    assert_eq!(connack.properties.maximum_qos, Some(QoS::AtLeastOnce));
    client
        .send(publish("mq/t", &b"x"[..], QoS::ExactlyOnce, Some(1)))
        .await
        .unwrap();
    expect_closed(&mut client, ReasonCode::QOS_NOT_SUPPORTED).await;
}

#[tokio::test]
async fn v311_publish_above_maximum_qos_closes() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 0\n"), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V311, "maxqos311").await;
    client
        .send(publish("mq/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    expect_closed(&mut client, ReasonCode::QOS_NOT_SUPPORTED).await;
}

#[tokio::test]
async fn v5_mqtt_3_2_2_10_subscription_above_maximum_qos_is_accepted_and_downgraded() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 1\n"), None).await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "down-sub").await;
        assert_eq!(
            sub(&mut subscriber, "down/t", QoS::ExactlyOnce).await,
            ReasonCode::GRANTED_QOS_1
        );
        let mut publisher = open(broker.addr, version, "down-pub").await;
        publisher
            .send(publish("down/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
            .await
            .unwrap();
        assert_eq!(
            subscriber.recv_publish(T).await.unwrap().qos,
            QoS::AtLeastOnce
        );
    }
}

#[tokio::test]
async fn topic_deeper_than_max_topic_levels_is_refused() {
    let broker = common::start_with(common::config("[mqtt]\nmax_topic_levels = 3\n"), None).await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "deep-sub").await;
    sub(&mut subscriber, "#", QoS::AtMostOnce).await;
    let mut ok = open(broker.addr, ProtocolVersion::V5, "deep-ok").await;
    ok.send(publish("a/b/c", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(&*subscriber.recv_publish(T).await.unwrap().topic, "a/b/c");
    for version in BOTH {
        let mut client = open(broker.addr, version, "deep-pub").await;
        client
            .send(publish("a/b/c/d", &b"x"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        expect_closed(&mut client, ReasonCode::TOPIC_NAME_INVALID).await;
    }
    // Nothing of the refused messages was routed.
    next_is_marker(&mut ok, &mut subscriber, "m").await;
}

#[tokio::test]
async fn qos_1_and_2_payloads_reach_subscribers_unchanged() {
    let broker = common::start().await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "payload-sub").await;
    sub(&mut subscriber, "pl/#", QoS::ExactlyOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "payload-pub").await;
    let big = Bytes::from((0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    for (i, payload) in [Bytes::new(), Bytes::from_static(b"\0\xff"), big]
        .into_iter()
        .enumerate()
    {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        publisher
            .send(publish("pl/x", payload.clone(), qos, Some(i as u16 + 1)))
            .await
            .unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(got.payload, payload);
    }
}

#[tokio::test]
async fn mqtt_4_7_3_3_longest_topic_name_and_filter_are_handled_unchanged() {
    let broker = common::start().await;
    for version in BOTH {
        // 65,535 bytes (the most a two-byte length prefix can carry) in 66
        // levels, within the default max_topic_levels.
        let topic: String = (0..65_535)
            .map(|i| if i % 1000 == 999 { '/' } else { 'x' })
            .collect();
        let mut subscriber = open(broker.addr, version, "long-sub").await;
        assert_eq!(
            sub(&mut subscriber, &topic, QoS::AtMostOnce).await,
            ReasonCode::GRANTED_QOS_0
        );
        let mut publisher = open(broker.addr, version, "long-pub").await;
        publisher
            .send(publish(&topic, &b"x"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(got.topic.len(), 65_535);
        assert_eq!(&*got.topic, topic.as_str());
    }
}

/// The embedding API refuses what no client could publish: a wildcard topic
/// would otherwise reach every subscriber whose filter "matches" the `#`.
#[tokio::test]
async fn the_handle_drops_a_publish_to_an_invalid_topic_name() {
    let broker = common::start().await;
    let mut sub_all = open(broker.addr, ProtocolVersion::V5, "handle-invalid").await;
    sub(&mut sub_all, "#", QoS::AtMostOnce).await;
    for bad in ["a/#", "+", "", "a\0b"] {
        assert_eq!(
            broker
                .handle
                .publish(bad, Bytes::from_static(b"x"), QoS::AtMostOnce, false),
            0,
            "{bad:?}"
        );
    }
    common::barrier::next_is_broker_marker(&broker, &mut sub_all, "handle/marker").await;
}
