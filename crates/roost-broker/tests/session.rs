//! Session state at the wire (MQTT 5.0 3.1.2.4, 3.1.2.11.2, 3.1.4, 4.1;
//! 3.1.1 3.1.2.4, 3.1.4, 4.1): resume, Clean Start, expiry (also changed by
//! DISCONNECT), and takeover of a client id by a new connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use roost_broker::BrokerHandle;
use roost_codec::{
    Connect, Disconnect, DisconnectProperties, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, pid, publish, pubrec};

use common::barrier::assert_quiet;
use common::clients::subscribed;

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

/// A CONNECT with Clean Start 0 and, for 5.0, this Session Expiry Interval.
fn resuming(version: ProtocolVersion, id: &str, expiry: u32) -> Connect {
    let mut c = connect(version, id);
    c.clean_start = false;
    if version.is_v5() && expiry > 0 {
        c.properties.session_expiry_interval = Some(expiry);
    }
    c
}

/// DISCONNECT 0x00 and wait until the server has closed the connection.
async fn leave(mut client: RawClient) {
    client.send(disconnect()).await.unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

/// Publishes from a fresh 5.0 client and waits for the broker's acknowledgement.
async fn publish_acked(addr: std::net::SocketAddr, topic: &str, payload: &'static [u8], qos: QoS) {
    let (mut p, _) = RawClient::connect_v5(addr, &roost_testkit::packets::unique_id("pub"))
        .await
        .unwrap();
    let id = (qos != QoS::AtMostOnce).then_some(1);
    p.send(publish(topic, payload, qos, id)).await.unwrap();
    match qos {
        QoS::AtMostOnce => assert_quiet(&mut p).await,
        QoS::AtLeastOnce => assert!(matches!(p.recv(T).await.unwrap(), Packet::PubAck(_))),
        QoS::ExactlyOnce => assert!(matches!(p.recv(T).await.unwrap(), Packet::PubRec(_))),
    }
}

/// Waits (bounded) until the broker holds `n` sessions.
async fn sessions_become(handle: &BrokerHandle, n: u64) {
    let deadline = tokio::time::Instant::now() + T;
    while handle.stats().sessions != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions stayed at {} (expected {n})",
            handle.stats().sessions
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn recv_publish_of(p: Packet) -> Publish {
    match p {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

// ---------------------------------------------------------------- resume

#[tokio::test]
async fn v5_mqtt_3_1_2_23_session_with_expiry_is_stored_and_queues_messages() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "stored", 3600))
            .await
            .unwrap();
    subscribed(&mut a, "stored/t", QoS::AtLeastOnce).await;
    leave(a).await;
    publish_acked(broker.addr, "stored/t", b"while offline", QoS::AtLeastOnce).await;

    let (mut a, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "stored", 3600))
            .await
            .unwrap();
    assert!(ack.session_present);
    let msg = a.recv_publish(T).await.unwrap();
    assert_eq!(&msg.payload[..], b"while offline");
    assert_eq!(msg.qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_23_clean_start_1_with_expiry_still_stores_the_session_after_close() {
    let broker = common::start().await;
    let mut c = connect(ProtocolVersion::V5, "clean-kept");
    c.properties.session_expiry_interval = Some(3600);
    let (mut a, ack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert!(!ack.session_present);
    subscribed(&mut a, "clean-kept/t", QoS::AtLeastOnce).await;
    leave(a).await;
    let (_a, ack) = RawClient::connect_with(
        broker.addr,
        resuming(ProtocolVersion::V5, "clean-kept", 3600),
    )
    .await
    .unwrap();
    assert!(ack.session_present);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_5_and_v311_mqtt_4_1_0_1_qos_1_and_2_stored_while_disconnected() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V311, "queue311", 0))
            .await
            .unwrap();
    subscribed(&mut a, "queue311/t", QoS::ExactlyOnce).await;
    leave(a).await;
    publish_acked(broker.addr, "queue311/t", b"qos0", QoS::AtMostOnce).await;
    publish_acked(broker.addr, "queue311/t", b"qos1", QoS::AtLeastOnce).await;
    publish_acked(broker.addr, "queue311/t", b"qos2", QoS::ExactlyOnce).await;

    let (mut a, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V311, "queue311", 0))
            .await
            .unwrap();
    assert!(ack.session_present);
    let first = a.recv_publish(T).await.unwrap();
    assert_eq!(
        (&first.payload[..], first.qos),
        (&b"qos1"[..], QoS::AtLeastOnce)
    );
    let second = a.recv_publish(T).await.unwrap();
    assert_eq!(
        (&second.payload[..], second.qos),
        (&b"qos2"[..], QoS::ExactlyOnce)
    );
}

