//! Cluster mode when Redis fails (docs/cluster.md, "Failure modes"): Redis
//! killed (kill -9) and restarted under traffic with its append-only file
//! on, a short self-fence, and `availability_over_consistency`. Nodes are
//! `roost` processes with `--cluster-redis` on a private redis-server;
//! every wait is on an event with a bound, never a sleep.
//!
//! Its own file (not `cluster.rs`): these tests need a Redis that keeps its
//! data across a restart (AOF in a temporary directory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roost_codec::{
    ConnAck, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubscriptionOptions,
};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::{BrokerProcess, HandshakeError, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// The longest a route, a fence or a recovery may take here (the documented
/// bounds are a lease, 1.5 s in these tests; this is slack for a loaded
/// machine).
const WAIT: Duration = Duration::from_secs(15);

/// A private redis-server with its append-only file fsynced at every write,
/// so what it acknowledged survives a kill -9 and restart on the same port
/// and directory.
type RedisServer = roost_testkit::redis::RedisSingle;

/// A node named `name` with lease `lease_ms` and `extra` configuration.
fn node_with(redis: &RedisServer, name: &str, lease_ms: u64, extra: &str) -> BrokerProcess {
    node_with_cluster(redis, name, lease_ms, extra, "")
}

/// [`node_with`], with `cluster` lines added to `[cluster]`.
fn node_with_cluster(
    redis: &RedisServer,
    name: &str,
    lease_ms: u64,
    extra: &str,
    cluster: &str,
) -> BrokerProcess {
    node_at(&redis.url(), name, lease_ms, extra, cluster)
}

/// [`node_with_cluster`] on the Redis at `url`.
fn node_at(url: &str, name: &str, lease_ms: u64, extra: &str, cluster: &str) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, url, name, lease_ms, extra, cluster)
}

/// `sync` durability: what a node acknowledged (SUBACK, PUBACK) is in
/// Redis; `[auth.banned]` so the node applies the cluster's bans.
const ACKED_IS_WRITTEN: &str = "[store]\ndurability = \"sync\"\n[auth.banned]\n";

async fn v5(addr: SocketAddr, prefix: &str) -> RawClient {
    RawClient::connect_v5(addr, &unique_id(prefix))
        .await
        .unwrap()
        .0
}

fn qos1() -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..SubscriptionOptions::default()
    }
}

