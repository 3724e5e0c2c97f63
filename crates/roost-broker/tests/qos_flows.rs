//! QoS 0/1/2 delivery protocols through the whole broker, both directions
//! (MQTT 5.0 and 3.1.1 sections 3.4-3.7, 4.3, 4.4, 4.5, 4.6): acknowledgements
//! and their packet identifiers, duplicate handling, resend on session resume
//! (and only then), message ordering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roost_broker::Broker;
use roost_broker::hooks::{AclResult, Action, Authorizer, ClientInfo};
use roost_codec::{
    Connect, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{
    connect, pid, puback, pubcomp, publish, pubrec, pubrel, subscribe, unique_id,
};

use common::barrier::{assert_quiet, next_is_marker};
use common::clients::{drop_and_wait, open};

const T: Duration = Duration::from_secs(5);
const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];

/// CONNECT that keeps the session after the connection ends (Clean Start 0:
/// with a fresh client id there is no session yet, so none is resumed).
fn persistent(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut c = connect(version, client_id);
    c.clean_start = false;
    if version.is_v5() {
        c.properties.session_expiry_interval = Some(600);
    }
    c
}

/// Connects with a persistent session; asserts Session Present.
async fn resume(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> RawClient {
    let (client, connack) = RawClient::connect_with(addr, persistent(version, client_id))
        .await
        .unwrap();
    assert!(connack.session_present, "the session must be resumed");
    client
}

async fn sub(client: &mut RawClient, filter: &str, qos: QoS) {
    client.send(subscribe(1, filter, qos)).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::SubAck(SubAck { reason_codes, .. }) => {
            assert_eq!(reason_codes, vec![ReasonCode(qos as u8)]);
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn ack(packet: Packet) -> PubResponse {
    match packet {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => a,
        other => panic!("expected an acknowledgement, got {other:?}"),
    }
}

fn with_reason(mut packet: Packet, reason: ReasonCode) -> Packet {
    if let Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) =
        &mut packet
    {
        a.reason_code = reason;
    }
    packet
}

#[tokio::test]
async fn mqtt_3_3_4_1_v5_mqtt_2_2_1_5_v311_mqtt_2_3_1_6_response_follows_the_qos_with_the_same_packet_identifier()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "resp").await;
        client
            .send(publish("r/t", &b"0"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
        assert_quiet(&mut client).await;
        client
            .send(publish("r/t", &b"1"[..], QoS::AtLeastOnce, Some(7)))
            .await
            .unwrap();
        assert!(
            matches!(client.recv(T).await.unwrap(), Packet::PubAck(a) if a.packet_id == pid(7))
        );
        client
            .send(publish("r/t", &b"2"[..], QoS::ExactlyOnce, Some(8)))
            .await
            .unwrap();
        assert!(
            matches!(client.recv(T).await.unwrap(), Packet::PubRec(a) if a.packet_id == pid(8))
        );
        client.send(pubrel(8)).await.unwrap();
        assert!(
            matches!(client.recv(T).await.unwrap(), Packet::PubComp(a) if a.packet_id == pid(8))
        );
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_2_4_v5_mqtt_4_3_2_5_v311_mqtt_4_3_2_2_same_identifier_after_puback_is_a_new_message()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "q1new-sub").await;
        sub(&mut subscriber, "q1/#", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "q1new-pub").await;
        for (dup, payload) in [(false, &b"first"[..]), (true, b"second")] {
            let mut message = publish("q1/t", payload, QoS::AtLeastOnce, Some(5));
            message.dup = dup;
            publisher.send(message).await.unwrap();
            assert_eq!(ack(publisher.recv(T).await.unwrap()).packet_id, pid(5));
            assert_eq!(
                &subscriber.recv_publish(T).await.unwrap().payload[..],
                payload
            );
        }
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_2_1_v5_mqtt_4_3_2_2_v5_mqtt_2_2_1_4_v311_mqtt_4_3_2_1_outbound_qos_1_gets_unused_identifiers_and_dup_0()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "ids-sub").await;
        sub(&mut subscriber, "ids/#", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "ids-pub").await;
        let mut seen = Vec::new();
        for i in 0..10u16 {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            publisher
                .send(publish("ids/t", &b"x"[..], qos, Some(i + 1)))
                .await
                .unwrap();
            let got = subscriber.recv_publish(T).await.unwrap();
            assert_eq!((got.qos, got.dup), (qos, false));
            let id = got.packet_id.expect("QoS > 0 carries a packet identifier");
            assert!(
                !seen.contains(&id),
                "identifier {id} reused while still unacknowledged"
            );
            seen.push(id);
        }
    }
}

