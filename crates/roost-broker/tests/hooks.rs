//! The embedding API at the wire: authenticator chain, authorizers, hooks
//! (decisions, rewriting, panics) and the `$SYS` write ban.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_broker::hooks::{
    AclResult, Action, AuthResult, Authenticator, Authorizer, BoxFuture, ClientInfo,
    ConnectRequest, Decision, Grant, Hooks, PublishCtx, PublishDecision, SubscribeCtx, ready,
};
use roost_broker::{Broker, BrokerHandle};
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, subscribe, unique_id};

const T: Duration = Duration::from_secs(5);

struct Passwords;

impl Authenticator for Passwords {
    fn name(&self) -> &str {
        "test-passwords"
    }
    fn authenticate<'a>(&'a self, request: &'a ConnectRequest<'a>) -> BoxFuture<'a, AuthResult> {
        ready(
            match (request.client.username.as_deref(), request.password) {
                (Some("alice"), Some(b"secret")) => AuthResult::Accept(Grant::default()),
                (Some("alice"), _) => AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
                _ => AuthResult::Ignore,
            },
        )
    }
}

/// Denies publishing to `private/#` and subscribing to `secret/#`.
struct Acl;

impl Authorizer for Acl {
    fn name(&self) -> &str {
        "test-acl"
    }
    fn authorize(&self, _client: &ClientInfo, action: Action, topic: &str) -> AclResult {
        match action {
            Action::Publish { .. } if topic.starts_with("private/") => AclResult::Deny,
            Action::Subscribe { .. } if topic.starts_with("secret/") => AclResult::Deny,
            _ => AclResult::Ignore,
        }
    }
}

/// Rewrites `upper/...` payloads to upper case, refuses `blocked/...` with
/// 0x97, panics on `panic/...`, refuses subscriptions to `nosub/...` with 0x87.
struct TestHooks;

impl Hooks for TestHooks {
    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        if ctx.message.topic.starts_with("panic/") {
            return Box::pin(async { panic!("hook failure under test") });
        }
        if ctx.message.topic.starts_with("blocked/") {
            return ready(PublishDecision::Deny {
                reason: ReasonCode::QUOTA_EXCEEDED,
                reason_string: None,
            });
        }
        if ctx.message.topic.starts_with("upper/") {
            ctx.message.payload = Bytes::from(ctx.message.payload.to_ascii_uppercase());
        }
        ready(PublishDecision::Allow)
    }
    fn on_subscribe<'a>(&'a self, ctx: &'a SubscribeCtx<'a>) -> BoxFuture<'a, Decision> {
        ready(if ctx.filter.starts_with("nosub/") {
            Decision::deny(ReasonCode::NOT_AUTHORIZED)
        } else {
            Decision::Allow
        })
    }
}