async fn subscribe(client: &mut RawClient, filter: &str) {
    client
        .send(packets::subscribe_with(1, filter, qos1()))
        .await
        .unwrap();
    match client.recv(TIMEOUT).await.unwrap() {
        Packet::SubAck(ack) => assert!(!ack.reason_codes[0].is_error(), "{ack:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Publishes at QoS 1 and waits for the PUBACK.
async fn publish_1(client: &mut RawClient, topic: &str, payload: &[u8], retain: bool, id: u16) {
    let mut publish = packets::publish(topic, payload.to_vec(), QoS::AtLeastOnce, Some(id));
    publish.retain = retain;
    client.send(publish).await.unwrap();
    match client.recv(TIMEOUT).await.unwrap() {
        Packet::PubAck(ack) => {
            assert_eq!(ack.packet_id.get(), id);
            assert!(!ack.reason_code.is_error(), "{ack:?}");
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// The next PUBLISH, acknowledged when QoS 1.
async fn receive(client: &mut RawClient, timeout: Duration) -> Publish {
    let publish = client.recv_publish(timeout).await.unwrap();
    if let (QoS::AtLeastOnce, Some(id)) = (publish.qos, publish.packet_id) {
        client.send(packets::puback(id.get())).await.unwrap();
    }
    publish
}

async fn try_connect(addr: SocketAddr) -> ConnAck {
    let connect = packets::connect(ProtocolVersion::V5, &unique_id("try"));
    match RawClient::connect_with(addr, connect).await {
        Ok((_, connack)) => connack,
        Err(HandshakeError::Refused(connack)) => *connack,
        Err(e) => panic!("CONNECT failed: {e:?}"),
    }
}

/// Polls CONNECT on `addr` until it gets `code`; returns how long it took.
async fn until_connack(addr: SocketAddr, code: ReasonCode, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let got = try_connect(addr).await.reason_code;
        if got == code {
            return started.elapsed();
        }
        assert!(started.elapsed() < WAIT, "{what}: still {got:?}");
        // A refused CONNECT is answered at once; do not spin on it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cluster_redis_killed_and_restarted_under_traffic_nodes_fence_recover_and_keep_acknowledged_state()
 {
    let mut redis = RedisServer::start_with_aof();
    let run = unique_id("rr");
    let base = unique_id("rr");
    let victim = unique_id("victim");
    let a = node_with(
        &redis,
        &format!("{run}-a"),
        1500,
        &format!("{ACKED_IS_WRITTEN}[[auth.banned.entries]]\nwho = \"client:{victim}\"\n"),
    );
    let b = node_with(&redis, &format!("{run}-b"), 1500, ACKED_IS_WRITTEN);
    let c = node_with(&redis, &format!("{run}-c"), 1500, ACKED_IS_WRITTEN);

    // Acknowledged before the outage: a persistent session parked on A
    // with a subscription and three queued QoS 1 messages ...
    let sess = unique_id("sess");
    let (mut s, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&sess))
        .await
        .unwrap();
    subscribe(&mut s, &format!("{base}/q")).await;
    s.send(packets::disconnect()).await.unwrap();
    s.expect_closed(TIMEOUT).await.unwrap();
    let mut pub_a = v5(a.addr(), "pub-a").await;
    for (i, payload) in [&b"q1"[..], b"q2", b"q3"].into_iter().enumerate() {
        publish_1(
            &mut pub_a,
            &format!("{base}/q"),
            payload,
            false,
            1 + i as u16,
        )
        .await;
    }
    // ... a retained message set on B (seen on C: it is in Redis) ...
    let mut pub_b = v5(b.addr(), "pub-b").await;
    publish_1(&mut pub_b, &format!("{base}/r"), b"kept", true, 1).await;
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "retained message not on C");
        let mut probe = v5(c.addr(), "ret-c").await;
        subscribe(&mut probe, &format!("{base}/r")).await;
        if probe.recv_publish(Duration::from_millis(200)).await.is_ok() {
            break;
        }
    }
    // ... and A's configured ban (C refuses the victim: it is in Redis).
    let deadline = Instant::now() + WAIT;
    loop {
        let code = match RawClient::connect_v5(c.addr(), &victim).await {
            Err(HandshakeError::Refused(connack)) => connack.reason_code,
            Ok(_) => ReasonCode::SUCCESS,
            Err(e) => panic!("{e:?}"),
        };
        if code == ReasonCode::BANNED {
            break;
        }
        assert!(Instant::now() < deadline, "ban not on C");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Traffic: QoS 1 from B to a subscriber on C while Redis dies.
    let mut sub_c = v5(c.addr(), "live-c").await;
    subscribe(&mut sub_c, &format!("{base}/live")).await;
    roost_testkit::wait_for_route(&mut pub_b, &format!("{base}/live"), &mut [&mut sub_c], WAIT)
        .await;
    let live = format!("{base}/live");
    let traffic = tokio::spawn(async move {
        // Until B closes the connection (fenced): every PUBLISH either gets
        // its PUBACK or the connection ends; none waits for ever.
        let mut acked = 0u32;
        for id in 1..=u16::MAX {
            let publish = packets::publish(&live, &b"t"[..], QoS::AtLeastOnce, Some(id));
            if pub_b.send(publish).await.is_err() {
                break;
            }
            match pub_b.recv(WAIT).await {
                Ok(Packet::PubAck(_)) => acked += 1,
                Ok(Packet::Disconnect(d)) => {
                    assert_eq!(d.reason_code, ReasonCode::USE_ANOTHER_SERVER);
                    break;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(roost_testkit::RecvError::Timeout(_)) => panic!("a PUBACK hung"),
                Err(_) => break,
            }
        }
        acked
    });
    // Some traffic crossed before the kill.
    receive(&mut sub_c, TIMEOUT).await;

    redis.kill();
    // Every node fences itself: its clients get DISCONNECT 0x9C ...
    let deadline = Instant::now() + WAIT;
    let disconnect = loop {
        match sub_c.recv(deadline - Instant::now()).await {
            Ok(Packet::Publish(p)) => {
                if let Some(id) = p.packet_id {
                    let _ = sub_c.send(packets::puback(id.get())).await;
                }
            }
            Ok(Packet::Disconnect(d)) => break d,
            other => panic!("expected DISCONNECT 0x9C on C, got {other:?}"),
        }
    };
    assert_eq!(disconnect.reason_code, ReasonCode::USE_ANOTHER_SERVER);
    let acked = tokio::time::timeout(WAIT, traffic)
        .await
        .expect("the publisher on B hung")
        .unwrap();
    // Those acknowledged before the fence; the rest were never acknowledged
    // (the connection closed without them).
    eprintln!("publisher on B: {acked} QoS 1 messages acknowledged before the fence");
    // ... and refuses CONNECT with 0x88 while Redis is away.
    for (name, n) in [("A", &a), ("B", &b), ("C", &c)] {
        until_connack(n.addr(), ReasonCode::SERVER_UNAVAILABLE, name).await;
    }

    redis.restart();
    // Nothing hangs: every node takes CONNECTs again within a bound.
    for (name, n) in [("A", &a), ("B", &b), ("C", &c)] {
        let took = until_connack(n.addr(), ReasonCode::SUCCESS, name).await;
        eprintln!(
            "node {name} accepts CONNECT {took:?} after Redis came back (or after the previous node did)"
        );
    }

    // The parked session resumes on C with its subscription and queue.
    let (mut s, connack) = RawClient::connect_with(c.addr(), packets::connect_persistent(&sess))
        .await
        .unwrap();
    assert!(connack.session_present, "the session survived the outage");
    let got: Vec<Vec<u8>> = [
        receive(&mut s, TIMEOUT).await,
        receive(&mut s, TIMEOUT).await,
        receive(&mut s, TIMEOUT).await,
    ]
    .iter()
    .map(|p| p.payload.to_vec())
    .collect();
    assert_eq!(got, [b"q1".to_vec(), b"q2".to_vec(), b"q3".to_vec()]);
    // Its subscription routes again across nodes (B to C).
    let mut pub_b = v5(b.addr(), "pub-b2").await;
    roost_testkit::wait_for_route(&mut pub_b, &format!("{base}/q"), &mut [&mut s], WAIT).await;

    // A node that joins now loads the retained message and the ban from
    // Redis: they survived the restart.
    let d = node_with(&redis, &format!("{run}-d"), 1500, ACKED_IS_WRITTEN);
    let mut probe = v5(d.addr(), "ret-d").await;
    subscribe(&mut probe, &format!("{base}/+")).await;
    let retained = receive(&mut probe, TIMEOUT).await;
    assert_eq!(&retained.payload[..], b"kept");
    assert!(retained.retain);
    match RawClient::connect_v5(d.addr(), &victim).await {
        Err(HandshakeError::Refused(connack)) => {
            assert_eq!(connack.reason_code, ReasonCode::BANNED);
        }
        other => panic!("the ban did not survive: {other:?}"),
    }
}

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
async fn cluster_a_short_self_fence_does_not_publish_its_clients_wills() {
    let mut redis = RedisServer::start_with_aof();
    let run = unique_id("sf");
    let base = unique_id("sf");
    let will_topic = format!("{base}/will");
    // A fences itself 1.25 s after its last renewal. B's lease is long:
    // it retries its renewal rarely (every 40 s while Redis is away), so A,
    // retrying every 100 ms, is back first and nobody sees its lease lapse.
    let a = node_with(&redis, &format!("{run}-a"), 1500, "");
    let b = node_with(&redis, &format!("{run}-b"), 600_000, "");
    let mut watcher = v5(b.addr(), "watch").await;
    subscribe(&mut watcher, &will_topic).await;
    let id = unique_id("x");
    let (mut x, _) = RawClient::connect_with(a.addr(), with_will(&id, &will_topic))
        .await
        .unwrap();
    roost_testkit::wait_for_route(&mut x, &will_topic, &mut [&mut watcher], WAIT).await;

    redis.kill();
    let disconnect = x
        .expect_closed(WAIT)
        .await
        .unwrap()
        .expect("DISCONNECT 0x9C before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::USE_ANOTHER_SERVER);
    redis.restart();
    until_connack(a.addr(), ReasonCode::SUCCESS, "A").await;
    let log = a.log();
    assert!(
        log.contains("short self-fence"),
        "A's fence was not short (B collected it?):\n{log}"
    );
    // X comes back on A and publishes on its will topic: that is the first
    // thing the watcher gets (a will would have come before it: one
    // ordered inbox from A to B).
    let (mut x, connack) = RawClient::connect_with(a.addr(), packets::connect_persistent(&id))
        .await
        .unwrap();
    assert!(connack.session_present, "the session was kept in Redis");
    publish_1(&mut x, &will_topic, b"back", false, 1).await;
    let first = receive(&mut watcher, WAIT).await;
    assert_eq!(
        &first.payload[..],
        b"back",
        "the will was published after a short fence"
    );
}

// --- The management API's retained routes act on the cluster's store ---

/// `roost ctl ARGS` against `node`'s management API, with a key made in
/// its data directory.
fn ctl(node: &BrokerProcess, args: &[&str]) -> std::process::Output {
    let data_dir = node.data_dir().to_str().unwrap().to_string();
    let created = std::process::Command::new(BIN)
        .args(["ctl", "--data-dir", &data_dir, "api-key", "create"])
        .args(["--name", &unique_id("k"), "--json"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let key = format!(
        "{}:{}",
        created["key"].as_str().unwrap(),
        created["secret"].as_str().unwrap()
    );
    let http = node.http_addr().expect("a management API");
    std::process::Command::new(BIN)
        .arg("ctl")
        .args(args)
        .env("ROOST_CTL_URL", format!("http://{http}"))
        .env("ROOST_CTL_KEY", key)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

/// Whether a new subscriber of `topic` on `addr` gets a retained message.
async fn has_retained(addr: SocketAddr, topic: &str) -> bool {
    let mut probe = v5(addr, "ret").await;
    subscribe(&mut probe, topic).await;
    probe.recv_publish(Duration::from_millis(200)).await.is_ok()
}

#[tokio::test]
async fn cluster_retained_deleted_through_the_api_of_b_is_gone_on_a() {
    let redis = RedisServer::start_with_aof();
    let run = unique_id("api");
    let a = node_with(&redis, &format!("{run}-a"), 1500, "");
    let b = node_with(&redis, &format!("{run}-b"), 1500, "");
    let topic = format!("{}/r", unique_id("api"));
    let mut pub_a = v5(a.addr(), "pub").await;
    publish_1(&mut pub_a, &topic, b"kept", true, 1).await;
    let deadline = Instant::now() + WAIT;
    while !has_retained(b.addr(), &topic).await {
        assert!(Instant::now() < deadline, "retained message never on B");
    }
    let out = ctl(&b, &["retained", "delete", &topic]);
    assert!(out.status.success(), "{out:?}");
    // Gone on A too (the cluster's store, not only B's copy).
    let deadline = Instant::now() + WAIT;
    while has_retained(a.addr(), &topic).await {
        assert!(
            Instant::now() < deadline,
            "the API delete on B did not reach A"
        );
    }
    // And a node that joins now does not load it from Redis.
    let c = node_with(&redis, &format!("{run}-c"), 1500, "");
    assert!(!has_retained(c.addr(), &topic).await);
}

// --- Route-log gap detection ---

const ROUTE_LOG: &str = "roost:cl:{rt}:log";

/// A route log entry of a node that is not in the cluster, with the log
/// capped at exactly `cap` entries (a small cap standing in for the 1,000,000
/// a node writes with).
fn filler(redis: &RedisServer, cap: usize) {
    let cap = cap.to_string();
    redis.cli(&[
        "XADD", ROUTE_LOG, "MAXLEN", &cap, "*", "n", "filler", "r", "0", "a", "", "d", "",
    ]);
}

#[tokio::test]
async fn cluster_a_reader_behind_the_route_logs_cap_rebuilds_its_route_cache() {
    let redis = RedisServer::start_with_aof();
    let run = unique_id("gap");
    let topic = format!("{}/t", unique_id("gap"));
    // Long leases: B is paused for a while and must not be declared dead.
    let a = node_with(&redis, &format!("{run}-a"), 60_000, "");
    let b = node_with(&redis, &format!("{run}-b"), 60_000, "");
    let mut pub_b = v5(b.addr(), "pub").await;

    b.signal(rustix::process::Signal::STOP).unwrap();
    // B's read pending in Redis (if any) is answered with this entry; then
    // B, stopped, asks for nothing more until it is resumed.
    filler(&redis, 1000);
    let mut sub_a = v5(a.addr(), "sub").await;
    subscribe(&mut sub_a, &topic).await;
    // A's route change is in its route set (and the log, same script) ...
    let set = format!("roost:cl:{{rt}}:n:{run}-a");
    let deadline = Instant::now() + WAIT;
    while redis.cli(&["SISMEMBER", &set, &topic]).trim() != "1" {
        assert!(Instant::now() < deadline, "A's route never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and trimmed from the log before B read it.
    for _ in 0..20 {
        filler(&redis, 5);
    }
    b.signal(rustix::process::Signal::CONT).unwrap();

    // B rebuilt its cache from the route sets: it forwards to A.
    roost_testkit::wait_for_route(&mut pub_b, &topic, &mut [&mut sub_a], WAIT).await;
    let log = b.log();
    assert!(
        log.contains("route log gap"),
        "B did not count a rebuild:\n{log}"
    );
}

// --- availability_over_consistency ---

#[tokio::test]
async fn cluster_availability_over_consistency_keeps_local_traffic_and_connects_without_redis_then_rejoins()
 {
    let mut redis = RedisServer::start_with_aof();
    let run = unique_id("av");
    let base = unique_id("av");
    let a = node_with_cluster(
        &redis,
        &format!("{run}-a"),
        1500,
        "",
        "availability_over_consistency = true",
    );
    // B (a long lease: it does not fence itself in this test) has a
    // subscriber too, so A's messages on `t` have a node to go to.
    let b = node_with(&redis, &format!("{run}-b"), 600_000, "");
    let mut sub = v5(a.addr(), "sub").await;
    subscribe(&mut sub, &format!("{base}/t")).await;
    let mut sub_b = v5(b.addr(), "sub-b").await;
    subscribe(&mut sub_b, &format!("{base}/t")).await;
    let mut publisher = v5(a.addr(), "pub").await;
    let mut pub_b = v5(b.addr(), "pub-b").await;
    roost_testkit::wait_for_route(
        &mut publisher,
        &format!("{base}/t"),
        &mut [&mut sub_b],
        WAIT,
    )
    .await;
    while sub.recv_publish(Duration::from_millis(200)).await.is_ok() {}

    redis.kill();
    let deadline = Instant::now() + WAIT;
    while !a.log().contains("serving local clients only") {
        assert!(Instant::now() < deadline, "A never noticed:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the lease (1.5 s), where a node would fence itself: local QoS 1
    // goes on (the PUBACK does not wait for B's inbox) and nobody is
    // closed.
    let cut_off = Instant::now();
    let mut id = 1;
    while cut_off.elapsed() < Duration::from_millis(2500) {
        publish_1(&mut publisher, &format!("{base}/t"), b"local", false, id).await;
        assert_eq!(&receive(&mut sub, TIMEOUT).await.payload[..], b"local");
        id += 1;
    }
    // A new client connects (no claim possible) and gets local traffic.
    let (mut late, connack) = RawClient::connect_v5(a.addr(), &unique_id("late"))
        .await
        .unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    subscribe(&mut late, &format!("{base}/late")).await;
    publish_1(&mut publisher, &format!("{base}/late"), b"x", false, id).await;
    assert_eq!(&receive(&mut late, TIMEOUT).await.payload[..], b"x");

    // Redis returns: A rejoins and registers the route it made meanwhile.
    redis.restart();
    let deadline = Instant::now() + WAIT;
    while !a.log().contains("Redis answers again") {
        assert!(Instant::now() < deadline, "A never rejoined:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    roost_testkit::wait_for_route(&mut pub_b, &format!("{base}/late"), &mut [&mut late], WAIT)
        .await;
    roost_testkit::wait_for_route(&mut pub_b, &format!("{base}/t"), &mut [&mut sub], WAIT).await;
}

/// Waits until `node`'s log contains `line`.
async fn until_logged(node: &BrokerProcess, line: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !node.log().contains(line) {
        assert!(Instant::now() < deadline, "{what}:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `availability_over_consistency`, only A cut off from Redis (its Redis
/// user loses every permission: B keeps working), long enough for B to see
/// its lease lapse. Meanwhile A serves new sessions without a claim, and B
/// takes one of their client ids. When Redis answers A again, A claims
/// every session it holds again: the one B took is closed on A as a
/// takeover (0x8E); the others are A's again in Redis (owner record,
/// A's session list) with their state written, so a session made while cut
/// off resumes on B with its subscription.
#[tokio::test]
async fn cluster_availability_over_consistency_claims_its_sessions_again_when_redis_returns() {
    let redis = RedisServer::start();
    redis.cli(&["ACL", "SETUSER", "na", "on", ">pw", "~*", "&*", "+@all"]);
    let run = unique_id("rj");
    let base = unique_id("rj");
    let a_name = format!("{run}-a");
    let url_a = redis.url().replace("redis://", "redis://na:pw@");
    let a = node_at(
        &url_a,
        &a_name,
        1500,
        "",
        "availability_over_consistency = true",
    );
    let b = node_with(&redis, &format!("{run}-b"), 1500, "");
    let own = |id: &str| format!("roost:cl:{{c:{id}}}:own");
    let listed = format!("roost:cl:{{n:{a_name}}}:sess");

    // A session claimed before the cut; B's janitor orphans it meanwhile.
    let old_id = unique_id("old");
    let (mut old, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&old_id))
        .await
        .unwrap();

    redis.cli(&["ACL", "SETUSER", "na", "-@all"]);
    until_logged(&a, "serving local clients only", "A never noticed").await;
    // Sessions made while cut off: local-only.
    let x_id = unique_id("x");
    let (mut x, connack) = RawClient::connect_with(a.addr(), packets::connect_persistent(&x_id))
        .await
        .unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    subscribe(&mut x, &format!("{base}/x")).await;
    let t_id = unique_id("t");
    let (mut t_on_a, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&t_id))
        .await
        .unwrap();
    // B (which reaches Redis) takes T's client id meanwhile.
    let (_t_on_b, connack) = RawClient::connect_with(b.addr(), packets::connect_persistent(&t_id))
        .await
        .unwrap();
    assert!(!connack.session_present);
    until_logged(&b, "lease lapsed", "B never saw A's lease lapse").await;

    redis.cli(&["ACL", "SETUSER", "na", "+@all"]);
    until_logged(&a, "claimed again", "A never claimed its sessions again").await;
    // T: B's now; A's connection closed as taken over.
    let disconnect = t_on_a
        .expect_closed(WAIT)
        .await
        .unwrap()
        .expect("DISCONNECT 0x8E before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::SESSION_TAKEN_OVER);
    let t_owner = redis.cli(&["HGET", &own(&t_id), "node"]);
    assert_eq!(t_owner.trim(), format!("{run}-b"));
    // X: A's again, on its list for the janitor.
    let owner = redis.cli(&["HGET", &own(&x_id), "node"]);
    assert_eq!(owner.trim(), a_name, "owner of X");
    let member = redis.cli(&["SISMEMBER", &listed, &x_id]);
    assert_eq!(member.trim(), "1", "X on A's session list");
    // The old session: A's again too, unless B's janitor adopted it first
    // (one lease after the death: a slow run); then it is B's and A's
    // connection was closed as taken over.
    let owner = redis.cli(&["HGET", &own(&old_id), "node"]);
    if owner.trim() == a_name {
        let member = redis.cli(&["SISMEMBER", &listed, &old_id]);
        assert_eq!(member.trim(), "1", "the old session on A's session list");
    } else {
        assert_eq!(owner.trim(), format!("{run}-b"), "owner of the old session");
        let disconnect = old.expect_closed(WAIT).await.unwrap();
        assert_eq!(
            disconnect.map(|d| d.reason_code),
            Some(ReasonCode::SESSION_TAKEN_OVER)
        );
    }
    // X's session (made while cut off) resumes on B with its subscription.
    x.send(packets::disconnect()).await.unwrap();
    let _ = x.expect_closed(WAIT).await;
    let (mut x, connack) = RawClient::connect_with(b.addr(), packets::connect_persistent(&x_id))
        .await
        .unwrap();
    assert!(connack.session_present, "X's session was written to Redis");
    let mut publisher = v5(a.addr(), "pub").await;
    roost_testkit::wait_for_route(&mut publisher, &format!("{base}/x"), &mut [&mut x], WAIT).await;
}

/// `availability_over_consistency`: what sessions made while A was cut off
/// from Redis queued or had in flight then (their rows could not be
/// written: no claim) is written when A claims them again, so both resume
/// on B with it: a parked session's three queued messages, a live one's
/// unacknowledged message (resent with DUP and its packet id).
#[tokio::test]
async fn cluster_availability_over_consistency_writes_what_its_sessions_queued_while_cut_off() {
    let redis = RedisServer::start();
    redis.cli(&["ACL", "SETUSER", "nq", "on", ">pw", "~*", "&*", "+@all"]);
    let run = unique_id("rq");
    let base = unique_id("rq");
    let url_a = redis.url().replace("redis://", "redis://nq:pw@");
    let a = node_at(
        &url_a,
        &format!("{run}-a"),
        1500,
        "",
        "availability_over_consistency = true",
    );
    let b = node_with(&redis, &format!("{run}-b"), 1500, "");

    redis.cli(&["ACL", "SETUSER", "nq", "-@all"]);
    until_logged(&a, "serving local clients only", "A never noticed").await;
    // X: subscribed, then offline (parked on A) while messages arrive.
    let x_id = unique_id("x");
    let (mut x, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&x_id))
        .await
        .unwrap();
    subscribe(&mut x, &format!("{base}/x")).await;
    x.send(packets::disconnect()).await.unwrap();
    let _ = x.expect_closed(WAIT).await;
    // Y: connected, receives one message and never acknowledges it.
    let y_id = unique_id("y");
    let (mut y, _) = RawClient::connect_with(a.addr(), packets::connect_persistent(&y_id))
        .await
        .unwrap();
    subscribe(&mut y, &format!("{base}/y")).await;
    let mut publisher = v5(a.addr(), "pub").await;
    for (i, payload) in [b"x1", b"x2", b"x3"].iter().enumerate() {
        publish_1(
            &mut publisher,
            &format!("{base}/x"),
            *payload,
            false,
            1 + i as u16,
        )
        .await;
    }
    publish_1(&mut publisher, &format!("{base}/y"), b"y1", false, 9).await;
    let unacked = y.recv_publish(WAIT).await.unwrap();
    assert_eq!(&unacked.payload[..], b"y1");

    redis.cli(&["ACL", "SETUSER", "nq", "+@all"]);
    until_logged(&a, "claimed again", "A never claimed its sessions again").await;
    y.send(packets::disconnect()).await.unwrap();
    let _ = y.expect_closed(WAIT).await;

    let (mut x, connack) = RawClient::connect_with(b.addr(), packets::connect_persistent(&x_id))
        .await
        .unwrap();
    assert!(connack.session_present, "X's session is in Redis");
    for expected in [&b"x1"[..], b"x2", b"x3"] {
        let publish = receive(&mut x, WAIT).await;
        assert_eq!(&publish.payload[..], expected, "X's queue, in order");
    }
    let (mut y, connack) = RawClient::connect_with(b.addr(), packets::connect_persistent(&y_id))
        .await
        .unwrap();
    assert!(connack.session_present, "Y's session is in Redis");
    let resent = y.recv_publish(WAIT).await.unwrap();
    assert_eq!(&resent.payload[..], b"y1");
    assert!(resent.dup, "an in-flight message is resent with DUP");
    assert_eq!(resent.packet_id, unacked.packet_id, "with its packet id");
}

// --- Shared groups weighted by member count ---

#[tokio::test]
async fn cluster_shared_group_node_with_10_members_gets_10_times_the_messages_of_a_node_with_1() {
    let redis = RedisServer::start_with_aof();
    let run = unique_id("wt");
    let topic = format!("{}/t", unique_id("wt"));
    let group = format!("$share/g/{topic}");
    let a = node_with(&redis, &format!("{run}-a"), 1500, "");
    let b = node_with(&redis, &format!("{run}-b"), 1500, "");
    let c = node_with(&redis, &format!("{run}-c"), 1500, "");
    let mut on_a = Vec::new();
    for _ in 0..10 {
        let mut member = v5(a.addr(), "ma").await;
        subscribe(&mut member, &group).await;
        on_a.push(member);
    }
    // A's route names its 10 members ...
    let set_a = format!("roost:cl:{{rt}}:n:{run}-a");
    let weighted = format!("$share/g+10/{topic}");
    let deadline = Instant::now() + WAIT;
    while redis.cli(&["SISMEMBER", &set_a, &weighted]).trim() != "1" {
        assert!(
            Instant::now() < deadline,
            "A's weighted route never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... before B's member subscribes: once C routes to B, it has read
    // A's weight too (one ordered route log).
    let mut on_b = v5(b.addr(), "mb").await;
    subscribe(&mut on_b, &group).await;
    let mut publisher = v5(c.addr(), "pub").await;
    let deadline = Instant::now() + WAIT;
    let mut b_seen = false;
    while !b_seen {
        assert!(Instant::now() < deadline, "C never routed to B's member");
        publisher
            .send(packets::publish(
                &topic,
                &b"probe"[..],
                QoS::AtMostOnce,
                None,
            ))
            .await
            .unwrap();
        b_seen = on_b.recv_publish(Duration::from_millis(100)).await.is_ok();
    }
    for member in on_a.iter_mut().chain(std::iter::once(&mut on_b)) {
        while member
            .recv_publish(Duration::from_millis(200))
            .await
            .is_ok()
        {}
    }
    // 110 messages: round robin over A's 10 replicas and B's 1.
    for id in 1..=110u16 {
        publish_1(&mut publisher, &topic, b"m", false, id).await;
    }
    let (mut got_a, mut got_b) = (0usize, 0usize);
    let deadline = Instant::now() + WAIT;
    while got_a + got_b < 110 {
        assert!(
            Instant::now() < deadline,
            "{got_a} on A + {got_b} on B of 110"
        );
        for member in on_a.iter_mut() {
            while member.recv_publish(Duration::from_millis(5)).await.is_ok() {
                got_a += 1;
            }
        }
        while on_b.recv_publish(Duration::from_millis(5)).await.is_ok() {
            got_b += 1;
        }
    }
    eprintln!("A (10 members): {got_a}, B (1 member): {got_b}");
    assert!((95..=105).contains(&got_a), "A got {got_a}, B {got_b}");
    assert!((5..=15).contains(&got_b), "A got {got_a}, B {got_b}");
}