#[tokio::test]
async fn v5_mqtt_3_1_2_5_and_mqtt_4_4_0_1_resume_resends_unacknowledged_publish_and_pubrel() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "inflight", 3600))
            .await
            .unwrap();
    subscribed(&mut a, "inflight/1", QoS::AtLeastOnce).await;
    subscribed(&mut a, "inflight/2", QoS::ExactlyOnce).await;
    publish_acked(broker.addr, "inflight/1", b"one", QoS::AtLeastOnce).await;
    let one = a.recv_publish(T).await.unwrap();
    publish_acked(broker.addr, "inflight/2", b"two", QoS::ExactlyOnce).await;
    let two = a.recv_publish(T).await.unwrap();
    // PUBREC the QoS 2 message, then vanish before PUBACK / PUBCOMP.
    a.send(pubrec(two.packet_id.unwrap().get())).await.unwrap();
    match a.recv(T).await.unwrap() {
        Packet::PubRel(rel) => assert_eq!(Some(rel.packet_id), two.packet_id),
        other => panic!("{other:?}"),
    }
    a.drop_connection().await.unwrap();

    let mut a = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    a.send(resuming(ProtocolVersion::V5, "inflight", 3600))
        .await
        .unwrap();
    // The old connection may still be closing: then this is a takeover, same outcome.
    match a.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert!(ack.session_present),
        other => panic!("{other:?}"),
    }
    let again = recv_publish_of(a.recv(T).await.unwrap());
    assert!(again.dup, "re-sent PUBLISH has DUP 1");
    assert_eq!(again.packet_id, one.packet_id);
    assert_eq!(&again.payload[..], b"one");
    match a.recv(T).await.unwrap() {
        Packet::PubRel(rel) => assert_eq!(Some(rel.packet_id), two.packet_id),
        other => panic!("expected the PUBREL again, got {other:?}"),
    }
}

// ------------------------------------------------------------ expiry

#[tokio::test]
async fn v5_mqtt_4_1_0_2_session_discarded_once_its_expiry_interval_passed() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "expires", 1))
            .await
            .unwrap();
    subscribed(&mut a, "expires/t", QoS::AtLeastOnce).await;
    leave(a).await;
    assert_eq!(broker.handle.stats().sessions, 1, "stored after the close");
    sessions_become(&broker.handle, 0).await;
    assert_eq!(broker.handle.stats().subscriptions, 0);
    let (_a, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "expires", 1))
            .await
            .unwrap();
    assert!(!ack.session_present, "the expired session is gone");
}

#[tokio::test]
async fn v5_absent_session_expiry_ends_the_session_with_the_connection() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "no-expiry", 0))
            .await
            .unwrap();
    subscribed(&mut a, "no-expiry/t", QoS::AtLeastOnce).await;
    leave(a).await;
    sessions_become(&broker.handle, 0).await;
    let (_a, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "no-expiry", 0))
            .await
            .unwrap();
    assert!(!ack.session_present);
}

#[tokio::test]
async fn v5_mqtt_4_1_0_1_session_kept_while_connected_past_its_expiry_interval() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "alive", 1))
            .await
            .unwrap();
    subscribed(&mut a, "alive/t", QoS::AtLeastOnce).await;
    // Stay connected for twice the expiry interval.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_quiet(&mut a).await;
    }
    assert_eq!(broker.handle.stats().sessions, 1);
    publish_acked(broker.addr, "alive/t", b"still here", QoS::AtLeastOnce).await;
    assert_eq!(&a.recv_publish(T).await.unwrap().payload[..], b"still here");
}

#[tokio::test]
async fn v311_mqtt_4_1_0_2_clean_session_lasts_as_long_as_its_connection() {
    let broker = common::start().await;
    let (mut a, _) = RawClient::connect_v311(broker.addr, "lasts").await.unwrap();
    subscribed(&mut a, "lasts/t", QoS::AtLeastOnce).await;
    for payload in [&b"first"[..], b"second"] {
        publish_acked(broker.addr, "lasts/t", payload, QoS::AtLeastOnce).await;
        let got = a.recv_publish(T).await.unwrap();
        assert_eq!(&got.payload[..], payload);
        a.send(Packet::PubAck(roost_codec::PubResponse::success(
            got.packet_id.unwrap(),
        )))
        .await
        .unwrap();
    }
    leave(a).await;
    sessions_become(&broker.handle, 0).await;
}