#[tokio::test]
async fn mqtt_4_4_0_1_mqtt_3_3_1_1_v5_mqtt_4_3_2_3_v311_mqtt_2_3_1_4_unacknowledged_qos_1_is_resent_on_resume_with_dup_1()
 {
    let broker = common::start().await;
    for version in BOTH {
        let id = unique_id("resend1");
        let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(version, &id))
            .await
            .unwrap();
        sub(&mut subscriber, "rs1/t", QoS::AtLeastOnce).await;
        let mut publisher = open(broker.addr, version, "resend1-pub").await;
        for payload in [&b"a"[..], b"b"] {
            publisher
                .send(publish("rs1/t", payload, QoS::AtLeastOnce, Some(1)))
                .await
                .unwrap();
            ack(publisher.recv(T).await.unwrap());
        }
        let first = subscriber.recv_publish(T).await.unwrap();
        let second = subscriber.recv_publish(T).await.unwrap();
        assert!(!first.dup && !second.dup);
        drop_and_wait(&broker, subscriber).await;

        let mut subscriber = resume(broker.addr, version, &id).await;
        for original in [&first, &second] {
            let again = subscriber.recv_publish(T).await.unwrap();
            assert!(again.dup, "a re-delivery has DUP = 1");
            assert_eq!(
                again.packet_id, original.packet_id,
                "original packet identifier"
            );
            assert_eq!(again.payload, original.payload, "original order");
        }
        subscriber
            .send(puback(first.packet_id.unwrap().get()))
            .await
            .unwrap();
        subscriber
            .send(puback(second.packet_id.unwrap().get()))
            .await
            .unwrap();
        assert_quiet(&mut subscriber).await;
        drop_and_wait(&broker, subscriber).await;

        // Acknowledged: never sent again.
        let mut subscriber = resume(broker.addr, version, &id).await;
        assert_quiet(&mut subscriber).await;
    }
}

