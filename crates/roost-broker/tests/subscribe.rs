//! SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK through the whole broker
//! (MQTT 5.0 and 3.1.1 sections 3.8-3.11) and topic filters at broker level
//! (4.7): options, per-filter reason codes, replacement, configured refusals,
//! wildcards and `$` topics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    Packet, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{
    connect, pid, puback, publish, pubrec, subscribe, subscribe_with, unique_id, unsubscribe,
};

use common::barrier::{assert_quiet, next_is_marker};
use common::clients::{expect_closed, open, open_with, sub};
use common::raw::framed;

const T: Duration = Duration::from_secs(5);
const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];

fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

/// SUBSCRIBE with several filters.
fn subscribe_many(packet_id: u16, filters: &[(&str, QoS)]) -> Subscribe {
    Subscribe {
        packet_id: pid(packet_id),
        filters: filters
            .iter()
            .map(|(f, q)| (ByteString::from(*f), options(*q)))
            .collect(),
        properties: SubscribeProperties::default(),
    }
}

async fn suback(client: &mut RawClient) -> SubAck {
    match client.recv(T).await.unwrap() {
        Packet::SubAck(ack) => ack,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

async fn unsuback(client: &mut RawClient) -> UnsubAck {
    match client.recv(T).await.unwrap() {
        Packet::UnsubAck(ack) => ack,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Body of a SUBSCRIBE (id 1) with one raw filter and options byte.
fn raw_subscribe_body(version: ProtocolVersion, filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    if version.is_v5() {
        body.push(0);
    }
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter);
    body.push(options);
    body
}

/// Body of an UNSUBSCRIBE (id 1) with raw filters.
fn raw_unsubscribe_body(version: ProtocolVersion, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if version.is_v5() {
        body.push(0);
    }
    for filter in filters {
        body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        body.extend_from_slice(filter);
    }
    body
}

// ------------------------------------------------------------- SUBSCRIBE

#[tokio::test]
async fn mqtt_3_8_1_1_subscribe_with_wrong_reserved_flags_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "subflags").await;
        let body = raw_subscribe_body(version, b"a/b", 0);
        client.send_bytes(&framed(0x80, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_8_3_1_topic_filter_that_is_not_utf8_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "subutf8").await;
        let body = raw_subscribe_body(version, &[b'a', 0xFF], 0);
        client.send_bytes(&framed(0x82, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_8_3_2_v311_mqtt_3_8_3_3_subscribe_without_filters_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "subempty").await;
        let body: &[u8] = if version.is_v5() { &[0, 1, 0] } else { &[0, 1] };
        client.send_bytes(&framed(0x82, body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_8_3_5_v311_mqtt_3_8_3_4_reserved_option_bits_or_qos_3_close() {
    let broker = common::start().await;
    // 5.0: bits 6-7 are reserved. 3.1.1: bits 2-7 are reserved, and QoS 3 is invalid.
    let cases = [
        (ProtocolVersion::V5, 0b0100_0001),
        (ProtocolVersion::V5, 0b1000_0000),
        (ProtocolVersion::V311, 0b0000_0100),
        (ProtocolVersion::V311, 0b0000_0011),
    ];
    for (version, byte) in cases {
        let mut client = open(broker.addr, version, "subreserved").await;
        let body = raw_subscribe_body(version, b"a/b", byte);
        client.send_bytes(&framed(0x82, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn v311_mqtt_3_8_3_2_wildcard_filters_are_refused_when_wildcards_are_disabled() {
    let config = common::config("[mqtt]\nwildcard_subscription_available = false\n");
    let broker = common::start_with(config, None).await;
    let mut client = open(broker.addr, ProtocolVersion::V311, "nowild311").await;
    client
        .send(subscribe_many(
            3,
            &[
                ("a/+", QoS::AtMostOnce),
                ("a/b", QoS::AtLeastOnce),
                ("#", QoS::AtMostOnce),
            ],
        ))
        .await
        .unwrap();
    let codes = suback(&mut client).await.reason_codes;
    assert_eq!(
        codes,
        vec![
            ReasonCode(0x80),
            ReasonCode::GRANTED_QOS_1,
            ReasonCode(0x80)
        ]
    );
}

#[tokio::test]
async fn v5_wildcard_filters_are_refused_with_0xa2_when_wildcards_are_disabled() {
    let config = common::config("[mqtt]\nwildcard_subscription_available = false\n");
    let broker = common::start_with(config, None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("nowild"))
        .await
        .unwrap();
    assert_eq!(
        connack.properties.wildcard_subscription_available,
        Some(false)
    );
    client
        .send(subscribe_many(
            3,
            &[
                ("a/+", QoS::AtMostOnce),
                ("a/b", QoS::AtLeastOnce),
                ("#", QoS::AtMostOnce),
            ],
        ))
        .await
        .unwrap();
    let codes = suback(&mut client).await.reason_codes;
    let refused = ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED;
    assert_eq!(codes, vec![refused, ReasonCode::GRANTED_QOS_1, refused]);
    assert_eq!(broker.handle.stats().subscriptions, 1);
}

#[tokio::test]
async fn v5_subscription_identifier_is_refused_with_0xa1_when_disabled() {
    let config = common::config("[mqtt]\nsubscription_identifiers_available = false\n");
    let broker = common::start_with(config, None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("nosubid"))
        .await
        .unwrap();
    assert_eq!(
        connack.properties.subscription_identifiers_available,
        Some(false)
    );
    let mut request = subscribe(2, "a/b", QoS::AtLeastOnce);
    request.properties.subscription_identifier = Some(7);
    client.send(request).await.unwrap();
    let codes = suback(&mut client).await.reason_codes;
    assert_eq!(
        codes,
        vec![ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED]
    );
    assert_eq!(broker.handle.stats().subscriptions, 0);
    // Without the identifier the same filter is granted.
    assert_eq!(
        sub(&mut client, "a/b", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
}

#[tokio::test]
async fn v5_filter_deeper_than_max_topic_levels_is_refused_with_0x8f() {
    let broker = common::start_with(common::config("[mqtt]\nmax_topic_levels = 3\n"), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "deepfilter").await;
    client
        .send(subscribe_many(
            4,
            &[
                ("a/b/c/d", QoS::AtMostOnce),
                ("a/b/#", QoS::AtMostOnce),
                ("a/+/c/#", QoS::AtMostOnce),
            ],
        ))
        .await
        .unwrap();
    let codes = suback(&mut client).await.reason_codes;
    let invalid = ReasonCode::TOPIC_FILTER_INVALID;
    assert_eq!(codes, vec![invalid, ReasonCode::GRANTED_QOS_0, invalid]);
}

#[tokio::test]
async fn v5_subscriptions_beyond_max_subscriptions_are_refused_with_0x97() {
    let broker = common::start_with(common::config("[mqtt]\nmax_subscriptions = 2\n"), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "quota").await;
    assert_eq!(
        sub(&mut client, "q/1", QoS::AtMostOnce).await,
        ReasonCode::GRANTED_QOS_0
    );
    assert_eq!(
        sub(&mut client, "q/2", QoS::AtMostOnce).await,
        ReasonCode::GRANTED_QOS_0
    );
    // A third filter, in a later packet, is over the quota...
    assert_eq!(
        sub(&mut client, "q/3", QoS::AtMostOnce).await,
        ReasonCode::QUOTA_EXCEEDED
    );
    // ...but replacing an existing one takes no new quota.
    assert_eq!(
        sub(&mut client, "q/2", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
    assert_eq!(broker.handle.stats().subscriptions, 2);
    // Unsubscribing frees a place.
    client.send(unsubscribe(5, "q/1")).await.unwrap();
    unsuback(&mut client).await;
    assert_eq!(
        sub(&mut client, "q/3", QoS::AtMostOnce).await,
        ReasonCode::GRANTED_QOS_0
    );
}

#[tokio::test]
async fn v5_mqtt_3_8_3_3_no_local_skips_the_subscribers_own_messages() {
    let broker = common::start().await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "nolocal").await;
    let no_local = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        ..SubscriptionOptions::default()
    };
    client
        .send(subscribe_with(1, "nl/#", no_local))
        .await
        .unwrap();
    suback(&mut client).await;
    let mut other = open(broker.addr, ProtocolVersion::V5, "nolocal-other").await;
    assert_eq!(
        sub(&mut other, "nl/#", QoS::AtMostOnce).await,
        ReasonCode::GRANTED_QOS_0
    );

    client
        .send(publish("nl/own", &b"own"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    // Other subscribers still get it.
    assert_eq!(&other.recv_publish(T).await.unwrap().payload[..], b"own");
    // The publisher does not: the next message it sees is someone else's.
    next_is_marker(&mut other, &mut client, "nl/marker").await;
}

#[tokio::test]
async fn v5_mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = common::start().await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "nolocalshared").await;
    let no_local = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::default()
    };
    client
        .send(subscribe_with(1, "$share/g/t", no_local))
        .await
        .unwrap();
    expect_closed(&mut client, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn mqtt_3_8_4_1_mqtt_3_8_4_2_v5_mqtt_2_2_1_6_v311_mqtt_2_3_1_7_suback_carries_the_subscribe_packet_identifier()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "subackid").await;
        for id in [1u16, 4242, u16::MAX] {
            client
                .send(subscribe(id, "id/t", QoS::AtMostOnce))
                .await
                .unwrap();
            assert_eq!(suback(&mut client).await.packet_id, pid(id));
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_8_4_3_v311_mqtt_3_8_4_3_same_filter_replaces_the_subscription() {
    // One broker per version: the subscription count is broker-wide.
    for version in BOTH {
        let broker = common::start().await;
        let before = broker.handle.stats().subscriptions;
        let mut subscriber = open(broker.addr, version, "replace").await;
        broker
            .handle
            .publish("rp/t", Bytes::from_static(b"kept"), QoS::AtLeastOnce, true);
        assert_eq!(
            sub(&mut subscriber, "rp/t", QoS::ExactlyOnce).await,
            ReasonCode::GRANTED_QOS_2
        );
        assert!(subscriber.recv_publish(T).await.unwrap().retain);
        assert_eq!(
            sub(&mut subscriber, "rp/t", QoS::AtMostOnce).await,
            ReasonCode::GRANTED_QOS_0
        );
        // 3.1.1: the retained message is re-sent on the replacing subscription.
        let again = subscriber.recv_publish(T).await.unwrap();
        assert_eq!((&again.payload[..], again.retain), (&b"kept"[..], true));
        assert_eq!(
            broker.handle.stats().subscriptions,
            before + 1,
            "one subscription, not two"
        );

        let mut publisher = open(broker.addr, version, "replace-pub").await;
        publisher
            .send(publish("rp/t", &b"live"[..], QoS::ExactlyOnce, Some(1)))
            .await
            .unwrap();
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!((&got.payload[..], got.qos), (&b"live"[..], QoS::AtMostOnce));
        next_is_marker(&mut publisher, &mut subscriber, "rp/t").await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_8_4_4_replacing_with_retain_handling_0_resends_retained_and_loses_nothing() {
    let broker = common::start().await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "rh0").await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "rh0-pub").await;
    publisher
        .send(publish("r0/t", &b"retained"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let mut retained = publish("r0/t", &b"retained"[..], QoS::AtLeastOnce, Some(2));
    retained.retain = true;
    publisher.send(retained).await.unwrap();
    publisher.recv(T).await.unwrap();
    publisher.recv(T).await.unwrap();

    assert_eq!(
        sub(&mut subscriber, "r0/#", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
    assert!(subscriber.recv_publish(T).await.unwrap().retain);
    publisher
        .send(publish("r0/t", &b"before"[..], QoS::AtLeastOnce, Some(3)))
        .await
        .unwrap();
    assert_eq!(
        &subscriber.recv_publish(T).await.unwrap().payload[..],
        b"before"
    );

    subscriber
        .send(subscribe(9, "r0/#", QoS::AtLeastOnce))
        .await
        .unwrap();
    publisher
        .send(publish("r0/t", &b"during"[..], QoS::AtLeastOnce, Some(4)))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut suback_seen = false;
    while seen.len() < 2 || !suback_seen {
        match subscriber.recv(T).await.unwrap() {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, pid(9));
                suback_seen = true;
            }
            Packet::Publish(p) => seen.push((p.payload, p.retain)),
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Bytes::from_static(b"during"), false),
            (Bytes::from_static(b"retained"), true)
        ]
    );
    next_is_marker(&mut publisher, &mut subscriber, "r0/marker").await;
}

#[tokio::test]
async fn v5_mqtt_3_8_4_5_v311_mqtt_3_8_4_4_several_filters_are_handled_in_sequence_with_one_suback()
{
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "multi").await;
        let request = subscribe_many(
            7,
            &[
                ("mu/a", QoS::AtMostOnce),
                ("mu/b/#", QoS::AtLeastOnce),
                ("mu/a", QoS::ExactlyOnce),
            ],
        );
        subscriber.send(request).await.unwrap();
        let ack = suback(&mut subscriber).await;
        assert_eq!(ack.packet_id, pid(7));
        let codes = vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_2,
        ];
        assert_eq!(ack.reason_codes, codes);
        // The later "mu/a" replaced the earlier one.
        let mut publisher = open(broker.addr, version, "multi-pub").await;
        publisher
            .send(publish("mu/a", &b"x"[..], QoS::ExactlyOnce, Some(1)))
            .await
            .unwrap();
        assert_eq!(
            subscriber.recv_publish(T).await.unwrap().qos,
            QoS::ExactlyOnce
        );
        publisher
            .send(publish("mu/b/c", &b"y"[..], QoS::ExactlyOnce, Some(2)))
            .await
            .unwrap();
        assert_eq!(
            subscriber.recv_publish(T).await.unwrap().qos,
            QoS::AtLeastOnce
        );
    }
}

#[tokio::test]
async fn v5_mqtt_3_8_4_6_v5_mqtt_3_8_4_7_v5_mqtt_3_9_3_1_v5_mqtt_3_9_3_2_one_code_per_filter_in_order()
 {
    let config = "[mqtt]\nmax_topic_levels = 2\nshared_subscription_available = false\n";
    let broker = common::start_with(common::config(config), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "codes").await;
    let request = subscribe_many(
        2,
        &[
            ("ok/1", QoS::AtLeastOnce),
            ("a/b/c", QoS::ExactlyOnce),
            ("ok/2", QoS::ExactlyOnce),
            ("$share/g/x", QoS::AtMostOnce),
            ("ok/3", QoS::AtMostOnce),
        ],
    );
    client.send(request).await.unwrap();
    let codes = suback(&mut client).await.reason_codes;
    let expected = vec![
        ReasonCode::GRANTED_QOS_1,
        ReasonCode::TOPIC_FILTER_INVALID,
        ReasonCode::GRANTED_QOS_2,
        ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
        ReasonCode::GRANTED_QOS_0,
    ];
    assert_eq!(codes, expected);
}

#[tokio::test]
async fn v311_mqtt_3_8_4_5_v311_mqtt_3_9_3_1_v311_mqtt_3_9_3_2_one_return_code_per_filter_in_order()
{
    let config = "[mqtt]\nmax_topic_levels = 2\nshared_subscription_available = false\n";
    let broker = common::start_with(common::config(config), None).await;
    let mut client = open(broker.addr, ProtocolVersion::V311, "codes311").await;
    let request = subscribe_many(
        2,
        &[
            ("ok/1", QoS::AtLeastOnce),
            ("a/b/c", QoS::ExactlyOnce),
            ("ok/2", QoS::ExactlyOnce),
            ("$share/g/x", QoS::AtMostOnce),
            ("ok/3", QoS::AtMostOnce),
        ],
    );
    client.send(request).await.unwrap();
    let codes = suback(&mut client).await.reason_codes;
    // Failures are 0x80, the only failure code 3.1.1 has.
    let failure = ReasonCode(0x80);
    let expected = vec![
        ReasonCode::GRANTED_QOS_1,
        failure,
        ReasonCode::GRANTED_QOS_2,
        failure,
        ReasonCode::GRANTED_QOS_0,
    ];
    assert_eq!(codes, expected);
}

#[tokio::test]
async fn v5_mqtt_3_8_4_8_v311_mqtt_3_8_4_6_delivered_qos_is_the_minimum_of_published_and_granted() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "minqos").await;
        sub(&mut subscriber, "mq/t", QoS::AtLeastOnce).await;
        let mut publisher = open(broker.addr, version, "minqos-pub").await;
        let published = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
        for (i, qos) in published.into_iter().enumerate() {
            let id = (qos != QoS::AtMostOnce).then_some(i as u16 + 1);
            publisher
                .send(publish("mq/t", &b"x"[..], qos, id))
                .await
                .unwrap();
            let got = subscriber.recv_publish(T).await.unwrap();
            assert_eq!(got.qos, qos.min(QoS::AtLeastOnce));
            if let Some(id) = got.packet_id {
                subscriber.send(puback(id.get())).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_9_2_1_v5_mqtt_3_9_2_2_suback_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start_with(common::config("[mqtt]\nmax_topic_levels = 2\n"), None).await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("tightsub"));
    c.properties.maximum_packet_size = Some(32);
    let mut client = open_with(broker.addr, c).await;
    // A refusal is where a Reason String would go.
    client
        .send(subscribe(1, "a/b/c", QoS::AtMostOnce))
        .await
        .unwrap();
    let ack = suback(&mut client).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::TOPIC_FILTER_INVALID]);
    assert!(ack.properties.is_empty(), "{ack:?}");
}

// -------------------------------------------------------- topic filters

#[tokio::test]
async fn v5_mqtt_4_7_1_1_v5_mqtt_4_7_1_2_v311_mqtt_4_7_1_2_v311_mqtt_4_7_1_3_misplaced_wildcards_close()
 {
    let broker = common::start().await;
    for version in BOTH {
        for filter in [&b"a/#/b"[..], b"a#", b"a/b#", b"a+", b"a/+b/c", b"+a"] {
            let mut client = open(broker.addr, version, "badwild").await;
            let body = raw_subscribe_body(version, filter, 0);
            client.send_bytes(&framed(0x82, &body)).await.unwrap();
            expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
        }
    }
}

#[tokio::test]
async fn mqtt_4_7_3_1_empty_topic_filter_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "emptyfilter").await;
        let body = raw_subscribe_body(version, b"", 0);
        client.send_bytes(&framed(0x82, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_3_2_null_character_in_a_topic_filter_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "nullfilter").await;
        let body = raw_subscribe_body(version, b"a/\0", 0);
        client.send_bytes(&framed(0x82, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_2_1_wildcards_at_the_first_level_do_not_match_dollar_topics() {
    let broker = common::start().await;
    for version in BOTH {
        let mut wild = open(broker.addr, version, "dollar-wild").await;
        sub(&mut wild, "#", QoS::AtMostOnce).await;
        sub(&mut wild, "+/x", QoS::AtMostOnce).await;
        sub(&mut wild, "+/+", QoS::AtMostOnce).await;
        let mut explicit = open(broker.addr, version, "dollar-explicit").await;
        sub(&mut explicit, "$app/#", QoS::AtMostOnce).await;
        sub(&mut explicit, "$app/+", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "dollar-pub").await;
        publisher
            .send(publish("$app/x", &b"d"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        let got = explicit.recv_publish(T).await.unwrap();
        assert_eq!(&*got.topic, "$app/x");
        // The wildcard subscriber gets the marker, which it does match, first.
        next_is_marker(&mut publisher, &mut wild, "plain/x").await;
    }
}

// ----------------------------------------------------------- UNSUBSCRIBE

#[tokio::test]
async fn mqtt_3_10_1_1_unsubscribe_with_wrong_reserved_flags_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "unsubflags").await;
        let body = raw_unsubscribe_body(version, &[b"a/b"]);
        client.send_bytes(&framed(0xA0, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_10_3_1_unsubscribe_filter_that_is_not_utf8_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "unsubutf8").await;
        let body = raw_unsubscribe_body(version, &[&[0xC0, 0x80]]);
        client.send_bytes(&framed(0xA2, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_10_3_2_unsubscribe_without_filters_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "unsubempty").await;
        let body = raw_unsubscribe_body(version, &[]);
        client.send_bytes(&framed(0xA2, &body)).await.unwrap();
        expect_closed(&mut client, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn mqtt_3_10_4_1_filters_are_compared_character_by_character() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "unsubexact").await;
        sub(&mut subscriber, "ux/+", QoS::AtMostOnce).await;
        sub(&mut subscriber, "ux/b", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "unsubexact-pub").await;
        // "ux/b" removes only the identical filter: "ux/+" still matches.
        subscriber.send(unsubscribe(2, "ux/b")).await.unwrap();
        let ack = unsuback(&mut subscriber).await;
        if version.is_v5() {
            assert_eq!(ack.reason_codes, vec![ReasonCode::SUCCESS]);
        }
        publisher
            .send(publish("ux/b", &b"1"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        assert_eq!(&subscriber.recv_publish(T).await.unwrap().payload[..], b"1");
        // "ux/#" matches "ux/b" as a topic, but no such filter was subscribed.
        subscriber.send(unsubscribe(3, "ux/#")).await.unwrap();
        let ack = unsuback(&mut subscriber).await;
        if version.is_v5() {
            assert_eq!(ack.reason_codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        }
        subscriber.send(unsubscribe(4, "ux/+")).await.unwrap();
        unsuback(&mut subscriber).await;
        publisher
            .send(publish("ux/b", &b"2"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        sub(&mut subscriber, "ux/marker", QoS::AtMostOnce).await;
        next_is_marker(&mut publisher, &mut subscriber, "ux/marker").await;
    }
}

#[tokio::test]
async fn mqtt_3_10_4_2_no_new_messages_after_unsubscribe() {
    // One broker per version: the subscription count is broker-wide.
    for version in BOTH {
        let broker = common::start().await;
        let mut subscriber = open(broker.addr, version, "unsubstop").await;
        sub(&mut subscriber, "us/#", QoS::AtLeastOnce).await;
        sub(&mut subscriber, "marker", QoS::AtMostOnce).await;
        let before = broker.handle.stats().subscriptions;
        subscriber.send(unsubscribe(2, "us/#")).await.unwrap();
        unsuback(&mut subscriber).await;
        assert_eq!(broker.handle.stats().subscriptions, before - 1);
        let mut publisher = open(broker.addr, version, "unsubstop-pub").await;
        publisher
            .send(publish("us/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
            .await
            .unwrap();
        next_is_marker(&mut publisher, &mut subscriber, "marker").await;
    }
}

#[tokio::test]
async fn mqtt_3_10_4_3_deliveries_already_started_complete_after_unsubscribe() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "unsubinflight").await;
        sub(&mut subscriber, "ui/#", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "unsubinflight-pub").await;
        publisher
            .send(publish("ui/1", &b"1"[..], QoS::AtLeastOnce, Some(1)))
            .await
            .unwrap();
        publisher
            .send(publish("ui/2", &b"2"[..], QoS::ExactlyOnce, Some(2)))
            .await
            .unwrap();
        let q1 = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
        let q2 = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
        subscriber.send(unsubscribe(3, "ui/#")).await.unwrap();
        unsuback(&mut subscriber).await;
        subscriber.send(puback(q1.get())).await.unwrap();
        subscriber.send(pubrec(q2.get())).await.unwrap();
        let rel = subscriber.recv(T).await.unwrap();
        assert!(
            matches!(&rel, Packet::PubRel(r) if r.packet_id == q2),
            "{rel:?}"
        );
        subscriber
            .send(Packet::PubComp(roost_codec::PubResponse::success(q2)))
            .await
            .unwrap();
        assert_quiet(&mut subscriber).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_10_4_4_v5_mqtt_3_10_4_5_v5_mqtt_2_2_1_6_v311_mqtt_3_10_4_4_v311_mqtt_3_10_4_5_v311_mqtt_2_3_1_7_unsuback_carries_the_identifier_even_when_nothing_was_removed()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "unsuback").await;
        for id in [1u16, 777, u16::MAX] {
            client
                .send(unsubscribe(id, "never/subscribed"))
                .await
                .unwrap();
            let ack = unsuback(&mut client).await;
            assert_eq!(ack.packet_id, pid(id));
            if version.is_v5() {
                assert_eq!(ack.reason_codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
            }
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_10_4_6_v5_mqtt_3_11_3_1_v5_mqtt_3_11_3_2_v311_mqtt_3_10_4_6_several_filters_one_unsuback_codes_in_order()
 {
    // One broker per version: the subscription count is broker-wide.
    for version in BOTH {
        let broker = common::start().await;
        let mut client = open(broker.addr, version, "unsubmany").await;
        sub(&mut client, "um/1", QoS::AtMostOnce).await;
        sub(&mut client, "$share/g/um/2", QoS::AtMostOnce).await;
        let before = broker.handle.stats().subscriptions;
        let request = Unsubscribe {
            packet_id: pid(8),
            filters: ["um/1", "um/none", "$share/g/um/2", "um/1"]
                .map(ByteString::from)
                .to_vec(),
            user_properties: Vec::new(),
        };
        client.send(request).await.unwrap();
        let ack = unsuback(&mut client).await;
        assert_eq!(ack.packet_id, pid(8));
        if version.is_v5() {
            let gone = ReasonCode::NO_SUBSCRIPTION_EXISTED;
            assert_eq!(
                ack.reason_codes,
                vec![ReasonCode::SUCCESS, gone, ReasonCode::SUCCESS, gone]
            );
        } else {
            assert!(ack.reason_codes.is_empty());
        }
        assert_eq!(broker.handle.stats().subscriptions, before - 2);
        assert_quiet(&mut client).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_11_2_1_v5_mqtt_3_11_2_2_unsuback_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start().await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("tightunsub"));
    c.properties.maximum_packet_size = Some(32);
    let mut client = open_with(broker.addr, c).await;
    client.send(unsubscribe(1, "not/there")).await.unwrap();
    let ack = unsuback(&mut client).await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
    assert!(ack.properties.is_empty(), "{ack:?}");
}

#[tokio::test]
async fn v5_retain_handling_options_are_kept_per_subscription() {
    // Retain Handling 2 on one filter does not affect another filter's retained delivery.
    let broker = common::start().await;
    broker
        .handle
        .publish("rk/a", Bytes::from_static(b"a"), QoS::AtMostOnce, true);
    let mut client = open(broker.addr, ProtocolVersion::V5, "rhmix").await;
    let never = SubscriptionOptions {
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::default()
    };
    let request = Subscribe {
        packet_id: pid(3),
        filters: vec![
            (ByteString::from("rk/+"), never),
            (ByteString::from("rk/a"), options(QoS::AtMostOnce)),
        ],
        properties: SubscribeProperties::default(),
    };
    client.send(request).await.unwrap();
    suback(&mut client).await;
    let got = client.recv_publish(T).await.unwrap();
    assert_eq!((&*got.topic, got.retain), ("rk/a", true));
    assert_quiet(&mut client).await;
}
