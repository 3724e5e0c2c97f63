//! The management plane end to end with the `roost` binary: `roost ctl`
//! against a running broker, mosquitto_pub/sub as the MQTT side, promtool
//! on `/metrics` (Debian packages mosquitto-clients and prometheus).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use roost_testkit::BrokerProcess;
use roost_testkit::packets::unique_id;
use serde_json::Value;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");

struct Ctl {
    url: String,
    key: String,
    data_dir: std::path::PathBuf,
}

fn start(config: Option<&str>) -> (BrokerProcess, Ctl) {
    let mut builder = BrokerProcess::builder(ROOST);
    if let Some(config) = config {
        builder = builder.config_toml(config);
    }
    let broker = builder.start().unwrap();
    let ctl = ctl_for(&broker, broker.data_dir());
    (broker, ctl)
}

/// A `roost ctl` for `broker`, with an API key made in its data directory.
fn ctl_for(broker: &BrokerProcess, data_dir: &std::path::Path) -> Ctl {
    let http = broker
        .http_addr()
        .expect("a `management API listening on` line");
    let data_dir = data_dir.to_path_buf();
    // A key made locally while the server runs: it must see it at once.
    let out = run(
        &[
            "ctl",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "api-key",
            "create",
            "--name",
            "test",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = format!(
        "{}:{}",
        created["key"].as_str().unwrap(),
        created["secret"].as_str().unwrap()
    );
    Ctl {
        url: format!("http://{http}"),
        key,
        data_dir,
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(ROOST)
        .args(args)
        .env_remove("ROOST_CTL_URL")
        .env_remove("ROOST_CTL_KEY")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

impl Ctl {
    /// `roost ctl ARGS` with the endpoint and key from the environment.
    fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(ROOST)
            .arg("ctl")
            .args(args)
            .env("ROOST_CTL_URL", &self.url)
            .env("ROOST_CTL_KEY", &self.key)
            .env("HOME", "/nonexistent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "roost ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Polls until `client_id` has `n` subscriptions.
    fn wait_subscribed(&self, client_id: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let subs = self.json(&["subs", "list", "--client-id", client_id]);
            if subs["meta"]["count"] == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{client_id} never had {n} subscriptions: {subs}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.ok(&["metrics"]);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    /// The sum of every series of `name` (all label values).
    fn metric_sum(&self, name: &str) -> f64 {
        let text = self.ok(&["metrics"]);
        let values: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let value = match rest.strip_prefix('{') {
                    Some(labelled) => labelled.split_once("} ")?.1,
                    None => rest.strip_prefix(' ')?,
                };
                value.trim().parse().ok()
            })
            .collect();
        assert!(!values.is_empty(), "no {name} in\n{text}");
        values.iter().sum()
    }
}

/// `promtool check metrics` on `text`.
fn promtool_check(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

fn mosquitto_sub(port: u16, id: &str, topic: &str, count: u32) -> std::process::Child {
    Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-i",
            id,
            "-t",
            topic,
            "-C",
            &count.to_string(),
            "-W",
            "20",
            "-v",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (Debian package mosquitto-clients)")
}

fn mosquitto_pub(port: u16, args: &[&str]) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    assert!(out.status.success(), "{out:?}");
}

/// Whether mosquitto_pub gets in as `user`.
fn mosquitto_pub_ok(port: u16, user: &str, password: &str) -> bool {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            password,
        ])
        .args(["-q", "1", "-t", "ctl/auth", "-m", "x"])
        .output()
        .expect("mosquitto_pub")
        .status
        .success()
}

#[test]
fn a_message_published_through_the_api_reaches_mosquitto_sub() {
    let (broker, ctl) = start(None);
    let id = unique_id("msub");
    let sub = mosquitto_sub(broker.addr().port(), &id, "api/hello", 1);
    ctl.wait_subscribed(&id, 1);
    let answer = ctl.json(&["publish", "api/hello", "from the API", "--qos", "1"]);
    assert_eq!(answer["matched"], 1);
    let out = sub.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "api/hello from the API"
    );
}

#[test]
fn roost_ctl_subs_add_subscribes_mosquitto_sub_and_remove_unsubscribes_it() {
    let (broker, ctl) = start(None);
    let port = broker.addr().port();
    let id = unique_id("ctlsubs");
    // Subscribed to nothing that is published: only the added filter can
    // bring it the one message it waits for.
    let sub = mosquitto_sub(port, &id, "ctlsubs/quiet", 1);
    ctl.wait_subscribed(&id, 1);
    let added = ctl.json(&["subs", "add", &id, "ctlsubs/added/+", "--qos", "1"]);
    assert_eq!(added["qos"], 1);
    assert_eq!(added["existed"], false);
    ctl.wait_subscribed(&id, 2);
    let shown = ctl.ok(&["clients", "show", &id]);
    assert!(shown.contains("ctlsubs/added/+"), "{shown}");
    mosquitto_pub(port, &["-q", "1", "-t", "ctlsubs/added/x", "-m", "routed"]);
    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ctlsubs/added/x routed"
    );

    let id = unique_id("ctlunsub");
    let mut sub = mosquitto_sub(port, &id, "ctlsubs/gone", 1);
    ctl.wait_subscribed(&id, 1);
    let removed = ctl.ok(&["subs", "remove", &id, "ctlsubs/gone"]);
    assert!(removed.contains("unsubscribed"), "{removed}");
    ctl.wait_subscribed(&id, 0);
    let again = ctl.run(&["subs", "remove", &id, "ctlsubs/gone"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("SUBSCRIPTION_NOT_FOUND"),
        "{again:?}"
    );
    let _ = sub.kill();
    let _ = sub.wait();
}

#[test]
fn bans_added_through_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start_on_dir = || {
        BrokerProcess::builder(ROOST)
            .config_toml("[auth.banned]\n")
            .env("ROOST_STORE__DATA_DIR", dir.path())
            .start()
            .unwrap()
    };
    let mut broker = start_on_dir();
    let ctl = ctl_for(&broker, dir.path());
    ctl.ok(&["ban", "add", "clientid", "kept-out"]);
    ctl.ok(&["ban", "add", "clientid", "let-in"]);
    ctl.ok(&["ban", "remove", "clientid", "let-in"]);
    broker.stop().unwrap();

    let broker = start_on_dir();
    // The admin file lives in the data directory too: the same key works.
    let http = broker.http_addr().unwrap();
    let ctl = Ctl {
        url: format!("http://{http}"),
        ..ctl
    };
    let bans = ctl.json(&["ban", "list"]);
    assert_eq!(bans.as_array().unwrap().len(), 1, "{bans}");
    assert_eq!(bans[0]["kind"], "clientid");
    assert_eq!(bans[0]["value"], "kept-out");
    let refused = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.addr().port().to_string()])
        .args(["-i", "kept-out", "-t", "bans/x", "-m", "x"])
        .output()
        .expect("mosquitto_pub");
    assert!(!refused.status.success(), "a banned client id got in");
}

