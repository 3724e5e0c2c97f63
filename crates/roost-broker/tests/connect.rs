//! CONNECT and CONNACK at the wire (MQTT 5.0 and 3.1.1 sections 3.1, 3.2,
//! 3.1.4): protocol name and level, reserved flag, client identifiers,
//! CONNACK flags and properties, refusals, the connect timeout and what a
//! server does with bytes it must not process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytestring::ByteString;
use roost_codec::{
    ConnAck, Connect, LastWill, Packet, ProtocolVersion, PubResponse, QoS, ReasonCode,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, pid, publish, subscribe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::barrier::assert_quiet;
use common::raw::{encoded, framed, raw_exchange};

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

/// Sends `connect` and returns the CONNACK, whatever its reason code.
async fn connack_for(addr: SocketAddr, connect: Connect) -> (RawClient, ConnAck) {
    let mut client = RawClient::connect(addr, connect.protocol).await.unwrap();
    client.send(connect).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => (client, ack),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// A 3.1.1 CONNECT with this protocol name, level and connect flags, client id "a".
fn raw_connect_v311(name: &[u8], level: u8, flags: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0x00, 0x3C]);
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    framed(0x10, &body)
}

/// A 5.0 CONNECT with these connect flags and no properties, client id "a".
fn raw_connect_v5(flags: u8) -> Vec<u8> {
    let mut body = vec![
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, flags, 0x00, 0x3C, 0x00,
    ];
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    framed(0x10, &body)
}

fn v5(id: &str) -> Connect {
    connect(ProtocolVersion::V5, id)
}

fn v311(id: &str) -> Connect {
    connect(ProtocolVersion::V311, id)
}

/// A CONNECT that resumes (or creates) a session kept for an hour.
fn persistent(version: ProtocolVersion, id: &str) -> Connect {
    let mut c = connect(version, id);
    c.clean_start = false;
    if version.is_v5() {
        c.properties.session_expiry_interval = Some(3600);
    }
    c
}

fn will(topic: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: ByteString::from(topic),
        payload: bytes::Bytes::from_static(b"gone"),
        qos,
        retain,
        ..LastWill::default()
    }
}

