//! `roost bench` as its users run it: `sub` in one process and `pub` in
//! another against the same broker deliver every message (their client ids
//! no longer collide), the per-second progress line and `--quiet`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use roost_testkit::packets::unique_id;
use roost_testkit::{BrokerProcess, TIMEOUT};
use serde_json::Value;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");

#[test]
fn bench_sub_and_bench_pub_as_two_processes_deliver_every_message() {
    let broker = BrokerProcess::start(ROOST).expect("start roost");
    let port = broker.addr().port().to_string();
    let topic = format!("bench-cli/{}/%i", unique_id("t"));
    // Two subscribers on topic/0 and topic/1, held until interrupted.
    let mut sub = Command::new(ROOST)
        .args(["bench", "sub", "-p", &port, "-c", "2", "-i", "0", "-q", "1"])
        .args(["-t", &topic, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run roost bench sub");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = sub.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let wait_for = |needle: &str| loop {
        match lines.recv_timeout(TIMEOUT) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => panic!("roost bench sub never printed {needle:?}"),
        }
    };
    wait_for("2 of 2 subscriptions granted");
    // Two publishers on the same topics: 10 messages each, as emqtt-bench's
    // `pub -c 2 -L 20`.
    let publish = Command::new(ROOST)
        .args(["bench", "pub", "-p", &port, "-c", "2", "-i", "0", "-q", "1"])
        .args([
            "-t", &topic, "-I", "10", "-L", "20", "-m", "hello", "--json",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run roost bench pub");
    assert!(publish.status.success(), "roost bench pub failed");
    let published: Value = serde_json::from_slice(&publish.stdout).unwrap();
    assert_eq!(published["publish"]["sent"], 20, "{published}");
    // The progress line counts what arrives; all 20 must.
    wait_for("received 20 ");
    let pid = rustix::process::Pid::from_child(&sub);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || done.send(sub.wait_with_output()));
    let output = exited
        .recv_timeout(TIMEOUT)
        .expect("roost bench sub ends after Ctrl-C")
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["receive"]["received"], 20, "{report}");
    assert_eq!(report["lost_connections"], 0, "{report}");
    // No session of one run was taken over by the other.
    assert!(
        !broker.log().contains("took the session over"),
        "{}",
        broker.log()
    );
}

#[test]
fn quiet_leaves_out_the_progress_lines_but_not_the_summary() {
    let broker = BrokerProcess::start(ROOST).expect("start roost");
    let port = broker.addr().port().to_string();
    let run = |quiet: bool| {
        let mut command = Command::new(ROOST);
        command.args(["bench", "conn", "-p", &port, "-c", "1", "--duration", "2"]);
        if quiet {
            command.arg("--quiet");
        }
        let output = command.output().expect("run roost bench conn");
        assert!(output.status.success());
        (
            String::from_utf8_lossy(&output.stderr).into_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (progress, summary) = run(false);
    assert!(progress.contains("connected 1, sent 0"), "{progress}");
    assert!(summary.contains("connect    1/1 ok"), "{summary}");
    let (quiet, summary) = run(true);
    assert!(!quiet.contains("connected 1, sent"), "{quiet}");
    assert!(summary.contains("connect    1/1 ok"), "{summary}");
}
