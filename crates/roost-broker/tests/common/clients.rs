//! Opening clients and the SUBSCRIBE / close exchanges most tests start or
//! end with.

use std::net::SocketAddr;
use std::time::Duration;

use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, subscribe, unique_id};

use super::{T, TestBroker};

/// Connects with a plain CONNECT for `version` and a unique id from `prefix`.
pub async fn open(addr: SocketAddr, version: ProtocolVersion, prefix: &str) -> RawClient {
    open_with(addr, connect(version, &unique_id(prefix))).await
}

/// A 5.0 client with a unique id from `prefix`.
pub async fn open_v5(addr: SocketAddr, prefix: &str) -> RawClient {
    open(addr, ProtocolVersion::V5, prefix).await
}

/// Connects with this CONNECT (whatever the CONNACK says).
pub async fn open_with(addr: SocketAddr, connect: Connect) -> RawClient {
    RawClient::connect_with(addr, connect).await.unwrap().0
}

/// Sends `connect` and returns the CONNACK code, whatever it is.
pub async fn connack(addr: SocketAddr, connect: Connect) -> (RawClient, ReasonCode) {
    let mut client = RawClient::connect(addr, connect.protocol).await.unwrap();
    client
        .send(Packet::Connect(Box::new(connect)))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => (client, ack.reason_code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// Subscribes to one filter (packet id 1) and returns the SUBACK code.
pub async fn sub(client: &mut RawClient, filter: &str, qos: QoS) -> ReasonCode {
    client.send(subscribe(1, filter, qos)).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::SubAck(ack) => ack.reason_codes[0],
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Subscribes to one filter (packet id 1) and requires it to be granted.
pub async fn subscribed(client: &mut RawClient, filter: &str, qos: QoS) {
    client.send(subscribe(1, filter, qos)).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::SubAck(ack) => assert!(!ack.reason_codes[0].is_error(), "{ack:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// The server closes: 5.0 with DISCONNECT `reason` first, 3.1.1 silently.
pub async fn expect_closed(client: &mut RawClient, reason: ReasonCode) {
    let disconnect = client.expect_closed(T).await.unwrap();
    if client.version().is_v5() {
        assert_eq!(disconnect.map(|d| d.reason_code), Some(reason));
    } else {
        assert_eq!(disconnect, None);
    }
}

/// The server closes a 5.0 client with DISCONNECT `reason` first.
pub async fn expect_disconnect(client: &mut RawClient, reason: ReasonCode) {
    let disconnect = client.expect_closed(T).await.unwrap();
    assert_eq!(disconnect.map(|d| d.reason_code), Some(reason));
}

/// Drops the connection without DISCONNECT and waits (bounded) until the
/// broker has finished with it, so a later connection does not race the old
/// connection's driver.
pub async fn drop_and_wait(broker: &TestBroker, client: RawClient) {
    let before = broker.handle.stats().connections_current;
    client.drop_connection().await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while broker.handle.stats().connections_current >= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker never saw the close"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