struct Running {
    addr: std::net::SocketAddr,
    handle: BrokerHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start() -> Running {
    let broker = Broker::builder()
        .config(common::config(""))
        .authenticator(Arc::new(Passwords))
        .authorizer(Arc::new(Acl))
        .hooks(Arc::new(TestHooks))
        .bind()
        .await
        .unwrap();
    let running = Running {
        addr: broker.local_addrs()[0],
        handle: broker.handle(),
    };
    tokio::spawn(broker.run());
    running
}

fn login(version: ProtocolVersion, user: &str, password: &'static [u8]) -> Connect {
    let mut c = connect(version, &unique_id("hooks"));
    c.username = Some(ByteString::from(user));
    c.password = Some(Bytes::from_static(password));
    c
}

async fn connack_code(addr: std::net::SocketAddr, c: Connect) -> ReasonCode {
    let mut client = RawClient::connect(addr, c.protocol).await.unwrap();
    client.send(Packet::Connect(Box::new(c))).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => ack.reason_code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn authenticator_accepts_and_refuses_with_its_reason_code() {
    let broker = start().await;
    assert_eq!(
        connack_code(broker.addr, login(ProtocolVersion::V5, "alice", b"secret")).await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        connack_code(broker.addr, login(ProtocolVersion::V5, "alice", b"wrong")).await,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    // No authenticator recognises "mallory": credentials nobody vouched for are refused.
    assert_eq!(
        connack_code(broker.addr, login(ProtocolVersion::V5, "mallory", b"x")).await,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
}

#[tokio::test]
async fn denied_publish_gets_0x87_in_v5_and_is_not_routed() {
    let broker = start().await;
    let (mut sub, _) =
        RawClient::connect_with(broker.addr, login(ProtocolVersion::V5, "alice", b"secret"))
            .await
            .unwrap();
    sub.send(Packet::Subscribe(subscribe(1, "#", QoS::AtLeastOnce)))
        .await
        .unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::SubAck(_)));
    let (mut publ, _) =
        RawClient::connect_with(broker.addr, login(ProtocolVersion::V5, "alice", b"secret"))
            .await
            .unwrap();
    publ.send(Packet::Publish(publish(
        "private/x",
        &b"no"[..],
        QoS::AtLeastOnce,
        Some(1),
    )))
    .await
    .unwrap();
    match publ.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
    publ.send(Packet::Publish(publish(
        "public/x",
        &b"yes"[..],
        QoS::AtLeastOnce,
        Some(2),
    )))
    .await
    .unwrap();
    // The first message the subscriber sees is the allowed one.
    assert_eq!(&sub.recv_publish(T).await.unwrap().payload[..], b"yes");
}

#[tokio::test]
async fn denied_subscription_gets_0x87_in_v5_and_0x80_in_v311() {
    let broker = start().await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (mut c, _) = RawClient::connect_with(broker.addr, login(version, "alice", b"secret"))
            .await
            .unwrap();
        let mut s = subscribe(1, "secret/a", QoS::AtMostOnce);
        s.filters
            .push((ByteString::from("nosub/b"), s.filters[0].1));
        s.filters.push((ByteString::from("open/c"), s.filters[0].1));
        c.send(Packet::Subscribe(s)).await.unwrap();
        match c.recv(T).await.unwrap() {
            Packet::SubAck(ack) => {
                let refused = if version.is_v5() {
                    ReasonCode::NOT_AUTHORIZED
                } else {
                    ReasonCode(0x80)
                };
                assert_eq!(
                    ack.reason_codes,
                    vec![refused, refused, ReasonCode::GRANTED_QOS_0],
                    "{version:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn on_publish_rewrites_the_routed_message() {
    let broker = start().await;
    let (mut c, _) =
        RawClient::connect_with(broker.addr, login(ProtocolVersion::V5, "alice", b"secret"))
            .await
            .unwrap();
    c.send(Packet::Subscribe(subscribe(1, "upper/#", QoS::AtMostOnce)))
        .await
        .unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::SubAck(_)));
    c.send(Packet::Publish(publish(
        "upper/t",
        &b"hello"[..],
        QoS::AtMostOnce,
        None,
    )))
    .await
    .unwrap();
    assert_eq!(&c.recv_publish(T).await.unwrap().payload[..], b"HELLO");
}

#[tokio::test]
async fn on_publish_denial_and_panic_answer_with_reason_codes() {
    let broker = start().await;
    let (mut c, _) =
        RawClient::connect_with(broker.addr, login(ProtocolVersion::V5, "alice", b"secret"))
            .await
            .unwrap();
    c.send(Packet::Publish(publish(
        "blocked/t",
        &b"x"[..],
        QoS::AtLeastOnce,
        Some(1),
    )))
    .await
    .unwrap();
    match c.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::QUOTA_EXCEEDED),
        other => panic!("{other:?}"),
    }
    // A panicking hook is contained: the default policy denies with 0x83 and the broker keeps serving.
    c.send(Packet::Publish(publish(
        "panic/t",
        &b"x"[..],
        QoS::AtLeastOnce,
        Some(2),
    )))
    .await
    .unwrap();
    match c.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
        other => panic!("{other:?}"),
    }
    c.send(Packet::PingReq).await.unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::PingResp));
}

#[tokio::test]
async fn clients_can_never_publish_to_sys_topics() {
    let broker = common::start().await; // no ACL at all: default allow
    let (mut c, _) = RawClient::connect_v5(broker.addr, &unique_id("sys"))
        .await
        .unwrap();
    c.send(Packet::Subscribe(subscribe(1, "$SYS/#", QoS::AtMostOnce)))
        .await
        .unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::SubAck(_)));
    c.send(Packet::Publish(publish(
        "$SYS/broker/fake",
        &b"x"[..],
        QoS::AtLeastOnce,
        Some(1),
    )))
    .await
    .unwrap();
    match c.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected PUBACK 0x87, got {other:?}"),
    }
}