#[tokio::test]
async fn mqtt_4_4_0_1_nothing_is_resent_while_the_connection_stays_up() {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "noresend-sub").await;
        sub(&mut subscriber, "nr/#", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "noresend-pub").await;
        publisher
            .send(publish("nr/1", &b"1"[..], QoS::AtLeastOnce, Some(1)))
            .await
            .unwrap();
        publisher
            .send(publish("nr/2", &b"2"[..], QoS::ExactlyOnce, Some(2)))
            .await
            .unwrap();
        assert_eq!(&*subscriber.recv_publish(T).await.unwrap().topic, "nr/1");
        let qos2 = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(&*qos2.topic, "nr/2");
        // PUBREC, then silence: the PUBREL is answered once, nothing is repeated.
        subscriber
            .send(pubrec(qos2.packet_id.unwrap().get()))
            .await
            .unwrap();
        assert!(matches!(
            subscriber.recv(T).await.unwrap(),
            Packet::PubRel(_)
        ));
        // Nothing before the marker: no repeat of either PUBLISH or the
        // PUBREL. No sleep here: the broker's only timers are the session's
        // (`poll_timeout`), and `roost-session`'s
        // `v5_mqtt_4_4_0_1_no_resend_within_a_connection` runs those a day of
        // virtual time ahead and sees nothing resent.
        next_is_marker(&mut publisher, &mut subscriber, "nr/marker").await;
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_1_v5_mqtt_4_3_3_2_v5_mqtt_4_3_3_3_v311_mqtt_4_3_3_1_outbound_qos_2_publish_is_unacknowledged_until_pubrec()
 {
    let broker = common::start().await;
    for version in BOTH {
        let id = unique_id("q2out");
        let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(version, &id))
            .await
            .unwrap();
        sub(&mut subscriber, "q2o/t", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "q2out-pub").await;
        publisher
            .send(publish("q2o/t", &b"m"[..], QoS::ExactlyOnce, Some(3)))
            .await
            .unwrap();
        let sent = subscriber.recv_publish(T).await.unwrap();
        assert_eq!((sent.qos, sent.dup), (QoS::ExactlyOnce, false));
        drop_and_wait(&broker, subscriber).await;

        let mut subscriber = resume(broker.addr, version, &id).await;
        let again = subscriber.recv_publish(T).await.unwrap();
        assert_eq!((again.dup, again.packet_id), (true, sent.packet_id));
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_4_v5_mqtt_4_3_3_5_v5_mqtt_4_3_3_6_v311_mqtt_4_3_3_1_after_pubrec_only_the_pubrel_is_resent()
 {
    let broker = common::start().await;
    for version in BOTH {
        let id = unique_id("q2rel");
        let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(version, &id))
            .await
            .unwrap();
        sub(&mut subscriber, "q2r/t", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "q2rel-pub").await;
        publisher
            .send(publish("q2r/t", &b"m"[..], QoS::ExactlyOnce, Some(3)))
            .await
            .unwrap();
        let packet_id = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
        subscriber.send(pubrec(packet_id.get())).await.unwrap();
        let rel = subscriber.recv(T).await.unwrap();
        assert!(
            matches!(&rel, Packet::PubRel(r) if r.packet_id == packet_id),
            "{rel:?}"
        );
        drop_and_wait(&broker, subscriber).await;

        // PUBREL still unacknowledged: re-sent, and the PUBLISH is not.
        let mut subscriber = resume(broker.addr, version, &id).await;
        let rel = subscriber.recv(T).await.unwrap();
        assert!(
            matches!(&rel, Packet::PubRel(r) if r.packet_id == packet_id),
            "{rel:?}"
        );
        assert_quiet(&mut subscriber).await;
        subscriber.send(pubcomp(packet_id.get())).await.unwrap();
        assert_quiet(&mut subscriber).await;
        drop_and_wait(&broker, subscriber).await;

        let mut subscriber = resume(broker.addr, version, &id).await;
        assert_quiet(&mut subscriber).await;
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_7_message_expiry_is_not_applied_once_the_publish_was_sent() {
    let broker = common::start().await;
    let id = unique_id("q2exp");
    let v5 = ProtocolVersion::V5;
    let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(v5, &id))
        .await
        .unwrap();
    sub(&mut subscriber, "q2e/t", QoS::ExactlyOnce).await;
    let mut publisher = open(broker.addr, v5, "q2exp-pub").await;
    let mut message = publish("q2e/t", &b"m"[..], QoS::ExactlyOnce, Some(1));
    message.properties.message_expiry_interval = Some(1);
    publisher.send(message).await.unwrap();
    let sent = subscriber.recv_publish(T).await.unwrap();
    drop_and_wait(&broker, subscriber).await;
    // Let the Message Expiry Interval run out while the PUBLISH is unacknowledged.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut subscriber = resume(broker.addr, v5, &id).await;
    let again = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((again.dup, again.packet_id), (true, sent.packet_id));
    subscriber
        .send(pubrec(sent.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert!(matches!(
        subscriber.recv(T).await.unwrap(),
        Packet::PubRel(_)
    ));
}

#[tokio::test]
async fn v5_mqtt_4_3_3_8_v5_mqtt_4_3_3_10_v311_mqtt_4_3_3_2_duplicate_qos_2_publish_is_acknowledged_and_delivered_once()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "q2dup-sub").await;
        sub(&mut subscriber, "q2d/#", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "q2dup-pub").await;
        for dup in [false, true, true] {
            let mut message = publish("q2d/t", &b"once"[..], QoS::ExactlyOnce, Some(4));
            message.dup = dup;
            publisher.send(message).await.unwrap();
            let rec = publisher.recv(T).await.unwrap();
            assert!(
                matches!(&rec, Packet::PubRec(r) if r.packet_id == pid(4)),
                "{rec:?}"
            );
        }
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(&got.payload[..], b"once");
        next_is_marker(&mut publisher, &mut subscriber, "q2d/marker").await;
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_11_v5_mqtt_4_3_3_12_v311_mqtt_4_3_3_2_after_pubcomp_the_identifier_starts_a_new_message()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "q2comp-sub").await;
        sub(&mut subscriber, "q2c/#", QoS::AtMostOnce).await;
        let mut publisher = open(broker.addr, version, "q2comp-pub").await;
        for payload in [&b"one"[..], b"two"] {
            publisher
                .send(publish("q2c/t", payload, QoS::ExactlyOnce, Some(6)))
                .await
                .unwrap();
            assert!(matches!(
                publisher.recv(T).await.unwrap(),
                Packet::PubRec(_)
            ));
            publisher.send(pubrel(6)).await.unwrap();
            let comp = publisher.recv(T).await.unwrap();
            assert!(
                matches!(&comp, Packet::PubComp(c) if c.packet_id == pid(6)),
                "{comp:?}"
            );
            assert_eq!(
                &subscriber.recv_publish(T).await.unwrap().payload[..],
                payload
            );
        }
    }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_13_qos_2_exchange_completes_after_the_message_expired() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "q2late").await;
    let mut message = publish("q2l/t", &b"m"[..], QoS::ExactlyOnce, Some(2));
    message.properties.message_expiry_interval = Some(1);
    publisher.send(message).await.unwrap();
    assert!(matches!(
        publisher.recv(T).await.unwrap(),
        Packet::PubRec(_)
    ));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    publisher.send(pubrel(2)).await.unwrap();
    let comp = ack(publisher.recv(T).await.unwrap());
    assert_eq!(
        (comp.packet_id, comp.reason_code),
        (pid(2), ReasonCode::SUCCESS)
    );
}

