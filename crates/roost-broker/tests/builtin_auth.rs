//! The `[auth]` section end to end: a Mosquitto-format password file and an
//! ACL file configured in TOML, enforced at the wire, and reloaded live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_auth::password::{HashKind, set_password};
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

const T: Duration = Duration::from_secs(5);

fn login(user: &str, password: &'static [u8]) -> Connect {
    let mut c = connect(ProtocolVersion::V5, &unique_id("builtin"));
    c.username = Some(ByteString::from(user));
    c.password = Some(Bytes::from_static(password));
    c
}

async fn connack(addr: std::net::SocketAddr, c: Connect) -> (RawClient, ReasonCode) {
    let mut client = RawClient::connect(addr, c.protocol).await.unwrap();
    client.send(Packet::Connect(Box::new(c))).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => (client, ack.reason_code),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn password_file_and_acl_file_from_config_are_enforced_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwd");
    let acl = dir.path().join("acl");
    set_password(&passwords, "alice", "wonderland", HashKind::Pbkdf2Sha512).unwrap();
    std::fs::write(
        &acl,
        "allow user:alice publish rooms/%u/#\ndeny all all #\n",
    )
    .unwrap();
    let toml = format!(
        "[auth.password_file]\npath = {:?}\n[auth.acl_file]\npath = {:?}\n",
        passwords.display().to_string(),
        acl.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;

    assert_eq!(
        connack(broker.addr, login("alice", b"nope")).await.1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        connack(broker.addr, login("bob", b"x")).await.1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    let (mut alice, code) = connack(broker.addr, login("alice", b"wonderland")).await;
    assert_eq!(code, ReasonCode::SUCCESS);

    alice
        .send(Packet::Publish(publish(
            "rooms/alice/lamp",
            &b"on"[..],
            QoS::AtLeastOnce,
            Some(1),
        )))
        .await
        .unwrap();
    match alice.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert!(!a.reason_code.is_error(), "{:?}", a.reason_code),
        other => panic!("{other:?}"),
    }
    alice
        .send(Packet::Publish(publish(
            "rooms/bob/lamp",
            &b"on"[..],
            QoS::AtLeastOnce,
            Some(2),
        )))
        .await
        .unwrap();
    match alice.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }

    // A new user appears after a reload (SIGHUP calls the same method).
    set_password(&passwords, "bob", "builder", HashKind::Pbkdf2Sha512).unwrap();
    assert!(broker.handle.reload_auth().is_empty());
    assert_eq!(
        connack(broker.addr, login("bob", b"builder")).await.1,
        ReasonCode::SUCCESS
    );

    // A corrupt file on reload keeps the previous rules and reports the line.
    std::fs::write(&passwords, "alice:$7$broken\n").unwrap();
    let errors = broker.handle.reload_auth();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        connack(broker.addr, login("bob", b"builder")).await.1,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn a_missing_password_file_is_a_startup_error_naming_it() {
    let toml = "[auth.password_file]\npath = \"/nonexistent/roost-passwd\"\n";
    let err = roost_broker::Broker::builder()
        .config(common::config(toml))
        .bind()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/roost-passwd"),
        "{err}"
    );
}
