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
    let http = broker
        .http_addr()
        .expect("a `management API listening on` line");
    let data_dir = broker.data_dir().to_path_buf();
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
    (
        broker,
        Ctl {
            url: format!("http://{http}"),
            key,
            data_dir,
        },
    )
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
fn metrics_pass_promtool_and_counters_move_with_mosquitto_pub_traffic() {
    let (broker, ctl) = start(None);
    let text = ctl.ok(&["metrics"]);
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
    let received = ctl.metric("roost_messages_received_total");
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
    assert_eq!(ctl.metric("roost_messages_received_total"), received + 5.0);
    assert_eq!(
        ctl.metric("roost_connections_accepted_total"),
        accepted + 5.0
    );
    // 5 CONNECT reads are not counted; each PUBLISH and DISCONNECT is.
    assert!(ctl.metric("roost_bytes_received_total") >= bytes + 5.0 * 20.0);
}

#[test]
fn roost_ctl_manages_a_running_broker() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    std::fs::write(&passwords, "").unwrap();
    let config = format!(
        "[auth.banned]\n[auth.password_file]\npath = {:?}\nunknown_user = \"ignore\"\n",
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
    assert!(ctl.ok(&["users", "list"]).contains("alice"));
    ctl.ok(&["users", "remove", "alice"]);
    assert!(!ctl.ok(&["users", "list"]).contains("alice"));

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