#[tokio::test]
async fn v5_mqtt_4_4_0_2_error_acknowledgement_ends_the_flow_without_retransmission() {
    let broker = common::start().await;
    let v5 = ProtocolVersion::V5;
    let id = unique_id("ackerr");
    let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(v5, &id))
        .await
        .unwrap();
    sub(&mut subscriber, "ae/#", QoS::ExactlyOnce).await;
    let mut publisher = open(broker.addr, v5, "ackerr-pub").await;
    publisher
        .send(publish("ae/1", &b"1"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    publisher
        .send(publish("ae/2", &b"2"[..], QoS::ExactlyOnce, Some(2)))
        .await
        .unwrap();
    let q1 = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
    let q2 = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
    subscriber
        .send(with_reason(puback(q1.get()), ReasonCode::UNSPECIFIED_ERROR))
        .await
        .unwrap();
    subscriber
        .send(with_reason(pubrec(q2.get()), ReasonCode::UNSPECIFIED_ERROR))
        .await
        .unwrap();
    // No PUBREL for the refused QoS 2 message.
    assert_quiet(&mut subscriber).await;
    drop_and_wait(&broker, subscriber).await;

    let mut subscriber = resume(broker.addr, v5, &id).await;
    assert_quiet(&mut subscriber).await;
}

#[tokio::test]
async fn v5_mqtt_4_6_0_5_v5_mqtt_4_6_0_6_v311_mqtt_4_6_0_5_v311_mqtt_4_6_0_6_messages_arrive_in_publish_order()
 {
    let broker = common::start().await;
    for version in BOTH {
        let mut subscriber = open(broker.addr, version, "order-sub").await;
        sub(&mut subscriber, "ord/#", QoS::ExactlyOnce).await;
        let mut publisher = open(broker.addr, version, "order-pub").await;
        let qos_of =
            |i: u16| [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(i % 3)];
        for i in 0..60u16 {
            let qos = qos_of(i);
            let id = (qos != QoS::AtMostOnce).then_some(i + 1);
            publisher
                .send(publish("ord/t", i.to_be_bytes().to_vec(), qos, id))
                .await
                .unwrap();
        }
        for i in 0..60u16 {
            let got = subscriber.recv_publish(T).await.unwrap();
            assert_eq!(
                (&got.payload[..], got.qos),
                (&i.to_be_bytes()[..], qos_of(i))
            );
            match got.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => subscriber
                    .send(puback(got.packet_id.unwrap().get()))
                    .await
                    .unwrap(),
                QoS::ExactlyOnce => subscriber
                    .send(pubrec(got.packet_id.unwrap().get()))
                    .await
                    .unwrap(),
            }
        }
    }
}

