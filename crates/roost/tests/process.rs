//! The `roost` binary's process contract (listening line, port 0, graceful
//! SIGTERM) and wire-level checks with the raw-packet client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use roost_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::packets::{self, unique_id};
use roost_testkit::{BrokerProcess, RawClient, TIMEOUT};

fn start_broker() -> BrokerProcess {
    BrokerProcess::start(env!("CARGO_BIN_EXE_roost")).expect("start roost")
}

#[tokio::test]
async fn port_0_listens_on_loopback_and_accepts_mqtt_5_and_3_1_1() {
    let broker = start_broker();
    assert!(
        broker.addr().ip().is_loopback(),
        "default listener is loopback only: {}",
        broker.addr()
    );
    assert_ne!(broker.addr().port(), 0);
    let (_v5, ack) = RawClient::connect_v5(broker.addr(), &unique_id("raw-v5"))
        .await
        .unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let (_v311, ack) = RawClient::connect_v311(broker.addr(), &unique_id("raw-v311"))
        .await
        .unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut broker = start_broker();
    let status = broker.stop().unwrap();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn v5_mqtt_3_1_0_2_second_connect_is_a_protocol_error() {
    let broker = start_broker();
    let client_id = unique_id("raw-v5");
    let (mut client, _) = RawClient::connect_v5(broker.addr(), &client_id)
        .await
        .unwrap();
    client
        .send(packets::connect(ProtocolVersion::V5, &client_id))
        .await
        .unwrap();
    let disconnect = client.expect_closed(TIMEOUT).await.unwrap();
    if let Some(disconnect) = disconnect {
        assert_eq!(disconnect.reason_code, ReasonCode::PROTOCOL_ERROR);
    }
}

#[tokio::test]
async fn v311_mqtt_3_1_0_2_second_connect_disconnects() {
    let broker = start_broker();
    let client_id = unique_id("raw-v311");
    let (mut client, _) = RawClient::connect_v311(broker.addr(), &client_id)
        .await
        .unwrap();
    client
        .send(packets::connect(ProtocolVersion::V311, &client_id))
        .await
        .unwrap();
    assert_eq!(
        client.expect_closed(TIMEOUT).await.unwrap(),
        None,
        "3.1.1 servers send no DISCONNECT"
    );
}

#[tokio::test]
async fn raw_publish_reaches_raw_subscriber() {
    let broker = start_broker();
    let topic = format!("roost-it/{}/raw", unique_id("raw"));
    let (mut subscriber, _) = RawClient::connect_v5(broker.addr(), &unique_id("raw-sub"))
        .await
        .unwrap();
    subscriber
        .send(packets::subscribe(1, &topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    match subscriber.recv(TIMEOUT).await.unwrap() {
        Packet::SubAck(ack) => assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_1]),
        other => panic!("expected SUBACK, got {other:?}"),
    }

    let (mut publisher, _) = RawClient::connect_v311(broker.addr(), &unique_id("raw-pub"))
        .await
        .unwrap();
    publisher
        .send(packets::publish(
            &topic,
            &b"hello"[..],
            QoS::AtLeastOnce,
            Some(7),
        ))
        .await
        .unwrap();
    match publisher.recv(TIMEOUT).await.unwrap() {
        Packet::PubAck(ack) => assert_eq!(ack.packet_id, packets::pid(7)),
        other => panic!("expected PUBACK, got {other:?}"),
    }

    let delivered = subscriber.recv_publish(TIMEOUT).await.unwrap();
    assert_eq!(
        (delivered.topic.as_ref(), &delivered.payload[..]),
        (topic.as_str(), &b"hello"[..])
    );
    assert_eq!(delivered.qos, QoS::AtLeastOnce);
    let packet_id = delivered.packet_id.expect("QoS 1 PUBLISH has a packet id");
    subscriber
        .send(packets::puback(packet_id.get()))
        .await
        .unwrap();
}

/// `roost 2>&1 | head -1`, then SIGTERM: the log writes after `head` left
/// fail with EPIPE, and the broker must still shut down (issue 19, bug 1).
#[test]
fn sigterm_shuts_down_after_the_stderr_reader_exited() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    // A Unix-socket listener: its file appears once the broker has bound,
    // which is after it installed its signal handlers, and is an event the
    // test can wait for without reading the broker's (closed) stderr.
    let dir = std::env::temp_dir().join(unique_id("roost-epipe"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("mqtt.sock");
    let config = dir.join("roost.toml");
    std::fs::write(
        &config,
        format!(
            "[[listeners]]\nkind = \"unix\"\nbind = \"{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let mut head = Command::new("head")
        .arg("-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run head");
    let pipe = head.stdin.take().unwrap();
    let mut broker = Command::new(env!("CARGO_BIN_EXE_roost"))
        .args(["--store", "memory", "-v", "-c"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(pipe))
        .spawn()
        .expect("run roost");
    // `head` exits after the first line: from then on stderr is a broken pipe.
    let first = head.wait_with_output().expect("head");
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("roost starting"),
        "first line: {:?}",
        String::from_utf8_lossy(&first.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(broker.try_wait().unwrap().is_none(), "roost exited early");
        assert!(Instant::now() < deadline, "roost did not bind its socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = rustix::process::Pid::from_child(&broker);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = broker.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = broker.kill();
            panic!("roost still runs 10 s after SIGTERM with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// `-p` replaces the port of the config file's first listener and leaves
/// the others alone (issue 19, bug 6): port 1 here would not bind, so the
/// start itself shows it was replaced.
#[tokio::test]
async fn dash_p_replaces_the_first_configured_listeners_port_only() {
    let broker = BrokerProcess::builder(env!("CARGO_BIN_EXE_roost"))
        .config_toml(
            "[[listeners]]\nbind = \"127.0.0.1:1\"\n\
             [[listeners]]\nkind = \"ws\"\nbind = \"127.0.0.1:0\"\n",
        )
        .start()
        .expect("start roost with -p 0 over a listener on port 1");
    assert_ne!(broker.addr().port(), 1);
    let log = broker.log();
    assert!(log.contains("listening on ws://127.0.0.1:"), "{log}");
    let (_client, ack) = RawClient::connect_v5(broker.addr(), &unique_id("dash-p"))
        .await
        .unwrap();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}
