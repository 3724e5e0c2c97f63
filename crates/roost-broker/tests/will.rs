//! Will messages at the wire (MQTT 5.0 3.1.2.5, 3.1.3.2, 3.14.4; 3.1.1
//! 3.1.2.5): when a will is published or discarded, its QoS, retain flag
//! and properties, and the Will Delay Interval against reconnects and
//! session expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    Connect, Disconnect, LastWill, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    WillProperties,
};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, disconnect, publish, subscribe, unique_id};

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

fn will(topic: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: ByteString::from(topic),
        payload: Bytes::from_static(b"last words"),
        qos,
        retain,
        ..LastWill::default()
    }
}

fn willed(version: ProtocolVersion, id: &str, will: LastWill) -> Connect {
    let mut c = connect(version, id);
    c.will = Some(will);
    c
}

/// A 5.0 CONNECT with a will delayed by `delay` s and a session kept `expiry` s.
fn delayed(id: &str, topic: &str, delay: u32, expiry: u32) -> Connect {
    let mut w = will(topic, QoS::AtLeastOnce, false);
    w.properties.will_delay_interval = Some(delay);
    let mut c = willed(ProtocolVersion::V5, id, w);
    c.clean_start = false;
    c.properties.session_expiry_interval = (expiry > 0).then_some(expiry);
    c
}

/// A client subscribed to `filter` (at QoS 2 unless told otherwise).
async fn watcher(addr: SocketAddr, filter: &str, qos: QoS) -> RawClient {
    let (mut w, _) = RawClient::connect_v5(addr, &unique_id("watcher"))
        .await
        .unwrap();
    w.send(subscribe(1, filter, qos)).await.unwrap();
    match w.recv(T).await.unwrap() {
        Packet::SubAck(ack) => assert!(!ack.reason_codes[0].is_error()),
        other => panic!("{other:?}"),
    }
    w
}

/// Makes the server close `client` abnormally (a PINGREQ with a reserved flag
/// set is malformed) and waits until it has.
async fn broken(mut client: RawClient) {
    client.send_bytes(&[0xC1, 0x00]).await.unwrap();
    client.expect_closed(T).await.unwrap();
}

/// DISCONNECT with `reason` and wait until the server closed the connection.
async fn leave_with(mut client: RawClient, reason: ReasonCode) {
    client
        .send(Disconnect {
            reason_code: reason,
            ..Disconnect::default()
        })
        .await
        .unwrap();
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
}

