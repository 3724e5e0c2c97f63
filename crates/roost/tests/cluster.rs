//! Cluster mode (docs/cluster.md) end to end: three `roost` processes with
//! `--cluster-redis` on one private redis-server, clients on different nodes.
//! The test binary `cluster_on_redis_cluster` runs the same tests on a
//! private 3-primary Redis Cluster ([`start_redis`]).
//!
//! Route propagation is asynchronous (a subscription reaches the other
//! nodes' route caches through the route log, typically within a few ms):
//! before a cross-node assertion each test waits for the route by
//! publishing a probe until the remote subscriber receives it (bounded by
//! [`ROUTE_WAIT`]), never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roost_codec::{
    ConnAck, Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubscriptionOptions,
};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::{BrokerProcess, HandshakeError, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// The longest a route or retained change may take to reach another node
/// in these tests (the documented window is milliseconds; this is slack for
/// a loaded CI machine).
const ROUTE_WAIT: Duration = Duration::from_secs(10);

/// The Redis the nodes share: one private redis-server, or a private
/// 3-primary Redis Cluster in the `cluster_on_redis_cluster` test binary,
/// which includes this file as its module `on_redis_cluster` (the same
/// tests, parametrised by the Redis they share).
type RedisServer = roost_testkit::redis::SharedRedis;

fn start_redis() -> RedisServer {
    RedisServer::start_for(module_path!())
}

/// One node of the cluster on `redis`, named `name` (unique per test run),
/// with a short lease so a lost Redis shows within a second or two.
fn node(redis: &RedisServer, name: &str) -> BrokerProcess {
    node_with(redis, name, "")
}

/// [`node`] with more configuration (`extra`: TOML sections).
fn node_with(redis: &RedisServer, name: &str, extra: &str) -> BrokerProcess {
    node_full(redis, name, extra, "")
}

/// [`node_with`], plus `cluster_extra` lines in `[cluster]`.
fn node_full(redis: &RedisServer, name: &str, extra: &str, cluster_extra: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, &redis.url(), name, 1500, extra, cluster_extra)
}

/// Three nodes on one Redis.
fn three_nodes(redis: &RedisServer) -> [BrokerProcess; 3] {
    three_nodes_with(redis, "")
}

/// Three nodes on one Redis, each with `extra` configuration.
fn three_nodes_with(redis: &RedisServer, extra: &str) -> [BrokerProcess; 3] {
    let run = unique_id("n");
    [
        node_with(redis, &format!("{run}-a"), extra),
        node_with(redis, &format!("{run}-b"), extra),
        node_with(redis, &format!("{run}-c"), extra),
    ]
}

async fn v5(addr: SocketAddr, prefix: &str) -> RawClient {
    RawClient::connect_v5(addr, &unique_id(prefix))
        .await
        .unwrap()
        .0
}

async fn subscribe(client: &mut RawClient, filter: &str, options: SubscriptionOptions) {
    subscribe_with_id(client, filter, options, None).await;
}

