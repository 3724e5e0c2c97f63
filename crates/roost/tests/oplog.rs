//! The operator's log at the default level, against `mosquitto_pub`: the
//! version banner and the configuration file, one line per client connect
//! (address, client id, protocol, clean start, keep-alive, user name) and
//! disconnect, one per refused connection with its reason code and why, and
//! never a password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roost_testkit::BrokerProcess;
use roost_testkit::packets::unique_id;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");
const PASSWORD: &str = "s3cr3t-pw";

/// A directory of its own, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until the broker's log has a line containing every one of `parts`.
fn wait_for_line(broker: &BrokerProcess, parts: &[&str]) -> String {
    let deadline = Instant::now() + roost_testkit::TIMEOUT;
    loop {
        let log = broker.log();
        if let Some(line) = log
            .lines()
            .find(|line| parts.iter().all(|p| line.contains(p)))
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {parts:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mosquitto_pub(port: u16, args: &[&str]) -> bool {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "oplog/t",
            "-m",
            "x",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub is missing: scripts/install-test-deps.sh installs it")
        .success()
}

#[test]
fn connects_disconnects_and_refusals_are_logged_at_info_without_secrets() {
    let dir = TempDir(std::env::temp_dir().join(unique_id("roost-oplog")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let passwd = dir.0.join("passwd");
    let made = Command::new(ROOST)
        .args(["passwd", "-c", "-b"])
        .arg(&passwd)
        .args(["alice", PASSWORD])
        .status()
        .unwrap();
    assert!(made.success());
    let broker = BrokerProcess::builder(ROOST)
        .config_toml(format!(
            "[[listeners]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\n\
             [auth.password_file]\npath = \"{}\"\n",
            passwd.display()
        ))
        .env("RUST_LOG", "")
        .start()
        .expect("start roost");
    let port = broker.addr().port();
    wait_for_line(&broker, &["roost starting", "version="]);
    wait_for_line(&broker, &["configuration loaded", "roost.toml"]);

    // With credentials, MQTT 5.0.
    let id = unique_id("oplog-v5");
    assert!(mosquitto_pub(
        port,
        &[
            "-V", "mqttv5", "-i", &id, "-k", "30", "-u", "alice", "-P", PASSWORD
        ]
    ));
    let line = wait_for_line(&broker, &["client connected", &id]);
    for part in [
        "INFO",
        "peer=127.0.0.1:",
        "protocol=\"5.0\"",
        "clean_start=true",
        "keep_alive=30",
        "username=\"alice\"",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    wait_for_line(&broker, &["client disconnected", &id, "username=\"alice\""]);

    // Without credentials, MQTT 3.1.1: refused, and the line says why.
    let id = unique_id("oplog-anon");
    assert!(!mosquitto_pub(port, &["-V", "mqttv311", "-i", &id]));
    let line = wait_for_line(&broker, &["connection refused", &id]);
    assert!(line.contains("0x87"), "{line}");
    assert!(line.contains("anonymous clients are refused"), "{line}");
    assert!(line.contains("protocol=\"3.1.1\""), "{line}");

    // A wrong password: 0x86, the password itself never logged.
    let id = unique_id("oplog-bad");
    assert!(!mosquitto_pub(
        port,
        &["-V", "mqttv5", "-i", &id, "-u", "alice", "-P", "wrong-pw"]
    ));
    let line = wait_for_line(&broker, &["connection refused", &id]);
    assert!(
        line.contains("0x86") && line.contains("wrong password"),
        "{line}"
    );
    let log = broker.log();
    assert!(
        !log.contains(PASSWORD) && !log.contains("wrong-pw"),
        "{log}"
    );
}

#[test]
fn the_storage_engine_stays_quiet_at_info() {
    let dir = TempDir(std::env::temp_dir().join(unique_id("roost-oplog-disk")));
    let broker = BrokerProcess::builder(ROOST)
        .arg("--store")
        .arg("disk")
        .arg("--data-dir")
        .arg(&dir.0)
        .env("RUST_LOG", "")
        .start()
        .expect("start roost");
    let id = unique_id("oplog-disk");
    assert!(mosquitto_pub(
        broker.addr().port(),
        &["-V", "mqttv5", "-i", &id, "-q", "1", "-r"]
    ));
    wait_for_line(&broker, &["client disconnected", &id]);
    let log = broker.log();
    assert!(
        !log.lines()
            .any(|l| l.contains(" INFO fjall") || l.contains(" INFO lsm_tree")),
        "{log}"
    );
}

#[test]
fn a_tls_client_connecting_by_ip_address_leaves_no_sni_warning() {
    let pki = common::pki::Pki::new();
    let broker = BrokerProcess::builder(ROOST)
        .config_toml(format!(
            "[[listeners]]\nbind = \"127.0.0.1:0\"\n\
             [[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\nallow_anonymous = true\n\
             [listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.path("server.crt"),
            pki.path("server.key"),
        ))
        .env("RUST_LOG", "")
        .start()
        .expect("start roost");
    let port = common::listener_port(&broker, "mqtts");
    let id = unique_id("oplog-tls");
    assert!(mosquitto_pub(
        port,
        &["-V", "mqttv5", "-i", &id, "--cafile", &pki.path("ca.crt")]
    ));
    wait_for_line(&broker, &["client disconnected", &id]);
    let log = broker.log();
    assert!(!log.contains("Illegal SNI"), "{log}");
}

#[test]
fn dash_v_adds_the_broker_debug_lines_but_not_the_storage_engine_ones() {
    let dir = TempDir(std::env::temp_dir().join(unique_id("roost-oplog-v")));
    let broker = BrokerProcess::builder(ROOST)
        .arg("-v")
        .arg("--store")
        .arg("disk")
        .arg("--data-dir")
        .arg(&dir.0)
        .env("RUST_LOG", "")
        .start()
        .expect("start roost");
    let id = unique_id("oplog-v");
    assert!(mosquitto_pub(
        broker.addr().port(),
        &["-V", "mqttv5", "-i", &id, "-q", "1", "-r"]
    ));
    wait_for_line(&broker, &["DEBUG", "roost_broker", &id]);
    let log = broker.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("DEBUG fjall") || l.contains("DEBUG lsm_tree")),
        "{log}"
    );
}

#[test]
fn without_dash_v_the_default_level_has_no_debug_lines() {
    let broker = BrokerProcess::builder(ROOST)
        .arg("--store")
        .arg("memory")
        .env("RUST_LOG", "")
        .start()
        .expect("start roost");
    let id = unique_id("oplog-quiet");
    assert!(mosquitto_pub(
        broker.addr().port(),
        &["-V", "mqttv5", "-i", &id]
    ));
    wait_for_line(&broker, &["client disconnected", &id]);
    assert!(!broker.log().contains("DEBUG"), "{}", broker.log());
}
