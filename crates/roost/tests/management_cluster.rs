//! The management plane of a cluster (docs/management.md, "In a cluster"):
//! `roost` nodes on a private redis-server, `roost ctl` pointed at one node
//! only, MQTT clients (the test kit's raw client, mosquitto_pub) on the
//! others. Asking any node shows the cluster: every node's counts, a client
//! of another node found, listed, subscribed and kicked, a dead node named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use roost_codec::{Packet, QoS, ReasonCode};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::redis::RedisSingle;
use roost_testkit::{BrokerProcess, RawClient};
use serde_json::Value;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");
/// Bound of every wait on the cluster (announcements come at each lease
/// renewal, a third of the 1.5 s lease here; slack for a loaded machine).
const WAIT: Duration = Duration::from_secs(20);
const T: Duration = Duration::from_secs(10);

/// One node named `name` on `redis`, with a short lease (its counts are
/// announced every 500 ms; a dead node is collected within 2 s).
fn node(redis: &RedisSingle, name: &str) -> BrokerProcess {
    node_with(redis, name, "")
}

/// [`node`] with more configuration (whole tables, e.g. `[http]`).
fn node_with(redis: &RedisSingle, name: &str, more: &str) -> BrokerProcess {
    roost_testkit::cluster_node(ROOST, &redis.url(), name, 1500, more, "")
}

/// `roost ctl` against one node, with an API key made in its data dir
/// (the other nodes do not know that key: they see the node credential).
struct Ctl {
    url: String,
    key: String,
}

impl Ctl {
    fn for_node(broker: &BrokerProcess) -> Ctl {
        let http = broker.http_addr().expect("a management API");
        let out = Command::new(ROOST)
            .args(["ctl", "--data-dir"])
            .arg(broker.data_dir())
            .args(["api-key", "create", "--name", "test", "--json"])
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        Ctl {
            url: format!("http://{http}"),
            key: format!(
                "{}:{}",
                created["key"].as_str().unwrap(),
                created["secret"].as_str().unwrap()
            ),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(ROOST)
            .arg("ctl")
            .args(args)
            .env("ROOST_CTL_URL", &self.url)
            .env("ROOST_CTL_KEY", &self.key)
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "roost ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `roost ctl ARGS --json` until `done` holds for its answer.
    fn wait_for(&self, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.json(args);
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "never {what}: {value}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every node listed with its management API announced.
    fn wait_nodes(&self, names: &[&str]) -> Value {
        self.wait_for(&["nodes"], "every node announced", |v| {
            let rows = v.as_array().unwrap();
            rows.len() == names.len()
                && names.iter().all(|n| {
                    rows.iter()
                        .any(|r| r["node"] == *n && r["admin_url"].is_string())
                })
        })
    }
}

fn row<'a>(nodes: &'a Value, name: &str) -> &'a Value {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == name)
        .unwrap_or_else(|| panic!("no {name} in {nodes}"))
}

#[test]
fn every_node_lists_the_others_version_and_connection_count() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("nodes-a"), unique_id("nodes-b"));
    let node_a = node(&redis, &a);
    let node_b = node(&redis, &b);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    // Two connections on B: A's list shows them once B renews its lease.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _clients: Vec<RawClient> = (0..2)
        .map(|i| {
            rt.block_on(RawClient::connect_v5(
                node_b.addr(),
                &unique_id(&format!("nodes-c{i}")),
            ))
            .unwrap()
            .0
        })
        .collect();
    let nodes = ctl.wait_for(&["nodes"], "B's two connections", |v| {
        row(v, &b)["connections"] == 2
    });
    let remote = row(&nodes, &b);
    assert_eq!(remote["version"], env!("CARGO_PKG_VERSION"), "{remote}");
    assert_eq!(remote["status"], "running", "{remote}");
    assert_eq!(remote["local"], false, "{remote}");
    assert!(remote["sessions"].as_u64().unwrap() >= 2, "{remote}");
    assert!(remote["uptime_s"].is_u64(), "{remote}");
    assert!(remote["announced_ms"].as_u64().unwrap() > 0, "{remote}");
    let url = format!("mqtt://{}", node_b.addr());
    assert!(
        remote["addresses"]
            .as_array()
            .unwrap()
            .contains(&url.into()),
        "{remote}"
    );
    let b_api = format!("http://{}", node_b.http_addr().unwrap());
    assert_eq!(remote["admin_url"], b_api.as_str(), "{remote}");
    let local = row(&nodes, &a);
    assert_eq!(local["local"], true, "{local}");
    assert_eq!(local["connections"], 0, "{local}");
    // The table names both with their counts.
    let table = String::from_utf8(ctl.run(&["nodes"]).stdout).unwrap();
    assert!(table.contains(&b) && table.contains("ADMIN_URL"), "{table}");
    // /metrics stays per node, labelled with the node.
    let metrics = String::from_utf8(ctl.run(&["metrics"]).stdout).unwrap();
    assert!(
        metrics.contains(&format!("roost_cluster_node_info{{node=\"{a}\"")),
        "{metrics}"
    );
}

