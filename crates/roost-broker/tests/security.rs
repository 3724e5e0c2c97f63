//! Attempts to get around authorization: topic aliases, overlapping
//! wildcard and shared subscriptions, taking over another user's client id,
//! and `$SYS`; and bans added while their targets are connected. Users come
//! from a password file, rules from an ACL file, bans from `[auth.banned]`
//! (empty at start) through the broker handle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use bytestring::ByteString;
use roost_auth::password::{HashKind, set_password};
use roost_auth::{Ban, BanTarget};
use roost_codec::{Connect, LastWill, Packet, ProtocolVersion, Publish, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

use common::barrier::assert_quiet;
use common::clients::{connack, expect_closed, expect_disconnect, open_with, sub, subscribed};
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
        // Whole-filter semantics: these tests check that a wildcard reaching
        // a denied topic is refused (per_message is tests/acl_wildcards.rs).
        // No `$SYS` tree: whatever reaches a `$SYS/#` subscriber here would
        // be a forgery.
        "[sys]\ninterval = 0\n[mqtt]\ntopic_alias_maximum = 4\n[security]\nacl_wildcards = \"whole_filter\"\n[auth.banned]\n[auth.password_file]\npath = {:?}\n[auth.acl_file]\npath = {:?}\n",
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

// ---- bans added at run time ----

/// DISCONNECT reason for a connection a ban closes: 0x8A Banned is not a
/// DISCONNECT code [MQTT-3.14.2-1], so 0x98 Administrative action.
const BANNED_CLOSE: ReasonCode = ReasonCode::ADMINISTRATIVE_ACTION;

fn ban(s: &Secured, who: &str) -> usize {
    let target = BanTarget::parse(who).unwrap();
    s.broker.handle.ban(Ban::new(target, None)).unwrap()
}

fn unban(s: &Secured, who: &str) {
    let bans = s.broker.handle.bans().unwrap();
    assert!(bans.remove(&BanTarget::parse(who).unwrap()), "{who}");
}

fn login_v311(id: &str, user: &str) -> Connect {
    let mut c = login(id, user, b"pw");
    c.protocol = ProtocolVersion::V311;
    c
}

/// The client is still served (a PINGREQ is answered).
async fn still_connected(client: &mut RawClient) {
    client.send(Packet::PingReq).await.unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::PingResp));
}

#[tokio::test]
async fn v5_mqtt_3_14_2_1_banning_a_connected_client_id_disconnects_it_and_publishes_its_will() {
    let s = start().await;
    let mut watcher = alice(s.broker.addr).await;
    subscribed(&mut watcher, "wills/#", QoS::AtLeastOnce).await;
    let id = unique_id("banned-id");
    let mut c = login(&id, "alice", b"pw");
    c.will = Some(LastWill {
        topic: ByteString::from("wills/banned"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let mut target = open_with(s.broker.addr, c.clone()).await;
    assert_eq!(ban(&s, &format!("client:{id}")), 1);
    expect_disconnect(&mut target, BANNED_CLOSE).await;
    // A server-initiated close publishes the will [MQTT-3.1.2-8].
    assert_eq!(&watcher.recv_publish(T).await.unwrap().payload[..], b"gone");
    still_connected(&mut watcher).await;
    // Coming back is refused with 0x8A until the ban is lifted.
    assert_eq!(
        connack(s.broker.addr, c.clone()).await.1,
        ReasonCode::BANNED
    );
    unban(&s, &format!("client:{id}"));
    assert_eq!(connack(s.broker.addr, c).await.1, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn banning_a_user_name_closes_its_v5_and_v311_connections_only() {
    let s = start().await;
    let mut bob = open_with(s.broker.addr, login(&unique_id("bob"), "bob", b"pw")).await;
    let mut v5 = alice(s.broker.addr).await;
    let v311_id = unique_id("alice-311");
    let mut v311 = open_with(s.broker.addr, login_v311(&v311_id, "alice")).await;
    assert_eq!(ban(&s, "user:alice"), 2);
    // 5.0 gets DISCONNECT first; 3.1.1 has none and is just closed.
    expect_closed(&mut v5, BANNED_CLOSE).await;
    expect_closed(&mut v311, BANNED_CLOSE).await;
    still_connected(&mut bob).await;
    assert_eq!(
        connack(s.broker.addr, login(&unique_id("alice"), "alice", b"pw"))
            .await
            .1,
        ReasonCode::BANNED
    );
    // 3.1.1 has no "banned" return code: 5 Not authorized.
    assert_eq!(
        connack(s.broker.addr, login_v311(&v311_id, "alice"))
            .await
            .1,
        ReasonCode::NOT_AUTHORIZED
    );
    unban(&s, "user:alice");
    assert_eq!(
        connack(s.broker.addr, login_v311(&v311_id, "alice"))
            .await
            .1,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn banning_an_address_closes_every_connection_from_it() {
    let s = start().await;
    let mut a = alice(s.broker.addr).await;
    let b_id = unique_id("bob-311");
    let mut b = open_with(s.broker.addr, login_v311(&b_id, "bob")).await;
    assert_eq!(ban(&s, "ip:127.0.0.1/32"), 2);
    expect_closed(&mut a, BANNED_CLOSE).await;
    expect_closed(&mut b, BANNED_CLOSE).await;
    let again = login(&unique_id("alice"), "alice", b"pw");
    assert_eq!(
        connack(s.broker.addr, again.clone()).await.1,
        ReasonCode::BANNED
    );
    unban(&s, "ip:127.0.0.1/32");
    assert_eq!(connack(s.broker.addr, again).await.1, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn banning_needs_a_ban_list() {
    let broker = common::start().await;
    let target = BanTarget::parse("user:alice").unwrap();
    assert_eq!(broker.handle.ban(Ban::new(target, None)), None);
}
