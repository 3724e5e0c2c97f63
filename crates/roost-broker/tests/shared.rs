//! Shared subscriptions through the whole broker (MQTT 5.0 section 4.8.2):
//! share-name syntax, one delivery per group, granted QoS, retained
//! messages, members that leave or come back, unsubscribing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, puback, pubrec, subscribe, unique_id, unsubscribe};

use common::barrier::{assert_quiet, next_is_broker_marker};
use common::clients::{drop_and_wait, open, sub};

const T: Duration = Duration::from_secs(5);

/// A 5.0 CONNECT whose session outlives the connection.
fn persistent(client_id: &str) -> Connect {
    let mut c = connect(ProtocolVersion::V5, client_id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    c
}

#[tokio::test]
async fn v5_mqtt_4_8_2_1_v5_mqtt_4_8_2_2_invalid_share_names_close_the_connection() {
    let broker = common::start().await;
    for filter in [
        "$share//t",
        "$share/g",
        "$share/g/",
        "$share/a+b/t",
        "$share/a#/t",
        "$share/",
    ] {
        let mut client = open(broker.addr, ProtocolVersion::V5, "badshare").await;
        let mut body = vec![0, 1, 0];
        body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        body.extend_from_slice(filter.as_bytes());
        body.push(0);
        let mut packet = vec![0x82, body.len() as u8];
        packet.extend_from_slice(&body);
        client.send_bytes(&packet).await.unwrap();
        let disconnect = client.expect_closed(T).await.unwrap();
        assert_eq!(
            disconnect.map(|d| d.reason_code),
            Some(ReasonCode::MALFORMED_PACKET),
            "filter {filter}"
        );
    }
}

#[tokio::test]
async fn each_group_gets_one_copy_of_each_message() {
    let broker = common::start().await;
    let mut group_g = Vec::new();
    for (i, version) in [
        ProtocolVersion::V5,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ]
    .into_iter()
    .enumerate()
    {
        let mut member = open(broker.addr, version, "g-member").await;
        sub(&mut member, "$share/g/sh/#", QoS::AtLeastOnce).await;
        sub(&mut member, &format!("marker/g{i}"), QoS::AtMostOnce).await;
        group_g.push(member);
    }
    let mut group_h = open(broker.addr, ProtocolVersion::V5, "h-member").await;
    sub(&mut group_h, "$share/h/sh/+", QoS::AtMostOnce).await;
    sub(&mut group_h, "marker/h", QoS::AtMostOnce).await;

    for i in 0..9u8 {
        broker
            .handle
            .publish("sh/t", Bytes::from(vec![i]), QoS::AtLeastOnce, false);
    }
    let mut seen_g = Vec::new();
    for (i, member) in group_g.iter_mut().enumerate() {
        // Round robin (the default strategy) spreads the nine messages evenly.
        for _ in 0..3 {
            let got = member.recv_publish(T).await.unwrap();
            member
                .send(puback(got.packet_id.unwrap().get()))
                .await
                .unwrap();
            seen_g.push(got.payload[0]);
        }
        next_is_broker_marker(&broker, member, &format!("marker/g{i}")).await;
    }
    seen_g.sort_unstable();
    assert_eq!(
        seen_g,
        (0..9).collect::<Vec<u8>>(),
        "every message once in group g"
    );
    for i in 0..9u8 {
        assert_eq!(&group_h.recv_publish(T).await.unwrap().payload[..], &[i]);
    }
    next_is_broker_marker(&broker, &mut group_h, "marker/h").await;
}

#[tokio::test]
async fn v5_mqtt_4_8_2_3_the_members_granted_qos_is_respected() {
    let broker = common::start().await;
    let mut member = open(broker.addr, ProtocolVersion::V5, "sh-qos").await;
    assert_eq!(
        sub(&mut member, "$share/g/q/t", QoS::AtMostOnce).await,
        ReasonCode::GRANTED_QOS_0
    );
    broker
        .handle
        .publish("q/t", Bytes::from_static(b"x"), QoS::ExactlyOnce, false);
    let got = member.recv_publish(T).await.unwrap();
    assert_eq!((got.qos, got.packet_id), (QoS::AtMostOnce, None));
}

#[tokio::test]
async fn shared_subscription_gets_no_retained_messages() {
    let broker = common::start().await;
    broker
        .handle
        .publish("ret/t", Bytes::from_static(b"r"), QoS::AtLeastOnce, true);
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut member = open(broker.addr, version, "sh-retained").await;
        sub(&mut member, "$share/g/ret/#", QoS::AtLeastOnce).await;
        assert_quiet(&mut member).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_4_5_shared_and_non_shared_matches_are_separate_publishes_with_their_own_identifier()
 {
    let broker = common::start().await;
    let mut client = open(broker.addr, ProtocolVersion::V5, "sh-ids").await;
    for (id, filter) in [(1u32, "ids/t"), (2, "$share/g/ids/+")] {
        let mut request = subscribe(1, filter, QoS::AtMostOnce);
        request.properties.subscription_identifier = Some(id);
        client.send(request).await.unwrap();
        assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
    }
    broker
        .handle
        .publish("ids/t", Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    let mut ids = BTreeSet::new();
    for _ in 0..2 {
        let got = client.recv_publish(T).await.unwrap();
        assert_eq!(got.properties.subscription_identifiers.len(), 1);
        ids.insert(got.properties.subscription_identifiers[0]);
    }
    assert_eq!(ids, BTreeSet::from([1, 2]));
}

#[tokio::test]
async fn v5_mqtt_4_8_2_4_qos_2_in_flight_is_completed_with_the_same_member_when_it_reconnects() {
    let broker = common::start().await;
    let a_id = unique_id("sh-a");
    let (mut a, _) = RawClient::connect_with(broker.addr, persistent(&a_id))
        .await
        .unwrap();
    sub(&mut a, "$share/g/q2/t", QoS::ExactlyOnce).await;
    broker
        .handle
        .publish("q2/t", Bytes::from_static(b"x"), QoS::ExactlyOnce, false);
    let sent = a.recv_publish(T).await.unwrap();
    drop_and_wait(&broker, a).await;

    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-b").await;
    sub(&mut b, "$share/g/q2/t", QoS::ExactlyOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;

    let (mut a, connack) = RawClient::connect_with(broker.addr, persistent(&a_id))
        .await
        .unwrap();
    assert!(connack.session_present);
    let again = a.recv_publish(T).await.unwrap();
    assert_eq!(
        (again.dup, again.packet_id, &again.payload[..]),
        (true, sent.packet_id, &b"x"[..])
    );
    a.send(pubrec(sent.packet_id.unwrap().get())).await.unwrap();
    assert!(matches!(a.recv(T).await.unwrap(), Packet::PubRel(_)));
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn v5_mqtt_4_8_2_5_qos_2_in_flight_is_not_sent_to_another_member_when_the_session_ends() {
    let broker = common::start().await;
    let mut a = open(broker.addr, ProtocolVersion::V5, "sh-end-a").await;
    sub(&mut a, "$share/g/e2/t", QoS::ExactlyOnce).await;
    broker
        .handle
        .publish("e2/t", Bytes::from_static(b"x"), QoS::ExactlyOnce, false);
    a.recv_publish(T).await.unwrap();
    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-end-b").await;
    sub(&mut b, "$share/g/e2/t", QoS::ExactlyOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;
    // A's session has no expiry interval: it ends with the connection.
    drop_and_wait(&broker, a).await;
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn qos_1_held_by_an_ending_member_is_discarded_and_counted() {
    // Re-sending it to another member is optional for QoS 1 (a SHOULD in
    // 4.8.2); Roost drops it and counts the drop, so it is never duplicated.
    let broker = common::start().await;
    let mut a = open(broker.addr, ProtocolVersion::V5, "sh-q1-a").await;
    sub(&mut a, "$share/g/e1/t", QoS::AtLeastOnce).await;
    broker
        .handle
        .publish("e1/t", Bytes::from_static(b"x"), QoS::AtLeastOnce, false);
    a.recv_publish(T).await.unwrap();
    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-q1-b").await;
    sub(&mut b, "$share/g/e1/t", QoS::AtLeastOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;
    let dropped = broker.handle.stats().messages_dropped;
    drop_and_wait(&broker, a).await;
    assert_eq!(broker.handle.stats().messages_dropped, dropped + 1);
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn v5_mqtt_4_8_2_6_refused_message_is_not_sent_to_another_member() {
    let broker = common::start().await;
    let mut a = open(broker.addr, ProtocolVersion::V5, "sh-refuse-a").await;
    sub(&mut a, "$share/g/rf/#", QoS::ExactlyOnce).await;
    broker
        .handle
        .publish("rf/1", Bytes::from_static(b"1"), QoS::AtLeastOnce, false);
    broker
        .handle
        .publish("rf/2", Bytes::from_static(b"2"), QoS::ExactlyOnce, false);
    let q1 = a.recv_publish(T).await.unwrap().packet_id.unwrap();
    let q2 = a.recv_publish(T).await.unwrap().packet_id.unwrap();
    let mut refuse_1 = roost_codec::PubResponse::success(q1);
    refuse_1.reason_code = ReasonCode::UNSPECIFIED_ERROR;
    let mut refuse_2 = roost_codec::PubResponse::success(q2);
    refuse_2.reason_code = ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR;
    a.send(Packet::PubAck(refuse_1)).await.unwrap();
    a.send(Packet::PubRec(refuse_2)).await.unwrap();
    assert_quiet(&mut a).await;

    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-refuse-b").await;
    sub(&mut b, "$share/g/rf/#", QoS::ExactlyOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;
    drop_and_wait(&broker, a).await;
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn leaving_member_does_not_duplicate_a_message_into_another_group() {
    let broker = common::start().await;
    let mut a = open(broker.addr, ProtocolVersion::V5, "sh-dup-a").await;
    sub(&mut a, "$share/g/dg/t", QoS::AtLeastOnce).await;
    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-dup-b").await;
    sub(&mut b, "$share/h/dg/t", QoS::AtLeastOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;
    broker
        .handle
        .publish("dg/t", Bytes::from_static(b"x"), QoS::AtLeastOnce, false);
    a.recv_publish(T).await.unwrap();
    let got = b.recv_publish(T).await.unwrap();
    b.send(puback(got.packet_id.unwrap().get())).await.unwrap();
    // A leaves with the message unacknowledged; group h already had its copy.
    drop_and_wait(&broker, a).await;
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn leaving_non_shared_subscriber_does_not_duplicate_a_message_into_a_group() {
    let broker = common::start().await;
    let mut a = open(broker.addr, ProtocolVersion::V5, "sh-direct-a").await;
    sub(&mut a, "dn/t", QoS::AtLeastOnce).await;
    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-direct-b").await;
    sub(&mut b, "$share/g/dn/t", QoS::AtLeastOnce).await;
    sub(&mut b, "marker/b", QoS::AtMostOnce).await;
    broker
        .handle
        .publish("dn/t", Bytes::from_static(b"1"), QoS::AtLeastOnce, false);
    a.recv_publish(T).await.unwrap();
    let got = b.recv_publish(T).await.unwrap();
    b.send(puback(got.packet_id.unwrap().get())).await.unwrap();
    // A leaves holding its own (non-shared) copy: group g already had one.
    drop_and_wait(&broker, a).await;
    next_is_broker_marker(&broker, &mut b, "marker/b").await;
}

#[tokio::test]
async fn online_members_are_preferred_over_offline_ones() {
    let broker = common::start().await;
    let a_id = unique_id("sh-off-a");
    let (mut a, _) = RawClient::connect_with(broker.addr, persistent(&a_id))
        .await
        .unwrap();
    sub(&mut a, "$share/g/on/t", QoS::AtLeastOnce).await;
    drop_and_wait(&broker, a).await;
    let mut b = open(broker.addr, ProtocolVersion::V5, "sh-off-b").await;
    sub(&mut b, "$share/g/on/t", QoS::AtLeastOnce).await;
    for i in 0..4u8 {
        broker
            .handle
            .publish("on/t", Bytes::from(vec![i]), QoS::AtLeastOnce, false);
    }
    for i in 0..4u8 {
        let got = b.recv_publish(T).await.unwrap();
        assert_eq!(&got.payload[..], &[i]);
        b.send(puback(got.packet_id.unwrap().get())).await.unwrap();
    }
    let (mut a, _) = RawClient::connect_with(broker.addr, persistent(&a_id))
        .await
        .unwrap();
    assert_quiet(&mut a).await;
}

#[tokio::test]
async fn unsubscribing_from_a_shared_subscription_stops_delivery() {
    let broker = common::start().await;
    let mut member = open(broker.addr, ProtocolVersion::V5, "sh-unsub").await;
    sub(&mut member, "$share/g/us/t", QoS::AtMostOnce).await;
    sub(&mut member, "marker/m", QoS::AtMostOnce).await;
    broker
        .handle
        .publish("us/t", Bytes::from_static(b"1"), QoS::AtMostOnce, false);
    assert_eq!(&member.recv_publish(T).await.unwrap().payload[..], b"1");
    // The plain filter is a different subscription.
    for (filter, expected) in [
        ("us/t", ReasonCode::NO_SUBSCRIPTION_EXISTED),
        ("$share/other/us/t", ReasonCode::NO_SUBSCRIPTION_EXISTED),
        ("$share/g/us/t", ReasonCode::SUCCESS),
        ("$share/g/us/t", ReasonCode::NO_SUBSCRIPTION_EXISTED),
    ] {
        member.send(unsubscribe(2, filter)).await.unwrap();
        match member.recv(T).await.unwrap() {
            Packet::UnsubAck(ack) => assert_eq!(ack.reason_codes, vec![expected], "{filter}"),
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }
    broker
        .handle
        .publish("us/t", Bytes::from_static(b"2"), QoS::AtMostOnce, false);
    next_is_broker_marker(&broker, &mut member, "marker/m").await;
}

#[tokio::test]
async fn shared_subscriptions_disabled_are_refused_with_0x9e() {
    let config = common::config("[mqtt]\nshared_subscription_available = false\n");
    let broker = common::start_with(config, None).await;
    let (mut client, connack) = RawClient::connect_v5(broker.addr, &unique_id("sh-off"))
        .await
        .unwrap();
    assert_eq!(
        connack.properties.shared_subscription_available,
        Some(false)
    );
    assert_eq!(
        sub(&mut client, "$share/g/t", QoS::AtMostOnce).await,
        ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
    );
    assert_eq!(broker.handle.stats().subscriptions, 0);
}
