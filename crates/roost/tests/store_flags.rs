//! `--store`, `--data-dir` and `--durability` on the `roost` binary: they
//! choose the backend over the `ROOST_STORE__*` environment, and clap refuses
//! values it does not know.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use roost_codec::{Packet, QoS};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::{BrokerProcess, RawClient, TIMEOUT};

const BIN: &str = env!("CARGO_BIN_EXE_roost");

/// The broker with `args`, and the environment asking for the other backend,
/// so a pass shows the flag won.
fn start(args: &[&OsStr], env_backend: &str) -> BrokerProcess {
    let mut builder =
        BrokerProcess::builder(BIN).env("ROOST_STORE__BACKEND", env_backend.to_string());
    for arg in args {
        builder = builder.arg(*arg);
    }
    builder.start().expect("start roost")
}

/// Publishes a retained QoS 1 message and waits for its PUBACK.
async fn publish_retained(addr: SocketAddr, topic: &str, payload: &'static [u8]) {
    let (mut client, _) = RawClient::connect_v5(addr, &unique_id("store-pub"))
        .await
        .unwrap();
    let mut publish = packets::publish(topic, payload, QoS::AtLeastOnce, Some(1));
    publish.retain = true;
    client.send(publish).await.unwrap();
    match client.recv(TIMEOUT).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, packets::pid(1)),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// Subscribes to `topic`, then publishes a non-retained marker to it: the
/// first message the subscriber gets is the retained one if the broker has
/// it, else the marker (no waiting for something not to arrive).
async fn first_message_after_subscribe(addr: SocketAddr, topic: &str) -> (Vec<u8>, bool) {
    let (mut subscriber, _) = RawClient::connect_v5(addr, &unique_id("store-sub"))
        .await
        .unwrap();
    subscriber
        .send(packets::subscribe(1, topic, QoS::AtMostOnce))
        .await
        .unwrap();
    match subscriber.recv(TIMEOUT).await.unwrap() {
        Packet::SubAck(_) => {}
        other => panic!("expected SUBACK, got {other:?}"),
    }
    let (mut marker, _) = RawClient::connect_v5(addr, &unique_id("store-marker"))
        .await
        .unwrap();
    marker
        .send(packets::publish(
            topic,
            &b"marker"[..],
            QoS::AtMostOnce,
            None,
        ))
        .await
        .unwrap();
    let first = subscriber.recv_publish(TIMEOUT).await.unwrap();
    (first.payload.to_vec(), first.retain)
}

/// A directory of its own under the system temp dir, removed on drop (the
/// crate has no tempfile dependency of its own).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_id(prefix));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_empty_or_missing(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[tokio::test]
async fn store_memory_writes_nothing_to_the_data_dir_and_forgets_on_restart() {
    let dir = TempDir::new("roost-store-flags");
    let data = dir.0.join("data");
    let args = [
        OsStr::new("--store"),
        OsStr::new("memory"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ];
    let topic = format!("store-flags/{}", unique_id("memory"));

    let mut broker = start(&args, "disk");
    publish_retained(broker.addr(), &topic, b"kept in memory").await;
    // The memory store does hold it while the broker runs.
    assert_eq!(
        first_message_after_subscribe(broker.addr(), &topic).await,
        (b"kept in memory".to_vec(), true)
    );
    assert!(broker.stop().unwrap().success(), "{}", broker.log());
    assert!(
        is_empty_or_missing(&data),
        "--store memory wrote to {}: {:?}",
        data.display(),
        std::fs::read_dir(&data).map(|d| d.count())
    );

    let broker = start(&args, "disk");
    assert_eq!(
        first_message_after_subscribe(broker.addr(), &topic).await,
        (b"marker".to_vec(), false),
        "a restarted memory store has no retained message"
    );
}

#[tokio::test]
async fn store_disk_keeps_a_retained_message_across_a_restart() {
    let dir = TempDir::new("roost-store-flags");
    let data = dir.0.join("data");
    let args = [
        OsStr::new("--store"),
        OsStr::new("disk"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--durability"),
        OsStr::new("sync"),
    ];
    let topic = format!("store-flags/{}", unique_id("disk"));

    let mut broker = start(&args, "memory");
    publish_retained(broker.addr(), &topic, b"kept on disk").await;
    assert!(broker.stop().unwrap().success(), "{}", broker.log());
    assert!(
        !is_empty_or_missing(&data),
        "nothing under {}",
        data.display()
    );

    let broker = start(&args, "memory");
    assert_eq!(
        first_message_after_subscribe(broker.addr(), &topic).await,
        (b"kept on disk".to_vec(), true)
    );
}

/// A private redis-server on a free loopback port, killed by its PID on drop.
struct RedisServer {
    child: std::process::Child,
    url: String,
}

impl RedisServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-test-deps.sh installs it)");
        let mut server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "redis-server exited at start"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server not listening"
            );
            // Nothing to wait on but the port itself.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn store_redis_uses_the_redis_url_flag_across_a_restart() {
    let redis = RedisServer::start();
    let dir = TempDir::new("roost-store-flags");
    let data = dir.0.join("data");
    let args = [
        OsStr::new("--store"),
        OsStr::new("redis"),
        OsStr::new("--redis-url"),
        OsStr::new(&redis.url),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ];
    let topic = format!("store-flags/{}", unique_id("redis"));

    let mut broker = start(&args, "disk");
    publish_retained(broker.addr(), &topic, b"kept in redis").await;
    assert!(broker.stop().unwrap().success(), "{}", broker.log());
    assert!(
        is_empty_or_missing(&data),
        "--store redis wrote to {}",
        data.display()
    );

    let broker = start(&args, "disk");
    assert_eq!(
        first_message_after_subscribe(broker.addr(), &topic).await,
        (b"kept in redis".to_vec(), true)
    );
}

/// Runs the binary with `args` and returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unknown_store_or_durability_is_a_usage_error_listing_the_choices() {
    let (code, stderr) = run(&["-p", "0", "--store", "floppy"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'floppy' for '--store <STORE>'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[possible values: memory, disk, redis]"),
        "{stderr}"
    );

    let (code, stderr) = run(&["-p", "0", "--durability", "eventually"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'eventually' for '--durability <DURABILITY>'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[possible values: none, async, sync]"),
        "{stderr}"
    );
}