async fn subscribe_with_id(
    client: &mut RawClient,
    filter: &str,
    options: SubscriptionOptions,
    id: Option<u32>,
) {
    let mut subscribe = packets::subscribe_with(1, filter, options);
    subscribe.properties.subscription_identifier = id;
    client.send(subscribe).await.unwrap();
    match client.recv(TIMEOUT).await.unwrap() {
        Packet::SubAck(ack) => assert!(!ack.reason_codes[0].is_error(), "{ack:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn qos(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

/// Waits until `topic`'s route from `publisher`'s node reaches each of
/// `subscribers` (probes: [`roost_testkit::wait_for_route`]).
async fn route_seen(publisher: &mut RawClient, topic: &str, subscribers: &mut [&mut RawClient]) {
    roost_testkit::wait_for_route(publisher, topic, subscribers, ROUTE_WAIT).await;
}

/// Receives the next PUBLISH and acknowledges it as its QoS asks.
async fn receive(client: &mut RawClient) -> Publish {
    let publish = client.recv_publish(TIMEOUT).await.unwrap();
    match (publish.qos, publish.packet_id) {
        (QoS::AtLeastOnce, Some(id)) => client.send(packets::puback(id.get())).await.unwrap(),
        (QoS::ExactlyOnce, Some(id)) => {
            client.send(packets::pubrec(id.get())).await.unwrap();
            match client.recv(TIMEOUT).await.unwrap() {
                Packet::PubRel(_) => {}
                other => panic!("expected PUBREL, got {other:?}"),
            }
            client.send(packets::pubcomp(id.get())).await.unwrap();
        }
        _ => {}
    }
    publish
}

/// Publishes at `qos` and completes the publisher's side of the flow.
async fn publish(client: &mut RawClient, topic: &str, payload: &'static [u8], qos: QoS, id: u16) {
    let packet_id = (qos != QoS::AtMostOnce).then_some(id);
    client
        .send(packets::publish(topic, payload, qos, packet_id))
        .await
        .unwrap();
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => match client.recv(TIMEOUT).await.unwrap() {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), id),
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            match client.recv(TIMEOUT).await.unwrap() {
                Packet::PubRec(rec) => assert_eq!(rec.packet_id.get(), id),
                other => panic!("expected PUBREC, got {other:?}"),
            }
            client.send(packets::pubrel(id)).await.unwrap();
            match client.recv(TIMEOUT).await.unwrap() {
                Packet::PubComp(_) => {}
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn cluster_cross_node_publish_qos_0_1_2_reaches_plus_and_hash_subscribers() {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis);
    let base = unique_id("xn");
    let mut on_b = v5(b.addr(), "sub-b").await;
    subscribe(&mut on_b, &format!("{base}/+/t"), qos(QoS::ExactlyOnce)).await;
    let mut on_c = v5(c.addr(), "sub-c").await;
    subscribe(&mut on_c, &format!("{base}/#"), qos(QoS::AtLeastOnce)).await;
    let mut on_a = v5(a.addr(), "pub-a").await;
    let topic = format!("{base}/x/t");
    route_seen(&mut on_a, &topic, &mut [&mut on_b, &mut on_c]).await;

    for (i, (q, payload)) in [
        (QoS::AtMostOnce, &b"q0"[..]),
        (QoS::AtLeastOnce, &b"q1"[..]),
        (QoS::ExactlyOnce, &b"q2"[..]),
    ]
    .into_iter()
    .enumerate()
    {
        publish(&mut on_a, &topic, payload, q, 10 + i as u16).await;
        let got_b = receive(&mut on_b).await;
        assert_eq!((&got_b.payload[..], got_b.qos), (payload, q), "on B");
        assert_eq!(got_b.topic, topic);
        let got_c = receive(&mut on_c).await;
        assert_eq!(
            (&got_c.payload[..], got_c.qos),
            (payload, q.min(QoS::AtLeastOnce)),
            "on C: granted QoS 1"
        );
    }
    // Exactly once each: nothing more arrives.
    assert!(on_b.recv_publish(Duration::from_millis(300)).await.is_err());
    assert!(on_c.recv_publish(Duration::from_millis(300)).await.is_err());
}

#[tokio::test]
async fn v5_cluster_remote_subscriber_gets_its_subscription_id_and_retain_as_published() {
    let redis = start_redis();
    let [a, b, _c] = three_nodes(&redis);
    let base = unique_id("sid");
    let mut on_b = v5(b.addr(), "sub-b").await;
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::default()
    };
    subscribe_with_id(&mut on_b, &format!("{base}/+"), options, Some(42)).await;
    let mut on_a = v5(a.addr(), "pub-a").await;
    route_seen(&mut on_a, &format!("{base}/probe"), &mut [&mut on_b]).await;

    let mut retained = packets::publish(
        &format!("{base}/r"),
        &b"kept"[..],
        QoS::AtLeastOnce,
        Some(3),
    );
    retained.retain = true;
    on_a.send(retained).await.unwrap();
    assert!(matches!(
        on_a.recv(TIMEOUT).await.unwrap(),
        Packet::PubAck(_)
    ));
    let got = receive(&mut on_b).await;
    assert_eq!(&got.payload[..], b"kept");
    assert!(got.retain, "retain as published holds across nodes");
    assert_eq!(got.properties.subscription_identifiers.as_slice(), &[42]);
}

#[tokio::test]
async fn cluster_retained_set_on_a_cleared_on_b_is_seen_right_by_a_wildcard_subscriber_on_c() {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis);
    let base = unique_id("ret");
    let mut on_a = v5(a.addr(), "pub-a").await;
    let mut on_b = v5(b.addr(), "pub-b").await;
    let retain = |topic: String, payload: &'static [u8], id| {
        let mut p = packets::publish(&topic, payload, QoS::AtLeastOnce, Some(id));
        p.retain = true;
        p
    };
    for (i, name) in ["one", "two"].into_iter().enumerate() {
        on_a.send(retain(format!("{base}/{name}"), b"set on A", 1 + i as u16))
            .await
            .unwrap();
        assert!(matches!(
            on_a.recv(TIMEOUT).await.unwrap(),
            Packet::PubAck(_)
        ));
    }
    // B learns of A's messages through the retained log: wait until it has
    // "one" before clearing it there (else the clear could come first).
    let deadline = Instant::now() + ROUTE_WAIT;
    loop {
        let topics = retained_topics(b.addr(), &format!("{base}/one")).await;
        if topics.contains(&format!("{base}/one")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A's retained message never reached B"
        );
    }
    on_b.send(retain(format!("{base}/one"), b"", 1))
        .await
        .unwrap();
    assert!(matches!(
        on_b.recv(TIMEOUT).await.unwrap(),
        Packet::PubAck(_)
    ));
    // A marker set after the clear: the log is one ordered stream, so a
    // node that has the marker has applied the clear too.
    on_b.send(retain(format!("{base}/marker"), b"after", 2))
        .await
        .unwrap();
    assert!(matches!(
        on_b.recv(TIMEOUT).await.unwrap(),
        Packet::PubAck(_)
    ));
    let deadline = Instant::now() + ROUTE_WAIT;
    let topics = loop {
        let topics = retained_topics(c.addr(), &format!("{base}/#")).await;
        if topics.contains(&format!("{base}/marker")) {
            break topics;
        }
        assert!(
            Instant::now() < deadline,
            "retained changes never reached C"
        );
    };
    let expected: BTreeSet<String> = [format!("{base}/marker"), format!("{base}/two")].into();
    assert_eq!(topics, expected, "set on A, cleared on B, seen on C");
}