#[test]
fn nodes_lists_every_node_of_a_cluster() {
    let redis = roost_testkit::redis::RedisSingle::start();
    let names = [unique_id("node-a"), unique_id("node-b")];
    let nodes: Vec<BrokerProcess> = names
        .iter()
        .map(|name| {
            BrokerProcess::builder(ROOST)
                .config_toml(format!(
                    "[cluster]\nenabled = true\nnode_id = \"{name}\"\n\
                     [cluster.redis]\nurl = \"{}\"\n",
                    redis.url()
                ))
                .arg("--store")
                .arg("memory")
                .start()
                .expect("a cluster node")
        })
        .collect();
    let ctl = ctl_for(&nodes[0], nodes[0].data_dir());
    let listed = ctl.json(&["nodes"]);
    let rows = listed.as_array().unwrap();
    let mut seen: Vec<&str> = rows.iter().map(|n| n["node"].as_str().unwrap()).collect();
    seen.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(seen, want, "{listed}");
    for row in rows {
        let local = row["node"] == names[0].as_str();
        let at = if local { &nodes[0] } else { &nodes[1] };
        let url = serde_json::json!(format!("mqtt://{}", at.addr()));
        let addresses = row["addresses"].as_array().unwrap();
        assert!(addresses.contains(&url), "{row}");
        assert_eq!(row["local"], local, "{row}");
        assert!(row["lease_until_ms"].as_u64().unwrap() > 0, "{row}");
        assert!(row["uptime_s"].is_u64(), "{row}");
        // Every node's count: the others announce theirs in Redis.
        assert!(row["connections"].is_u64(), "{row}");
        assert_eq!(row["version"], env!("CARGO_PKG_VERSION"), "{row}");
    }
    let table = ctl.ok(&["nodes"]);
    assert!(table.contains(&names[1]), "{table}");
}

