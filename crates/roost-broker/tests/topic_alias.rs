//! Topic aliases through the whole broker (MQTT 5.0 sections 3.3.2.3.4,
//! 3.1.2.11.5, 3.2.2.3.8): the aliases a client sets towards us, the ones we
//! assign towards it, and their lifetime of one network connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use roost_codec::{Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, subscribe, unique_id};

use common::clients::{expect_disconnect, open_v5, open_with};

const T: Duration = Duration::from_secs(5);

/// A 5.0 client that accepts up to `maximum` topic aliases from the broker.
fn accepting_aliases(prefix: &str, maximum: u16) -> Connect {
    let mut c = connect(ProtocolVersion::V5, &unique_id(prefix));
    c.properties.topic_alias_maximum = Some(maximum);
    c
}

async fn sub(client: &mut RawClient, filter: &str) {
    client
        .send(subscribe(1, filter, QoS::AtMostOnce))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
}

/// QoS 0 PUBLISH with a Topic Alias; `topic` may be empty to use the alias.
fn aliased(topic: &str, alias: u16, payload: &'static [u8]) -> Publish {
    let mut p = publish(topic, payload, QoS::AtMostOnce, None);
    p.properties.topic_alias = Some(alias);
    p
}

/// What a client does with the aliases the broker sends: returns the topic.
fn resolve(aliases: &mut HashMap<u16, String>, publish: &Publish) -> String {
    match publish.properties.topic_alias {
        None => publish.topic.to_string(),
        Some(alias) if publish.topic.is_empty() => aliases
            .get(&alias)
            .cloned()
            .unwrap_or_else(|| panic!("alias {alias} used before it was set")),
        Some(alias) => {
            aliases.insert(alias, publish.topic.to_string());
            publish.topic.to_string()
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_2_12_every_alias_up_to_our_maximum_is_accepted_and_can_be_rebound() {
    let config = common::config("[mqtt]\ntopic_alias_maximum = 3\n");
    let broker = common::start_with(config, None).await;
    let mut subscriber = open_v5(broker.addr, "alias-in-sub").await;
    sub(&mut subscriber, "ai/#").await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("alias-in"))
        .await
        .unwrap();
    assert_eq!(connack.properties.topic_alias_maximum, Some(3));
    for alias in 1..=3u16 {
        let topic = format!("ai/{alias}");
        client.send(aliased(&topic, alias, b"set")).await.unwrap();
        client.send(aliased("", alias, b"use")).await.unwrap();
    }
    client.send(aliased("ai/rebound", 2, b"set")).await.unwrap();
    client.send(aliased("", 2, b"use")).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let got = subscriber.recv_publish(T).await.unwrap();
        // Subscribers get the real topic, never the publisher's alias.
        assert_eq!(got.properties.topic_alias, None);
        seen.push(format!(
            "{} {}",
            got.topic,
            String::from_utf8_lossy(&got.payload)
        ));
    }
    let expected = [
        "ai/1 set",
        "ai/1 use",
        "ai/2 set",
        "ai/2 use",
        "ai/3 set",
        "ai/3 use",
        "ai/rebound set",
        "ai/rebound use",
    ];
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn v5_mqtt_3_3_2_8_topic_alias_0_is_0x94() {
    let broker = common::start().await;
    let mut client = open_v5(broker.addr, "alias0").await;
    // Topic "a", Property Length 3, Topic Alias (0x23) = 0, payload "x".
    let packet = [0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00, b'x'];
    client.send_bytes(&packet).await.unwrap();
    expect_disconnect(&mut client, ReasonCode::TOPIC_ALIAS_INVALID).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_9_v5_mqtt_3_2_2_17_alias_above_our_maximum_is_0x94() {
    let config = common::config("[mqtt]\ntopic_alias_maximum = 3\n");
    let broker = common::start_with(config, None).await;
    let mut client = open_v5(broker.addr, "aliasmax").await;
    client.send(aliased("a/b", 4, b"x")).await.unwrap();
    expect_disconnect(&mut client, ReasonCode::TOPIC_ALIAS_INVALID).await;
}

#[tokio::test]
async fn v5_mqtt_3_2_2_18_any_alias_when_our_maximum_is_0_is_0x94() {
    let config = common::config("[mqtt]\ntopic_alias_maximum = 0\n");
    let broker = common::start_with(config, None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("aliasnone"))
        .await
        .unwrap();
    assert_eq!(connack.properties.topic_alias_maximum, None);
    client.send(aliased("a/b", 1, b"x")).await.unwrap();
    expect_disconnect(&mut client, ReasonCode::TOPIC_ALIAS_INVALID).await;
}

#[tokio::test]
async fn alias_used_before_it_was_set_is_a_protocol_error() {
    let broker = common::start().await;
    let mut client = open_v5(broker.addr, "aliasunset").await;
    client.send(aliased("", 1, b"x")).await.unwrap();
    expect_disconnect(&mut client, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_7_inbound_aliases_are_not_carried_to_the_next_connection() {
    let broker = common::start().await;
    let id = unique_id("aliaslife");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    let mut client = open_with(broker.addr, c.clone()).await;
    client.send(aliased("al/t", 1, b"set")).await.unwrap();
    client.send(aliased("", 1, b"use")).await.unwrap();
    client.send(Packet::PingReq).await.unwrap();
    assert_eq!(client.recv(T).await.unwrap(), Packet::PingResp);
    client
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    client.expect_closed(T).await.unwrap();

    // Same session, new connection: alias 1 means nothing any more.
    let (mut client, connack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert!(connack.session_present);
    client.send(aliased("", 1, b"stale")).await.unwrap();
    expect_disconnect(&mut client, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_7_outbound_aliases_start_afresh_on_the_next_connection() {
    let broker = common::start().await;
    let id = unique_id("aliasout-life");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    c.properties.topic_alias_maximum = Some(5);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    sub(&mut subscriber, "ao/#").await;
    for _ in 0..2 {
        broker
            .handle
            .publish("ao/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    }
    let first = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(
        (&*first.topic, first.properties.topic_alias),
        ("ao/t", Some(1))
    );
    let second = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(
        (&*second.topic, second.properties.topic_alias),
        ("", Some(1))
    );
    subscriber
        .send(Packet::Disconnect(Default::default()))
        .await
        .unwrap();
    subscriber.expect_closed(T).await.unwrap();

    let (mut subscriber, connack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert!(connack.session_present);
    broker
        .handle
        .publish("ao/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    // The new connection has no alias for the topic yet: the full name comes again.
    let again = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*again.topic, "ao/t");
}

#[tokio::test]
async fn v5_mqtt_3_3_2_11_v5_mqtt_3_1_2_26_broker_never_sends_an_alias_above_the_clients_maximum() {
    let broker = common::start().await;
    let mut subscriber = open_with(broker.addr, accepting_aliases("aliasout", 2)).await;
    sub(&mut subscriber, "ao/#").await;
    let topics = ["ao/1", "ao/2", "ao/3", "ao/4"];
    for _ in 0..3 {
        for topic in topics {
            broker
                .handle
                .publish(topic, Bytes::from_static(b"x"), QoS::AtMostOnce, false);
        }
    }
    let mut aliases = HashMap::new();
    let mut used = 0;
    for round in 0..3 {
        for topic in topics {
            let got = subscriber.recv_publish(T).await.unwrap();
            if let Some(alias) = got.properties.topic_alias {
                assert!(
                    (1..=2).contains(&alias),
                    "alias {alias} above the client's maximum"
                );
                used += 1;
            }
            assert_eq!(resolve(&mut aliases, &got), topic, "round {round}");
        }
    }
    assert!(used > 0, "aliases are used when the client allows them");
    assert!(aliases.len() <= 2);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_27_no_aliases_when_the_client_sets_no_topic_alias_maximum() {
    let broker = common::start().await;
    for maximum in [None, Some(0)] {
        let mut c = connect(ProtocolVersion::V5, &unique_id("noalias"));
        c.properties.topic_alias_maximum = maximum;
        let mut subscriber = open_with(broker.addr, c).await;
        sub(&mut subscriber, "na/#").await;
        for _ in 0..3 {
            broker
                .handle
                .publish("na/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
            let got = subscriber.recv_publish(T).await.unwrap();
            assert_eq!((&*got.topic, got.properties.topic_alias), ("na/t", None));
        }
    }
}

#[tokio::test]
async fn outbound_aliases_can_be_turned_off() {
    let config = common::config("[mqtt]\noutbound_topic_aliases = false\n");
    let broker = common::start_with(config, None).await;
    let mut subscriber = open_with(broker.addr, accepting_aliases("aliasoff", 10)).await;
    sub(&mut subscriber, "of/#").await;
    for _ in 0..3 {
        broker
            .handle
            .publish("of/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!((&*got.topic, got.properties.topic_alias), ("of/t", None));
    }
}

#[tokio::test]
async fn aliased_qos_1_resent_on_resume_carries_its_full_topic() {
    let broker = common::start().await;
    let id = unique_id("aliasresend");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    c.properties.topic_alias_maximum = Some(5);
    let mut subscriber = open_with(broker.addr, c.clone()).await;
    subscriber
        .send(subscribe(1, "ar/#", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(
        subscriber.recv(T).await.unwrap(),
        Packet::SubAck(_)
    ));
    broker
        .handle
        .publish("ar/t", Bytes::from_static(b"1"), QoS::AtLeastOnce, false);
    broker
        .handle
        .publish("ar/t", Bytes::from_static(b"2"), QoS::AtLeastOnce, false);
    subscriber.recv_publish(T).await.unwrap();
    let second = subscriber.recv_publish(T).await.unwrap();
    assert_eq!(&*second.topic, "", "sent with the alias only");
    subscriber.drop_connection().await.unwrap();

    let (mut subscriber, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    let mut aliases = HashMap::new();
    for payload in [b"1", b"2"] {
        let again = subscriber.recv_publish(T).await.unwrap();
        assert!(again.dup);
        assert_eq!(resolve(&mut aliases, &again), "ar/t");
        assert_eq!(&again.payload[..], payload);
    }
}