/// The retained messages a new subscription to `filter` gets on `addr`.
async fn retained_topics(addr: SocketAddr, filter: &str) -> BTreeSet<String> {
    let mut client = v5(addr, "ret-sub").await;
    subscribe(&mut client, filter, qos(QoS::AtMostOnce)).await;
    let mut topics = BTreeSet::new();
    while let Ok(p) = client.recv_publish(Duration::from_millis(300)).await {
        assert!(p.retain);
        topics.insert(p.topic.to_string());
    }
    topics
}

#[tokio::test]
async fn v5_cluster_same_client_id_on_b_closes_the_connection_on_a_with_0x8e() {
    let redis = start_redis();
    let [a, b, _c] = three_nodes(&redis);
    let id = unique_id("dup");
    let (mut first, _) = RawClient::connect_v5(a.addr(), &id).await.unwrap();
    let (_second, connack) = RawClient::connect_v5(b.addr(), &id).await.unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    let disconnect = first
        .expect_closed(TIMEOUT)
        .await
        .unwrap()
        .expect("DISCONNECT before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::SESSION_TAKEN_OVER);
}

#[tokio::test]
async fn v311_cluster_same_client_id_on_c_closes_the_connection_on_a() {
    let redis = start_redis();
    let [a, _b, c] = three_nodes(&redis);
    let id = unique_id("dup3");
    let (mut first, _) = RawClient::connect_v311(a.addr(), &id).await.unwrap();
    let (_second, _) = RawClient::connect_v311(c.addr(), &id).await.unwrap();
    let disconnect = first.expect_closed(TIMEOUT).await.unwrap();
    assert!(disconnect.is_none(), "3.1.1 has no server DISCONNECT");
}

/// A CONNECT attempt's CONNACK, refusals included.
async fn try_connect(addr: SocketAddr, version: ProtocolVersion) -> ConnAck {
    let connect = packets::connect(version, &unique_id("fence"));
    match RawClient::connect_with(addr, connect).await {
        Ok((_, connack)) => connack,
        Err(HandshakeError::Refused(connack)) => *connack,
        Err(e) => panic!("CONNECT failed: {e:?}"),
    }
}

#[tokio::test]
async fn cluster_node_without_redis_refuses_connect_with_0x88_and_recovers() {
    let mut redis = start_redis();
    let n = node(&redis, &unique_id("solo"));
    assert_eq!(
        try_connect(n.addr(), ProtocolVersion::V5).await.reason_code,
        ReasonCode::SUCCESS
    );
    redis.kill();
    // The node notices at its next lease renewal (every lease / 3 = 0.5 s).
    let deadline = Instant::now() + ROUTE_WAIT;
    loop {
        let code = try_connect(n.addr(), ProtocolVersion::V5).await.reason_code;
        if code == ReasonCode::SERVER_UNAVAILABLE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still accepting without Redis: {code:?}"
        );
    }
    // 3.1.1: return code 3, "server unavailable".
    let v3 = try_connect(n.addr(), ProtocolVersion::V311).await;
    assert_eq!(v3.reason_code, ReasonCode::SERVER_UNAVAILABLE);
    redis.restart();
    let deadline = Instant::now() + ROUTE_WAIT;
    loop {
        let code = try_connect(n.addr(), ProtocolVersion::V5).await.reason_code;
        if code == ReasonCode::SUCCESS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not accepting after Redis came back: {code:?}"
        );
    }
}

// --- Sessions across nodes, node death, fencing (second milestone) ---

async fn connect_persistent(addr: SocketAddr, client_id: &str) -> (RawClient, ConnAck) {
    RawClient::connect_with(addr, packets::connect_persistent(client_id))
        .await
        .unwrap()
}

/// Receives PUBLISHes (acknowledging QoS 1) until `n` non-probe ones came.
async fn receive_n(client: &mut RawClient, n: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    while got.len() < n {
        let p = receive(client).await;
        if &p.payload[..] != b"probe" {
            got.push(p);
        }
    }
    got
}

#[tokio::test]
async fn v5_cluster_persistent_session_resumes_on_another_node_with_the_messages_queued_offline() {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis);
    let base = unique_id("mig");
    let id = unique_id("roamer");
    let (mut roamer, connack) = connect_persistent(a.addr(), &id).await;
    assert!(!connack.session_present);
    subscribe(&mut roamer, &format!("{base}/#"), qos(QoS::AtLeastOnce)).await;
    // A second subscriber on A to the same filter: it says when messages
    // published on B have reached A (and so were queued for the roamer).
    let mut witness = v5(a.addr(), "witness").await;
    subscribe(&mut witness, &format!("{base}/#"), qos(QoS::AtLeastOnce)).await;
    let mut on_b = v5(b.addr(), "pub-b").await;
    route_seen(
        &mut on_b,
        &format!("{base}/probe"),
        &mut [&mut witness, &mut roamer],
    )
    .await;
    roamer.send(packets::disconnect()).await.unwrap();
    roamer.expect_closed(TIMEOUT).await.unwrap();

    const N: usize = 5;
    let payloads: [&'static [u8]; N] = [b"m0", b"m1", b"m2", b"m3", b"m4"];
    for (i, payload) in payloads.iter().enumerate() {
        publish(
            &mut on_b,
            &format!("{base}/m"),
            payload,
            QoS::AtLeastOnce,
            20 + i as u16,
        )
        .await;
    }
    let seen = receive_n(&mut witness, N).await;
    assert_eq!(seen.len(), N, "the witness on A got them all");

    // The roamer comes back on C: the session A held moves there.
    let (mut roamer, connack) = connect_persistent(c.addr(), &id).await;
    assert!(connack.session_present, "session present on another node");
    let got = receive_n(&mut roamer, N).await;
    let got: Vec<&[u8]> = got.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(
        got,
        payloads.to_vec(),
        "every message queued while offline, in order"
    );
    assert!(
        roamer
            .recv_publish(Duration::from_millis(500))
            .await
            .is_err(),
        "nothing more: each queued message once"
    );
    // Its subscription moved too: a message published on B now reaches C.
    let mut on_b = v5(b.addr(), "pub-b2").await;
    route_seen(&mut on_b, &format!("{base}/probe"), &mut [&mut roamer]).await;
    publish(
        &mut on_b,
        &format!("{base}/after"),
        b"after",
        QoS::AtLeastOnce,
        9,
    )
    .await;
    assert_eq!(&receive_n(&mut roamer, 1).await[0].payload[..], b"after");
}

