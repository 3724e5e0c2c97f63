//! TCP-level listener behaviour: configuration, connection limits and the
//! connect-rate bucket, PROXY protocol v1/v2, Unix domain sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_support;

use std::net::SocketAddr;

use std::time::Duration;

use roost_broker::config::{DEFER_ACCEPT_SECS, ListenAddr, ListenerKind};
use roost_broker::{BrokerError, Config};
use roost_codec::{Packet, ProtocolVersion};
use roost_testkit::packets;
use tokio::io::AsyncWriteExt;
use transport_support::{Client, Logs, T, eventually, listener, start, tcp};

#[test]
fn listener_defaults_follow_the_design_ports() {
    let config = Config::from_toml(
        "[[listeners]]\nkind = \"tcp\"\n[[listeners]]\nkind = \"ws\"\n[[listeners]]\nkind = \"unix\"\nbind = \"/tmp/x.sock\"\n[[listeners]]\nkind = \"tls\"\nbind = \"0.0.0.0\"\ntls = { cert_file = \"a\", key_file = \"b\" }\n",
        "test",
    )
    .unwrap();
    let binds: Vec<String> = config
        .listeners
        .iter()
        .map(|l| l.bind.to_string())
        .collect();
    assert_eq!(
        binds,
        [
            "127.0.0.1:1883",
            "127.0.0.1:8083",
            "/tmp/x.sock",
            "0.0.0.0:8883"
        ]
    );
    assert_eq!(config.listeners[1].websocket.path, "/mqtt");
    assert_eq!(
        config.listeners[1].websocket.subprotocols,
        ["mqtt", "mqttv3.1"]
    );
    assert_eq!(config.listeners[1].websocket.read_buffer_size, 8 * 1024);
    assert!(
        config.listeners[2].anonymous_allowed(),
        "a Unix socket is local"
    );
    assert!(
        !config.listeners[3].anonymous_allowed(),
        "0.0.0.0 is not loopback"
    );
    assert!(
        config.listeners[0].defer_accept && !config.listeners[2].defer_accept,
        "TCP-based listeners defer accept by default, Unix sockets cannot"
    );
    assert_eq!(ListenerKind::Quic.default_port(), 14567);
    assert_eq!(ListenerKind::Wss.default_port(), 8084);
}

#[test]
fn options_that_do_not_fit_the_kind_are_config_errors() {
    let bad = [
        ("kind = \"tls\"", "needs a `tls` table"),
        (
            "kind = \"tcp\"\ntls = { cert_file = \"a\", key_file = \"b\" }",
            "does not apply",
        ),
        (
            "kind = \"quic\"\nproxy_protocol = true\ntls = { cert_file = \"a\", key_file = \"b\" }",
            "proxy_protocol",
        ),
        ("kind = \"tcp\"\nwebsocket = { path = \"/x\" }", "websocket"),
        (
            "kind = \"ws\"\nwebsocket = { path = \"x\" }",
            "must start with",
        ),
        (
            "kind = \"ws\"\nwebsocket = { trusted_proxies = [\"nope\"] }",
            "not an IP address",
        ),
        (
            "kind = \"ws\"\nwebsocket = { read_buffer_size = 512 }",
            "read_buffer_size",
        ),
        ("kind = \"unix\"", "socket"),
        (
            "kind = \"tls\"\ntls = { cert_file = \"a\", key_file = \"b\", verify_peer = true }",
            "ca_file",
        ),
        // Host names are resolved ("localhost:1883" works); this is none.
        (
            "kind = \"tcp\"\nbind = \"local host:1883\"",
            "not an IP address or host name",
        ),
        (
            "kind = \"tcp\"\nbind = \"localhost:http\"",
            "is not a port number",
        ),
        (
            "kind = \"unix\"\nbind = \"/tmp/x.sock\"\ndefer_accept = true",
            "`defer_accept` does not apply",
        ),
        ("kind = \"tcp\"\nsurprise = 1", "unknown field"),
    ];
    for (table, expected) in bad {
        let toml = format!("[[listeners]]\n{table}\n");
        match Config::from_toml(&toml, "test") {
            Ok(_) => panic!("accepted: {table}"),
            Err(e) => assert!(e.to_string().contains(expected), "{table}: {e}"),
        }
    }
}