/// Subscribes `client` to `filter` at QoS 1 and waits for the SUBACK.
async fn subscribed(client: &mut RawClient, filter: &str) {
    client
        .send(subscribe(1, filter, QoS::AtLeastOnce))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::SubAck(ack) => assert!(!ack.reason_codes[0].is_error(), "{ack:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

// ------------------------------------------------- protocol name and level

#[tokio::test]
async fn v5_mqtt_3_1_2_1_bad_protocol_name_gets_unsupported_version_then_close() {
    let broker = common::start().await;
    let mut bytes = raw_connect_v5(0x02);
    bytes[5] = b'X'; // "MQTX"
    let got = raw_exchange(broker.addr, &bytes).await;
    // The server reveals it is an MQTT server with return code 1 / 0x84
    // (in the 3.1.1 form, since it cannot know the client's version).
    assert_eq!(got, [0x20, 0x02, 0x00, 0x01]);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_1_bad_protocol_name_is_not_processed_and_closes() {
    let broker = common::start().await;
    let mut bytes = raw_connect_v311(b"MQTX", 4, 0x02);
    // Anything after the bad CONNECT must not be processed.
    bytes.extend_from_slice(&[0xC0, 0x00]);
    let got = raw_exchange(broker.addr, &bytes).await;
    assert_eq!(
        got,
        [0x20, 0x02, 0x00, 0x01],
        "no PINGRESP, only the refusal"
    );
}

/// A level the broker does not speak (6) is answered in the oldest CONNACK
/// form every client can parse: 3.1.1's return code 1 (unacceptable protocol
/// version, 0x84's 3.1.1 meaning), not a 5.0 CONNACK 0x84 a 3.x client could
/// not read; then the close the statement requires.
#[tokio::test]
async fn v5_mqtt_3_1_2_2_unknown_protocol_level_gets_a_3_1_1_return_code_1_and_close() {
    let broker = common::start().await;
    let mut bytes = raw_connect_v5(0x02);
    bytes[8] = 6; // protocol level 6
    let got = raw_exchange(broker.addr, &bytes).await;
    assert_eq!(got, [0x20, 0x02, 0x00, 0x01]);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_2_unsupported_level_gets_return_code_1_and_close() {
    let broker = common::start().await;
    let got = raw_exchange(broker.addr, &raw_connect_v311(b"MQTT", 2, 0x02)).await;
    assert_eq!(got, [0x20, 0x02, 0x00, 0x01]);
}

#[tokio::test]
async fn mqtt31_mqisdp_level_3_connect_is_accepted() {
    let broker = common::start().await;
    let (mut client, ack) =
        RawClient::connect_with(broker.addr, connect(ProtocolVersion::V31, "old-client"))
            .await
            .unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert!(!ack.session_present);
    assert_quiet(&mut client).await;
}

#[tokio::test]
async fn mqtt31_empty_client_id_is_identifier_rejected() {
    let broker = common::start().await;
    let (mut client, ack) = connack_for(broker.addr, connect(ProtocolVersion::V31, "")).await;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

// ------------------------------------------- reserved flag and malformed CONNECT

#[tokio::test]
async fn v5_mqtt_3_1_2_3_and_mqtt_3_1_4_1_reserved_flag_gets_0x81_and_close() {
    let broker = common::start().await;
    let got = raw_exchange(broker.addr, &raw_connect_v5(0x03)).await;
    // CONNACK, flags 0, reason 0x81 Malformed Packet, no properties.
    assert_eq!(got, [0x20, 0x03, 0x00, 0x81, 0x00]);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_3_and_v311_mqtt_3_1_4_1_reserved_flag_closes_without_connack() {
    let broker = common::start().await;
    let got = raw_exchange(broker.addr, &raw_connect_v311(b"MQTT", 4, 0x03)).await;
    assert_eq!(got, [] as [u8; 0], "3.1.1 closes without a CONNACK");
}

#[tokio::test]
async fn v311_mqtt_3_2_2_6_malformed_connect_closes_without_connack() {
    let broker = common::start().await;
    // Will QoS 3 has no return code in Table 3.1: close without CONNACK.
    let got = raw_exchange(
        broker.addr,
        &raw_connect_v311(b"MQTT", 4, 0x02 | 0x04 | 0x18),
    )
    .await;
    assert_eq!(got, [] as [u8; 0]);
}

#[tokio::test]
async fn mqtt_3_1_4_1_truncated_connect_closes_without_connack() {
    let broker = common::start().await;
    // Remaining length says 4 bytes of variable header; the protocol name needs 6.
    let got = raw_exchange(broker.addr, &[0x10, 0x04, 0x00, 0x04, b'M', b'Q']).await;
    assert_eq!(got, [] as [u8; 0], "the version is unknown: no CONNACK");
}

// ------------------------------------------------------- first packet, second CONNECT

#[tokio::test]
async fn v5_mqtt_3_14_0_1_first_packet_not_connect_closes_without_disconnect() {
    let broker = common::start().await;
    // PINGREQ before CONNECT: no CONNACK was sent, so no DISCONNECT either.
    let got = raw_exchange(broker.addr, &[0xC0, 0x00]).await;
    assert_eq!(got, [] as [u8; 0]);
}

#[tokio::test]
async fn v311_mqtt_4_8_0_1_first_packet_not_connect_closes() {
    let broker = common::start().await;
    // SUBSCRIBE before CONNECT.
    let got = raw_exchange(
        broker.addr,
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00],
    )
    .await;
    assert_eq!(got, [] as [u8; 0]);
}

#[tokio::test]
async fn v5_mqtt_3_1_0_2_and_mqtt_3_2_0_2_second_connect_gets_0x82_not_a_second_connack() {
    let broker = common::start().await;
    let (mut client, _) = RawClient::connect_v5(broker.addr, "twice").await.unwrap();
    client.send(v5("twice")).await.unwrap();
    let disconnect = client.expect_closed(T).await.unwrap();
    assert_eq!(
        disconnect.map(|d| d.reason_code),
        Some(ReasonCode::PROTOCOL_ERROR)
    );
}

#[tokio::test]
async fn v311_mqtt_3_1_0_2_second_connect_closes() {
    let broker = common::start().await;
    let (mut client, _) = RawClient::connect_v311(broker.addr, "twice").await.unwrap();
    client.send(v311("twice")).await.unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn connect_timeout_closes_a_silent_socket() {
    let broker = common::start_with(common::config("[mqtt]\nconnect_timeout_secs = 1"), None).await;
    let started = tokio::time::Instant::now();
    let got = raw_exchange(broker.addr, &[]).await;
    assert_eq!(got, [] as [u8; 0]);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connect_timeout_closes_a_socket_with_a_partial_connect() {
    let broker = common::start_with(common::config("[mqtt]\nconnect_timeout_secs = 1"), None).await;
    let whole = raw_connect_v5(0x02);
    let got = raw_exchange(broker.addr, &whole[..whole.len() - 2]).await;
    assert_eq!(got, [] as [u8; 0]);
}

// ------------------------------------------------------------------- CONNACK

#[tokio::test]
async fn v5_mqtt_3_1_4_5_and_mqtt_3_2_2_1_connack_success_with_reserved_bits_0() {
    let broker = common::start().await;
    // Session present = 1 is the case where a stray bit would show.
    let (mut first, _) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "flags"))
            .await
            .unwrap();
    first.send(disconnect()).await.unwrap();
    first.expect_closed(T).await.unwrap();
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x00, 0x00, 0x3C];
    body.extend_from_slice(&[0x05, 0x11, 0x00, 0x00, 0x0E, 0x10]); // Session Expiry Interval 3600
    body.extend_from_slice(&[0x00, 0x05, b'f', b'l', b'a', b'g', b's']);
    let bytes = framed(0x10, &body);
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut head = [0u8; 4];
    tokio::time::timeout(T, stream.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head[0], 0x20, "CONNACK");
    assert_eq!(
        head[2], 0x01,
        "acknowledge flags: session present, bits 7-1 zero"
    );
    assert_eq!(head[3], 0x00, "reason code Success");
}

#[tokio::test]
async fn v311_mqtt_3_1_4_4_and_v311_mqtt_3_2_0_1_connack_zero_return_code_first() {
    let broker = common::start().await;
    let mut bytes = raw_connect_v311(b"MQTT", 4, 0x02);
    bytes.extend_from_slice(&[0xC0, 0x00]); // PINGREQ right behind CONNECT
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut got = [0u8; 6];
    tokio::time::timeout(T, stream.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        [0x20, 0x02, 0x00, 0x00, 0xD0, 0x00],
        "CONNACK first, then PINGRESP"
    );
}

#[tokio::test]
async fn v5_mqtt_3_2_0_1_connack_precedes_queued_messages_on_resume() {
    let broker = common::start().await;
    let (mut sub, _) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "resume-first"))
            .await
            .unwrap();
    subscribed(&mut sub, "first/t").await;
    sub.send(disconnect()).await.unwrap();
    sub.expect_closed(T).await.unwrap();
    let (mut publ, _) = RawClient::connect_v5(broker.addr, "resume-pub")
        .await
        .unwrap();
    publ.send(publish(
        "first/t",
        &b"queued"[..],
        QoS::AtLeastOnce,
        Some(1),
    ))
    .await
    .unwrap();
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));

    let mut sub = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    sub.send(persistent(ProtocolVersion::V5, "resume-first"))
        .await
        .unwrap();
    match sub.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
            assert!(ack.session_present);
        }
        other => panic!("first packet must be CONNACK, got {other:?}"),
    }
    let msg = sub.recv_publish(T).await.unwrap();
    assert_eq!(&msg.payload[..], b"queued");
}

