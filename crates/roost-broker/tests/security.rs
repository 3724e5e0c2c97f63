//! Attempts to get around authorization: topic aliases, overlapping
//! wildcard and shared subscriptions, taking over another user's client id,
//! and `$SYS`. Users come from a password file, rules from an ACL file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use bytestring::ByteString;
use roost_auth::password::{HashKind, set_password};
use roost_codec::{Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

use common::barrier::assert_quiet;
use common::clients::{connack, expect_disconnect, open_with, sub, subscribed};
use common::{T, TestBroker};

/// alice and bob (password "pw"), admin ("root"); rules below.
const ACL: &str = "\
deny  all          all        secret
deny  all          all        team/secret
allow user:admin   subscribe  $SYS/#
allow all          all        #
";

struct Secured {
    broker: TestBroker,
    _dir: tempfile::TempDir,
}

async fn start() -> Secured {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwd");
    let acl = dir.path().join("acl");
    for (user, password) in [("alice", "pw"), ("bob", "pw"), ("admin", "root")] {
        set_password(&passwords, user, password, HashKind::Pbkdf2Sha512).unwrap();
    }
    std::fs::write(&acl, ACL).unwrap();
    let toml = format!(
        "[mqtt]\ntopic_alias_maximum = 4\n[auth.password_file]\npath = {:?}\n[auth.acl_file]\npath = {:?}\n",
        passwords.display().to_string(),
        acl.display().to_string()
    );
    Secured {
        broker: common::start_with(common::config(&toml), None).await,
        _dir: dir,
    }
}

fn login(id: &str, user: &str, password: &'static [u8]) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id);
    c.username = Some(ByteString::from(user));
    c.password = Some(Bytes::from_static(password));
    c
}

async fn alice(addr: SocketAddr) -> RawClient {
    open_with(addr, login(&unique_id("alice"), "alice", b"pw")).await
}

fn aliased(topic: &str, alias: u16, id: u16) -> Publish {
    let mut p = publish(topic, &b"x"[..], QoS::AtLeastOnce, Some(id));
    p.properties.topic_alias = Some(alias);
    p
}

async fn puback(client: &mut RawClient, p: Publish) -> ReasonCode {
    client.send(p).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PubAck(a) => a.reason_code,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn an_alias_rebound_to_a_denied_topic_is_authorized_as_that_topic() {
    let s = start().await;
    let mut watcher = alice(s.broker.addr).await;
    subscribed(&mut watcher, "open/#", QoS::AtMostOnce).await;
    let mut c = alice(s.broker.addr).await;
    // Alias 1 set on an allowed topic, then reused with no topic: allowed.
    assert_eq!(
        puback(&mut c, aliased("open/a", 1, 1)).await,
        ReasonCode::SUCCESS
    );
    assert_eq!(puback(&mut c, aliased("", 1, 2)).await, ReasonCode::SUCCESS);
    // Rebinding alias 1 to a denied topic is refused ...
    assert_eq!(
        puback(&mut c, aliased("secret", 1, 3)).await,
        ReasonCode::NOT_AUTHORIZED
    );
    // ... and so is every later use of it: the alias stands for "secret" now.
    assert_eq!(
        puback(&mut c, aliased("", 1, 4)).await,
        ReasonCode::NOT_AUTHORIZED
    );
    // The watcher saw the two allowed messages only.
    for _ in 0..2 {
        assert_eq!(&watcher.recv_publish(T).await.unwrap().topic[..], "open/a");
    }
    assert_quiet(&mut watcher).await;
}

#[tokio::test]
async fn an_alias_defined_on_a_denied_topic_stays_denied() {
    let s = start().await;
    let mut c = alice(s.broker.addr).await;
    assert_eq!(
        puback(&mut c, aliased("team/secret", 2, 1)).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        puback(&mut c, aliased("", 2, 2)).await,
        ReasonCode::NOT_AUTHORIZED
    );
    // The same publisher may still use allowed topics.
    assert!(
        !puback(&mut c, aliased("team/public", 3, 3))
            .await
            .is_error()
    );
}

#[tokio::test]
async fn wildcard_and_shared_filters_that_reach_a_denied_topic_are_refused() {
    let s = start().await;
    let mut c = alice(s.broker.addr).await;
    for filter in [
        "#",
        "+",
        "+/secret",
        "team/+",
        "team/#",
        "secret/#",
        "$share/g/secret",
        "$share/g/#",
        "$share/g/+/secret",
    ] {
        assert_eq!(
            sub(&mut c, filter, QoS::AtMostOnce).await,
            ReasonCode::NOT_AUTHORIZED,
            "{filter}"
        );
    }
    for filter in ["open/#", "team/public", "+/public", "$share/g/open/+"] {
        assert!(
            !sub(&mut c, filter, QoS::AtMostOnce).await.is_error(),
            "{filter}"
        );
    }
}

#[tokio::test]
async fn a_client_id_in_use_by_another_user_is_refused_and_its_owner_keeps_it() {
    let s = start().await;
    let id = unique_id("owned");
    let (mut owner, code) = connack(s.broker.addr, login(&id, "alice", b"pw")).await;
    assert_eq!(code, ReasonCode::SUCCESS);
    subscribed(&mut owner, "open/owned", QoS::AtLeastOnce).await;
    // bob has valid credentials but not alice's session.
    let (_bob, code) = connack(s.broker.addr, login(&id, "bob", b"pw")).await;
    assert_eq!(code, ReasonCode::NOT_AUTHORIZED);
    // alice is still connected and still subscribed.
    let mut publ = alice(s.broker.addr).await;
    assert_eq!(
        puback(
            &mut publ,
            publish("open/owned", &b"x"[..], QoS::AtLeastOnce, Some(1))
        )
        .await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        &owner.recv_publish(T).await.unwrap().topic[..],
        "open/owned"
    );
    // alice herself may take her own session over.
    let (_again, code) = connack(s.broker.addr, login(&id, "alice", b"pw")).await;
    assert_eq!(code, ReasonCode::SUCCESS);
    expect_disconnect(&mut owner, ReasonCode::SESSION_TAKEN_OVER).await;
}

#[tokio::test]
async fn a_parked_session_of_another_user_is_not_handed_over() {
    let s = start().await;
    let id = unique_id("parked");
    let mut c = login(&id, "alice", b"pw");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut owner, code) = connack(s.broker.addr, c.clone()).await;
    assert_eq!(code, ReasonCode::SUCCESS);
    subscribed(&mut owner, "open/parked", QoS::AtLeastOnce).await;
    common::clients::drop_and_wait(&s.broker, owner).await;
    let mut publ = alice(s.broker.addr).await;
    assert_eq!(
        puback(
            &mut publ,
            publish("open/parked", &b"queued"[..], QoS::AtLeastOnce, Some(1))
        )
        .await,
        ReasonCode::SUCCESS
    );
    // bob, with or without Clean Start, neither resumes nor ends alice's session.
    for clean_start in [false, true] {
        let mut b = login(&id, "bob", b"pw");
        b.clean_start = clean_start;
        b.properties.session_expiry_interval = Some(300);
        assert_eq!(
            connack(s.broker.addr, b).await.1,
            ReasonCode::NOT_AUTHORIZED
        );
    }
    // alice comes back to her session and its queued message.
    let (mut back, code) = connack(s.broker.addr, c).await;
    assert_eq!(code, ReasonCode::SUCCESS);
    assert_eq!(&back.recv_publish(T).await.unwrap().payload[..], b"queued");
}

#[tokio::test]
async fn sys_topics_are_readable_only_where_allowed_and_never_writable() {
    let s = start().await;
    let mut c = alice(s.broker.addr).await;
    for filter in ["$SYS/#", "$SYS/broker/+", "$share/g/$SYS/#"] {
        assert_eq!(
            sub(&mut c, filter, QoS::AtMostOnce).await,
            ReasonCode::NOT_AUTHORIZED,
            "{filter}"
        );
    }
    let mut admin = open_with(s.broker.addr, login(&unique_id("admin"), "admin", b"root")).await;
    assert!(!sub(&mut admin, "$SYS/#", QoS::AtMostOnce).await.is_error());
    // Nobody may publish to $SYS, whatever the rules say (admin included).
    for client in [&mut c, &mut admin] {
        for topic in ["$SYS", "$SYS/broker/uptime"] {
            assert_eq!(
                puback(
                    client,
                    publish(topic, &b"fake"[..], QoS::AtLeastOnce, Some(7))
                )
                .await,
                ReasonCode::NOT_AUTHORIZED,
                "{topic}"
            );
        }
    }
    assert_quiet(&mut admin).await;
}

#[tokio::test]
async fn a_denied_publish_can_close_the_connection_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, ACL).unwrap();
    let toml = format!(
        "[security]\ndenied_publish = \"disconnect\"\n[auth.acl_file]\npath = {:?}\n",
        acl.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;
    let mut c = common::clients::open_v5(broker.addr, "closeme").await;
    c.send(publish("secret", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    expect_disconnect(&mut c, ReasonCode::NOT_AUTHORIZED).await;
}