/// Publishes a marker to `topic` and requires it to be the next message the
/// watcher gets: proves no will was published before it.
async fn next_is_marker(addr: SocketAddr, watcher: &mut RawClient, topic: &str) {
    let (mut p, _) = RawClient::connect_v5(addr, &unique_id("marker"))
        .await
        .unwrap();
    p.send(publish(topic, &b"marker"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    let got = watcher.recv_publish(T).await.unwrap();
    assert_eq!(
        &got.payload[..],
        b"marker",
        "expected no will before the marker, got {got:?}"
    );
}

async fn will_arrives(watcher: &mut RawClient) -> Publish {
    let got = watcher.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"last words", "{got:?}");
    got
}

// ------------------------------------------------------ published or not

#[tokio::test]
async fn v5_mqtt_3_1_2_7_and_mqtt_3_1_2_8_will_published_when_the_connection_drops() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::ExactlyOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "dropper",
            will("will/dropper", QoS::AtLeastOnce, false),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    let got = will_arrives(&mut w).await;
    assert_eq!(got.topic, "will/dropper");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert!(!got.retain);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_8_will_published_when_the_connection_drops() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::ExactlyOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V311,
            "dropper311",
            will("will/d311", QoS::ExactlyOnce, false),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    let got = will_arrives(&mut w).await;
    assert_eq!(got.topic, "will/d311");
    assert_eq!(got.qos, QoS::ExactlyOnce);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_8_will_published_after_a_protocol_error() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "erring",
            will("will/err", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    broken(c).await;
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v5_mqtt_3_14_4_3_and_mqtt_3_1_2_10_disconnect_0x00_discards_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "polite",
            will("will/polite", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    leave_with(c, ReasonCode::NORMAL_DISCONNECTION).await;
    next_is_marker(broker.addr, &mut w, "will/polite").await;
}

#[tokio::test]
async fn v311_mqtt_3_14_4_3_and_v311_mqtt_3_1_2_10_disconnect_discards_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V311,
            "polite311",
            will("will/p311", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    c.send(disconnect()).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
    next_is_marker(broker.addr, &mut w, "will/p311").await;
}

#[tokio::test]
async fn v5_mqtt_3_1_2_8_disconnect_with_will_message_0x04_publishes_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "wants-will",
            will("will/0x04", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    leave_with(c, ReasonCode::DISCONNECT_WITH_WILL).await;
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v311_mqtt_3_1_2_12_no_will_flag_no_will_message() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_v311(broker.addr, "no-will")
        .await
        .unwrap();
    broken(c).await;
    next_is_marker(broker.addr, &mut w, "after/no-will").await;
}

// ------------------------------------------------------ QoS, retain, properties

#[tokio::test]
async fn v5_will_qos_is_capped_by_the_subscription() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtMostOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "qos2-will",
            will("will/q2", QoS::ExactlyOnce, false),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    assert_eq!(will_arrives(&mut w).await.qos, QoS::AtMostOnce);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_14_will_retain_0_is_published_non_retained() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "transient",
            will("will/nr", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    assert!(!will_arrives(&mut w).await.retain);
    // Not stored: a later subscriber gets nothing.
    let mut late = watcher(broker.addr, "will/nr", QoS::AtLeastOnce).await;
    late.send(Packet::PingReq).await.unwrap();
    assert_eq!(late.recv(T).await.unwrap(), Packet::PingResp);
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v311_mqtt_3_1_2_16_will_retain_0_is_published_non_retained() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V311,
            "transient311",
            will("will/nr311", QoS::AtMostOnce, false),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    assert!(!will_arrives(&mut w).await.retain);
    assert_eq!(broker.handle.stats().retained_messages, 0);
}

#[tokio::test]
async fn v5_mqtt_3_1_2_15_will_retain_1_is_published_retained() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V5,
            "sticky",
            will("will/r", QoS::AtLeastOnce, true),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    will_arrives(&mut w).await;
    let mut late = watcher(broker.addr, "will/r", QoS::AtLeastOnce).await;
    let got = will_arrives(&mut late).await;
    assert!(
        got.retain,
        "a retained will reaches new subscribers as retained"
    );
}

#[tokio::test]
async fn v311_mqtt_3_1_2_17_will_retain_1_is_published_retained() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(
        broker.addr,
        willed(
            ProtocolVersion::V311,
            "sticky311",
            will("will/r311", QoS::AtLeastOnce, true),
        ),
    )
    .await
    .unwrap();
    c.drop_connection().await.unwrap();
    will_arrives(&mut w).await;
    let (mut late, _) = RawClient::connect_v311(broker.addr, "late311")
        .await
        .unwrap();
    late.send(subscribe(1, "will/r311", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(late.recv(T).await.unwrap(), Packet::SubAck(_)));
    assert!(will_arrives(&mut late).await.retain);
}

#[tokio::test]
async fn v5_mqtt_3_1_3_10_will_properties_are_forwarded_with_user_property_order() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let user_properties: Vec<(ByteString, ByteString)> = [("b", "1"), ("a", "2"), ("b", "3")]
        .into_iter()
        .map(|(k, v)| (ByteString::from(k), ByteString::from(v)))
        .collect();
    let mut last = will("will/props", QoS::AtLeastOnce, false);
    last.properties = WillProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(600),
        content_type: Some(ByteString::from("text/plain")),
        response_topic: Some(ByteString::from("reply/here")),
        correlation_data: Some(Bytes::from_static(b"corr")),
        user_properties: user_properties.clone(),
        ..WillProperties::default()
    };
    let (c, _) = RawClient::connect_with(broker.addr, willed(ProtocolVersion::V5, "props", last))
        .await
        .unwrap();
    c.drop_connection().await.unwrap();
    let got = will_arrives(&mut w).await;
    let p = &got.properties;
    assert_eq!(p.user_properties, user_properties);
    assert_eq!(p.payload_format_indicator, Some(true));
    assert!(
        p.message_expiry_interval
            .is_some_and(|e| (590..=600).contains(&e)),
        "{p:?}"
    );
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"corr"[..]));
}

// ------------------------------------------------------------ will delay

#[tokio::test]
async fn v5_mqtt_3_1_2_8_will_waits_for_its_delay_interval() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(broker.addr, delayed("patient", "will/delay", 1, 60))
        .await
        .unwrap();
    broken(c).await;
    let closed = tokio::time::Instant::now();
    next_is_marker(broker.addr, &mut w, "will/delay").await;
    will_arrives(&mut w).await;
    assert!(
        closed.elapsed() >= Duration::from_millis(800),
        "will came after {:?}",
        closed.elapsed()
    );
}

#[tokio::test]
async fn v5_mqtt_3_1_3_9_reconnect_within_the_will_delay_cancels_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(broker.addr, delayed("returns", "will/back", 1, 60))
        .await
        .unwrap();
    broken(c).await;
    let (_c, ack) = RawClient::connect_with(broker.addr, delayed("returns", "will/back", 1, 60))
        .await
        .unwrap();
    assert!(ack.session_present);
    // Past the delay, the old will must not have been sent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    next_is_marker(broker.addr, &mut w, "will/back").await;
}