#[tokio::test]
async fn v5_mqtt_3_2_2_2_and_mqtt_3_1_2_4_and_mqtt_3_1_4_4_clean_start_discards_the_session() {
    let broker = common::start().await;
    let (mut a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "clean"))
            .await
            .unwrap();
    assert!(!ack.session_present);
    subscribed(&mut a, "clean/t").await;
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();

    let mut fresh = v5("clean");
    fresh.properties.session_expiry_interval = Some(3600);
    let (mut a, ack) = RawClient::connect_with(broker.addr, fresh).await.unwrap();
    assert!(
        !ack.session_present,
        "Clean Start 1 gives Session Present 0"
    );
    // The old subscription is gone with the old session.
    let (mut publ, _) = RawClient::connect_v5(broker.addr, "clean-pub")
        .await
        .unwrap();
    publ.send(publish("clean/t", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    match publ.recv(T).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NO_MATCHING_SUBSCRIBERS),
        other => panic!("{other:?}"),
    }
    assert_quiet(&mut a).await;
}

#[tokio::test]
async fn v311_mqtt_3_2_2_1_and_v311_mqtt_3_1_2_6_and_v311_mqtt_3_1_4_3_clean_session_discards_the_session()
 {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V311, "clean311"))
            .await
            .unwrap();
    subscribed(&mut a, "clean311/t").await;
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();

    let (mut a, ack) = RawClient::connect_v311(broker.addr, "clean311")
        .await
        .unwrap();
    assert!(!ack.session_present);
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();
    // The clean session lasted only as long as its connection.
    let (_a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V311, "clean311"))
            .await
            .unwrap();
    assert!(
        !ack.session_present,
        "state of a clean session is not reused"
    );
}