#[tokio::test]
async fn v5_disconnect_with_session_expiry_0_ends_a_stored_session() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "shorten", 3600))
            .await
            .unwrap();
    subscribed(&mut a, "shorten/t", QoS::AtLeastOnce).await;
    a.send(Disconnect {
        reason_code: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..DisconnectProperties::default()
        },
    })
    .await
    .unwrap();
    assert_eq!(a.expect_closed(T).await.unwrap(), None);
    sessions_become(&broker.handle, 0).await;
    let (_a, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "shorten", 3600))
            .await
            .unwrap();
    assert!(!ack.session_present);
}

#[tokio::test]
async fn v5_disconnect_with_a_longer_session_expiry_keeps_the_session_longer() {
    let broker = common::start().await;
    // Two sessions with a 1 s expiry; only "extended" raises it on DISCONNECT.
    let (control, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "control", 1))
            .await
            .unwrap();
    let (mut extended, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "extended", 1))
            .await
            .unwrap();
    extended
        .send(Disconnect {
            reason_code: ReasonCode::NORMAL_DISCONNECTION,
            properties: DisconnectProperties {
                session_expiry_interval: Some(3600),
                ..DisconnectProperties::default()
            },
        })
        .await
        .unwrap();
    assert_eq!(extended.expect_closed(T).await.unwrap(), None);
    leave(control).await;
    // Once the control session has expired, the extended one must still exist.
    sessions_become(&broker.handle, 1).await;
    let (_c, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "control", 1))
            .await
            .unwrap();
    assert!(!ack.session_present);
    let (_e, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "extended", 1))
            .await
            .unwrap();
    assert!(ack.session_present);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_7_retained_messages_survive_the_end_of_a_session() {
    let broker = common::start().await;
    let (mut p, _) = RawClient::connect_v311(broker.addr, "retainer")
        .await
        .unwrap();
    let mut msg = publish("keep/me", &b"retained"[..], QoS::AtLeastOnce, Some(1));
    msg.retain = true;
    p.send(msg).await.unwrap();
    assert!(matches!(p.recv(T).await.unwrap(), Packet::PubAck(_)));
    leave(p).await;
    sessions_become(&broker.handle, 0).await;

    let (mut s, _) = RawClient::connect_v311(broker.addr, "late").await.unwrap();
    subscribed(&mut s, "keep/me", QoS::AtLeastOnce).await;
    let got = s.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"retained");
    assert!(got.retain);
}

// ------------------------------------------------------------ takeover

#[tokio::test]
async fn v5_mqtt_3_1_4_3_takeover_sends_0x8e_to_the_old_connection_and_closes_it() {
    let broker = common::start().await;
    let (mut old, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "taken", 3600))
            .await
            .unwrap();
    subscribed(&mut old, "taken/t", QoS::AtLeastOnce).await;
    let (mut new, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "taken", 3600))
            .await
            .unwrap();
    let d = old.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    assert!(
        ack.session_present,
        "the session moved to the new connection"
    );
    publish_acked(broker.addr, "taken/t", b"to the new one", QoS::AtLeastOnce).await;
    assert_eq!(
        &new.recv_publish(T).await.unwrap().payload[..],
        b"to the new one"
    );
    assert_eq!(
        broker.handle.stats().sessions,
        2,
        "one for 'taken', one for the publisher"
    );
}

#[tokio::test]
async fn v311_mqtt_3_1_4_2_takeover_disconnects_the_existing_client() {
    let broker = common::start().await;
    let (mut old, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V311, "taken311", 0))
            .await
            .unwrap();
    subscribed(&mut old, "taken311/t", QoS::AtLeastOnce).await;
    let (mut new, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V311, "taken311", 0))
            .await
            .unwrap();
    assert_eq!(
        old.expect_closed(T).await.unwrap(),
        None,
        "3.1.1 has no server DISCONNECT"
    );
    assert!(ack.session_present);
    publish_acked(broker.addr, "taken311/t", b"moved", QoS::AtMostOnce).await;
    assert_eq!(&new.recv_publish(T).await.unwrap().payload[..], b"moved");
}

