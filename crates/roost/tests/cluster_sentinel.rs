//! Cluster mode on a Sentinel-managed Redis (`redis+sentinel://`): one
//! primary, one replica, one sentinel (roost_testkit::redis::RedisSentinel),
//! two roost nodes. Cross-node delivery works before and after the primary
//! is killed and the sentinel promotes the replica: each node's connections
//! ask the sentinel for the primary again when theirs broke.
//!
//! The waits for a route publish probes until one arrives (as in
//! cluster.rs), never sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roost_codec::{Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::redis::RedisSentinel;
use roost_testkit::{BrokerProcess, HandshakeError, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// Detection (1 s), election and the nodes' reconnection, on a loaded CI
/// machine.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);

/// A node on the sentinel's primary. The lease (10 s) outlasts the
/// failover, so the node does not fence itself meanwhile.
fn node(url: &str, name: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, url, name, 10_000, "", "")
}

async fn v5(addr: SocketAddr, prefix: &str) -> RawClient {
    RawClient::connect_v5(addr, &unique_id(prefix))
        .await
        .unwrap()
        .0
}

/// Publishes at QoS 1 and waits for the PUBACK up to `wait`.
async fn publish_qos1(
    client: &mut RawClient,
    topic: &str,
    payload: &'static [u8],
    id: u16,
    wait: Duration,
) {
    client
        .send(packets::publish(topic, payload, QoS::AtLeastOnce, Some(id)))
        .await
        .unwrap();
    match client.recv(wait).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), id),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// Receives a QoS 1 PUBLISH (within `wait`) and acknowledges it.
async fn receive_qos1(client: &mut RawClient, wait: Duration) -> Vec<u8> {
    let p = client.recv_publish(wait).await.unwrap();
    if let Some(id) = p.packet_id {
        client.send(packets::puback(id.get())).await.unwrap();
    }
    p.payload.to_vec()
}

#[tokio::test]
async fn cluster_on_sentinel_delivers_across_nodes_before_and_after_a_failover() {
    let mut redis = RedisSentinel::start();
    let run = unique_id("sn");
    let a = node(&redis.url(), &format!("{run}-a"));
    let b = node(&redis.url(), &format!("{run}-b"));
    let topic = format!("{run}/t");
    let mut on_b = v5(b.addr(), "sub-b").await;
    on_b.send(packets::subscribe_with(
        1,
        &topic,
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        },
    ))
    .await
    .unwrap();
    assert!(matches!(
        on_b.recv(TIMEOUT).await.unwrap(),
        Packet::SubAck(_)
    ));
    let mut on_a = v5(a.addr(), "pub-a").await;
    roost_testkit::wait_for_route(&mut on_a, &topic, &mut [&mut on_b], Duration::from_secs(10))
        .await;
    publish_qos1(&mut on_a, &topic, b"before", 1, TIMEOUT).await;
    assert_eq!(receive_qos1(&mut on_b, TIMEOUT).await, b"before");

    redis.kill_primary();
    redis.wait_failover();
    // The forward waits in the writer's buffer until the writer reaches the
    // new primary: the PUBACK comes once it is in B's inbox there, and B's
    // reader, on the new primary too, delivers it.
    publish_qos1(&mut on_a, &topic, b"after", 2, FAILOVER_WAIT).await;
    assert_eq!(receive_qos1(&mut on_b, FAILOVER_WAIT).await, b"after");

    // New connections are taken again (the lease renews on the new primary).
    let deadline = Instant::now() + FAILOVER_WAIT;
    loop {
        let connack = match RawClient::connect_with(
            b.addr(),
            packets::connect(ProtocolVersion::V5, &unique_id("late")),
        )
        .await
        {
            Ok((_, connack)) => connack,
            Err(HandshakeError::Refused(connack)) => *connack,
            Err(e) => panic!("CONNECT failed: {e:?}"),
        };
        if connack.reason_code == ReasonCode::SUCCESS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CONNECT still refused after the failover: {:?}",
            connack.reason_code
        );
    }
}