#[tokio::test]
async fn v5_mqtt_3_2_2_3_and_mqtt_3_1_2_5_and_mqtt_3_1_2_6_session_present_reflects_stored_state() {
    let broker = common::start().await;
    let (mut a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "present"))
            .await
            .unwrap();
    assert!(
        !ack.session_present,
        "no stored session: a new one is created"
    );
    subscribed(&mut a, "present/t").await;
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();

    let (mut a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "present"))
            .await
            .unwrap();
    assert!(ack.session_present, "stored session resumed");
    // Resumed from the stored state: the subscription still delivers.
    let (mut publ, _) = RawClient::connect_v5(broker.addr, "present-pub")
        .await
        .unwrap();
    publ.send(publish("present/t", &b"still"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(&a.recv_publish(T).await.unwrap().payload[..], b"still");
}

#[tokio::test]
async fn v311_mqtt_3_2_2_2_and_v311_mqtt_3_2_2_3_and_v311_mqtt_3_1_2_4_session_present_reflects_stored_state()
 {
    let broker = common::start().await;
    let (mut a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V311, "present311"))
            .await
            .unwrap();
    assert!(!ack.session_present);
    subscribed(&mut a, "present311/t").await;
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();

    let (mut a, ack) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V311, "present311"))
            .await
            .unwrap();
    assert!(ack.session_present);
    let (mut publ, _) = RawClient::connect_v311(broker.addr, "present311-pub")
        .await
        .unwrap();
    publ.send(publish(
        "present311/t",
        &b"still"[..],
        QoS::AtMostOnce,
        None,
    ))
    .await
    .unwrap();
    assert_eq!(&a.recv_publish(T).await.unwrap().payload[..], b"still");
}

// ------------------------------------------------------------ refusals

#[tokio::test]
async fn v5_mqtt_3_2_2_6_and_mqtt_3_2_2_7_refusal_has_session_present_0_and_closes() {
    let broker = common::start().await;
    let (mut a, _) =
        RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "refused"))
            .await
            .unwrap();
    a.send(disconnect()).await.unwrap();
    a.expect_closed(T).await.unwrap();
    // A session exists, but the CONNECT is refused (will topic with a wildcard).
    let mut bad = persistent(ProtocolVersion::V5, "refused");
    bad.will = Some(will("bad/#", QoS::AtMostOnce, false));
    let (mut client, ack) = connack_for(broker.addr, bad).await;
    assert!(ack.reason_code.is_error(), "{ack:?}");
    assert!(!ack.session_present);
    assert_eq!(
        client.expect_closed(T).await.unwrap(),
        None,
        "no DISCONNECT after a refusing CONNACK"
    );
}

#[tokio::test]
async fn v311_mqtt_3_2_2_4_and_v311_mqtt_3_2_2_5_refusal_has_session_present_0_and_closes() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    let (mut client, ack) =
        connack_for(broker.addr, persistent(ProtocolVersion::V311, "anon")).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert!(!ack.session_present);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_1_4_2_and_mqtt_4_13_2_1_anonymous_refused_with_0x87_and_closed() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    let (mut client, ack) = connack_for(broker.addr, v5("anon5")).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_1_4_6_data_after_a_refused_connect_is_not_processed() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config.clone(), None).await;
    // Refused CONNECT followed, in the same write, by a retained PUBLISH.
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    let mut retained = publish(
        "after/refusal",
        &b"must not be stored"[..],
        QoS::AtMostOnce,
        None,
    );
    retained.retain = true;
    let mut bytes = bytes::BytesMut::new();
    let encoder = roost_codec::Encoder::new(ProtocolVersion::V5);
    encoder
        .encode(&Packet::Connect(Box::new(v5("refused-data"))), &mut bytes)
        .unwrap();
    encoder
        .encode(&Packet::Publish(retained), &mut bytes)
        .unwrap();
    client.send_bytes(&bytes).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
    assert_eq!(
        broker.handle.stats().retained_messages,
        0,
        "the PUBLISH was not processed"
    );
}

