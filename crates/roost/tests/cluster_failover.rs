//! Cluster mode on a Redis Cluster whose primary fails (docs/cluster.md,
//! "Failure modes"): three primaries with one replica each; the primary
//! holding a node's inbox is killed (kill -9) under cross-node QoS 1
//! traffic. Its replica takes over; the nodes follow the new topology
//! (MOVED, connection errors: the cluster client refreshes its slot map),
//! the publisher's acknowledgements do not hang, and messages cross again.
//! Every wait is on an event with a bound, never a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use roost_codec::{Packet, QoS, ReasonCode};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::redis::RedisCluster;
use roost_testkit::{BrokerProcess, HandshakeError, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// A failover takes the cluster's node timeout (2 s) and an election; this
/// is slack for a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

/// A lease longer than a failover: the nodes ride it out without fencing
/// themselves (with a shorter one they fence and recover, as after a
/// Redis restart).
const LEASE_MS: u64 = 15_000;

fn node(redis: &RedisCluster, name: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, &redis.url(), name, LEASE_MS, "", "")
}

async fn v5(node: &BrokerProcess, prefix: &str) -> RawClient {
    RawClient::connect_v5(node.addr(), &unique_id(prefix))
        .await
        .unwrap()
        .0
}

/// Publishes `payload` at QoS 1 and waits for its PUBACK (`within`).
async fn publish_1(client: &mut RawClient, topic: &str, payload: &[u8], id: u16, within: Duration) {
    client
        .send(packets::publish(
            topic,
            payload.to_vec(),
            QoS::AtLeastOnce,
            Some(id),
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.recv(left).await {
            Ok(Packet::PubAck(ack)) if ack.packet_id.get() == id => {
                assert!(!ack.reason_code.is_error(), "{ack:?}");
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("no PUBACK for {id} within {within:?}: {e:?}"),
        }
    }
}

/// Receives until `payload` arrives (acknowledging QoS 1), within `within`.
async fn receive_until(client: &mut RawClient, payload: &[u8], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let publish = client.recv_publish(left).await.unwrap_or_else(|e| {
            panic!("{:?} not received: {e:?}", String::from_utf8_lossy(payload))
        });
        if let Some(id) = publish.packet_id {
            client.send(packets::puback(id.get())).await.unwrap();
        }
        if publish.payload[..] == *payload {
            return;
        }
    }
}

#[tokio::test]
async fn cluster_redis_cluster_primary_killed_under_qos1_traffic_nodes_follow_the_failover() {
    let mut redis = RedisCluster::start_with_replicas(3);
    let run = unique_id("fo");
    let base = unique_id("fo");
    let (a_name, b_name) = (format!("{run}-a"), format!("{run}-b"));
    let a = node(&redis, &a_name);
    let b = node(&redis, &b_name);
    let c = node(&redis, &format!("{run}-c"));
    let topic = format!("{base}/t");
    let mut sub_b = v5(&b, "sub-b").await;
    sub_b.subscribe_qos1(&topic).await;
    let mut sub_c = v5(&c, "sub-c").await;
    sub_c.subscribe_qos1(&topic).await;
    let mut publisher = v5(&a, "pub").await;
    roost_testkit::wait_for_route(&mut publisher, &topic, &mut [&mut sub_b, &mut sub_c], WAIT)
        .await;
    publish_1(&mut publisher, &topic, b"before", 1, TIMEOUT).await;
    receive_until(&mut sub_b, b"before", TIMEOUT).await;
    receive_until(&mut sub_c, b"before", TIMEOUT).await;

    // The primary holding B's inbox goes; its replica takes over.
    let inbox = format!("roost:cl:{{n:{b_name}}}:inbox");
    // A session parked on B whose rows are on that primary too.
    let doomed = redis.primary_of(&inbox).unwrap();
    let parked_id = (0..10_000)
        .map(|i| format!("{base}-s{i}"))
        .find(|id| redis.primary_of(&format!("roost:cl:{{c:{id}}}:own")) == Some(doomed))
        .expect("a client id on the doomed primary");
    let parked_topic = format!("{base}/s");
    let (mut parked, _) =
        RawClient::connect_with(b.addr(), packets::connect_persistent(&parked_id))
            .await
            .unwrap();
    parked.subscribe_qos1(&parked_topic).await;
    parked.send(packets::disconnect()).await.unwrap();
    let _ = parked.expect_closed(TIMEOUT).await;
    // Parked: B released its claim (after writing its rows), and the
    // replica has it all before the primary goes.
    let own = format!("roost:cl:{{c:{parked_id}}}:own");
    let deadline = Instant::now() + WAIT;
    while redis.cli(&["HGET", &own, "state"]).trim() != "disconnected" {
        assert!(Instant::now() < deadline, "B never released {parked_id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.wait_replicated(&inbox);
    let started = Instant::now();
    let old = redis.kill_primary_of(&inbox);
    // Published while B's inbox has no primary: its PUBACK waits.
    publisher
        .send(packets::publish(
            &topic,
            &b"during"[..],
            QoS::AtLeastOnce,
            Some(2),
        ))
        .await
        .unwrap();
    let promoted = redis.wait_failover(&inbox, old);
    let failover = started.elapsed();
    // Acknowledged once the new primary took it (nothing hangs), and it
    // crosses to both nodes: the nodes follow the new topology.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match publisher.recv(left).await {
            Ok(Packet::PubAck(ack)) if ack.packet_id.get() == 2 => {
                assert!(!ack.reason_code.is_error(), "{ack:?}");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no PUBACK for the message published during the failover: {e:?}"),
        }
    }
    receive_until(&mut sub_b, b"during", WAIT).await;
    receive_until(&mut sub_c, b"during", WAIT).await;
    publish_1(&mut publisher, &topic, b"after", 3, WAIT).await;
    receive_until(&mut sub_b, b"after", WAIT).await;
    receive_until(&mut sub_c, b"after", WAIT).await;
    let recovered = started.elapsed();
    // The parked session resumes on C, read from the new primary.
    let deadline = Instant::now() + WAIT;
    let (mut resumed, connack) = loop {
        match RawClient::connect_with(c.addr(), packets::connect_persistent(&parked_id)).await {
            Ok(resumed) => break resumed,
            Err(HandshakeError::Refused(connack))
                if connack.reason_code == ReasonCode::SERVER_UNAVAILABLE =>
            {
                assert!(Instant::now() < deadline, "resume still refused");
                // A refused CONNECT is answered at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("resume failed: {e:?}"),
        }
    };
    assert!(
        connack.session_present,
        "the parked session survived the failover"
    );
    roost_testkit::wait_for_route(&mut publisher, &parked_topic, &mut [&mut resumed], WAIT).await;
    // And every node takes CONNECTs (a node whose renewal met the failover
    // refuses them, 0x88, until its next renewal: a lease / 15 later).
    for node in [&a, &b, &c] {
        let deadline = Instant::now() + WAIT;
        loop {
            match RawClient::connect_v5(node.addr(), &unique_id("late")).await {
                Ok(_) => break,
                Err(HandshakeError::Refused(connack))
                    if connack.reason_code == ReasonCode::SERVER_UNAVAILABLE =>
                {
                    assert!(Instant::now() < deadline, "CONNECT still refused");
                    // A refused CONNECT is answered at once; do not spin on it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("CONNECT failed: {e:?}"),
            }
        }
    }
    let connects = started.elapsed();
    eprintln!(
        "failover: replica on {promoted} promoted after {failover:?}; cross-node QoS 1 delivered again {recovered:?} after the kill; every node took CONNECTs {connects:?} after it"
    );
}