#[test]
fn a_client_on_node_b_is_found_listed_subscribed_and_kicked_through_node_a() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("mgmt-a"), unique_id("mgmt-b"));
    let node_a = node(&redis, &a);
    let node_b = node(&redis, &b);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = unique_id("on-b");
    let mut client = rt
        .block_on(RawClient::connect_v5(node_b.addr(), &id))
        .unwrap()
        .0;
    rt.block_on(async {
        client
            .send(packets::subscribe(
                1,
                &format!("own/{id}"),
                QoS::AtLeastOnce,
            ))
            .await
            .unwrap();
        assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
    });

    // Listed through A, with the node that holds it.
    let list = ctl.json(&["clients", "list", "--like", &id]);
    assert_eq!(list["meta"]["count"], 1, "{list}");
    assert_eq!(list["data"][0]["client_id"], id.as_str(), "{list}");
    assert_eq!(list["data"][0]["node"], b.as_str(), "{list}");
    assert_eq!(
        list["meta"]["failed_nodes"],
        serde_json::json!([]),
        "{list}"
    );
    // `?node=` narrows to one node: none on A, one on B.
    let on_a = ctl.json(&["clients", "list", "--like", &id, "--node", &a]);
    assert_eq!(on_a["meta"]["count"], 0, "{on_a}");
    let on_b = ctl.json(&["clients", "list", "--like", &id, "--node", &b]);
    assert_eq!(on_b["meta"]["count"], 1, "{on_b}");
    let subs = ctl.json(&["subs", "list", "--client-id", &id]);
    assert_eq!(subs["meta"]["count"], 1, "{subs}");
    assert_eq!(subs["data"][0]["filter"], format!("own/{id}"), "{subs}");
    assert_eq!(subs["data"][0]["node"], b.as_str(), "{subs}");

    // Found through A: B's detail, with what B's connection task knows.
    let shown = ctl.json(&["clients", "show", &id]);
    assert_eq!(shown["node"], b.as_str(), "{shown}");
    assert_eq!(shown["connected"], true, "{shown}");
    assert!(shown["keep_alive_s"].is_u64(), "{shown}");
    assert_eq!(shown["subscription_list"][0]["filter"], format!("own/{id}"));

    // Subscribed through A: a message published on B reaches it.
    let added = ctl.json(&["subs", "add", &id, &format!("added/{id}"), "--qos", "1"]);
    assert_eq!(added["qos"], 1, "{added}");
    let out = Command::new("mosquitto_pub")
        .args(["-p", &node_b.addr().port().to_string(), "-h", "127.0.0.1"])
        .args(["-t", &format!("added/{id}"), "-m", "through-a", "-q", "1"])
        .output()
        .expect("mosquitto_pub");
    assert!(out.status.success(), "{out:?}");
    rt.block_on(async {
        match client.recv(T).await.unwrap() {
            Packet::Publish(p) => assert_eq!(&p.payload[..], b"through-a"),
            other => panic!("expected the PUBLISH, got {other:?}"),
        }
    });
    let out = ctl.run(&["subs", "remove", &id, &format!("added/{id}")]);
    assert!(out.status.success(), "{out:?}");
    let subs = ctl.json(&["subs", "list", "--client-id", &id]);
    assert_eq!(subs["meta"]["count"], 1, "unsubscribed on B: {subs}");

    // Kicked through A: B sends DISCONNECT 0x98.
    let out = ctl.run(&["clients", "kick", &id]);
    assert!(out.status.success(), "{out:?}");
    let disconnect = rt
        .block_on(client.expect_closed(T))
        .unwrap()
        .expect("a DISCONNECT before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::ADMINISTRATIVE_ACTION);
    // Gone (a clean session): 404 through A too.
    let deadline = Instant::now() + WAIT;
    loop {
        let out = ctl.run(&["clients", "show", &id]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("404 CLIENT_NOT_FOUND"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "{id} still shown after the kick");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_that_is_down_is_named_in_the_cluster_wide_lists_then_leaves_the_node_list() {
    let redis = RedisSingle::start();
    let (a, c) = (unique_id("down-a"), unique_id("down-c"));
    let node_a = node(&redis, &a);
    let mut node_c = node(&redis, &c);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &c]);
    let list = ctl.json(&["clients", "list"]);
    assert_eq!(
        list["meta"]["failed_nodes"],
        serde_json::json!([]),
        "{list}"
    );

    node_c.signal(rustix::process::Signal::KILL).unwrap();
    let _ = node_c.stop();
    // Its lease has not lapsed yet: still listed, and the lists say it
    // gave no rows instead of hiding it.
    let list = ctl.json(&["clients", "list"]);
    let failed = list["meta"]["failed_nodes"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{list}");
    assert_eq!(failed[0]["node"], c.as_str(), "{list}");
    assert!(failed[0]["error"].as_str().unwrap().len() > 3, "{list}");
    let table = ctl.run(&["subs", "list"]);
    assert!(table.status.success());
    let warning = String::from_utf8_lossy(&table.stderr);
    assert!(
        warning.contains(&format!("node {c} did not answer")),
        "{warning}"
    );
    // A request for that node alone: 502 NODE_UNAVAILABLE.
    let out = ctl.run(&["clients", "list", "--node", &c]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("502 NODE_UNAVAILABLE"), "{err}");
    // Once its lease lapsed it is `down`, then removed: the lists are whole again.
    ctl.wait_for(&["nodes"], "the dead node down or removed", |v| {
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["node"] != c.as_str() || r["status"] == "down")
    });
    ctl.wait_for(&["clients", "list"], "no failed node", |v| {
        v["meta"]["failed_nodes"] == serde_json::json!([])
    });
}

#[test]
fn a_node_announcing_another_nodes_api_is_reported_instead_of_shown_under_its_name() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("wrong-a"), unique_id("wrong-b"));
    let node_a = node(&redis, &a);
    // B announces A's API (as two hosts would with the default loopback bind).
    let a_api = format!("http://{}", node_a.http_addr().unwrap());
    let _node_b = node_with(
        &redis,
        &b,
        &format!("[http]\nadvertise_url = \"{a_api}\"\n"),
    );
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = unique_id("on-a");
    let _client = rt
        .block_on(RawClient::connect_v5(node_a.addr(), &id))
        .unwrap();
    // A's request "for B" reaches A itself, which refuses it: B is named as
    // failed and A's client is listed once, under A.
    let list = ctl.json(&["clients", "list", "--like", &id]);
    assert_eq!(list["meta"]["count"], 1, "{list}");
    assert_eq!(list["data"][0]["node"], a.as_str(), "{list}");
    let failed = &list["meta"]["failed_nodes"];
    assert_eq!(failed[0]["node"], b.as_str(), "{list}");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("WRONG_NODE"),
        "{list}"
    );
}

