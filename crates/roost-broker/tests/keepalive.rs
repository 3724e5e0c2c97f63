//! Keep-alive at the wire (MQTT 5.0 3.1.2.10, 3.2.2.3.14, 3.12; 3.1.1
//! 3.1.2.10, 3.12): one and a half times the Keep Alive without a packet
//! closes the connection (5.0: DISCONNECT 0x8D), any packet resets the
//! timer, PINGREQ gets PINGRESP, and the Server Keep Alive cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(5);

fn with_keep_alive(version: ProtocolVersion, id: &str, seconds: u16) -> Connect {
    let mut c = connect(version, id);
    c.keep_alive = seconds;
    c
}

async fn ping(client: &mut RawClient) {
    client.send(Packet::PingReq).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PingResp => {}
        other => panic!("expected PINGRESP, got {other:?}"),
    }
}

#[tokio::test]
async fn mqtt_3_12_4_1_pingreq_gets_pingresp() {
    let broker = common::start().await;
    let (mut a, _) = RawClient::connect_v5(broker.addr, "pinger5").await.unwrap();
    let (mut b, _) = RawClient::connect_v311(broker.addr, "pinger311")
        .await
        .unwrap();
    for _ in 0..3 {
        ping(&mut a).await;
        ping(&mut b).await;
    }
}

#[tokio::test]
async fn v5_mqtt_3_1_2_22_silence_for_one_and_a_half_keep_alive_closes_with_0x8d() {
    let broker = common::start().await;
    let started = Instant::now();
    let (mut c, ack) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "silent5", 1),
    )
    .await
    .unwrap();
    assert_eq!(ack.properties.server_keep_alive, None);
    let d = c.expect_closed(T).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed after {elapsed:?}, before 1.5 x 1 s"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
}

#[tokio::test]
async fn v311_mqtt_3_1_2_24_silence_for_one_and_a_half_keep_alive_closes() {
    let broker = common::start().await;
    let started = Instant::now();
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V311, "silent311", 1),
    )
    .await
    .unwrap();
    assert_eq!(
        c.expect_closed(T).await.unwrap(),
        None,
        "3.1.1 has no DISCONNECT from the server"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
}

#[tokio::test]
async fn v5_mqtt_3_1_2_22_grace_is_one_and_a_half_not_one_keep_alive() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "grace", 2),
    )
    .await
    .unwrap();
    // 2.4 s of silence is past the Keep Alive (2 s) but within 1.5 x (3 s).
    tokio::time::sleep(Duration::from_millis(2400)).await;
    ping(&mut c).await;
}

#[tokio::test]
async fn v5_mqtt_3_1_2_22_pingreq_keeps_the_connection_open() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "pinging", 1),
    )
    .await
    .unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ping(&mut c).await;
    }
}

#[tokio::test]
async fn v311_mqtt_3_1_2_24_any_packet_resets_the_timer() {
    let broker = common::start().await;
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V311, "publishing", 1),
    )
    .await
    .unwrap();
    // QoS 0 PUBLISH gets no answer; only its arrival keeps the connection alive.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send(publish("alive/t", &b"x"[..], QoS::AtMostOnce, None))
            .await
            .unwrap();
    }
    ping(&mut c).await;
}

#[tokio::test]
async fn mqtt_3_1_2_22_keep_alive_0_never_times_out() {
    let broker = common::start().await;
    let (mut a, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "forever5", 0),
    )
    .await
    .unwrap();
    let (mut b, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V311, "forever311", 0),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    ping(&mut a).await;
    ping(&mut b).await;
}

#[tokio::test]
async fn v5_mqtt_3_2_2_22_without_server_keep_alive_the_clients_value_is_used() {
    let broker = common::start().await;
    let (mut c, ack) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "own-value", 2),
    )
    .await
    .unwrap();
    assert_eq!(ack.properties.server_keep_alive, None);
    // Still open past 1.5 x 1 s (a shorter value would have closed it)…
    tokio::time::sleep(Duration::from_millis(1700)).await;
    ping(&mut c).await;
    // …and closed after 1.5 x 2 s of silence.
    let started = Instant::now();
    let d = c.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(2800),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn v5_server_keep_alive_caps_a_longer_client_value_and_is_enforced() {
    let broker = common::start_with(common::config("[mqtt]\nmax_keep_alive = 1"), None).await;
    let started = Instant::now();
    let (mut c, ack) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "capped", 60),
    )
    .await
    .unwrap();
    assert_eq!(ack.properties.server_keep_alive, Some(1));
    let d = c.expect_closed(T).await.unwrap();
    assert_eq!(
        d.map(|d| d.reason_code),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn v5_server_keep_alive_replaces_a_client_keep_alive_of_0() {
    let broker = common::start_with(common::config("[mqtt]\nmax_keep_alive = 30"), None).await;
    let (_c, ack) =
        RawClient::connect_with(broker.addr, with_keep_alive(ProtocolVersion::V5, "zero", 0))
            .await
            .unwrap();
    assert_eq!(ack.properties.server_keep_alive, Some(30));
}

#[tokio::test]
async fn v5_server_keep_alive_absent_when_the_client_value_is_within_the_cap() {
    let broker = common::start_with(common::config("[mqtt]\nmax_keep_alive = 30"), None).await;
    let (_c, ack) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V5, "within", 10),
    )
    .await
    .unwrap();
    assert_eq!(ack.properties.server_keep_alive, None);
}

#[tokio::test]
async fn v311_keep_alive_cap_does_not_shorten_a_3_1_1_clients_value() {
    // A 3.1.1 client cannot be told a Server Keep Alive, so its own value holds.
    let broker = common::start_with(common::config("[mqtt]\nmax_keep_alive = 1"), None).await;
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        with_keep_alive(ProtocolVersion::V311, "uncapped", 60),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    ping(&mut c).await;
}
