//! `roost bench` over every stream transport the broker serves: TLS (the
//! broker's certificate verified against a CA, or not verified, as
//! emqtt-bench does by default; with a client certificate), WebSocket and
//! WebSocket over TLS. Each run is the `roost` binary's own `bench`
//! subcommand against a `roost` broker; its JSON report must show every
//! client connected and, for `pubsub`, every message delivered once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::pki::Pki;
use roost_testkit::BrokerProcess;
use serde_json::Value;

/// A broker with TLS (client certificate required), WS and WSS listeners
/// beside the TCP one.
fn start(pki: &Pki) -> BrokerProcess {
    let tls = format!(
        "[listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let toml = format!(
        "[[listeners]]\nkind = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
         [[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\n{tls}verify_peer = true\n\
         [[listeners]]\nkind = \"ws\"\nbind = \"127.0.0.1:0\"\n\
         [[listeners]]\nkind = \"wss\"\nbind = \"127.0.0.1:0\"\n{tls}"
    );
    BrokerProcess::builder(env!("CARGO_BIN_EXE_roost"))
        .config_toml(toml)
        .start()
        .expect("start roost")
}

/// Runs `roost bench <args> --json` and returns its report and whether it
/// exited successfully.
fn run_bench(args: &[&str]) -> (Value, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_roost"))
        .arg("bench")
        .args(args)
        .args(["--connect-timeout", "5", "--json"])
        .output()
        .expect("run roost bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("roost bench {args:?}: no JSON report ({e}):\n{stderr}"));
    (report, output.status.success())
}

/// A run that must succeed.
fn bench(args: &[&str]) -> Value {
    let (report, ok) = run_bench(args);
    assert!(ok, "roost bench {args:?} failed: {report}");
    report
}

fn connected(report: &Value) -> (u64, u64) {
    let connect = &report["connect"];
    (
        connect["ok"].as_u64().unwrap(),
        connect["failed"].as_u64().unwrap(),
    )
}

/// `conn` over TLS with `clients` clients, verifying the broker against
/// `ca` when given, presenting the client certificate when `client_cert`;
/// the report and whether the run succeeded.
fn conn_over_tls(pki: &Pki, port: &str, ca: Option<&str>, client_cert: bool) -> (Value, bool) {
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let mut args = vec![
        "conn",
        "-c",
        "3",
        "-i",
        "0",
        "--duration",
        "1",
        "-p",
        port,
        "-S",
    ];
    if let Some(ca) = ca {
        args.extend_from_slice(&["--cacertfile", ca, "--sni", "localhost"]);
    }
    if client_cert {
        args.extend_from_slice(&["--certfile", &cert, "--keyfile", &key]);
    }
    run_bench(&args)
}

#[test]
fn conn_over_tls_verifies_the_broker_against_a_ca_and_presents_a_client_certificate() {
    let pki = Pki::new();
    let broker = start(&pki);
    let port = common::listener_port(&broker, "mqtts").to_string();
    let ca = pki.path("ca.crt");
    for verify in [Some(ca.as_str()), None] {
        let (report, ok) = conn_over_tls(&pki, &port, verify, true);
        assert!(ok, "verify against {verify:?}: {report}");
        assert_eq!(connected(&report), (3, 0), "verify against {verify:?}");
    }
}

#[test]
fn without_a_client_certificate_the_mutual_tls_listener_refuses() {
    let pki = Pki::new();
    let broker = start(&pki);
    let port = common::listener_port(&broker, "mqtts").to_string();
    let (report, _) = conn_over_tls(&pki, &port, None, false);
    assert_eq!(connected(&report), (0, 3));
}

#[test]
fn a_ca_that_did_not_sign_the_broker_fails_the_tls_handshake() {
    let pki = Pki::new();
    let broker = start(&pki);
    let port = common::listener_port(&broker, "mqtts").to_string();
    // The client certificate is no CA: nothing verifies against it.
    let not_the_ca = pki.path("client.crt");
    let (report, _) = conn_over_tls(&pki, &port, Some(&not_the_ca), true);
    assert_eq!(connected(&report), (0, 3));
    assert!(
        report["errors"].to_string().contains("TLS handshake"),
        "the failure names the TLS handshake: {report}"
    );
}

/// A short paced `pubsub` run over `scheme`'s listener (with `-S`, the
/// broker's certificate verified against the CA): every client connects, and
/// every message arrives once.
fn pubsub_delivers_every_message_once(scheme: &str, qos: &str, transport: &[&str]) {
    let pki = Pki::new();
    let broker = start(&pki);
    let port = common::listener_port(&broker, scheme).to_string();
    let ca = pki.path("ca.crt");
    let mut args = vec![
        "pubsub",
        "--pubs",
        "2",
        "--subs",
        "2",
        "--topic-mode",
        "pairs",
        "-q",
        qos,
        "-s",
        "64",
        "--rate",
        "200",
        "--duration",
        "1",
        "--warmup",
        "0",
        "-p",
        &port,
    ];
    args.extend_from_slice(transport);
    if transport.contains(&"-S") {
        args.extend_from_slice(&["--cacertfile", &ca, "--sni", "localhost"]);
    }
    let report = bench(&args);
    assert_eq!(connected(&report), (4, 0));
    let receive = &report["receive"];
    assert!(receive["received"].as_u64().unwrap() > 0, "{receive}");
    assert_eq!(receive["lost"], 0, "{receive}");
    assert_eq!(receive["duplicates"], 0, "{receive}");
}

#[test]
fn pubsub_over_websocket_delivers_every_message_once() {
    pubsub_delivers_every_message_once("ws", "1", &["--ws"]);
}

#[test]
fn pubsub_over_websocket_over_tls_delivers_every_message_once() {
    pubsub_delivers_every_message_once("wss", "0", &["--ws", "-S"]);
}

#[test]
fn a_conn_run_whose_clients_all_fail_reports_instead_of_holding_forever() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
        .to_string();
    // `--duration` left at 0: hold until Ctrl-C, which only makes sense
    // with clients to hold.
    let child = Command::new(env!("CARGO_BIN_EXE_roost"))
        .args(["bench", "conn", "-c", "2", "-p", &port, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run roost bench");
    let pid = child.id().to_string();
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    let Ok(output) = exited.recv_timeout(roost_testkit::TIMEOUT) else {
        let _ = Command::new("kill").arg(&pid).status();
        panic!(
            "roost bench still holds no connection after {:?}",
            roost_testkit::TIMEOUT
        );
    };
    let output = output.unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(connected(&report), (0, 2));
    assert!(
        !output.status.success(),
        "a run in which no client connected exits with an error status"
    );
}

#[test]
fn cacertfile_trusts_a_plain_openssl_self_signed_certificate_as_mosquitto_sub_does() {
    let pki = Pki::new();
    pki.self_signed("selfsigned");
    let toml = format!(
        "[[listeners]]\nkind = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
         [[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\n\
         [listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.path("selfsigned.crt"),
        pki.path("selfsigned.key"),
    );
    let broker = BrokerProcess::builder(env!("CARGO_BIN_EXE_roost"))
        .config_toml(toml)
        .start()
        .expect("start roost");
    let port = common::listener_port(&broker, "mqtts").to_string();
    let ca = pki.path("selfsigned.crt");
    let args = [
        "conn",
        "-c",
        "2",
        "-i",
        "0",
        "--duration",
        "1",
        "-p",
        &port,
        "-S",
        "--cacertfile",
        &ca,
        "--sni",
        "localhost",
    ];
    let (report, ok) = run_bench(&args);
    assert!(ok, "{report}");
    assert_eq!(connected(&report), (2, 0), "{report}");
    // Another certificate in the CA file still fails: trust is not blanket.
    let other = pki.path("ca.crt");
    let args = [
        "conn",
        "-c",
        "1",
        "-i",
        "0",
        "--duration",
        "1",
        "-p",
        &port,
        "-S",
        "--cacertfile",
        &other,
        "--sni",
        "localhost",
    ];
    let (report, _) = run_bench(&args);
    assert_eq!(connected(&report), (0, 1), "{report}");
}
