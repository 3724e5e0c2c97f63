//! Cluster operations (docs/cluster.md): a session ending on a node while
//! a newer claim of its client id on the same node completes, the claim of
//! a clean session held by its connection (no entry in the node's map of
//! claims), and mixed builds (the cluster protocol version). Nodes are `roost` processes with
//! `[cluster]` on a private redis-server; every wait is on an event with a
//! bound, never a sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use roost_codec::{ProtocolVersion, QoS, ReasonCode};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::{BrokerProcess, RawClient};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// The longest a route, a janitor or a start may take here (the documented
/// bounds are a lease; this is slack for a loaded machine).
const WAIT: Duration = Duration::from_secs(20);

type RedisServer = roost_testkit::redis::RedisSingle;

/// The default `[cluster] key_prefix`.
const PREFIX: &str = "roost:cl:";

fn config(redis: &RedisServer, name: &str, lease_ms: u64) -> String {
    roost_testkit::cluster_config(&redis.url(), name, lease_ms, "", "")
}

fn node(redis: &RedisServer, name: &str, lease_ms: u64) -> BrokerProcess {
    roost_testkit::cluster_node(BIN, &redis.url(), name, lease_ms, "", "")
}

/// A 5.0 CONNECT, Clean Start 1, session expiry 0, with a will on `will_topic`.
fn with_will(client_id: &str, will_topic: &str) -> roost_codec::Connect {
    let mut connect = packets::connect(ProtocolVersion::V5, client_id);
    connect.will = Some(roost_codec::LastWill {
        topic: will_topic.into(),
        payload: bytes::Bytes::copy_from_slice(client_id.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    connect
}

/// Two CONNECTs of one client id on one node in quick succession, the first
/// connection ending (DISCONNECT, session expiry 0: its session ends) while
/// the second one's claim completes. The session that ends must not take
/// the newer claim's client id off the node's session list in Redis, nor
/// its fencing token (its will would not be written): killed, the node's
/// janitor must find every live session and publish its will.
#[tokio::test]
async fn cluster_a_session_ending_while_a_newer_claim_of_its_id_completes_keeps_the_new_claim() {
    let redis = RedisServer::start();
    let run = unique_id("race");
    let base = unique_id("race");
    let a_name = format!("{run}-a");
    let mut a = node(&redis, &a_name, 1000);
    let b = node(&redis, &format!("{run}-b"), 1000);
    let mut watcher = RawClient::connect_v5(b.addr(), &unique_id("watch"))
        .await
        .unwrap()
        .0;
    watcher.subscribe_qos1(&format!("{base}/will/#")).await;

    // Each round races the end of the first connection against the claim
    // of the second, the DISCONNECT sent a varying number of scheduler
    // turns after the second CONNECT, so some rounds land in the window.
    const ROUNDS: usize = 400;
    let mut live = Vec::new();
    for round in 0..ROUNDS {
        let id = format!("{base}-{round}");
        let will_topic = format!("{base}/will/{round}");
        // No will on the first: a takeover (the second attaching first)
        // would publish it, which is not what this test counts.
        let (mut first, _) = RawClient::connect_v5(a.addr(), &id).await.unwrap();
        let mut second = RawClient::connect(a.addr(), ProtocolVersion::V5)
            .await
            .unwrap();
        let turns = round % 16 * 2;
        let end_first = async {
            for _ in 0..turns {
                tokio::task::yield_now().await;
            }
            let _ = first.send(packets::disconnect()).await;
        };
        let (connack, ()) = tokio::join!(second.handshake(with_will(&id, &will_topic)), end_first);
        let connack = connack.unwrap();
        assert!(!connack.reason_code.is_error(), "{connack:?}");
        live.push((id, second));
    }

    // Every live session is on A's session list (the janitor's).
    let listed = redis.cli(&["SMEMBERS", &format!("{PREFIX}{{n:{a_name}}}:sess")]);
    let listed: Vec<&str> = listed.lines().collect();
    let missing: Vec<&String> = live
        .iter()
        .map(|(id, _)| id)
        .filter(|id| !listed.contains(&id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {ROUNDS} live sessions are off A's session list: {missing:?}",
        missing.len()
    );

    // A dies: B's janitor publishes every live session's will, once.
    a.signal(rustix::process::Signal::KILL).unwrap();
    let _ = a.stop();
    let mut wills = std::collections::HashSet::new();
    let deadline = Instant::now() + WAIT;
    while wills.len() < ROUNDS {
        let left = deadline.saturating_duration_since(Instant::now());
        let publish = match watcher.recv_publish(left).await {
            Ok(publish) => publish,
            Err(e) => panic!(
                "{} of {ROUNDS} wills published ({e:?}); missing: {:?}",
                wills.len(),
                live.iter()
                    .map(|(id, _)| id)
                    .filter(|id| !wills.contains(id.as_bytes()))
                    .collect::<Vec<_>>()
            ),
        };
        if let Some(id) = publish.packet_id {
            watcher.send(packets::puback(id.get())).await.unwrap();
        }
        assert!(
            wills.insert(publish.payload.to_vec()),
            "a will published twice: {:?}",
            publish.payload
        );
    }
    drop(live);
}

/// Waits (bounded) until `done` holds for what `redis-cli args` answers.
async fn until_redis(redis: &RedisServer, args: &[&str], what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = redis.cli(args);
        if done(&answer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {args:?} still answers {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A clean session with nothing to write (Clean Start 1, expiry 0, no
/// will) holds its claim through its connection alone, with no entry in the
/// node's map of claims (RSS per connection, docs/performance.md). Redis
/// must still name its claim while it lives, a second CONNECT of its id on
/// the same node must still take it over (0x8E) and hold the id, and each
/// end must release the claim and take the id off the node's session list
/// (the janitor's), as for any claim.
#[tokio::test]
async fn cluster_a_clean_sessions_claim_held_by_its_connection_is_released_at_its_end() {
    let redis = RedisServer::start();
    let a_name = unique_id("slim");
    let a = node(&redis, &a_name, 1000);
    let list = format!("{PREFIX}{{n:{a_name}}}:sess");
    let own = |id: &str| format!("{PREFIX}{{c:{id}}}:own");
    const CLIENTS: usize = 20;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let id = unique_id("slim-c");
        let (client, connack) = RawClient::connect_v5(a.addr(), &id).await.unwrap();
        assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
        clients.push((id, client));
    }
    let listed = redis.cli(&["SMEMBERS", &list]);
    for (id, _) in &clients {
        assert!(
            listed.lines().any(|l| l == id),
            "{id} is off A's session list: {listed:?}"
        );
        assert_eq!(redis.cli(&["HGET", &own(id), "node"]).trim(), a_name);
        assert_eq!(redis.cli(&["HGET", &own(id), "state"]).trim(), "connected");
    }

    // The last id again on A: the first connection is taken over, the new
    // one holds a new claim, and the id stays listed.
    let (taken_id, mut taken) = clients.pop().unwrap();
    let first_token = redis.cli(&["HGET", &own(&taken_id), "token"]);
    let (second, connack) = RawClient::connect_v5(a.addr(), &taken_id).await.unwrap();
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    let disconnect = taken
        .expect_closed(WAIT)
        .await
        .unwrap()
        .expect("DISCONNECT");
    assert_eq!(disconnect.reason_code, ReasonCode::SESSION_TAKEN_OVER);
    assert_ne!(redis.cli(&["HGET", &own(&taken_id), "token"]), first_token);
    assert_eq!(
        redis.cli(&["HGET", &own(&taken_id), "state"]).trim(),
        "connected"
    );
    let listed = redis.cli(&["SMEMBERS", &list]);
    assert!(
        listed.lines().any(|l| l == taken_id),
        "the newer claim's id left the list"
    );

    // Every end releases its claim and leaves the list.
    clients.push((taken_id, second));
    for (_, client) in &mut clients {
        client.send(packets::disconnect()).await.unwrap();
    }
    for (id, _) in &clients {
        until_redis(
            &redis,
            &["HGET", &own(id), "state"],
            "claim not released",
            |state| state.trim() == "disconnected",
        )
        .await;
    }
    until_redis(&redis, &["SCARD", &list], "A's session list", |n| {
        n.trim() == "0"
    })
    .await;
}

/// Mixed builds: a node joining a cluster whose live node announces another
/// cluster protocol version (here: node A's hash says 999, as a build with
/// another inbox format would) refuses to start, and says why, naming both
/// versions; a node of the same version joins.
#[tokio::test]
async fn cluster_a_node_refuses_to_join_live_nodes_of_another_protocol_version() {
    let redis = RedisServer::start();
    let run = unique_id("ver");
    let a_name = format!("{run}-a");
    let _a = node(&redis, &a_name, 5000);
    let hash = format!("{PREFIX}{{sys}}:node:{a_name}");
    // This build's version (`roost_cluster::PROTOCOL`), as A announces it.
    let ours = redis.cli(&["HGET", &hash, "protocol"]).trim().to_string();
    assert!(
        ours.parse::<u32>().is_ok_and(|v| v >= 2),
        "A announces its version: {ours:?}"
    );
    // Same version: B joins.
    let _b = node(&redis, &format!("{run}-b"), 5000);

    redis.cli(&["HSET", &hash, "protocol", "999"]);
    let refused = BrokerProcess::builder(BIN)
        .config_toml(config(&redis, &format!("{run}-c"), 5000))
        .arg("--store")
        .arg("memory")
        .startup_timeout(WAIT)
        .start();
    let log = match refused {
        Ok(c) => panic!("C joined a cluster of another version:\n{}", c.log()),
        Err(roost_testkit::StartError::NotListening { status, log, .. }) => {
            assert!(
                status.is_some_and(|s| !s.success()),
                "C did not exit: {status:?}"
            );
            log
        }
        Err(e) => panic!("{e}"),
    };
    let expected = format!(
        "node {a_name} of this cluster speaks cluster protocol version 999, this build speaks version {ours}"
    );
    assert!(
        log.contains(&expected),
        "no clear refusal in C's log:\n{log}"
    );
}

/// A node whose hash Redis lost (a restart without its data, a collection
/// while it was paused) writes it back at its next lease renewal with its
/// protocol version: without it the hash would read as version 1, and a
/// node joining then would refuse to start.
#[tokio::test]
async fn cluster_a_node_hash_written_back_at_a_renewal_keeps_its_protocol_version() {
    let redis = RedisServer::start();
    let a_name = unique_id("proto");
    let _a = node(&redis, &a_name, 900);
    let hash = format!("{PREFIX}{{sys}}:node:{a_name}");
    until_redis(&redis, &["HGET", &hash, "protocol"], "A's version", |v| {
        v.trim().parse::<u32>().is_ok_and(|v| v >= 2)
    })
    .await;
    let ours = redis.cli(&["HGET", &hash, "protocol"]).trim().to_string();
    redis.cli(&["DEL", &hash]);
    // Back at the next renewal (a third of the lease).
    until_redis(&redis, &["HGET", &hash, "started"], "A's hash back", |v| {
        !v.trim().is_empty()
    })
    .await;
    assert_eq!(redis.cli(&["HGET", &hash, "protocol"]).trim(), ours);
    // And a node joining now joins.
    let b = node(&redis, &unique_id("proto-b"), 900);
    let mut client = RawClient::connect_v5(b.addr(), &unique_id("proto-c"))
        .await
        .unwrap()
        .0;
    client.send(packets::disconnect()).await.unwrap();
}
