//! SUBSCRIBE on one connection, then PUBLISH on another without waiting for
//! the SUBACK: does a SUBSCRIBE that reached the broker's socket first see
//! the message? Each connection is its own task on a multi-threaded runtime,
//! so the broker serves two sockets in the order their tasks run, not in the
//! order their bytes arrived (ARCHITECTURE.md, "Ordering across
//! connections"). These tests measure how
//! often that order is lost, awake and after hibernation, and pin down what
//! does hold: once the SUBACK is out, every later PUBLISH reaches it.
//!
//! Each round: B sends SUBSCRIBE (its write has returned: the bytes are in
//! the broker's socket), then A sends a QoS 1 PUBLISH, then, after B's
//! SUBACK, a marker from A. Per-publisher order means B sees the first
//! message before the marker if it got it at all: no waiting for an absence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use roost_codec::{Packet, ProtocolVersion, QoS};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, subscribe, unique_id};

use common::{TestBroker, config, start_with, wait_until};

const T: Duration = Duration::from_secs(5);
const ROUNDS: usize = 200;

/// One round; true when B got the PUBLISH sent after its SUBSCRIBE.
async fn round(broker: &TestBroker, n: usize, hibernate: bool) -> bool {
    let topic = format!("order/{}", unique_id("t"));
    let (mut b, _) = RawClient::connect_with(
        broker.addr,
        connect(ProtocolVersion::V5, &unique_id("order-b")),
    )
    .await
    .unwrap();
    let (mut a, _) = RawClient::connect_with(
        broker.addr,
        connect(ProtocolVersion::V5, &unique_id("order-a")),
    )
    .await
    .unwrap();
    if hibernate {
        let handle = broker.handle.clone();
        wait_until("both connections hibernating", T, || {
            let stats = handle.stats();
            stats.connections_current >= 2
                && stats.connections_hibernating == stats.connections_current
        })
        .await;
    }
    b.send(subscribe(1, &topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    a.send(publish(&topic, &b"first"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let mut got_first = false;
    let mut subacked = false;
    loop {
        match b.recv(T).await.unwrap() {
            Packet::SubAck(_) => {
                subacked = true;
                a.send(publish(&topic, &b"marker"[..], QoS::AtLeastOnce, Some(2)))
                    .await
                    .unwrap();
            }
            Packet::Publish(p) if &p.payload[..] == b"first" => got_first = true,
            Packet::Publish(p) if &p.payload[..] == b"marker" => {
                assert!(subacked, "round {n}: marker before SUBACK");
                break;
            }
            other => panic!("round {n}: unexpected {other:?}"),
        }
    }
    got_first
}

async fn misses(broker: &TestBroker, hibernate: bool) -> usize {
    let mut missed = 0;
    for n in 0..ROUNDS {
        if !round(broker, n, hibernate).await {
            missed += 1;
        }
    }
    missed
}

/// Awake connections on a two-worker runtime (the broker's own shape on a
/// two-core machine). Asserted: every marker sent after the SUBACK arrives,
/// after the first message if that arrived. Measured and printed (not
/// promised): how often the first message was missed (about 1 round in 3
/// here; 191 of 200 on one worker; none on a current-thread runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_then_publish_elsewhere_awake_connections() {
    let broker = start_with(config("[limits]\nhibernate_after_ms = 0\n"), None).await;
    let missed = misses(&broker, false).await;
    println!("awake: {missed} of {ROUNDS} SUBSCRIBE-then-PUBLISH rounds missed the message");
}

/// Both connections hibernating when the packets arrive: each is woken by
/// the dormitory and gets a new task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_then_publish_elsewhere_hibernated_connections() {
    let broker = start_with(config("[limits]\nhibernate_after_ms = 10\n"), None).await;
    let missed = misses(&broker, true).await;
    println!("hibernated: {missed} of {ROUNDS} SUBSCRIBE-then-PUBLISH rounds missed the message");
}
