//! QUIC listener: a small quinn client speaks MQTT over one bidirectional
//! stream (ALPN `mqtt`), exchanges messages with a TCP client, presents a
//! client certificate, and sees reloaded certificates.
#![cfg(feature = "quic")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_support;

use roost_broker::config::ListenerKind;
use roost_codec::{ProtocolVersion, ReasonCode};
use rustls_pki_types::CertificateDer;
use transport_support::{
    CertFiles, Client, KeyKind, Logs, Pki, TlsClient, eventually, listener, p, quic_connect, start,
    tcp,
};

fn quic_listener(server: &CertFiles, tls_extra: &str) -> String {
    format!(
        "[[listeners]]\nkind = \"quic\"\nbind = \"127.0.0.1:0\"\n[listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nwatch_interval_secs = 0\n{tls_extra}\n",
        p(&server.cert),
        p(&server.key)
    )
}

/// The MQTT stream of a QUIC connection.
async fn mqtt_stream(
    connection: &quinn::Connection,
) -> tokio::io::Join<quinn::RecvStream, quinn::SendStream> {
    let (send, recv) = connection.open_bi().await.unwrap();
    tokio::io::join(recv, send)
}

fn presented(connection: &quinn::Connection) -> Vec<u8> {
    connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().map(|c| c.to_vec()))
        .unwrap_or_default()
}

#[tokio::test]
async fn mqtt_4_2_0_1_quic_stream_carries_messages_both_ways_with_a_tcp_client() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new("quic-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&format!(
        "{}{}",
        quic_listener(&server, ""),
        listener("tcp", "")
    ))
    .await;
    let addr = broker.addr(ListenerKind::Quic);
    logs.wait_for(&format!("listening on quic://{addr}")).await;
    let (_endpoint, connection) = quic_connect(&pki, addr, &TlsClient::default())
        .await
        .unwrap();
    assert_eq!(
        connection
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol),
        Some(b"mqtt".to_vec())
    );
    let (mut sub, ack) = Client::connect(
        mqtt_stream(&connection).await,
        ProtocolVersion::V5,
        "quic-sub",
    )
    .await;
    assert!(!ack.reason_code.is_error());
    sub.subscribe("quic/t").await;
    let (mut publisher, _) = Client::connect(
        tcp(broker.addr(ListenerKind::Tcp)).await,
        ProtocolVersion::V311,
        "quic-pub",
    )
    .await;
    transport_support::round_trip(&mut publisher, &mut sub, "quic/t", b"over udp").await;
    // And the other way round.
    publisher.subscribe("quic/back").await;
    transport_support::round_trip(&mut sub, &mut publisher, "quic/back", b"from quic").await;
}

#[tokio::test]
async fn quic_refuses_a_client_without_the_mqtt_alpn() {
    let pki = Pki::new("quic-alpn-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&quic_listener(&server, "")).await;
    let tls = TlsClient {
        alpn: vec![b"h3".to_vec()],
        ..TlsClient::default()
    };
    assert!(
        quic_connect(&pki, broker.addr(ListenerKind::Quic), &tls)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn quic_client_certificate_names_the_user() {
    let pki = Pki::new("quic-mtls-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let extra = format!(
        "ca_file = \"{}\"\nverify_peer = true\nuse_identity_as_username = true",
        p(&pki.ca_file())
    );
    let toml = quic_listener(&server, &extra).replace(
        "kind = \"quic\"",
        "kind = \"quic\"\nallow_anonymous = false",
    );
    let broker = start(&toml).await;
    let tls = TlsClient {
        client_cert: Some(pki.client("dev", "quic-device")),
        ..TlsClient::default()
    };
    let (_endpoint, connection) = quic_connect(&pki, broker.addr(ListenerKind::Quic), &tls)
        .await
        .unwrap();
    let (_client, ack) = Client::connect(
        mqtt_stream(&connection).await,
        ProtocolVersion::V5,
        "quic-id",
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn quic_reload_serves_the_new_certificate_and_keeps_the_old_connection() {
    let pki = Pki::new("quic-reload-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&quic_listener(&server, "")).await;
    let addr = broker.addr(ListenerKind::Quic);
    let (_e1, old_connection) = quic_connect(&pki, addr, &TlsClient::default())
        .await
        .unwrap();
    assert_eq!(presented(&old_connection), server.der);
    let (mut old, _) = Client::connect(
        mqtt_stream(&old_connection).await,
        ProtocolVersion::V5,
        "quic-old",
    )
    .await;
    old.subscribe("quic/reload").await;

    let renewed = pki.server("renewed", KeyKind::Ed25519);
    std::fs::copy(&renewed.cert, &server.cert).unwrap();
    std::fs::copy(&renewed.key, &server.key).unwrap();
    assert_eq!(broker.handle.reload_tls(), Ok(1));

    let (_e2, new_connection) = quic_connect(&pki, addr, &TlsClient::default())
        .await
        .unwrap();
    assert_eq!(presented(&new_connection), renewed.der);
    let (mut fresh, _) = Client::connect(
        mqtt_stream(&new_connection).await,
        ProtocolVersion::V5,
        "quic-new",
    )
    .await;
    transport_support::round_trip(&mut fresh, &mut old, "quic/reload", b"both alive").await;
}

#[tokio::test]
async fn quic_connection_that_never_opens_a_stream_is_released_after_the_handshake_timeout() {
    let pki = Pki::new("quic-idle-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let toml = quic_listener(&server, "").replace(
        "kind = \"quic\"",
        "kind = \"quic\"\nhandshake_timeout_secs = 1",
    );
    let broker = start(&toml).await;
    let (_endpoint, connection) =
        quic_connect(&pki, broker.addr(ListenerKind::Quic), &TlsClient::default())
            .await
            .unwrap();
    eventually("the silent connection is released", || {
        let stats = broker.handle.stats();
        stats.connections_refused == 1 && stats.connections_current == 0
    })
    .await;
    drop(connection);
}
