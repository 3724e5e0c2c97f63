//! The smallest end-to-end check: a QoS 1 message goes from one raw client to another.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use roost_codec::{Packet, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::{publish, subscribe};

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn qos1_message_reaches_subscriber() {
    let broker = common::start().await;
    let (mut sub, _) = RawClient::connect_v5(broker.addr, "smoke-sub")
        .await
        .unwrap();
    sub.send(Packet::Subscribe(subscribe(1, "smoke/t", QoS::AtLeastOnce)))
        .await
        .unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::SubAck(_)));
    let (mut publ, _) = RawClient::connect_v311(broker.addr, "smoke-pub")
        .await
        .unwrap();
    publ.send(Packet::Publish(publish(
        "smoke/t",
        &b"hi"[..],
        QoS::AtLeastOnce,
        Some(7),
    )))
    .await
    .unwrap();
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(a) if a.packet_id.get() == 7));
    let got = sub.recv_publish(T).await.unwrap();
    assert_eq!(&got.payload[..], b"hi");
    assert_eq!(got.qos, QoS::AtLeastOnce);
}
