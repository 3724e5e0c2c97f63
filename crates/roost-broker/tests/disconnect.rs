//! DISCONNECT in both directions and closing on errors (MQTT 5.0 3.14,
//! 4.13; 3.1.1 3.14, 4.8): the server's reason codes (0x8B shutdown, 0x98
//! administrative action, 0x81 malformed, 0x82 protocol error), nothing after
//! a DISCONNECT, and what a client's DISCONNECT ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    Connect, Disconnect, DisconnectProperties, Encoder, LastWill, Packet, ProtocolVersion, QoS,
    ReasonCode,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, publish, subscribe, unique_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

fn willed(id: &str, topic: &str) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id);
    c.will = Some(LastWill {
        topic: ByteString::from(topic),
        payload: Bytes::from_static(b"last words"),
        ..LastWill::default()
    });
    c
}

async fn watcher(addr: SocketAddr, filter: &str) -> RawClient {
    let (mut w, _) = RawClient::connect_v5(addr, &unique_id("watcher"))
        .await
        .unwrap();
    w.send(subscribe(1, filter, QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(w.recv(T).await.unwrap(), Packet::SubAck(_)));
    w
}

/// Expects DISCONNECT with `reason`, nothing after it [MQTT-3.14.4-1], then
/// the close [MQTT-3.14.4-2]; returns the DISCONNECT.
async fn closed_with(client: &mut RawClient, reason: ReasonCode) -> Disconnect {
    let d = client
        .expect_closed(T)
        .await
        .unwrap()
        .expect("a DISCONNECT before the close");
    assert_eq!(d.reason_code, reason, "{d:?}");
    d
}

/// Sends raw bytes after a successful 5.0 CONNECT, in one write.
async fn v5_then_bytes(addr: SocketAddr, id: &str, bytes: &[u8]) -> RawClient {
    let (mut c, _) = RawClient::connect_v5(addr, id).await.unwrap();
    c.send_bytes(bytes).await.unwrap();
    c
}

// ------------------------------------------------------ server-initiated

#[tokio::test]
async fn v5_mqtt_3_14_4_1_and_mqtt_3_14_4_2_and_mqtt_3_14_2_2_shutdown_sends_0x8b_then_closes() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, "at-shutdown")
        .await
        .unwrap();
    broker.handle.shutdown();
    let d = closed_with(&mut c, ReasonCode::SERVER_SHUTTING_DOWN).await;
    assert_eq!(
        d.properties.session_expiry_interval, None,
        "a server never sends Session Expiry Interval"
    );
}

#[tokio::test]
async fn v311_shutdown_closes_without_disconnect() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "at-shutdown311")
        .await
        .unwrap();
    broker.handle.shutdown();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_connect_during_shutdown_is_refused_with_0x88_or_not_accepted() {
    let broker = common::start().await;
    let (mut held, _) = RawClient::connect_v5(broker.addr, "holder").await.unwrap();
    broker.handle.shutdown();
    closed_with(&mut held, ReasonCode::SERVER_SHUTTING_DOWN).await;
    // The listener is closed, or the CONNECT is refused: never accepted.
    if let Ok(mut late) = RawClient::connect(broker.addr, ProtocolVersion::V5).await
        && late
            .send(connect(ProtocolVersion::V5, "late"))
            .await
            .is_ok()
    {
        match late.recv(T).await {
            Ok(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE)
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    }
}

#[tokio::test]
async fn v5_mqtt_3_14_2_2_administrative_disconnect_sends_0x98_and_closes() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, "kicked").await.unwrap();
    assert!(broker.handle.disconnect_client("kicked"));
    let d = closed_with(&mut c, ReasonCode::ADMINISTRATIVE_ACTION).await;
    assert_eq!(d.properties.session_expiry_interval, None);
}

#[tokio::test]
async fn v311_administrative_disconnect_closes() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "kicked311")
        .await
        .unwrap();
    assert!(broker.handle.disconnect_client("kicked311"));
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn administrative_disconnect_of_an_unknown_or_offline_client_is_false() {
    let broker = common::start().await;
    assert!(!broker.handle.disconnect_client("nobody"));
    let mut c = connect(ProtocolVersion::V5, "parked");
    c.properties.session_expiry_interval = Some(60);
    let (mut c, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    c.send(disconnect()).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
    assert!(
        !broker.handle.disconnect_client("parked"),
        "a parked session has no connection"
    );
}

#[tokio::test]
async fn v5_administrative_disconnect_publishes_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#").await;
    let (mut c, _) = RawClient::connect_with(broker.addr, willed("kicked-will", "will/kicked"))
        .await
        .unwrap();
    assert!(broker.handle.disconnect_client("kicked-will"));
    closed_with(&mut c, ReasonCode::ADMINISTRATIVE_ACTION).await;
    assert_eq!(&w.recv_publish(T).await.unwrap().payload[..], b"last words");
}