#[test]
fn a_parked_session_on_node_b_is_shown_and_subscribed_through_node_a() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("parked-a"), unique_id("parked-b"));
    let node_a = node(&redis, &a);
    let node_b = node(&redis, &b);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = unique_id("parked");
    let mut connect = packets::connect(roost_codec::ProtocolVersion::V5, &id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(300);
    rt.block_on(async {
        let (mut client, _) = RawClient::connect_with(node_b.addr(), connect)
            .await
            .unwrap();
        client
            .send(packets::subscribe(
                1,
                &format!("first/{id}"),
                QoS::AtLeastOnce,
            ))
            .await
            .unwrap();
        assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
        client.send(packets::disconnect()).await.unwrap();
        client.expect_closed(T).await.unwrap();
    });
    // Parked on B: A finds it there (the owner record names B).
    let shown = ctl.wait_for(&["clients", "show", &id], "the session parked", |v| {
        v["connected"] == false
    });
    assert_eq!(shown["node"], b.as_str(), "{shown}");
    assert_eq!(shown["session_expiry_interval_s"], 300, "{shown}");
    // Subscribed through A: B changes its parked session in place.
    let added = ctl.json(&["subs", "add", &id, &format!("second/{id}")]);
    assert_eq!(added["existed"], false, "{added}");
    let subs = ctl.json(&["subs", "list", "--client-id", &id]);
    assert_eq!(subs["meta"]["count"], 2, "{subs}");
    assert!(
        subs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["node"] == b.as_str()),
        "{subs}"
    );
}

