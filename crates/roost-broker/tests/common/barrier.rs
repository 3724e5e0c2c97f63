//! "Nothing else arrived" barriers: a packet the broker must answer or route
//! next, so whatever it sent earlier would be ahead of it.

use bytes::Bytes;
use roost_codec::{Packet, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::publish;

use super::{T, TestBroker};

/// Proves every earlier packet was processed and nothing else was sent:
/// the next packet after a PINGREQ must be its PINGRESP.
pub async fn assert_quiet(client: &mut RawClient) {
    client.send(Packet::PingReq).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PingResp => {}
        other => panic!("expected nothing but PINGRESP, got {other:?}"),
    }
}

/// Publishes a QoS 0 marker from `publisher` and requires it to be the next
/// PUBLISH the subscriber gets: whatever the publisher routed earlier would be
/// ahead of it.
pub async fn next_is_marker(publisher: &mut RawClient, subscriber: &mut RawClient, topic: &str) {
    publisher
        .send(publish(topic, &b"marker"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    let got = subscriber.recv_publish(T).await.unwrap();
    assert_eq!((&*got.topic, &got.payload[..]), (topic, &b"marker"[..]));
}

/// Publishes a QoS 0 marker from the broker itself and requires it to be the
/// next PUBLISH `client` gets (QoS 0 is never held back by a send quota, and
/// `topic` must match only a non-shared subscription of `client`).
pub async fn next_is_broker_marker(broker: &TestBroker, client: &mut RawClient, topic: &str) {
    broker
        .handle
        .publish(topic, Bytes::from_static(b"marker"), QoS::AtMostOnce, false);
    let got = client.recv_publish(T).await.unwrap();
    assert_eq!((&*got.topic, &got.payload[..]), (topic, &b"marker"[..]));
}