#[tokio::test]
async fn v5_mqtt_3_14_2_3_and_mqtt_3_14_2_4_server_disconnect_fits_the_client_maximum_packet_size()
{
    let broker = common::start().await;
    let mut c = connect(ProtocolVersion::V5, "small");
    c.properties.maximum_packet_size = Some(32);
    let (mut c, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert!(broker.handle.disconnect_client("small"));
    let d = closed_with(&mut c, ReasonCode::ADMINISTRATIVE_ACTION).await;
    // Neither optional property is sent, so the packet cannot outgrow the limit.
    assert_eq!(d.properties.reason_string, None);
    assert_eq!(d.properties.server_reference, None);
    let mut buf = bytes::BytesMut::new();
    Encoder::new(ProtocolVersion::V5)
        .encode(&Packet::Disconnect(d), &mut buf)
        .unwrap();
    assert!(buf.len() <= 32);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_24_connack_larger_than_the_client_maximum_closes_without_sending_it() {
    let broker = common::start().await;
    // No CONNACK fits in 8 bytes once the server's limits are advertised.
    let mut c = connect(ProtocolVersion::V5, "tiny");
    c.properties.maximum_packet_size = Some(8);
    let mut buf = bytes::BytesMut::new();
    Encoder::new(ProtocolVersion::V5)
        .encode(&Packet::Connect(Box::new(c)), &mut buf)
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
    stream.write_all(&buf).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(T, stream.read_to_end(&mut got))
        .await
        .expect("closed, not left waiting")
        .unwrap();
    assert_eq!(got, [] as [u8; 0]);
}

// ------------------------------------------------------ errors close

#[tokio::test]
async fn v5_mqtt_3_14_1_1_disconnect_with_reserved_flags_gets_0x81() {
    let broker = common::start().await;
    let mut c = v5_then_bytes(broker.addr, "bad-flags", &[0xE1, 0x00]).await;
    closed_with(&mut c, ReasonCode::MALFORMED_PACKET).await;
}

#[tokio::test]
async fn v311_mqtt_3_14_1_1_disconnect_with_reserved_flags_closes() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "bad-flags311")
        .await
        .unwrap();
    c.send_bytes(&[0xE1, 0x00]).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_and_mqtt_4_13_2_1_and_mqtt_3_14_2_1_malformed_packet_gets_0x81_and_close()
{
    let broker = common::start().await;
    // PUBLISH with QoS 3.
    let mut c = v5_then_bytes(
        broker.addr,
        "qos3",
        &[0x36, 0x06, 0x00, 0x01, b't', 0x00, 0x01, 0x00],
    )
    .await;
    closed_with(&mut c, ReasonCode::MALFORMED_PACKET).await;
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_and_mqtt_3_14_2_1_protocol_error_gets_0x82_and_close() {
    let broker = common::start().await;
    // A CONNACK from the client: only servers send it.
    let mut c = v5_then_bytes(broker.addr, "connack", &[0x20, 0x03, 0x00, 0x00, 0x00]).await;
    closed_with(&mut c, ReasonCode::PROTOCOL_ERROR).await;
}

/// Every packet only a server sends is a Protocol Error from a client (4.13),
/// 0x82 and not 0x81, whether its body is a 5.0 one or a 3.1.1-shaped one
/// (which would not parse as 5.0).
#[tokio::test]
async fn v5_server_only_packets_from_a_client_get_0x82_whatever_their_body() {
    let broker = common::start().await;
    let cases: [(&str, &[u8]); 7] = [
        ("connack", &[0x20, 0x03, 0x00, 0x00, 0x00]),
        ("connack-311", &[0x20, 0x02, 0x00, 0x00]),
        ("suback", &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00]),
        ("suback-311", &[0x90, 0x03, 0x00, 0x01, 0x00]),
        ("unsuback", &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x00]),
        ("unsuback-311", &[0xB0, 0x02, 0x00, 0x01]),
        ("pingresp", &[0xD0, 0x00]),
    ];
    for (name, bytes) in cases {
        let mut c = v5_then_bytes(broker.addr, &unique_id(name), bytes).await;
        let d = c.expect_closed(T).await.unwrap();
        assert_eq!(
            d.map(|d| d.reason_code),
            Some(ReasonCode::PROTOCOL_ERROR),
            "{name}"
        );
    }
    // Reserved fixed-header flags stay malformed (0x81), server-only or not.
    let mut c = v5_then_bytes(broker.addr, &unique_id("pingresp-flags"), &[0xD1, 0x00]).await;
    closed_with(&mut c, ReasonCode::MALFORMED_PACKET).await;
}