#[tokio::test]
async fn v311_mqtt_3_1_4_5_data_after_a_refused_connect_is_not_processed() {
    let broker = common::start().await;
    // Empty client id with Clean Session 0 is refused; the PUBLISH behind it is not processed.
    let mut refused = v311("");
    refused.clean_start = false;
    let mut retained = publish(
        "after/refusal",
        &b"must not be stored"[..],
        QoS::AtMostOnce,
        None,
    );
    retained.retain = true;
    let mut bytes = bytes::BytesMut::new();
    let encoder = roost_codec::Encoder::new(ProtocolVersion::V311);
    encoder
        .encode(&Packet::Connect(Box::new(refused)), &mut bytes)
        .unwrap();
    encoder
        .encode(&Packet::Publish(retained), &mut bytes)
        .unwrap();
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V311)
        .await
        .unwrap();
    client.send_bytes(&bytes).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_12_will_qos_above_maximum_gets_0x9b() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 1"), None).await;
    let mut c = v5("will-qos");
    c.will = Some(will("w/t", QoS::ExactlyOnce, false));
    let (mut client, ack) = connack_for(broker.addr, c).await;
    assert_eq!(ack.reason_code, ReasonCode::QOS_NOT_SUPPORTED);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_13_will_retain_without_retain_support_gets_0x9a() {
    let broker = common::start_with(common::config("[mqtt]\nretain_available = false"), None).await;
    let mut c = v5("will-retain");
    c.will = Some(will("w/t", QoS::AtMostOnce, true));
    let (mut client, ack) = connack_for(broker.addr, c).await;
    assert_eq!(ack.reason_code, ReasonCode::RETAIN_NOT_SUPPORTED);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_8_refusals_use_connack_reason_codes() {
    // The testkit decoder rejects any code outside the CONNACK table, so a
    // decoded refusal proves the code is one of them; check a few causes.
    let broker = common::start_with(common::config("[mqtt]\nmax_client_id_len = 4"), None).await;
    let (_c, ack) = connack_for(broker.addr, v5("much-too-long")).await;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    let mut c = v5("ok");
    c.will = Some(will("", QoS::AtMostOnce, false));
    let (_c, ack) = connack_for(broker.addr, c).await;
    assert_eq!(ack.reason_code, ReasonCode::TOPIC_NAME_INVALID);
}

// ------------------------------------------------------- client identifiers

#[tokio::test]
async fn mqtt_3_1_3_5_23_alphanumeric_characters_are_allowed() {
    let broker = common::start().await;
    let id = "0123456789abcdefghijKLM";
    assert_eq!(id.len(), 23);
    let (_a, ack) = RawClient::connect_v5(broker.addr, id).await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let id = "ABCDEFGHIJKLMNOPQRSTUVw";
    let (_b, ack) = RawClient::connect_v311(broker.addr, id).await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn v5_mqtt_3_1_3_6_and_mqtt_3_1_3_7_and_mqtt_3_2_2_16_empty_client_id_gets_a_unique_assigned_one()
 {
    let broker = common::start().await;
    let (mut a, ack_a) = RawClient::connect_v5(broker.addr, "").await.unwrap();
    let (_b, ack_b) = RawClient::connect_v5(broker.addr, "").await.unwrap();
    let id_a = ack_a
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    let id_b = ack_b
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b, "assigned identifiers are unique");
    // Processed as if the client had sent that identifier: an admin
    // disconnect by that id reaches this connection.
    assert!(broker.handle.disconnect_client(&id_a));
    let d = a.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::ADMINISTRATIVE_ACTION)
    );
}

#[tokio::test]
async fn v5_assigned_client_id_not_sent_when_the_client_chose_one() {
    let broker = common::start().await;
    let (_a, ack) = RawClient::connect_v5(broker.addr, "chosen").await.unwrap();
    assert_eq!(ack.properties.assigned_client_identifier, None);
}

#[tokio::test]
async fn v311_mqtt_3_1_3_6_empty_client_id_with_clean_session_1_is_accepted() {
    let broker = common::start().await;
    let (mut a, ack) = RawClient::connect_v311(broker.addr, "").await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let (_b, ack) = RawClient::connect_v311(broker.addr, "").await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    // Two empty-id clients got distinct identities: the first was not taken over.
    assert_quiet(&mut a).await;
    assert_eq!(broker.handle.stats().sessions, 2);
}

#[tokio::test]
async fn v311_mqtt_3_1_3_8_empty_client_id_with_clean_session_0_gets_return_code_2() {
    let broker = common::start().await;
    let mut c = v311("");
    c.clean_start = false;
    let got = raw_exchange(broker.addr, &{
        let mut buf = bytes::BytesMut::new();
        roost_codec::Encoder::new(ProtocolVersion::V311)
            .encode(&Packet::Connect(Box::new(c)), &mut buf)
            .unwrap();
        buf.to_vec()
    })
    .await;
    assert_eq!(
        got,
        [0x20, 0x02, 0x00, 0x02],
        "return code 0x02 Identifier rejected, then close"
    );
}

