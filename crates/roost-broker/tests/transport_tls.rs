//! TLS listeners: key types, versions, cipher suites, ALPN, SNI, mutual TLS
//! with CRLs, the certificate identity as user name / client id, bad input,
//! and certificate reload without dropping connections.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod transport_support;

use std::time::Duration;

use roost_broker::config::ListenerKind;
use roost_codec::{Packet, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport_support::{
    CertFiles, Client, KeyKind, Logs, Pki, T, TlsClient, eventually, p, start, tcp,
};

fn tls_listener(server: &CertFiles, extra: &str) -> String {
    format!(
        "[[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\n[listeners.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}\n",
        p(&server.cert),
        p(&server.key)
    )
}

/// The leaf certificate the server presented.
fn presented<S>(tls: &tokio_rustls::client::TlsStream<S>) -> Vec<u8> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

async fn exchange_over_tls(kind: KeyKind) {
    let pki = Pki::new("tls-ca");
    let server = pki.server("server", kind);
    let broker = start(&tls_listener(&server, "")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let tls = TlsClient::default();
    let (mut sub, ack) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V5,
        "tls-sub",
    )
    .await;
    assert!(!ack.reason_code.is_error());
    sub.subscribe("tls/t").await;
    let (mut publisher, _) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V311,
        "tls-pub",
    )
    .await;
    transport_support::round_trip(&mut publisher, &mut sub, "tls/t", b"secret").await;
    assert_eq!(presented(&sub.stream), server.der);
}