#[tokio::test]
async fn v5_mqtt_3_1_4_3_takeover_moves_unacknowledged_messages_to_the_new_connection() {
    let broker = common::start().await;
    let (mut old, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "moving", 3600))
            .await
            .unwrap();
    subscribed(&mut old, "moving/t", QoS::AtLeastOnce).await;
    publish_acked(broker.addr, "moving/t", b"unacked", QoS::AtLeastOnce).await;
    let first = old.recv_publish(T).await.unwrap();
    assert!(!first.dup);

    let mut new = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    new.send(resuming(ProtocolVersion::V5, "moving", 3600))
        .await
        .unwrap();
    match new.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert!(ack.session_present),
        other => panic!("{other:?}"),
    }
    let again = new.recv_publish(T).await.unwrap();
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    assert_eq!(&again.payload[..], b"unacked");
    let d = old.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
}

#[tokio::test]
async fn v5_mqtt_3_1_2_4_takeover_with_clean_start_discards_the_old_session() {
    let broker = common::start().await;
    let (mut old, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "reset", 3600))
            .await
            .unwrap();
    subscribed(&mut old, "reset/t", QoS::AtLeastOnce).await;
    let (mut new, ack) = RawClient::connect_v5(broker.addr, "reset").await.unwrap();
    assert!(!ack.session_present);
    let d = old.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    let (mut p, _) = RawClient::connect_v5(broker.addr, "reset-pub")
        .await
        .unwrap();
    p.send(publish("reset/t", &b"x"[..], QoS::AtLeastOnce, Some(4)))
        .await
        .unwrap();
    match p.recv(T).await.unwrap() {
        Packet::PubAck(ack) => {
            assert_eq!(ack.packet_id, pid(4));
            assert_eq!(ack.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        }
        other => panic!("{other:?}"),
    }
    assert_quiet(&mut new).await;
}

/// The router keeps no list of a session's filters: an ending session's
/// own map says what to remove. Takeover keeps them, a Clean Start takeover
/// and the end of a session remove exactly that session's (shared ones
/// included) and leave another client's on the same filters.
#[tokio::test]
async fn v5_sessions_that_end_remove_exactly_their_own_subscriptions() {
    let broker = common::start().await;
    let subs = || broker.handle.stats().subscriptions;
    let (mut other, _) = RawClient::connect_with(
        broker.addr,
        resuming(ProtocolVersion::V5, "ends-other", 3600),
    )
    .await
    .unwrap();
    subscribed(&mut other, "ends/a", QoS::AtMostOnce).await;
    subscribed(&mut other, "$share/g/ends/b", QoS::AtMostOnce).await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "ends", 3600))
            .await
            .unwrap();
    for filter in ["ends/a", "$share/g/ends/b", "ends/#"] {
        subscribed(&mut a, filter, QoS::AtMostOnce).await;
    }
    assert_eq!(subs(), 5);

    // Takeover resuming the session: its subscriptions move with it.
    let (_a2, ack) =
        RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "ends", 3600))
            .await
            .unwrap();
    assert!(ack.session_present);
    assert!(a.expect_closed(T).await.is_ok());
    assert_eq!(subs(), 5);

    // Takeover with Clean Start: the old session's three go, before CONNACK.
    let (mut a3, ack) = RawClient::connect_v5(broker.addr, "ends").await.unwrap();
    assert!(!ack.session_present);
    assert_eq!(subs(), 2);

    // A session ending with its connection (no expiry) removes its own.
    subscribed(&mut a3, "ends/c", QoS::AtMostOnce).await;
    subscribed(&mut a3, "$share/g/ends/b", QoS::AtMostOnce).await;
    assert_eq!(subs(), 4);
    leave(a3).await;
    sessions_become(&broker.handle, 1).await;
    assert_eq!(subs(), 2);

    // The other client's subscriptions on the same filters still deliver.
    for topic in ["ends/a", "ends/b"] {
        broker.handle.publish(
            topic,
            bytes::Bytes::from_static(b"x"),
            QoS::AtMostOnce,
            false,
        );
        assert_eq!(other.recv_publish(T).await.unwrap().topic, topic);
    }
}

#[tokio::test]
async fn v5_repeated_takeovers_leave_exactly_one_live_connection() {
    let broker = common::start().await;
    let mut previous: Option<RawClient> = None;
    for _ in 0..5 {
        let (client, _) =
            RawClient::connect_with(broker.addr, resuming(ProtocolVersion::V5, "churn", 3600))
                .await
                .unwrap();
        if let Some(mut old) = previous.replace(client) {
            let d = old.expect_closed(T).await.unwrap();
            assert_eq!(
                d.map(|d| d.reason_code),
                Some(ReasonCode::SESSION_TAKEN_OVER)
            );
        }
    }
    let mut last = previous.unwrap();
    assert_quiet(&mut last).await;
    assert_eq!(broker.handle.stats().sessions, 1);
}