#[tokio::test]
async fn v5_mqtt_3_1_2_8_will_published_when_the_session_ends_before_the_delay() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) =
        RawClient::connect_with(broker.addr, delayed("short-session", "will/end", 3600, 1))
            .await
            .unwrap();
    broken(c).await;
    let closed = tokio::time::Instant::now();
    will_arrives(&mut w).await;
    assert!(
        closed.elapsed() < Duration::from_secs(3),
        "published at session end, not after the delay"
    );
}

#[tokio::test]
async fn v5_delayed_will_published_at_once_when_the_session_ends_with_the_connection() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(broker.addr, delayed("no-session", "will/now", 3600, 0))
        .await
        .unwrap();
    broken(c).await;
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v5_mqtt_3_1_2_8_clean_start_reconnect_ends_the_session_and_publishes_the_delayed_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) =
        RawClient::connect_with(broker.addr, delayed("restart", "will/restart", 3600, 3600))
            .await
            .unwrap();
    broken(c).await;
    let mut fresh = delayed("restart", "will/restart", 3600, 3600);
    fresh.clean_start = true;
    fresh.will = None;
    let (_c, ack) = RawClient::connect_with(broker.addr, fresh).await.unwrap();
    assert!(!ack.session_present);
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v5_disconnect_0x04_honours_the_will_delay() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (c, _) = RawClient::connect_with(broker.addr, delayed("later", "will/later", 1, 60))
        .await
        .unwrap();
    leave_with(c, ReasonCode::DISCONNECT_WITH_WILL).await;
    next_is_marker(broker.addr, &mut w, "will/later").await;
    will_arrives(&mut w).await;
}

// ---------------------------------------------------- keep-alive, takeover, shutdown

#[tokio::test]
async fn v5_mqtt_3_1_2_8_will_published_after_keep_alive_timeout() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let mut c = willed(
        ProtocolVersion::V5,
        "sleepy",
        will("will/ka", QoS::AtMostOnce, false),
    );
    c.keep_alive = 1;
    let (mut c, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    let d = c.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v311_mqtt_3_1_2_8_will_published_after_keep_alive_timeout() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let mut c = willed(
        ProtocolVersion::V311,
        "sleepy311",
        will("will/ka311", QoS::AtMostOnce, false),
    );
    c.keep_alive = 1;
    let (mut c, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    assert_eq!(c.expect_closed(T).await.unwrap(), None);
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v5_takeover_publishes_the_old_connections_will_without_delay() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let mut first = willed(
        ProtocolVersion::V5,
        "usurped",
        will("will/usurped", QoS::AtMostOnce, false),
    );
    first.clean_start = false;
    first.properties.session_expiry_interval = Some(60);
    let (mut old, _) = RawClient::connect_with(broker.addr, first).await.unwrap();
    let mut second = connect(ProtocolVersion::V5, "usurped");
    second.clean_start = false;
    second.properties.session_expiry_interval = Some(60);
    let (_new, ack) = RawClient::connect_with(broker.addr, second).await.unwrap();
    assert!(ack.session_present);
    let d = old.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    will_arrives(&mut w).await;
}

#[tokio::test]
async fn v5_mqtt_3_1_3_9_takeover_within_the_will_delay_does_not_publish_the_will() {
    let broker = common::start().await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    let (mut old, _) =
        RawClient::connect_with(broker.addr, delayed("resumer", "will/resumer", 1, 60))
            .await
            .unwrap();
    let (_new, ack) =
        RawClient::connect_with(broker.addr, delayed("resumer", "will/resumer", 1, 60))
            .await
            .unwrap();
    assert!(ack.session_present);
    old.expect_closed(T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    next_is_marker(broker.addr, &mut w, "will/resumer").await;
}

#[tokio::test]
async fn v5_shutdown_publishes_delayed_wills_at_once() {
    let broker = common::start().await;
    let mut c = delayed("at-shutdown", "will/shutdown", 3600, 3600);
    if let Some(w) = c.will.as_mut() {
        w.retain = true;
    }
    let (mut c, _) = RawClient::connect_with(broker.addr, c).await.unwrap();
    broker.handle.shutdown();
    let d = c.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    // Every subscriber is gone too; the retained store shows the will went out.
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().retained_messages == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "will not published at shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn v311_mqtt_3_1_2_8_refused_connect_never_publishes_its_will() {
    let broker = common::start_with(common::config("[mqtt]\nmax_client_id_len = 32"), None).await;
    let mut w = watcher(broker.addr, "will/#", QoS::AtLeastOnce).await;
    // Refused (identifier too long), so the will was never stored.
    let c = willed(
        ProtocolVersion::V311,
        "an-identifier-longer-than-thirty-two-bytes",
        will("will/refused", QoS::AtMostOnce, false),
    );
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V311)
        .await
        .unwrap();
    client.send(c).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.expect_closed(T).await.unwrap(), None);
    next_is_marker(broker.addr, &mut w, "will/refused").await;
}