#[tokio::test]
async fn v311_mqtt_3_1_3_9_rejected_client_id_gets_return_code_2() {
    let broker = common::start_with(common::config("[mqtt]\nmax_client_id_len = 4"), None).await;
    let got = raw_exchange(broker.addr, &{
        let mut buf = bytes::BytesMut::new();
        roost_codec::Encoder::new(ProtocolVersion::V311)
            .encode(&Packet::Connect(Box::new(v311("too-long"))), &mut buf)
            .unwrap();
        buf.to_vec()
    })
    .await;
    assert_eq!(got, [0x20, 0x02, 0x00, 0x02]);
}

#[tokio::test]
async fn v5_mqtt_3_1_3_8_rejected_client_id_gets_0x85_and_close() {
    let broker = common::start_with(common::config("[mqtt]\nmax_client_id_len = 4"), None).await;
    let (mut client, ack) = connack_for(broker.addr, v5("too-long")).await;
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(!ack.session_present);
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn mqtt_3_1_3_2_client_id_identifies_the_session_state() {
    let broker = common::start().await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (owner_id, other_id) = match version {
            ProtocolVersion::V5 => ("owner5", "other5"),
            _ => ("owner311", "other311"),
        };
        let (mut owner, _) = RawClient::connect_with(broker.addr, persistent(version, owner_id))
            .await
            .unwrap();
        subscribed(&mut owner, &format!("{owner_id}/t")).await;
        owner.send(disconnect()).await.unwrap();
        owner.expect_closed(T).await.unwrap();
        // Another client id does not see that state.
        let (other, ack) = RawClient::connect_with(broker.addr, persistent(version, other_id))
            .await
            .unwrap();
        assert!(!ack.session_present);
        drop(other);
        // The same client id gets it back.
        let (_owner, ack) = RawClient::connect_with(broker.addr, persistent(version, owner_id))
            .await
            .unwrap();
        assert!(ack.session_present, "{version:?}");
    }
}

// ------------------------------------------------------- CONNACK properties

#[tokio::test]
async fn v5_connack_advertises_the_configured_limits() {
    let toml = "[mqtt]\nreceive_maximum = 10\nmaximum_qos = 1\nretain_available = false\n\
                max_packet_size = 4096\ntopic_alias_maximum = 7\nwildcard_subscription_available = false\n\
                subscription_identifiers_available = false\nshared_subscription_available = false\n";
    let broker = common::start_with(common::config(toml), None).await;
    let (_c, ack) = RawClient::connect_v5(broker.addr, "limits").await.unwrap();
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(10));
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.topic_alias_maximum, Some(7));
    assert_eq!(p.wildcard_subscription_available, Some(false));
    assert_eq!(p.subscription_identifiers_available, Some(false));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.authentication_method, None);
    assert_eq!(p.response_information, None);
}

#[tokio::test]
async fn v5_connack_leaves_out_properties_at_their_protocol_defaults() {
    let toml = "[mqtt]\nmaximum_qos = 2\ntopic_alias_maximum = 0\n";
    let broker = common::start_with(common::config(toml), None).await;
    let (_c, ack) = RawClient::connect_v5(broker.addr, "defaults")
        .await
        .unwrap();
    let p = &ack.properties;
    assert_eq!(p.maximum_qos, None, "absent means QoS 2");
    assert_eq!(p.retain_available, None, "absent means available");
    assert_eq!(p.topic_alias_maximum, None, "absent means 0");
    assert_eq!(p.wildcard_subscription_available, None);
    assert_eq!(p.server_keep_alive, None);
    assert_eq!(
        p.session_expiry_interval, None,
        "the client's value is granted"
    );
}

#[tokio::test]
async fn v5_mqtt_3_2_2_9_maximum_qos_advertised_when_qos_2_unsupported() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 0"), None).await;
    let (_c, ack) = RawClient::connect_v5(broker.addr, "qos0").await.unwrap();
    assert_eq!(ack.properties.maximum_qos, Some(QoS::AtMostOnce));
}