#[tokio::test]
async fn after_the_clients_disconnect_the_broker_ends_tls_with_close_notify() {
    let pki = Pki::new("tls-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "")).await;
    let tls = TlsClient::default();
    let (mut client, ack) = Client::connect(
        tls.connect(&pki, broker.addr(ListenerKind::Tls))
            .await
            .unwrap(),
        ProtocolVersion::V5,
        "tls-goodbye",
    )
    .await;
    assert!(!ack.reason_code.is_error());
    client
        .send(Packet::Disconnect(roost_codec::Disconnect::default()))
        .await;
    // rustls reports a close without close_notify as UnexpectedEof; a clean
    // end of stream reads as 0 bytes.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(T, client.stream.read_to_end(&mut rest))
        .await
        .expect("the broker closes in time");
    assert_eq!(read.map_err(|e| e.kind()).ok(), Some(0));
}

#[tokio::test]
async fn ecdsa_certificate_serves_mqtt_over_tls() {
    exchange_over_tls(KeyKind::Ecdsa).await;
}

#[tokio::test]
async fn ed25519_certificate_serves_mqtt_over_tls() {
    exchange_over_tls(KeyKind::Ed25519).await;
}

#[tokio::test]
async fn rsa_certificate_serves_mqtt_over_tls() {
    exchange_over_tls(KeyKind::Rsa).await;
}

#[tokio::test]
async fn tls12_and_tls13_are_both_served_by_default() {
    let pki = Pki::new("ver-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let v12 = TlsClient {
        tls12_only: true,
        ..TlsClient::default()
    }
    .connect(&pki, addr)
    .await
    .unwrap();
    assert_eq!(
        v12.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let v13 = TlsClient::default().connect(&pki, addr).await.unwrap();
    assert_eq!(
        v13.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let (_client, ack) = Client::connect(v12, ProtocolVersion::V5, "tls12").await;
    assert!(!ack.reason_code.is_error());
}

#[tokio::test]
async fn min_version_13_refuses_a_tls12_client() {
    let pki = Pki::new("min-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "min_version = \"1.3\"")).await;
    let addr = broker.addr(ListenerKind::Tls);
    assert!(
        TlsClient {
            tls12_only: true,
            ..TlsClient::default()
        }
        .connect(&pki, addr)
        .await
        .is_err()
    );
    assert!(TlsClient::default().connect(&pki, addr).await.is_ok());
}

#[tokio::test]
async fn configured_cipher_suite_is_the_one_negotiated() {
    let pki = Pki::new("suite-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(
        &server,
        "cipher_suites = [\"TLS13_CHACHA20_POLY1305_SHA256\"]",
    ))
    .await;
    let tls = TlsClient::default()
        .connect(&pki, broker.addr(ListenerKind::Tls))
        .await
        .unwrap();
    let suite = tls
        .get_ref()
        .1
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    assert_eq!(suite.as_deref(), Some("TLS13_CHACHA20_POLY1305_SHA256"));
}

#[tokio::test]
async fn unknown_cipher_suite_or_missing_file_is_a_startup_error() {
    let pki = Pki::new("err-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let config = roost_broker::Config::from_toml(
        &tls_listener(&server, "cipher_suites = [\"TLS_NULL\"]"),
        "t",
    )
    .unwrap();
    let err = roost_broker::Broker::builder()
        .config(config)
        .bind()
        .await
        .expect_err("unknown suite");
    assert!(err.to_string().contains("TLS_NULL"), "{err}");
    let mut missing = server.clone();
    missing.key = pki.dir.path().join("absent.key");
    let config = roost_broker::Config::from_toml(&tls_listener(&missing, ""), "t").unwrap();
    let err = roost_broker::Broker::builder()
        .config(config)
        .bind()
        .await
        .expect_err("missing key");
    assert!(err.to_string().contains("absent.key"), "{err}");
    let other = pki.server("other", KeyKind::Ecdsa);
    let mismatched = CertFiles {
        key: other.key,
        ..server
    };
    let config = roost_broker::Config::from_toml(&tls_listener(&mismatched, ""), "t").unwrap();
    let err = roost_broker::Broker::builder()
        .config(config)
        .bind()
        .await
        .expect_err("key of another certificate");
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[tokio::test]
async fn alpn_is_negotiated_when_configured() {
    let pki = Pki::new("alpn-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "alpn = [\"mqtt\"]")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let tls = TlsClient {
        alpn: vec![b"mqtt".to_vec()],
        ..TlsClient::default()
    }
    .connect(&pki, addr)
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"mqtt"[..]));
    assert!(
        TlsClient {
            alpn: vec![b"h2".to_vec()],
            ..TlsClient::default()
        }
        .connect(&pki, addr)
        .await
        .is_err()
    );
}

#[tokio::test]
async fn sni_selects_the_certificate_for_the_requested_name() {
    let pki = Pki::new("sni-ca");
    let default = pki.server("default", KeyKind::Ecdsa);
    let alpha = pki.issue(
        "alpha",
        &[(rcgen::DnType::CommonName, "alpha")],
        &["alpha.test"],
        KeyKind::Ecdsa,
    );
    let beta = pki.issue(
        "beta",
        &[(rcgen::DnType::CommonName, "beta")],
        &["*.beta.test"],
        KeyKind::Ed25519,
    );
    let extra = format!(
        "[[listeners.tls.sni]]\ncert_file = \"{}\"\nkey_file = \"{}\"\n[[listeners.tls.sni]]\nserver_names = [\"*.beta.test\"]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        p(&alpha.cert),
        p(&alpha.key),
        p(&beta.cert),
        p(&beta.key)
    );
    let broker = start(&tls_listener(&default, &extra)).await;
    let addr = broker.addr(ListenerKind::Tls);
    let named = |name: &str| TlsClient {
        server_name: Some(name.into()),
        ..TlsClient::default()
    };
    assert_eq!(
        presented(&named("alpha.test").connect(&pki, addr).await.unwrap()),
        alpha.der,
        "name from the certificate's SAN"
    );
    assert_eq!(
        presented(&named("x.beta.test").connect(&pki, addr).await.unwrap()),
        beta.der,
        "wildcard server_names"
    );
    assert_eq!(
        presented(&named("localhost").connect(&pki, addr).await.unwrap()),
        default.der,
        "unknown name: default"
    );
}

fn mtls_listener(pki: &Pki, server: &CertFiles, extra: &str) -> String {
    tls_listener(
        server,
        &format!(
            "ca_file = \"{}\"\nverify_peer = true\n{extra}",
            p(&pki.ca_file())
        ),
    )
}

#[tokio::test]
async fn mutual_tls_requires_a_certificate_from_the_configured_ca() {
    let pki = Pki::new("mtls-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&mtls_listener(&pki, &server, "")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let good = pki.client("good", "device-1");
    let tls = TlsClient {
        client_cert: Some(good),
        ..TlsClient::default()
    }
    .connect(&pki, addr)
    .await
    .unwrap();
    let (_client, ack) = Client::connect(tls, ProtocolVersion::V5, "mtls-ok").await;
    assert!(!ack.reason_code.is_error());
    // No client certificate: the handshake (or the first read, with TLS 1.3) fails.
    let refused = async {
        let mut tls = TlsClient::default().connect(&pki, addr).await?;
        tls.write_all(b"\x10\x00").await?;
        let mut byte = [0u8; 1];
        match tls.read(&mut byte).await? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    };
    assert!(
        refused.await.is_err(),
        "a client without a certificate is refused"
    );
    let stranger_pki = Pki::new("other-ca");
    let stranger = stranger_pki.client("stranger", "device-2");
    let with_foreign_cert = async {
        let mut tls = TlsClient {
            client_cert: Some(stranger),
            ..TlsClient::default()
        }
        .connect(&pki, addr)
        .await?;
        let mut byte = [0u8; 1];
        tls.read(&mut byte).await
    };
    assert!(
        with_foreign_cert.await.is_err(),
        "a certificate from another CA is refused"
    );
}

#[tokio::test]
async fn revoked_client_certificate_is_refused() {
    let pki = Pki::new("crl-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let revoked = pki.client("revoked", "lost-device");
    let kept = pki.client("kept", "kept-device");
    let crl = pki.crl("ca.crl", &[revoked.serial]);
    let broker = start(&mtls_listener(
        &pki,
        &server,
        &format!("crl_file = \"{}\"", p(&crl)),
    ))
    .await;
    let addr = broker.addr(ListenerKind::Tls);
    let tls = TlsClient {
        client_cert: Some(kept),
        ..TlsClient::default()
    }
    .connect(&pki, addr)
    .await
    .unwrap();
    let (_client, ack) = Client::connect(tls, ProtocolVersion::V5, "crl-ok").await;
    assert!(!ack.reason_code.is_error());
    let refused = async {
        let mut tls = TlsClient {
            client_cert: Some(revoked),
            ..TlsClient::default()
        }
        .connect(&pki, addr)
        .await?;
        let mut byte = [0u8; 1];
        tls.read(&mut byte).await
    };
    assert!(refused.await.is_err(), "the revoked certificate is refused");
}

#[tokio::test]
async fn identity_as_username_lets_certificate_clients_in_where_anonymous_is_refused() {
    let pki = Pki::new("id-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let extra = "use_identity_as_username = true";
    let toml = mtls_listener(&pki, &server, extra)
        .replace("kind = \"tls\"", "kind = \"tls\"\nallow_anonymous = false");
    let broker = start(&toml).await;
    let addr = broker.addr(ListenerKind::Tls);
    let cert = pki.client("sensor", "sensor-7");
    let tls = TlsClient {
        client_cert: Some(cert),
        ..TlsClient::default()
    }
    .connect(&pki, addr)
    .await
    .unwrap();
    // No user name in CONNECT: the certificate's CN stands in for it.
    let (_client, ack) = Client::connect(tls, ProtocolVersion::V5, "id-user").await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn identity_as_username_without_a_certificate_is_not_authorized() {
    let pki = Pki::new("id-opt-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    // Client certificates optional (no verify_peer) but the identity is required.
    let extra = format!(
        "ca_file = \"{}\"\nuse_identity_as_username = true",
        p(&pki.ca_file())
    );
    let broker = start(&tls_listener(&server, &extra)).await;
    let tls = TlsClient::default()
        .connect(&pki, broker.addr(ListenerKind::Tls))
        .await
        .unwrap();
    let (_client, ack) = Client::connect(tls, ProtocolVersion::V5, "no-cert").await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
}

#[tokio::test]
async fn identity_as_client_id_makes_two_connections_with_one_certificate_the_same_client() {
    let pki = Pki::new("cid-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&mtls_listener(
        &pki,
        &server,
        "use_identity_as_client_id = true\nidentity = \"dn\"",
    ))
    .await;
    let addr = broker.addr(ListenerKind::Tls);
    let cert = pki.client("twin", "twin-device");
    let tls = TlsClient {
        client_cert: Some(cert),
        ..TlsClient::default()
    };
    let (mut first, _) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V5,
        "name-a",
    )
    .await;
    let (_second, ack) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V5,
        "name-b",
    )
    .await;
    assert!(!ack.reason_code.is_error());
    // Different CONNECT client ids, same certificate: the second takes the first over.
    let closing = first.expect_closed().await;
    assert!(
        closing.iter().any(|p| matches!(p, Packet::Disconnect(d) if d.reason_code == ReasonCode::SESSION_TAKEN_OVER)),
        "{closing:?}"
    );
}

#[tokio::test]
async fn plain_mqtt_on_the_tls_port_is_refused_without_harm() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new("plain-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let mut plain = Client::new(tcp(addr).await, ProtocolVersion::V5);
    plain
        .send(Packet::Connect(Box::new(roost_testkit::packets::connect(
            ProtocolVersion::V5,
            "plain",
        ))))
        .await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(T, plain.stream.read_to_end(&mut reply))
        .await
        .expect("closed in time");
    assert!(
        reply.is_empty() || reply[0] == 0x15,
        "at most a TLS alert comes back: {reply:?}"
    );
    logs.wait_for("TLS handshake failed").await;
    eventually("the refusal is counted and the socket released", || {
        let stats = broker.handle.stats();
        stats.connections_refused == 1 && stats.connections_current == 0
    })
    .await;
    // The listener still serves TLS clients.
    assert!(TlsClient::default().connect(&pki, addr).await.is_ok());
}

#[tokio::test]
async fn stalled_tls_handshake_is_closed_by_the_handshake_timeout() {
    let pki = Pki::new("stall-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let toml = tls_listener(&server, "").replace(
        "kind = \"tls\"",
        "kind = \"tls\"\nhandshake_timeout_secs = 1",
    );
    let broker = start(&toml).await;
    let mut silent = tcp(broker.addr(ListenerKind::Tls)).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "the server closes a silent socket after the handshake timeout"
    );
    eventually("the socket is released", || {
        broker.handle.stats().connections_current == 0
    })
    .await;
}

#[tokio::test]
async fn reload_serves_new_certificates_to_new_connections_and_keeps_old_ones() {
    let pki = Pki::new("reload-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "watch_interval_secs = 0")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let tls = TlsClient::default();
    let (mut old, _) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V5,
        "reload-old",
    )
    .await;
    assert_eq!(presented(&old.stream), server.der);
    old.subscribe("reload/t").await;

    let renewed = pki.server("renewed", KeyKind::Ed25519);
    std::fs::copy(&renewed.cert, &server.cert).unwrap();
    std::fs::copy(&renewed.key, &server.key).unwrap();
    assert_eq!(broker.handle.reload_tls(), Ok(1));

    let (mut fresh, _) = Client::connect(
        tls.connect(&pki, addr).await.unwrap(),
        ProtocolVersion::V5,
        "reload-new",
    )
    .await;
    assert_eq!(
        presented(&fresh.stream),
        renewed.der,
        "new connections get the new certificate"
    );
    transport_support::round_trip(&mut fresh, &mut old, "reload/t", b"still here").await;
}

#[tokio::test]
async fn failed_reload_keeps_the_previous_certificates() {
    let pki = Pki::new("bad-reload-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "watch_interval_secs = 0")).await;
    let addr = broker.addr(ListenerKind::Tls);
    std::fs::write(&server.key, "not a key").unwrap();
    let err = broker
        .handle
        .reload_tls()
        .expect_err("the key file is broken");
    assert_eq!(err.reloaded, 0);
    assert!(err.failures[0].contains("key_file"), "{err}");
    let tls = TlsClient::default().connect(&pki, addr).await.unwrap();
    assert_eq!(
        presented(&tls),
        server.der,
        "still the previous certificate"
    );
}

#[tokio::test]
async fn changed_certificate_files_are_picked_up_by_the_watcher() {
    let pki = Pki::new("watch-ca");
    let server = pki.server("server", KeyKind::Ecdsa);
    let broker = start(&tls_listener(&server, "watch_interval_secs = 1")).await;
    let addr = broker.addr(ListenerKind::Tls);
    let renewed = pki.server("renewed", KeyKind::Ecdsa);
    // Write the key first, then the certificate: the watcher may see the pair
    // half-written, fail once, and must succeed on the next change.
    std::fs::copy(&renewed.key, &server.key).unwrap();
    std::fs::copy(&renewed.cert, &server.cert).unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let tls = TlsClient::default().connect(&pki, addr).await.unwrap();
        if presented(&tls) == renewed.der {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher did not reload within {T:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