#[tokio::test]
async fn v5_mqtt_4_6_0_6_order_is_kept_through_a_full_receive_maximum_window() {
    let broker = common::start().await;
    let mut c = connect(ProtocolVersion::V5, &unique_id("window-sub"));
    c.properties.receive_maximum = Some(2);
    let (mut subscriber, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    sub(&mut subscriber, "win/#", QoS::AtLeastOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "window-pub").await;
    for i in 0..20u16 {
        publisher
            .send(publish(
                "win/t",
                i.to_be_bytes().to_vec(),
                QoS::AtLeastOnce,
                Some(i + 1),
            ))
            .await
            .unwrap();
    }
    for i in 0..20u16 {
        let got = subscriber.recv_publish(T).await.unwrap();
        assert_eq!(&got.payload[..], &i.to_be_bytes()[..]);
        subscriber
            .send(puback(got.packet_id.unwrap().get()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn v5_mqtt_4_5_0_1_v311_mqtt_4_5_0_1_messages_for_an_offline_session_are_kept_for_it() {
    let broker = common::start().await;
    for version in BOTH {
        let id = unique_id("offline");
        let (mut subscriber, _) = RawClient::connect_with(broker.addr, persistent(version, &id))
            .await
            .unwrap();
        sub(&mut subscriber, "off/#", QoS::ExactlyOnce).await;
        drop_and_wait(&broker, subscriber).await;
        let mut publisher = open(broker.addr, version, "offline-pub").await;
        for (i, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
            .into_iter()
            .enumerate()
        {
            publisher
                .send(publish("off/t", vec![i as u8], qos, Some(i as u16 + 1)))
                .await
                .unwrap();
            ack(publisher.recv(T).await.unwrap());
        }
        let mut subscriber = resume(broker.addr, version, &id).await;
        for i in 0..3u8 {
            let got: Publish = subscriber.recv_publish(T).await.unwrap();
            assert_eq!((&got.payload[..], got.dup), (&[i][..], false));
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_4_2_1_puback_reason_is_success_or_no_matching_subscribers() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "pubackrc").await;
    publisher
        .send(publish("nobody/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "pubackrc-sub").await;
    sub(&mut subscriber, "somebody/t", QoS::AtMostOnce).await;
    publisher
        .send(publish("somebody/t", &b"x"[..], QoS::AtLeastOnce, Some(2)))
        .await
        .unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn v5_mqtt_3_5_2_1_pubrec_reason_is_success_or_no_matching_subscribers() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "pubrecrc").await;
    publisher
        .send(publish("nobody/t", &b"x"[..], QoS::ExactlyOnce, Some(1)))
        .await
        .unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "pubrecrc-sub").await;
    sub(&mut subscriber, "somebody/t", QoS::AtMostOnce).await;
    publisher
        .send(publish("somebody/t", &b"x"[..], QoS::ExactlyOnce, Some(2)))
        .await
        .unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn v5_mqtt_3_6_2_1_pubrel_reason_is_success_or_identifier_not_found() {
    let broker = common::start().await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "pubrelrc").await;
    sub(&mut subscriber, "prl/t", QoS::ExactlyOnce).await;
    subscriber.send(pubrec(999)).await.unwrap();
    let unknown = ack(subscriber.recv(T).await.unwrap());
    assert_eq!(
        (unknown.packet_id, unknown.reason_code),
        (pid(999), ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    broker
        .handle
        .publish("prl/t", "x".into(), QoS::ExactlyOnce, false);
    let id = subscriber.recv_publish(T).await.unwrap().packet_id.unwrap();
    subscriber.send(pubrec(id.get())).await.unwrap();
    assert_eq!(
        ack(subscriber.recv(T).await.unwrap()).reason_code,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn v5_mqtt_3_7_2_1_pubcomp_reason_is_success_or_identifier_not_found() {
    let broker = common::start().await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "pubcomprc").await;
    publisher.send(pubrel(77)).await.unwrap();
    let unknown = ack(publisher.recv(T).await.unwrap());
    assert_eq!(
        (unknown.packet_id, unknown.reason_code),
        (pid(77), ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
    );
    publisher
        .send(publish("pc/t", &b"x"[..], QoS::ExactlyOnce, Some(78)))
        .await
        .unwrap();
    ack(publisher.recv(T).await.unwrap());
    publisher.send(pubrel(78)).await.unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::SUCCESS
    );
}

/// A client whose Maximum Packet Size leaves no room for optional properties.
async fn tight_client(addr: SocketAddr, prefix: &str) -> RawClient {
    let mut c = connect(ProtocolVersion::V5, &unique_id(prefix));
    c.properties.maximum_packet_size = Some(64);
    RawClient::connect_with(addr, c).await.unwrap().0
}

#[tokio::test]
async fn v5_mqtt_3_4_2_2_v5_mqtt_3_4_2_3_puback_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start().await;
    let mut client = tight_client(broker.addr, "tight-puback").await;
    client
        .send(publish("tp/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let puback = ack(client.recv(T).await.unwrap());
    assert!(puback.properties.is_empty(), "{puback:?}");
}

#[tokio::test]
async fn v5_mqtt_3_5_2_2_v5_mqtt_3_5_2_3_pubrec_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start().await;
    let mut client = tight_client(broker.addr, "tight-pubrec").await;
    client
        .send(publish("tp/t", &b"x"[..], QoS::ExactlyOnce, Some(1)))
        .await
        .unwrap();
    let pubrec = ack(client.recv(T).await.unwrap());
    assert!(pubrec.properties.is_empty(), "{pubrec:?}");
}

#[tokio::test]
async fn v5_mqtt_3_6_2_2_v5_mqtt_3_6_2_3_pubrel_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start().await;
    let mut client = tight_client(broker.addr, "tight-pubrel").await;
    sub(&mut client, "tp/t", QoS::ExactlyOnce).await;
    broker
        .handle
        .publish("tp/t", "x".into(), QoS::ExactlyOnce, false);
    let id = client.recv_publish(T).await.unwrap().packet_id.unwrap();
    client.send(pubrec(id.get())).await.unwrap();
    let pubrel = ack(client.recv(T).await.unwrap());
    assert!(pubrel.properties.is_empty(), "{pubrel:?}");
}

#[tokio::test]
async fn v5_mqtt_3_7_2_2_v5_mqtt_3_7_2_3_pubcomp_has_no_properties_beyond_the_clients_maximum() {
    let broker = common::start().await;
    let mut client = tight_client(broker.addr, "tight-pubcomp").await;
    client
        .send(publish("tp/t", &b"x"[..], QoS::ExactlyOnce, Some(1)))
        .await
        .unwrap();
    ack(client.recv(T).await.unwrap());
    client.send(pubrel(1)).await.unwrap();
    let pubcomp = ack(client.recv(T).await.unwrap());
    assert!(pubcomp.properties.is_empty(), "{pubcomp:?}");
}

#[tokio::test]
async fn mqtt_3_6_1_1_pubrel_with_reserved_flags_wrong_closes() {
    let broker = common::start().await;
    for version in BOTH {
        let mut client = open(broker.addr, version, "pubrelflags").await;
        client
            .send(publish("f/t", &b"x"[..], QoS::ExactlyOnce, Some(1)))
            .await
            .unwrap();
        ack(client.recv(T).await.unwrap());
        // PUBREL with fixed-header flags 0000 instead of 0010.
        client.send_bytes(&[0x60, 0x02, 0x00, 0x01]).await.unwrap();
        let disconnect = client.expect_closed(T).await.unwrap();
        if version.is_v5() {
            assert_eq!(
                disconnect.map(|d| d.reason_code),
                Some(ReasonCode::MALFORMED_PACKET)
            );
        } else {
            assert_eq!(disconnect, None);
        }
    }
}

#[tokio::test]
async fn v311_mqtt_2_3_1_1_v5_mqtt_2_2_1_3_packet_identifier_0_closes() {
    let broker = common::start().await;
    for version in BOTH {
        // QoS 1 PUBLISH, SUBSCRIBE and UNSUBSCRIBE, each with Packet Identifier 0.
        let properties: &[u8] = if version.is_v5() { &[0] } else { &[] };
        let mut publish = vec![0x32, 0, 0, 1, b't', 0, 0];
        publish.extend_from_slice(properties);
        let mut subscribe = vec![0x82, 0, 0, 0];
        subscribe.extend_from_slice(properties);
        subscribe.extend_from_slice(&[0, 1, b't', 0]);
        let mut unsubscribe = vec![0xA2, 0, 0, 0];
        unsubscribe.extend_from_slice(properties);
        unsubscribe.extend_from_slice(&[0, 1, b't']);
        for mut packet in [publish, subscribe, unsubscribe] {
            packet[1] = (packet.len() - 2) as u8;
            let mut client = open(broker.addr, version, "pid0").await;
            client.send_bytes(&packet).await.unwrap();
            let disconnect = client.expect_closed(T).await.unwrap();
            if version.is_v5() {
                let reason = disconnect.map(|d| d.reason_code);
                assert!(
                    reason.is_some_and(|r| r.is_error()),
                    "{packet:?}: {reason:?}"
                );
            } else {
                assert_eq!(disconnect, None);
            }
        }
    }
}

/// Denies publishing under `denied/`; has no opinion on anything else.
struct DenyPrefix;

impl Authorizer for DenyPrefix {
    fn name(&self) -> &str {
        "deny-prefix"
    }

    fn authorize(&self, _client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        match action {
            Action::Publish { .. } if topic.starts_with("denied/") => AclResult::Deny,
            _ => AclResult::Ignore,
        }
    }
}

/// A broker with the [`DenyPrefix`] authorizer.
async fn start_denying(toml: &str) -> common::TestBroker {
    let broker = Broker::builder()
        .config(common::config(toml))
        .authorizer(Arc::new(DenyPrefix))
        .bind()
        .await
        .unwrap();
    let addr = broker.local_addrs()[0];
    let handle = broker.handle();
    tokio::spawn(broker.run());
    common::TestBroker { addr, handle }
}

#[tokio::test]
async fn v5_mqtt_4_3_3_9_after_an_error_pubrec_the_identifier_starts_a_new_message() {
    let broker = start_denying("").await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V5, "errrec-sub").await;
    sub(&mut subscriber, "#", QoS::ExactlyOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "errrec").await;
    publisher
        .send(publish("denied/t", &b"no"[..], QoS::ExactlyOnce, Some(5)))
        .await
        .unwrap();
    let refused = ack(publisher.recv(T).await.unwrap());
    assert_eq!(
        (refused.packet_id, refused.reason_code),
        (pid(5), ReasonCode::NOT_AUTHORIZED)
    );
    // Same identifier, no PUBREL in between: a new message, routed and acknowledged.
    publisher
        .send(publish("ok/t", &b"yes"[..], QoS::ExactlyOnce, Some(5)))
        .await
        .unwrap();
    let accepted = ack(publisher.recv(T).await.unwrap());
    assert_eq!(
        (accepted.packet_id, accepted.reason_code),
        (pid(5), ReasonCode::SUCCESS)
    );
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((&*got.topic, &got.payload[..]), ("ok/t", &b"yes"[..]));
    publisher.send(pubrel(5)).await.unwrap();
    assert_eq!(
        ack(publisher.recv(T).await.unwrap()).reason_code,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn v311_mqtt_3_3_5_2_unauthorized_publish_is_acknowledged_and_dropped() {
    let broker = start_denying("").await;
    let mut subscriber = open(broker.addr, ProtocolVersion::V311, "deny311-sub").await;
    sub(&mut subscriber, "#", QoS::ExactlyOnce).await;
    let mut publisher = open(broker.addr, ProtocolVersion::V311, "deny311").await;
    publisher
        .send(publish("denied/1", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let puback = publisher.recv(T).await.unwrap();
    assert!(
        matches!(&puback, Packet::PubAck(a) if a.packet_id == pid(1)),
        "{puback:?}"
    );
    publisher
        .send(publish("denied/2", &b"x"[..], QoS::ExactlyOnce, Some(2)))
        .await
        .unwrap();
    assert!(matches!(publisher.recv(T).await.unwrap(), Packet::PubRec(a) if a.packet_id == pid(2)));
    publisher.send(pubrel(2)).await.unwrap();
    assert!(
        matches!(publisher.recv(T).await.unwrap(), Packet::PubComp(a) if a.packet_id == pid(2))
    );
    // Neither reached the subscriber.
    next_is_marker(&mut publisher, &mut subscriber, "allowed/marker").await;
}

#[tokio::test]
async fn v311_mqtt_3_3_5_2_unauthorized_publish_closes_when_configured() {
    let broker = start_denying("[security]\ndenied_publish = \"disconnect\"\n").await;
    for version in BOTH {
        let mut publisher = open(broker.addr, version, "denyclose").await;
        publisher
            .send(publish("denied/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
            .await
            .unwrap();
        let disconnect = publisher.expect_closed(T).await.unwrap();
        if version.is_v5() {
            assert_eq!(
                disconnect.map(|d| d.reason_code),
                Some(ReasonCode::NOT_AUTHORIZED)
            );
        } else {
            assert_eq!(disconnect, None);
        }
    }
}

#[tokio::test]
async fn v5_unauthorized_publish_is_answered_with_0x87() {
    let broker = start_denying("").await;
    let mut publisher = open(broker.addr, ProtocolVersion::V5, "deny5").await;
    publisher
        .send(publish("denied/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let puback = ack(publisher.recv(T).await.unwrap());
    assert_eq!(
        (puback.packet_id, puback.reason_code),
        (pid(1), ReasonCode::NOT_AUTHORIZED)
    );
}