#[tokio::test]
async fn v5_mqtt_3_2_2_10_subscribe_with_qos_above_maximum_is_accepted() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 1"), None).await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, "sub-qos2")
        .await
        .unwrap();
    c.send(subscribe(3, "any/t", QoS::ExactlyOnce))
        .await
        .unwrap();
    match c.recv(T).await.unwrap() {
        Packet::SubAck(ack) => {
            assert_eq!(ack.packet_id, pid(3));
            assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn v5_session_expiry_above_the_cap_is_answered_with_the_granted_value() {
    let broker = common::start_with(
        common::config("[mqtt]\nmax_session_expiry_interval = 10"),
        None,
    )
    .await;
    let (_c, ack) = RawClient::connect_with(broker.addr, persistent(ProtocolVersion::V5, "capped"))
        .await
        .unwrap();
    assert_eq!(ack.properties.session_expiry_interval, Some(10));
}

#[tokio::test]
async fn v5_mqtt_3_1_2_28_response_information_only_when_requested() {
    let broker = common::start_with(
        common::config("[mqtt]\nresponse_information = \"reply/\""),
        None,
    )
    .await;
    let mut asks = v5("asker");
    asks.properties.request_response_information = Some(true);
    let (_a, ack) = RawClient::connect_with(broker.addr, asks).await.unwrap();
    assert_eq!(
        ack.properties.response_information.as_deref(),
        Some("reply/asker")
    );

    let mut declines = v5("decliner");
    declines.properties.request_response_information = Some(false);
    let (_b, ack) = RawClient::connect_with(broker.addr, declines)
        .await
        .unwrap();
    assert_eq!(ack.properties.response_information, None);

    let (_c, ack) = RawClient::connect_v5(broker.addr, "silent").await.unwrap();
    assert_eq!(ack.properties.response_information, None, "absent means 0");
}

#[tokio::test]
async fn v5_mqtt_3_1_2_29_no_reason_string_or_user_properties_when_problem_information_0() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    let mut c = v5("no-problems");
    c.properties.request_problem_information = Some(false);
    let (mut client, ack) = connack_for(broker.addr, c).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(ack.properties.reason_string, None);
    assert!(ack.properties.user_properties.is_empty());
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_2_2_19_and_mqtt_3_2_2_20_connack_stays_within_the_client_maximum_packet_size() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    let mut c = v5("tiny");
    c.properties.maximum_packet_size = Some(16);
    let mut buf = bytes::BytesMut::new();
    roost_codec::Encoder::new(ProtocolVersion::V5)
        .encode(&Packet::Connect(Box::new(c)), &mut buf)
        .unwrap();
    let got = raw_exchange(broker.addr, &buf).await;
    assert!(
        got.len() <= 16,
        "CONNACK of {} bytes: {got:02X?}",
        got.len()
    );
    assert_eq!(
        &got[..4],
        [0x20, 0x03, 0x00, 0x87],
        "refusal without Reason String or User Property"
    );
}

// ----------------------------------------------------------- credentials

#[tokio::test]
async fn v5_password_without_user_name_is_accepted() {
    let broker = common::start().await;
    let mut c = v5("pw-only");
    c.password = Some(bytes::Bytes::from_static(b"secret"));
    let (_c, ack) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn v311_password_without_user_name_is_malformed_and_closed() {
    let broker = common::start().await;
    // Connect flags: password (0x40) without user name (0x80), clean session.
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x42, 0x00, 0x3C];
    body.extend_from_slice(&[0x00, 0x01, b'a', 0x00, 0x02, b'p', b'w']);
    let got = raw_exchange(broker.addr, &framed(0x10, &body)).await;
    assert_eq!(got, [] as [u8; 0]);
}

#[tokio::test]
async fn unverified_user_name_is_refused_on_a_listener_without_anonymous_access() {
    // No authenticator vouches for "alice": a bare user name must not open a
    // listener that refuses anonymous clients (like Mosquitto 2).
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    let mut c = v311("named");
    c.username = Some(ByteString::from("alice"));
    c.password = Some(bytes::Bytes::from_static(b"pw"));
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V311)
        .await
        .unwrap();
    client.send(Packet::Connect(Box::new(c))).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

// --------------------------------------------------------- after CONNACK

#[tokio::test]
async fn v5_mqtt_3_1_4_5_accepted_client_exchanges_messages() {
    let broker = common::start().await;
    let (mut c, ack) = RawClient::connect_v5(broker.addr, "works").await.unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    subscribed(&mut c, "works/t").await;
    c.send(publish("works/t", &b"x"[..], QoS::AtLeastOnce, Some(9)))
        .await
        .unwrap();
    let mut got_ack = false;
    let mut got_msg = false;
    while !(got_ack && got_msg) {
        match c.recv(T).await.unwrap() {
            Packet::PubAck(PubResponse {
                packet_id,
                reason_code,
                ..
            }) => {
                assert_eq!(packet_id, pid(9));
                assert_eq!(reason_code, ReasonCode::SUCCESS);
                got_ack = true;
            }
            Packet::Publish(p) => {
                assert_eq!(&p.payload[..], b"x");
                if let Some(id) = p.packet_id {
                    c.send(Packet::PubAck(PubResponse::success(id)))
                        .await
                        .unwrap();
                }
                got_msg = true;
            }
            other => panic!("{other:?}"),
        }
    }
}

// ------------------------------------------------------------- transport

#[tokio::test]
async fn v5_mqtt_4_2_0_1_and_v311_mqtt_7_1_1_1_packets_split_byte_by_byte_arrive_whole_and_in_order()
 {
    let broker = common::start().await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let id = format!("dribble-{}", version.level());
        let encoder = roost_codec::Encoder::new(version);
        let mut bytes = bytes::BytesMut::new();
        encoder
            .encode(
                &Packet::Connect(Box::new(connect(version, &id))),
                &mut bytes,
            )
            .unwrap();
        encoder
            .encode(
                &Packet::Subscribe(subscribe(1, "dribble/t", QoS::AtMostOnce)),
                &mut bytes,
            )
            .unwrap();
        for i in 0..20u8 {
            let p = publish(
                "dribble/t",
                vec![i],
                QoS::AtLeastOnce,
                Some(u16::from(i) + 1),
            );
            encoder.encode(&Packet::Publish(p), &mut bytes).unwrap();
        }
        encoder.encode(&Packet::PingReq, &mut bytes).unwrap();

        let mut client = RawClient::connect(broker.addr, version).await.unwrap();
        for byte in bytes.iter() {
            client.send_bytes(&[*byte]).await.unwrap();
        }
        assert!(
            matches!(client.recv(T).await.unwrap(), Packet::ConnAck(a) if a.reason_code == ReasonCode::SUCCESS)
        );
        assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
        // Own messages come back through the subscription, so they may trail
        // the PINGRESP: read until every ack, the PINGRESP and every message.
        let (mut acks, mut payloads, mut pong) = (Vec::new(), Vec::new(), false);
        while !(pong && acks.len() == 20 && payloads.len() == 20) {
            match client.recv(T).await.unwrap() {
                Packet::PubAck(a) => acks.push(a.packet_id.get()),
                Packet::Publish(p) => payloads.push(p.payload[0]),
                Packet::PingResp => {
                    assert_eq!(acks.len(), 20, "PINGRESP after every PUBACK");
                    pong = true;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(acks, (1..=20).collect::<Vec<u16>>(), "{version:?}");
        assert_eq!(payloads, (0..20).collect::<Vec<u8>>(), "{version:?}");
    }
}

// ------------------------------------------- 3.1.1 refusals without a return code

/// Encodes a 3.1.1 CONNECT for a raw exchange.
fn v311_bytes(c: Connect) -> Vec<u8> {
    encoded(ProtocolVersion::V311, Packet::Connect(Box::new(c)))
}

#[tokio::test]
async fn v311_mqtt_3_2_2_6_will_topic_with_a_wildcard_closes_without_connack() {
    let broker = common::start().await;
    let mut c = v311("bad-will311");
    c.will = Some(will("bad/#", QoS::AtMostOnce, false));
    assert_eq!(
        raw_exchange(broker.addr, &v311_bytes(c)).await,
        [] as [u8; 0]
    );
}

#[tokio::test]
async fn v311_mqtt_3_2_2_6_will_qos_above_the_servers_maximum_closes_without_connack() {
    let broker = common::start_with(common::config("[mqtt]\nmaximum_qos = 1"), None).await;
    let mut c = v311("will-qos311");
    c.will = Some(will("w/t", QoS::ExactlyOnce, false));
    // 3.1.1 has no return code for it (0x03 would claim the service is down).
    assert_eq!(
        raw_exchange(broker.addr, &v311_bytes(c)).await,
        [] as [u8; 0]
    );
}

#[tokio::test]
async fn v311_mqtt_3_2_2_6_will_retain_without_retain_support_closes_without_connack() {
    let broker = common::start_with(common::config("[mqtt]\nretain_available = false"), None).await;
    let mut c = v311("will-retain311");
    c.will = Some(will("w/t", QoS::AtMostOnce, true));
    assert_eq!(
        raw_exchange(broker.addr, &v311_bytes(c)).await,
        [] as [u8; 0]
    );
}