/// 3.1.1: a server-only packet from a client just closes the connection.
#[tokio::test]
async fn v311_server_only_packets_from_a_client_close_the_connection() {
    let broker = common::start().await;
    let cases: [(&str, &[u8]); 4] = [
        ("connack", &[0x20, 0x02, 0x00, 0x00]),
        ("suback", &[0x90, 0x03, 0x00, 0x01, 0x00]),
        ("unsuback", &[0xB0, 0x02, 0x00, 0x01]),
        ("pingresp", &[0xD0, 0x00]),
    ];
    for (name, bytes) in cases {
        let (mut c, _) = RawClient::connect_v311(broker.addr, &unique_id(name))
            .await
            .unwrap();
        c.send_bytes(bytes).await.unwrap();
        assert_eq!(c.expect_closed(T).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn v5_mqtt_4_13_1_1_unknown_disconnect_reason_code_is_a_protocol_error() {
    let broker = common::start().await;
    let mut c = v5_then_bytes(broker.addr, "odd-reason", &[0xE0, 0x01, 0x03]).await;
    closed_with(&mut c, ReasonCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn v311_mqtt_4_8_0_1_protocol_violation_closes_the_connection() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "pingresp311")
        .await
        .unwrap();
    // A PINGRESP from the client: only servers send it.
    c.send_bytes(&[0xD0, 0x00]).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v311_mqtt_4_8_0_1_malformed_packet_closes_the_connection() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "qos3-311")
        .await
        .unwrap();
    c.send_bytes(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01])
        .await
        .unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_14_0_1_no_disconnect_before_a_successful_connack() {
    let mut config = common::config("");
    config.listeners[0].allow_anonymous = Some(false);
    let broker = common::start_with(config, None).await;
    // A refused CONNECT and a protocol error behind it in the same write:
    // CONNACK 0x87, then the close, never a DISCONNECT.
    let mut buf = bytes::BytesMut::new();
    Encoder::new(ProtocolVersion::V5)
        .encode(
            &Packet::Connect(Box::new(connect(ProtocolVersion::V5, "refused"))),
            &mut buf,
        )
        .unwrap();
    buf.extend_from_slice(&[0x20, 0x03, 0x00, 0x00, 0x00]);
    let mut c = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    c.send_bytes(&buf).await.unwrap();
    match c.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_3_14_0_1_connack_precedes_a_disconnect_for_an_error_in_the_same_write() {
    let broker = common::start().await;
    let mut buf = bytes::BytesMut::new();
    Encoder::new(ProtocolVersion::V5)
        .encode(
            &Packet::Connect(Box::new(connect(ProtocolVersion::V5, "eager"))),
            &mut buf,
        )
        .unwrap();
    buf.extend_from_slice(&[0x20, 0x03, 0x00, 0x00, 0x00]); // CONNACK from the client
    let mut c = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    c.send_bytes(&buf).await.unwrap();
    match c.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::SUCCESS),
        other => panic!("CONNACK must come first, got {other:?}"),
    }
    closed_with(&mut c, ReasonCode::PROTOCOL_ERROR).await;
}

// ------------------------------------------------------ client-initiated

#[tokio::test]
async fn v5_session_expiry_on_disconnect_after_connect_had_none_is_a_protocol_error() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, "sneaky").await.unwrap();
    c.send(Disconnect {
        reason_code: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..DisconnectProperties::default()
        },
    })
    .await
    .unwrap();
    closed_with(&mut c, ReasonCode::PROTOCOL_ERROR).await;
    let mut again = connect(ProtocolVersion::V5, "sneaky");
    again.clean_start = false;
    let (_c, ack) = RawClient::connect_with(broker.addr, again).await.unwrap();
    assert!(
        !ack.session_present,
        "the session still ended with the connection"
    );
}

#[tokio::test]
async fn v5_server_closes_after_a_client_disconnect_and_ignores_what_follows() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v5(broker.addr, "leaving").await.unwrap();
    let mut retained = publish("after/disconnect", &b"ignored"[..], QoS::AtMostOnce, None);
    retained.retain = true;
    let mut buf = bytes::BytesMut::new();
    let encoder = Encoder::new(ProtocolVersion::V5);
    encoder.encode(&disconnect(), &mut buf).unwrap();
    encoder
        .encode(&Packet::Publish(retained), &mut buf)
        .unwrap();
    c.send_bytes(&buf).await.unwrap();
    assert_eq!(
        c.expect_closed(T).await.unwrap(),
        None,
        "no DISCONNECT answers a DISCONNECT"
    );
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v311_server_closes_after_a_client_disconnect() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_v311(broker.addr, "leaving311")
        .await
        .unwrap();
    c.send(disconnect()).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
}

#[tokio::test]
async fn v5_mqtt_4_13_2_1_client_disconnect_with_an_error_code_closes_and_keeps_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#").await;
    let (mut c, _) = RawClient::connect_with(broker.addr, willed("failing", "will/failing"))
        .await
        .unwrap();
    c.send(Disconnect {
        reason_code: ReasonCode::UNSPECIFIED_ERROR,
        ..Disconnect::default()
    })
    .await
    .unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
    assert_eq!(&w.recv_publish(T).await.unwrap().payload[..], b"last words");
}