#[test]
fn metrics_pass_promtool_and_counters_move_with_mosquitto_pub_traffic() {
    let (broker, ctl) = start(None);
    promtool_check(&ctl.ok(&["metrics"]));
    let port = broker.addr().port();
    let qos1 = r#"roost_messages_received_total{qos="1"}"#;
    let listener = format!(r#"{{listener="mqtt://127.0.0.1:{port}",kind="tcp"}}"#);
    let listener_accepted = format!("roost_listener_connections_accepted_total{listener}");
    let received = ctl.metric_sum("roost_messages_received_total");
    let received_qos1 = ctl.metric(qos1);
    let accepted_here = ctl.metric(&listener_accepted);
    let bytes = ctl.metric("roost_bytes_received_total");
    let accepted = ctl.metric("roost_connections_accepted_total");
    for i in 0..5 {
        // QoS 1: mosquitto_pub exits after the PUBACK, so the broker has counted it.
        mosquitto_pub(
            broker.addr().port(),
            &[
                "-q",
                "1",
                "-t",
                "metrics/test",
                "-m",
                &format!("message {i}"),
            ],
        );
    }
    assert_eq!(
        ctl.metric_sum("roost_messages_received_total"),
        received + 5.0
    );
    assert_eq!(ctl.metric(qos1), received_qos1 + 5.0);
    assert_eq!(
        ctl.metric("roost_connections_accepted_total"),
        accepted + 5.0
    );
    assert_eq!(ctl.metric(&listener_accepted), accepted_here + 5.0);
    // With traffic every family has samples: still valid.
    let text = ctl.ok(&["metrics"]);
    promtool_check(&text);
    for family in [
        "roost_store_write_duration_seconds_bucket",
        "roost_hook_duration_seconds_count",
        "roost_authentication_duration_seconds_count",
        "roost_listener_connections_refused_total",
        "roost_listener_connections{",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }
    // 5 CONNECT reads are not counted; each PUBLISH and DISCONNECT is.
    assert!(ctl.metric("roost_bytes_received_total") >= bytes + 5.0 * 20.0);
}

#[test]
fn roost_ctl_manages_a_running_broker() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    std::fs::write(&passwords, "").unwrap();
    let config = format!(
        "[auth.banned]\n[auth.password_file]\npath = {:?}\n",
        passwords.display().to_string()
    );
    let (broker, ctl) = start(Some(&config));
    let port = broker.addr().port();

    // Without a key: 401, said plainly, exit code 1.
    let out = run(&["ctl", "--url", &ctl.url, "status"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401 UNAUTHORIZED"),
        "{out:?}"
    );

    let status = ctl.ok(&["status"]);
    assert!(
        status.contains("version") && status.contains("uptime_s"),
        "{status}"
    );
    assert_eq!(ctl.json(&["status"])["version"], env!("CARGO_PKG_VERSION"));

    // A subscriber: listed, shown, kicked.
    let id = unique_id("ctl");
    let sub = mosquitto_sub(port, &id, "ctl/#", 100);
    ctl.wait_subscribed(&id, 1);
    let table = ctl.ok(&["clients", "list", "--like", &id]);
    assert!(
        table.lines().next().unwrap().starts_with("CLIENT_ID"),
        "{table}"
    );
    assert!(table.contains(&id), "{table}");
    let shown = ctl.ok(&["clients", "show", &id]);
    assert!(shown.contains("ctl/#"), "{shown}");
    ctl.ok(&["clients", "kick", &id]);
    let out = sub.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "mosquitto_sub should see the broker close the connection"
    );
    let missing = ctl.run(&["clients", "show", "nobody"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("CLIENT_NOT_FOUND"));

    // Retained messages.
    mosquitto_pub(
        port,
        &["-r", "-q", "1", "-t", "ctl/retained/a", "-m", "kept"],
    );
    let list = ctl.json(&["retained", "list", "--filter", "ctl/#"]);
    assert_eq!(list["data"][0]["topic"], "ctl/retained/a");
    assert_eq!(
        ctl.json(&["retained", "get", "ctl/retained/a"])["payload"],
        "kept"
    );
    ctl.ok(&["retained", "delete", "ctl/retained/a"]);
    assert!(
        !ctl.run(&["retained", "get", "ctl/retained/a"])
            .status
            .success()
    );

    // Bans.
    ctl.ok(&["ban", "add", "clientid", "troublemaker"]);
    let bans = ctl.json(&["ban", "list"]);
    assert_eq!(bans[0]["value"], "troublemaker");
    ctl.ok(&["ban", "remove", "clientid", "troublemaker"]);
    assert_eq!(ctl.json(&["ban", "list"]), serde_json::json!([]));

    // Password-file users: added, usable at once, removed.
    let out = ctl.run_stdin(&["users", "add", "alice"], Some("s3cret\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&passwords)
            .unwrap()
            .starts_with("alice:$7$")
    );
    mosquitto_pub(
        port,
        &[
            "-u", "alice", "-P", "s3cret", "-q", "1", "-t", "ctl/x", "-m", "1",
        ],
    );
    let out = ctl.run_stdin(&["users", "passwd", "alice"], Some("n3w\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(
        !mosquitto_pub_ok(port, "alice", "s3cret"),
        "the old password still works"
    );
    assert!(mosquitto_pub_ok(port, "alice", "n3w"));
    assert!(ctl.ok(&["users", "list"]).contains("alice"));
    ctl.ok(&["users", "remove", "alice"]);
    assert!(!ctl.ok(&["users", "list"]).contains("alice"));
    assert!(
        !mosquitto_pub_ok(port, "alice", "n3w"),
        "a removed user still gets in"
    );

    let reload = ctl.json(&["reload"]);
    assert_eq!(reload["errors"], serde_json::json!([]));

    // A dashboard user made locally; its hash lands in the admin file.
    let out = run(
        &[
            "ctl",
            "--data-dir",
            ctl.data_dir.to_str().unwrap(),
            "admin",
            "create",
            "ops",
            "--password-stdin",
        ],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let admin = std::fs::read_to_string(ctl.data_dir.join("admin.json")).unwrap();
    assert!(
        admin.contains("\"ops\"")
            && admin.contains("$argon2id$")
            && !admin.contains("a long password")
    );
}

#[test]
fn no_http_turns_the_management_api_off() {
    let broker = BrokerProcess::builder(ROOST)
        .arg("--no-http")
        .start()
        .unwrap();
    assert_eq!(broker.http_addr(), None);
}