#[tokio::test]
async fn v5_cluster_takeover_on_another_node_moves_inflight_and_inbound_qos2_state() {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis);
    let base = unique_id("tko");
    let id = unique_id("taken");
    let (mut first, _) = connect_persistent(a.addr(), &id).await;
    subscribe(&mut first, &format!("{base}/#"), qos(QoS::AtLeastOnce)).await;
    let mut on_b = v5(b.addr(), "pub-b").await;
    route_seen(&mut on_b, &format!("{base}/probe"), &mut [&mut first]).await;
    // In flight to the first connection: received, never acknowledged.
    publish(
        &mut on_b,
        &format!("{base}/x"),
        b"unacked",
        QoS::AtLeastOnce,
        5,
    )
    .await;
    let unacked = first.recv_publish(TIMEOUT).await.unwrap();
    assert_eq!(&unacked.payload[..], b"unacked");
    // An inbound QoS 2 exchange left at PUBREC.
    first
        .send(packets::publish(
            &format!("{base}/in"),
            &b"q2"[..],
            QoS::ExactlyOnce,
            Some(7),
        ))
        .await
        .unwrap();
    loop {
        match first.recv(TIMEOUT).await.unwrap() {
            Packet::PubRec(rec) => {
                assert_eq!(rec.packet_id.get(), 7);
                break;
            }
            // Its own QoS 2 message comes back through its subscription.
            Packet::Publish(_) => {}
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }

    let (mut second, connack) = connect_persistent(c.addr(), &id).await;
    assert!(connack.session_present, "the session moved to C");
    let disconnect = loop {
        match first.recv(TIMEOUT).await.unwrap() {
            // Its own QoS 2 message, delivered before the takeover.
            Packet::Publish(_) => {}
            Packet::Disconnect(d) => break d,
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    };
    assert_eq!(disconnect.reason_code, ReasonCode::SESSION_TAKEN_OVER);
    // The unacknowledged message is sent again, DUP set, same packet id.
    let again = loop {
        let p = second.recv_publish(TIMEOUT).await.unwrap();
        if &p.payload[..] == b"unacked" {
            break p;
        }
    };
    assert!(again.dup, "resent with DUP");
    assert_eq!(again.packet_id, unacked.packet_id);
    // The QoS 2 id is known on C: PUBREL completes it.
    second.send(packets::pubrel(7)).await.unwrap();
    loop {
        match second.recv(TIMEOUT).await.unwrap() {
            Packet::PubComp(comp) => {
                assert_eq!(comp.packet_id.get(), 7);
                assert_eq!(
                    comp.reason_code,
                    ReasonCode::SUCCESS,
                    "packet id known on C"
                );
                break;
            }
            Packet::Publish(_) => {}
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    }
}

/// A 5.0 CONNECT of a persistent session with a will (no delay).
fn with_will(client_id: &str, will_topic: &str) -> roost_codec::Connect {
    let mut connect = packets::connect_persistent(client_id);
    connect.will = Some(roost_codec::LastWill {
        topic: will_topic.into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    connect
}

#[tokio::test]
async fn cluster_kill_9_of_a_node_publishes_its_clients_will_once_and_the_session_resumes_elsewhere()
 {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis);
    let base = unique_id("death");
    let will_topic = format!("{base}/will");
    let mut on_b = v5(b.addr(), "watch-b").await;
    subscribe(&mut on_b, &will_topic, qos(QoS::AtLeastOnce)).await;
    let mut on_c = v5(c.addr(), "watch-c").await;
    subscribe(&mut on_c, &will_topic, qos(QoS::AtLeastOnce)).await;
    let id = unique_id("doomed");
    let (mut doomed, _) = RawClient::connect_with(a.addr(), with_will(&id, &will_topic))
        .await
        .unwrap();
    subscribe(&mut doomed, &format!("{base}/t"), qos(QoS::AtLeastOnce)).await;
    // The watchers' routes are known on A and on each other's node.
    route_seen(&mut doomed, &will_topic, &mut [&mut on_b, &mut on_c]).await;

    a.signal(rustix::process::Signal::KILL).unwrap();
    // The will, once per watcher, within lease (1.5 s) + renewal period.
    let got_b = receive(&mut on_b).await;
    assert_eq!(&got_b.payload[..], b"gone");
    let got_c = receive(&mut on_c).await;
    assert_eq!(&got_c.payload[..], b"gone");
    // Exactly once in the cluster: no second janitor publishes it.
    assert!(
        on_b.recv_publish(Duration::from_secs(2)).await.is_err(),
        "once on B"
    );
    assert!(
        on_c.recv_publish(Duration::from_millis(200)).await.is_err(),
        "once on C"
    );

    // The client reconnects on C and resumes what A held.
    let (mut back, connack) = connect_persistent(c.addr(), &id).await;
    assert!(
        connack.session_present,
        "the dead node's session is adopted"
    );
    let mut pub_b = v5(b.addr(), "pub-b").await;
    route_seen(&mut pub_b, &format!("{base}/t"), &mut [&mut back]).await;
    publish(
        &mut pub_b,
        &format!("{base}/t"),
        b"alive",
        QoS::AtLeastOnce,
        3,
    )
    .await;
    assert_eq!(&receive_n(&mut back, 1).await[0].payload[..], b"alive");
    drop(a);
}

#[tokio::test]
async fn cluster_a_paused_node_cannot_overwrite_a_session_taken_over_meanwhile() {
    let redis = start_redis();
    let [_, b, c] = three_nodes(&redis);
    // `sync`: SUBACK only once the subscription is in Redis, so what A
    // acknowledged before its pause is there for C.
    let a = node_with(
        &redis,
        &unique_id("paused-a"),
        "[store]\ndurability = \"sync\"\n",
    );
    let base = unique_id("pause");
    let id = unique_id("paused");
    let (mut first, _) = connect_persistent(a.addr(), &id).await;
    subscribe(&mut first, &format!("{base}/old"), qos(QoS::AtLeastOnce)).await;

    a.signal(rustix::process::Signal::STOP).unwrap();
    // C takes the session while A cannot answer (it waits at most the lease).
    let (mut second, connack) = connect_persistent(c.addr(), &id).await;
    assert!(connack.session_present, "what A wrote before the pause");
    second
        .send(packets::unsubscribe(2, &format!("{base}/old")))
        .await
        .unwrap();
    assert!(matches!(
        second.recv(TIMEOUT).await.unwrap(),
        Packet::UnsubAck(_)
    ));
    subscribe(&mut second, &format!("{base}/new"), qos(QoS::AtLeastOnce)).await;
    // Past A's lease: the others declare it dead.
    let deadline = Instant::now() + ROUTE_WAIT;
    while !b.log().contains("lease lapsed") && !c.log().contains("lease lapsed") {
        assert!(Instant::now() < deadline, "A's lease never lapsed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.send(packets::disconnect()).await.unwrap();
    second.expect_closed(TIMEOUT).await.unwrap();

    a.signal(rustix::process::Signal::CONT).unwrap();
    // A wakes up: it fences itself and closes the old connection (or hands
    // it over, its writes refused); either way it writes nothing.
    let closed = first.expect_closed(ROUTE_WAIT).await.unwrap();
    if let Some(disconnect) = closed {
        assert!(
            [
                ReasonCode::USE_ANOTHER_SERVER,
                ReasonCode::SESSION_TAKEN_OVER
            ]
            .contains(&disconnect.reason_code),
            "{disconnect:?}"
        );
    }
    let deadline = Instant::now() + ROUTE_WAIT;
    while !a.log().contains("fencing this node") && !a.log().contains("fenced off") {
        assert!(
            Instant::now() < deadline,
            "A neither fenced itself nor was fenced off:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The session as C left it: subscribed to new, not to old.
    let (mut third, connack) = connect_persistent(b.addr(), &id).await;
    assert!(connack.session_present);
    let mut on_b = v5(b.addr(), "pub-b").await;
    publish(
        &mut on_b,
        &format!("{base}/old"),
        b"old",
        QoS::AtLeastOnce,
        1,
    )
    .await;
    publish(
        &mut on_b,
        &format!("{base}/new"),
        b"new",
        QoS::AtLeastOnce,
        2,
    )
    .await;
    assert_eq!(&receive(&mut third).await.payload[..], b"new");
    assert!(
        third
            .recv_publish(Duration::from_millis(500))
            .await
            .is_err(),
        "A's stale subscription set did not come back"
    );
}

#[tokio::test]
async fn v5_cluster_node_cut_off_from_redis_past_its_lease_disconnects_its_clients_with_0x9c() {
    let mut redis = start_redis();
    let n = node(&redis, &unique_id("fence"));
    let (mut client, _) = connect_persistent(n.addr(), &unique_id("cut")).await;
    redis.kill();
    // Within the lease (1.5 s) of the last renewal.
    let disconnect = client
        .expect_closed(ROUTE_WAIT)
        .await
        .unwrap()
        .expect("DISCONNECT before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::USE_ANOTHER_SERVER);
    redis.restart();
    let deadline = Instant::now() + ROUTE_WAIT;
    loop {
        let code = try_connect(n.addr(), ProtocolVersion::V5).await.reason_code;
        if code == ReasonCode::SUCCESS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not accepting after Redis came back: {code:?}"
        );
    }
}

#[tokio::test]
async fn cluster_a_node_restarted_after_kill_9_publishes_its_clients_will_once() {
    let redis = start_redis();
    let run = unique_id("re");
    let a_name = format!("{run}-a");
    let a = node(&redis, &a_name);
    let b = node(&redis, &format!("{run}-b"));
    let base = unique_id("restart");
    let will_topic = format!("{base}/will");
    let mut watcher = v5(b.addr(), "watch").await;
    subscribe(&mut watcher, &will_topic, qos(QoS::AtLeastOnce)).await;
    let (mut doomed, _) =
        RawClient::connect_with(a.addr(), with_will(&unique_id("d"), &will_topic))
            .await
            .unwrap();
    route_seen(&mut doomed, &will_topic, &mut [&mut watcher]).await;
    a.signal(rustix::process::Signal::KILL).unwrap();
    drop(a);
    // Back at once under the same node id: its janitor and B's (when the
    // old lease lapses) race for the will; one gets it.
    let _a = node(&redis, &a_name);
    let will = receive(&mut watcher).await;
    assert_eq!(&will.payload[..], b"gone");
    assert!(
        watcher.recv_publish(Duration::from_secs(3)).await.is_err(),
        "the will is published once"
    );
}

// --- Shared subscriptions and bans across nodes ---

/// Drains what `clients` receive (acknowledging QoS 1) until `total`
/// messages arrived in all, then 300 ms more to catch duplicates; returns
/// the payloads each received.
async fn collect(clients: &mut [&mut RawClient], total: usize) -> Vec<Vec<String>> {
    let mut got: Vec<Vec<String>> = vec![Vec::new(); clients.len()];
    let deadline = Instant::now() + ROUTE_WAIT;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let count: usize = got.iter().map(Vec::len).sum();
        if count >= total && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_millis(300));
        }
        if quiet_until.is_some_and(|q| Instant::now() >= q) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {total} messages arrived: {got:?}"
        );
        for (i, client) in clients.iter_mut().enumerate() {
            while let Ok(p) = client.recv_publish(Duration::from_millis(20)).await {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    client.send(packets::puback(id.get())).await.unwrap();
                }
                got[i].push(String::from_utf8(p.payload.to_vec()).unwrap());
            }
        }
    }
}

/// Publishes QoS 0 probes to a shared group from each of `publishers`
/// until every member got one from every publisher: each publisher's node
/// knows every member node (with `round_robin` across the nodes, a node
/// missing a route never gets a turn). Then drains what is under way.
async fn wait_for_group(
    publishers: &mut [&mut RawClient],
    topic: &str,
    members: &mut [&mut RawClient],
) {
    let deadline = Instant::now() + ROUTE_WAIT;
    let mut seen = vec![vec![false; publishers.len()]; members.len()];
    while seen.iter().flatten().any(|s| !s) {
        assert!(
            Instant::now() < deadline,
            "group routes for {topic} not seen in {ROUTE_WAIT:?}: {seen:?}"
        );
        for (i, publisher) in publishers.iter_mut().enumerate() {
            let payload = format!("probe {i}");
            publisher
                .send(packets::publish(
                    topic,
                    payload.into_bytes(),
                    QoS::AtMostOnce,
                    None,
                ))
                .await
                .unwrap();
        }
        for (m, member) in members.iter_mut().enumerate() {
            while let Ok(p) = member.recv_publish(Duration::from_millis(50)).await {
                let text = String::from_utf8(p.payload.to_vec()).unwrap();
                let from: usize = text.strip_prefix("probe ").unwrap().parse().unwrap();
                seen[m][from] = true;
            }
        }
    }
    for member in members.iter_mut() {
        while member
            .recv_publish(Duration::from_millis(200))
            .await
            .is_ok()
        {}
    }
}

/// Publishes `n` QoS 1 messages `"{tag}-{i}"` on `topic` (PUBACK awaited).
async fn publish_many(client: &mut RawClient, topic: &str, tag: &str, n: u16) {
    for i in 0..n {
        let payload = format!("{tag}-{i}");
        client
            .send(packets::publish(
                topic,
                payload.into_bytes(),
                QoS::AtLeastOnce,
                Some(i + 1),
            ))
            .await
            .unwrap();
        match client.recv(TIMEOUT).await.unwrap() {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id.get(), i + 1),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn cluster_shared_group_on_three_nodes_gets_each_message_once_in_the_cluster() {
    let redis = start_redis();
    let [a, b, c] = three_nodes(&redis); // round_robin (the default)
    let base = unique_id("sh");
    let topic = format!("{base}/jobs");
    let shared = format!("$share/g/{base}/+");
    let mut members = Vec::new();
    for node in [&a, &b, &c] {
        let mut member = v5(node.addr(), "member").await;
        subscribe(&mut member, &shared, qos(QoS::AtLeastOnce)).await;
        members.push(member);
    }
    // A non-shared subscriber on B: B is a group's node for some messages
    // and gets all of them for this subscriber.
    let mut plain = v5(b.addr(), "plain").await;
    subscribe(&mut plain, &topic, qos(QoS::AtLeastOnce)).await;
    let mut pubs = Vec::new();
    for node in [&a, &b, &c] {
        pubs.push(v5(node.addr(), "pub").await);
    }
    {
        let [p0, p1, p2] = &mut pubs[..] else {
            unreachable!()
        };
        let [m0, m1, m2] = &mut members[..] else {
            unreachable!()
        };
        wait_for_group(&mut [p0, p1, p2], &topic, &mut [m0, m1, m2]).await;
    }
    while plain.recv_publish(Duration::from_millis(200)).await.is_ok() {}

    const N: u16 = 30;
    for (i, publisher) in pubs.iter_mut().enumerate() {
        publish_many(publisher, &topic, &format!("p{i}"), N).await;
    }
    let total = 3 * usize::from(N);
    let [m0, m1, m2] = &mut members[..] else {
        unreachable!()
    };
    let got = collect(&mut [m0, m1, m2], total).await;
    let mut all: Vec<&String> = got.iter().flatten().collect();
    assert_eq!(all.len(), total, "each message once in the group: {got:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no message twice");
    for (m, received) in got.iter().enumerate() {
        assert!(!received.is_empty(), "round_robin gives member {m} some");
    }
    let plain_got = collect(&mut [&mut plain], total).await;
    assert_eq!(
        plain_got[0].len(),
        total,
        "the non-shared subscriber on B gets each once"
    );
}

#[tokio::test]
async fn cluster_local_strategy_keeps_a_nodes_messages_on_its_member_and_falls_back_elsewhere() {
    let redis = start_redis();
    let [a, b, c] = three_nodes_with(&redis, "[mqtt]\nshared_subscription_strategy = \"local\"\n");
    let base = unique_id("loc");
    let topic = format!("{base}/jobs");
    let shared = format!("$share/g/{base}/jobs");
    let mut on_a = v5(a.addr(), "member-a").await;
    subscribe(&mut on_a, &shared, qos(QoS::AtLeastOnce)).await;
    let mut on_b = v5(b.addr(), "member-b").await;
    subscribe(&mut on_b, &shared, qos(QoS::AtLeastOnce)).await;
    let mut pub_a = v5(a.addr(), "pub-a").await;
    let mut pub_b = v5(b.addr(), "pub-b").await;
    // C has no member: its messages go round_robin (the fallback) to A and
    // B, once C knows both.
    let mut pub_c = v5(c.addr(), "pub-c").await;
    wait_for_group(&mut [&mut pub_c], &topic, &mut [&mut on_a, &mut on_b]).await;

    const N: u16 = 20;
    publish_many(&mut pub_a, &topic, "a", N).await;
    publish_many(&mut pub_b, &topic, "b", N).await;
    publish_many(&mut pub_c, &topic, "c", N).await;
    let got = collect(&mut [&mut on_a, &mut on_b], 3 * usize::from(N)).await;
    let from = |m: usize, tag: &str| got[m].iter().filter(|p| p.starts_with(tag)).count();
    assert_eq!(from(0, "a-"), usize::from(N), "A's member gets all of A's");
    assert_eq!(from(1, "a-"), 0);
    assert_eq!(from(1, "b-"), usize::from(N), "B's member gets all of B's");
    assert_eq!(from(0, "b-"), 0);
    assert_eq!(
        from(0, "c-") + from(1, "c-"),
        usize::from(N),
        "C's once each"
    );
    assert!(
        from(0, "c-") > 0 && from(1, "c-") > 0,
        "fallback round_robin: {got:?}"
    );
}

#[tokio::test]
async fn v5_cluster_a_ban_on_a_refuses_the_client_on_c_and_kicks_it_there() {
    let redis = start_redis();
    let run = unique_id("ban");
    let victim = unique_id("victim");
    // `[auth.banned]` on every node: the list the cluster's bans apply to.
    let c = node_with(&redis, &format!("{run}-c"), "[auth.banned]\n");
    let (mut on_c, _) = RawClient::connect_v5(c.addr(), &victim).await.unwrap();
    // Node A starts with the ban in its configuration: it joins the
    // cluster's list, and C closes the victim's connection as a local ban
    // would (DISCONNECT 0x98 Administrative action).
    let a = node_with(
        &redis,
        &format!("{run}-a"),
        &format!("[auth.banned]\n[[auth.banned.entries]]\nwho = \"client:{victim}\"\n"),
    );
    let disconnect = on_c
        .expect_closed(ROUTE_WAIT)
        .await
        .unwrap()
        .expect("DISCONNECT before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::ADMINISTRATIVE_ACTION);
    // And a new CONNECT on C is refused with 0x8A Banned.
    let connect = packets::connect(ProtocolVersion::V5, &victim);
    match RawClient::connect_with(c.addr(), connect).await {
        Err(HandshakeError::Refused(connack)) => {
            assert_eq!(connack.reason_code, ReasonCode::BANNED)
        }
        other => panic!("expected CONNACK 0x8A on C, got {other:?}"),
    }
    // A node joining later gets the list from Redis.
    let b = node_with(&redis, &format!("{run}-b"), "[auth.banned]\n");
    let connect = packets::connect(ProtocolVersion::V5, &victim);
    assert!(matches!(
        RawClient::connect_with(b.addr(), connect).await,
        Err(HandshakeError::Refused(_))
    ));
    // Someone else still connects.
    assert_eq!(
        try_connect(a.addr(), ProtocolVersion::V5).await.reason_code,
        ReasonCode::SUCCESS
    );
}

/// What a subscriber received, by payload (probes left out).
type Received = std::sync::Arc<std::sync::Mutex<BTreeSet<String>>>;

/// Receives (acknowledging) into `got` until `stop`; when its node dies
/// (the connection closes) and `fallback` is given, reconnects there as
/// the same persistent session (it must be present) and goes on.
async fn collect_until(
    mut client: RawClient,
    client_id: String,
    fallback: Option<SocketAddr>,
    got: Received,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Relaxed) {
        match client.recv(Duration::from_millis(200)).await {
            Ok(Packet::Publish(p)) => {
                if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id) {
                    let _ = client.send(packets::puback(id.get())).await;
                }
                if &p.payload[..] != b"probe" {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    got.lock().unwrap().insert(text);
                }
            }
            Ok(_) | Err(roost_testkit::RecvError::Timeout(_)) => {}
            Err(e) => {
                let addr = fallback.unwrap_or_else(|| panic!("{client_id} lost its node: {e}"));
                let (back, connack) = connect_persistent(addr, &client_id).await;
                assert!(
                    connack.session_present,
                    "{client_id}: the killed node's session resumes elsewhere"
                );
                client = back;
            }
        }
    }
}

/// Publishes QoS 1 on `topic` until `stop` (or its node dies), each
/// message waited for; returns the payloads whose PUBACK came.
async fn publish_until(
    mut client: RawClient,
    topic: String,
    tag: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut done = Vec::new();
    let mut i: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let payload = format!("{tag}-{i}");
        let id = u16::try_from(i % 60_000).unwrap() + 1;
        let sent = client
            .send(packets::publish(
                &topic,
                bytes::Bytes::from(payload.clone().into_bytes()),
                QoS::AtLeastOnce,
                Some(id),
            ))
            .await;
        if sent.is_err() {
            break;
        }
        match client.recv(TIMEOUT).await {
            Ok(Packet::PubAck(ack)) if ack.packet_id.get() == id => {
                done.push(payload);
                acked.fetch_add(1, Ordering::Relaxed);
            }
            // Its node died (or stalled): what was not acknowledged is not counted.
            _ => break,
        }
        // Paced: the run spans the death, the janitor and the handoff.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    done
}

/// Durable mode: kill -9 of a node while publishers on every node send
/// QoS 1 to persistent subscribers on every node; the killed node's
/// subscriber reconnects on another node. Every message a publisher got
/// a PUBACK for reaches every subscriber at least once: forwarded ones are
/// in the destination inboxes before the PUBACK, local ones in the queue
/// rows, a node checkpoints its inbox only past written queue rows, and
/// what the dead node had not handled is handed off.
#[tokio::test]
async fn cluster_durable_kill_9_loses_no_acknowledged_qos1_message() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let redis = start_redis();
    let run = unique_id("dur");
    let [a, b, c] =
        ["a", "b", "c"].map(|n| node_full(&redis, &format!("{run}-{n}"), "", "durable = true"));
    let base = unique_id("durable");
    let filter = format!("{base}/#");
    let ids = ["sub-a", "sub-b", "sub-c"].map(unique_id);
    let mut subs = Vec::new();
    for (id, node) in ids.iter().zip([&a, &b, &c]) {
        let (mut sub, _) = connect_persistent(node.addr(), id).await;
        subscribe(&mut sub, &filter, qos(QoS::AtLeastOnce)).await;
        subs.push(sub);
    }
    let mut pubs = vec![
        v5(a.addr(), "pub-a").await,
        v5(b.addr(), "pub-b").await,
        v5(c.addr(), "pub-c").await,
    ];
    let probe = format!("{base}/probe");
    for publisher in &mut pubs {
        let [s0, s1, s2] = &mut subs[..] else {
            unreachable!()
        };
        route_seen(publisher, &probe, &mut [s0, s1, s2]).await;
    }

    let stop_pub = Arc::new(AtomicBool::new(false));
    let stop_sub = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let received: Vec<Received> = (0..3).map(|_| Received::default()).collect();
    let mut collectors = Vec::new();
    for (i, sub) in subs.into_iter().enumerate() {
        // The killed node's subscriber comes back on B.
        let fallback = (i == 0).then(|| b.addr());
        collectors.push(tokio::spawn(collect_until(
            sub,
            ids[i].clone(),
            fallback,
            Arc::clone(&received[i]),
            Arc::clone(&stop_sub),
        )));
    }
    let mut publishers = Vec::new();
    for (publisher, tag) in pubs.into_iter().zip(["pa", "pb", "pc"]) {
        publishers.push(tokio::spawn(publish_until(
            publisher,
            format!("{base}/{tag}"),
            tag,
            Arc::clone(&stop_pub),
            Arc::clone(&acked),
        )));
    }
    // Some traffic first, then the kill in the middle of it.
    let deadline = Instant::now() + ROUTE_WAIT;
    while acked.load(Ordering::Relaxed) < 150 {
        assert!(Instant::now() < deadline, "publishers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.signal(rustix::process::Signal::KILL).unwrap();
    let killed_at = Instant::now();
    // Publishing goes on through the lease (1.5 s), the janitor and the
    // handoff (one lease later).
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    stop_pub.store(true, Ordering::Relaxed);
    let mut sent = BTreeSet::new();
    for publisher in publishers {
        sent.extend(publisher.await.unwrap());
    }
    let after_kill = sent.iter().filter(|p| !p.starts_with("pa-")).count();
    assert!(after_kill > 0, "B and C published through the death");
    // Every acknowledged message, at every subscriber, within a bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = |got: &Received| -> Vec<String> {
        let got = got.lock().unwrap();
        sent.iter().filter(|p| !got.contains(*p)).cloned().collect()
    };
    while received.iter().any(|r| !missing(r).is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_sub.store(true, Ordering::Relaxed);
    for collector in collectors {
        collector.await.unwrap();
    }
    for (id, got) in ids.iter().zip(&received) {
        let lost = missing(got);
        assert!(
            lost.is_empty(),
            "{id} lost {} of {} acknowledged messages (killed {:?} ago), e.g. {:?}",
            lost.len(),
            sent.len(),
            killed_at.elapsed(),
            &lost[..lost.len().min(10)]
        );
    }
    drop(a);
}