#[test]
fn the_clusters_counters_add_up_every_nodes_and_another_nodes_are_read_through_one() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("stats-a"), unique_id("stats-b"));
    let node_a = node(&redis, &a);
    let node_b = node(&redis, &b);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // One connection on A, two on B, held while asked.
    let _held: Vec<RawClient> = rt.block_on(async {
        let mut held = Vec::new();
        for addr in [node_a.addr(), node_b.addr(), node_b.addr()] {
            let id = unique_id("stats-c");
            held.push(RawClient::connect_v5(addr, &id).await.unwrap().0);
        }
        held
    });
    // Read live from each node (not the announced counts): at once.
    let all = ctl.json(&["status", "--node", "all"]);
    assert_eq!(all["node"], "all", "{all}");
    assert_eq!(all["nodes_counted"], 2, "{all}");
    assert_eq!(all["connections_current"], 3, "{all}");
    let only_b = ctl.json(&["status", "--node", &b]);
    assert_eq!(only_b["connections_current"], 2, "{only_b}");
    assert!(
        only_b.get("version").is_none(),
        "no answering node's version: {only_b}"
    );
    let own = ctl.json(&["status"]);
    assert_eq!(own["node"], a.as_str(), "{own}");
    assert_eq!(own["connections_current"], 1, "{own}");
}

/// A node stopped (SIGSTOP) misses its lease renewals before its lease
/// lapses; from its first missed renewal a cluster-wide list waits a
/// second for it (`peers::LATE_TIMEOUT`), not the five seconds a node that
/// renews on time gets, and names it.
#[test]
fn a_node_that_missed_a_lease_renewal_holds_a_cluster_wide_list_for_a_second_not_five() {
    let redis = RedisSingle::start();
    let (a, b) = (unique_id("late-a"), unique_id("late-b"));
    // A 9 s lease: renewed every 3 s, a renewal missed 4 s after the stop,
    // the lease lapsed after 9.
    let long_lease =
        |name: &str| roost_testkit::cluster_node(ROOST, &redis.url(), name, 9_000, "", "");
    let node_a = long_lease(&a);
    let node_b = long_lease(&b);
    let ctl = Ctl::for_node(&node_a);
    ctl.wait_nodes(&[&a, &b]);
    node_b.signal(rustix::process::Signal::STOP).unwrap();
    // B's last renewal is now more than a renewal period (and a second of
    // slack) old, its lease not lapsed: still `running`.
    let nodes = ctl.wait_for(&["nodes"], "B late", |v| {
        let b_row = row(v, &b);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let until = b_row["lease_until_ms"].as_u64().unwrap();
        b_row["status"] == "running" && until > now + 1_500 && until < now + 4_800
    });
    let started = Instant::now();
    let list = ctl.json(&["clients", "list"]);
    let took = started.elapsed();
    node_b.signal(rustix::process::Signal::CONT).unwrap();
    let failed = list["meta"]["failed_nodes"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{list} (nodes: {nodes})");
    assert_eq!(failed[0]["node"], b.as_str(), "{list}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("missed a lease renewal"),
        "{list}"
    );
    assert!(
        took < Duration::from_millis(4_000),
        "the list took {took:?}"
    );
}