#[tokio::test]
async fn tcp_listener_logs_the_mqtt_url_and_serves() {
    let (logs, _guard) = Logs::capture();
    let broker = start(&listener("tcp", "")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    logs.wait_for(&format!(
        "listening on mqtt://{addr} (anonymous clients allowed)"
    ))
    .await;
    let (mut sub, ack) = Client::connect(tcp(addr).await, ProtocolVersion::V5, "tcp-sub").await;
    assert!(!ack.reason_code.is_error());
    sub.subscribe("tcp/t").await;
    let (mut publisher, _) =
        Client::connect(tcp(addr).await, ProtocolVersion::V311, "tcp-pub").await;
    transport_support::round_trip(&mut publisher, &mut sub, "tcp/t", b"over tcp").await;
}

#[tokio::test]
async fn listener_connection_limit_refuses_and_counts_the_extra_connection() {
    let broker = start(&listener("tcp", "max_connections = 1")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let (_first, ack) = Client::connect(tcp(addr).await, ProtocolVersion::V5, "limit-1").await;
    assert!(!ack.reason_code.is_error());
    let mut second = Client::new(tcp(addr).await, ProtocolVersion::V5);
    assert!(
        second.expect_closed().await.is_empty(),
        "the second socket is closed without a CONNACK"
    );
    assert_eq!(broker.handle.stats().connections_refused, 1);
}

#[tokio::test]
async fn a_client_silent_for_longer_than_the_defer_period_is_still_served() {
    let broker = start(&listener("tcp", "")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let stream = tcp(addr).await;
    // Silent past the kernel's deferral: the connection is handed over on
    // the SYN-ACK retransmission, not dropped. The sleep is the behaviour
    // under test (a client that stays silent), not a wait for an event.
    let silence = Duration::from_secs(u64::from(DEFER_ACCEPT_SECS)) + Duration::from_millis(500);
    tokio::time::sleep(silence).await;
    let (_client, ack) = Client::connect(stream, ProtocolVersion::V5, "late-speaker").await;
    assert!(!ack.reason_code.is_error());
}

#[tokio::test]
async fn a_listener_without_defer_accept_serves_clients() {
    let broker = start(&listener("tcp", "defer_accept = false")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let (_client, ack) = Client::connect(tcp(addr).await, ProtocolVersion::V5, "undeferred").await;
    assert!(!ack.reason_code.is_error());
}

#[tokio::test]
async fn connect_rate_beyond_the_bucket_is_refused_and_counted() {
    // One new connection per second, a burst of two: the third at once is refused.
    let broker = start(&listener(
        "tcp",
        "max_connection_rate = 1\nconnection_burst = 2",
    ))
    .await;
    let addr = broker.addr(ListenerKind::Tcp);
    let (_a, ack_a) = Client::connect(tcp(addr).await, ProtocolVersion::V5, "rate-a").await;
    let (_b, ack_b) = Client::connect(tcp(addr).await, ProtocolVersion::V5, "rate-b").await;
    assert!(!ack_a.reason_code.is_error() && !ack_b.reason_code.is_error());
    // The third speaks at once, as clients do: with `defer_accept` a silent
    // socket reaches the broker only a second later, when the bucket has refilled.
    let mut third = Client::new(tcp(addr).await, ProtocolVersion::V5);
    third
        .send(Packet::Connect(Box::new(packets::connect(
            ProtocolVersion::V5,
            "rate-c",
        ))))
        .await;
    assert!(third.expect_closed().await.is_empty());
    assert_eq!(broker.handle.stats().connections_refused, 1);
}

#[tokio::test]
async fn proxy_v1_header_gives_the_real_client_address() {
    let (logs, _guard) = Logs::capture();
    let broker = start(&listener("tcp", "proxy_protocol = true")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let mut stream = tcp(addr).await;
    stream
        .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 40001 1883\r\n")
        .await
        .unwrap();
    let (_client, ack) = Client::connect(stream, ProtocolVersion::V5, "proxied-v1").await;
    assert!(!ack.reason_code.is_error());
    logs.wait_for("203.0.113.7:40001").await;
}

#[tokio::test]
async fn proxy_v2_header_gives_the_real_client_address() {
    let (logs, _guard) = Logs::capture();
    let broker = start(&listener("tcp", "proxy_protocol = true")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let mut header = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00,
        0x0C,
    ];
    header.extend_from_slice(&[198, 51, 100, 9, 127, 0, 0, 1, 0x9C, 0x41, 0x07, 0x5B]);
    let mut stream = tcp(addr).await;
    stream.write_all(&header).await.unwrap();
    let (_client, ack) = Client::connect(stream, ProtocolVersion::V311, "proxied-v2").await;
    assert!(!ack.reason_code.is_error());
    logs.wait_for("198.51.100.9:40001").await;
}

#[tokio::test]
async fn missing_proxy_header_is_refused_with_a_log_line() {
    let (logs, _guard) = Logs::capture();
    let broker = start(&listener("tcp", "proxy_protocol = true")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let mut client = Client::new(tcp(addr).await, ProtocolVersion::V5);
    client
        .send(Packet::Connect(Box::new(roost_testkit::packets::connect(
            ProtocolVersion::V5,
            "no-header",
        ))))
        .await;
    assert!(
        client.expect_closed().await.is_empty(),
        "no CONNACK without the PROXY header"
    );
    logs.wait_for("no PROXY protocol header").await;
    eventually("the refusal is counted", || {
        broker.handle.stats().connections_refused == 1
    })
    .await;
    eventually("the connection is released", || {
        broker.handle.stats().connections_current == 0
    })
    .await;
}

#[tokio::test]
async fn proxy_header_on_a_plain_listener_is_refused() {
    let broker = start(&listener("tcp", "")).await;
    let addr = broker.addr(ListenerKind::Tcp);
    let mut stream = tcp(addr).await;
    stream
        .write_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 40001 1883\r\n")
        .await
        .unwrap();
    let mut client = Client::new(stream, ProtocolVersion::V5);
    assert!(client.expect_closed().await.is_empty());
}

#[tokio::test]
async fn silent_socket_on_a_proxy_listener_times_out() {
    let broker = start(&listener(
        "tcp",
        "proxy_protocol = true\nhandshake_timeout_secs = 1",
    ))
    .await;
    let addr = broker.addr(ListenerKind::Tcp);
    let mut client = Client::new(tcp(addr).await, ProtocolVersion::V5);
    let started = std::time::Instant::now();
    assert!(client.expect_closed().await.is_empty());
    assert!(started.elapsed() < T, "closed by the handshake timeout");
    eventually("the connection is released", || {
        broker.handle.stats().connections_current == 0
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_listener_serves_and_removes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roost.sock");
    // A stale socket file from a crashed broker is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let toml = format!(
        "[[listeners]]\nkind = \"unix\"\nbind = \"{}\"\n{}",
        path.display(),
        listener("tcp", "")
    );
    let broker = start(&toml).await;
    let unix = broker
        .listeners
        .iter()
        .find(|l| l.kind == ListenerKind::Unix)
        .unwrap();
    assert_eq!(unix.addr, ListenAddr::Unix(path.clone()));
    assert_eq!(unix.url, format!("unix://{}", path.display()));
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sub, ack) = Client::connect(stream, ProtocolVersion::V5, "unix-sub").await;
    assert!(
        !ack.reason_code.is_error(),
        "anonymous is allowed on a local socket"
    );
    sub.subscribe("unix/t").await;
    let (mut publisher, _) = Client::connect(
        tcp(broker.addr(ListenerKind::Tcp)).await,
        ProtocolVersion::V5,
        "unix-pub",
    )
    .await;
    transport_support::round_trip(&mut publisher, &mut sub, "unix/t", b"local").await;
    drop(broker);
    eventually("the socket file is removed at shutdown", || !path.exists()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_in_use_by_another_process_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    let _other = tokio::net::UnixListener::bind(&path).unwrap();
    let toml = format!(
        "[[listeners]]\nkind = \"unix\"\nbind = \"{}\"\n",
        path.display()
    );
    let config = Config::from_toml(&toml, "test").unwrap();
    match roost_broker::Broker::builder().config(config).bind().await {
        Err(BrokerError::Bind {
            addr: ListenAddr::Unix(p),
            ..
        }) => assert_eq!(p, path),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let config = Config::from_toml(&format!("[[listeners]]\nbind = \"{addr}\"\n"), "test").unwrap();
    let err = roost_broker::Broker::builder()
        .config(config)
        .bind()
        .await
        .expect_err("port in use");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
