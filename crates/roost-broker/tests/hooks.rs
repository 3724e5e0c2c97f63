//! The embedding API at the wire: authenticator chain, authorizers, hooks
//! (decisions, rewriting, panics) and the `$SYS` write ban.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_broker::Broker;
use roost_broker::hooks::{
    AclResult, Action, AuthResult, Authenticator, Authorizer, BoxFuture, ClientInfo,
    ConnectRequest, Decision, DropCause, Grant, Hooks, MessageView, PublishCtx, PublishDecision,
    SubscribeCtx, ready,
};
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

async fn start() -> common::TestBroker {
    common::start_built(
        Broker::builder()
            .config(common::config(""))
            .authenticator(Arc::new(Passwords))
            .authorizer(Arc::new(Acl))
            .hooks(Arc::new(TestHooks)),
    )
    .await
}

fn login(version: ProtocolVersion, user: &str, password: &'static [u8]) -> Connect {
    let mut c = connect(version, &unique_id("hooks"));
    c.username = Some(ByteString::from(user));
    c.password = Some(Bytes::from_static(password));
    c
}

async fn connack_code(addr: std::net::SocketAddr, c: Connect) -> ReasonCode {
    common::clients::connack(addr, c).await.1
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
    // No ACL at all: default allow. No `$SYS` tree of the broker's own:
    // anything a `$SYS/#` subscriber got here would be the forgery.
    let broker = common::start_with(common::config("[sys]\ninterval = 0"), None).await;
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

// ---- on_message_delivered / on_message_dropped ----

/// One message event as a hook saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Delivered {
        client: String,
        topic: String,
        qos: QoS,
    },
    Dropped {
        client: String,
        topic: String,
        cause: DropCause,
    },
}

/// Records every message event; `wanted` answers `wants_message_events`.
struct Recorder {
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    wanted: bool,
}

impl Hooks for Recorder {
    fn wants_message_events(&self) -> bool {
        self.wanted
    }
    fn on_message_delivered(&self, client_id: &str, message: &MessageView) {
        let _ = self.events.send(Event::Delivered {
            client: client_id.to_string(),
            topic: message.topic.to_string(),
            qos: message.qos,
        });
    }
    fn on_message_dropped(&self, client_id: &str, message: &MessageView, cause: DropCause) {
        let _ = self.events.send(Event::Dropped {
            client: client_id.to_string(),
            topic: message.topic.to_string(),
            cause,
        });
    }
}

struct Recorded {
    broker: common::TestBroker,
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
}

impl Recorded {
    /// The next event (bounded wait).
    async fn next(&mut self) -> Event {
        tokio::time::timeout(T, self.events.recv())
            .await
            .expect("no message event within the timeout")
            .expect("recorder gone")
    }

    /// No event is pending right now (the broker fires hooks before it
    /// writes the packets the test waited for, so this is not a race).
    fn none_yet(&mut self) {
        assert_eq!(self.events.try_recv().ok(), None);
    }
}

async fn start_recording(toml: &str, wanted: bool) -> Recorded {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let broker = common::start_built(
        Broker::builder()
            .config(common::config(toml))
            .authorizer(Arc::new(Acl))
            .hooks(Arc::new(Recorder { events: tx, wanted })),
    )
    .await;
    Recorded { broker, events: rx }
}

/// A 5.0 client with a persistent session (expiry 300 s) and a given id.
fn persistent(id: &str) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    c
}

fn delivered(client: &str, topic: &str, qos: QoS) -> Event {
    Event::Delivered {
        client: client.to_string(),
        topic: topic.to_string(),
        qos,
    }
}

fn dropped(client: &str, topic: &str, cause: DropCause) -> Event {
    Event::Dropped {
        client: client.to_string(),
        topic: topic.to_string(),
        cause,
    }
}

#[tokio::test]
async fn qos0_is_reported_delivered_when_handed_to_the_transport() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("ev0");
    let mut sub =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    common::clients::subscribed(&mut sub, "ev/0", QoS::AtMostOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "ev0p").await;
    publ.send(publish("ev/0", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(&sub.recv_publish(T).await.unwrap().payload[..], b"x");
    assert_eq!(rec.next().await, delivered(&id, "ev/0", QoS::AtMostOnce));
}

#[tokio::test]
async fn qos1_is_delivered_on_puback_and_qos2_on_pubrec_not_before() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("ev12");
    let mut sub =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    common::clients::subscribed(&mut sub, "ev/q", QoS::ExactlyOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "ev12p").await;

    publ.send(publish("ev/q", &b"1"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let p = sub.recv_publish(T).await.unwrap();
    assert_eq!(p.qos, QoS::AtLeastOnce);
    rec.none_yet();
    sub.send(roost_testkit::packets::puback(p.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert_eq!(rec.next().await, delivered(&id, "ev/q", QoS::AtLeastOnce));

    publ.send(publish("ev/q", &b"2"[..], QoS::ExactlyOnce, Some(2)))
        .await
        .unwrap();
    let p = sub.recv_publish(T).await.unwrap();
    let pid = p.packet_id.unwrap().get();
    rec.none_yet();
    sub.send(roost_testkit::packets::pubrec(pid)).await.unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::PubRel(_)));
    assert_eq!(rec.next().await, delivered(&id, "ev/q", QoS::ExactlyOnce));
    sub.send(roost_testkit::packets::pubcomp(pid))
        .await
        .unwrap();
    sub.send(Packet::PingReq).await.unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::PingResp));
    rec.none_yet();
}

#[tokio::test]
async fn a_message_the_client_refuses_is_reported_dropped() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evrej");
    let mut sub =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    common::clients::subscribed(&mut sub, "ev/rej", QoS::AtLeastOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evrejp").await;
    publ.send(publish("ev/rej", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    let p = sub.recv_publish(T).await.unwrap();
    sub.send(Packet::PubAck(roost_codec::PubResponse {
        packet_id: p.packet_id.unwrap(),
        reason_code: ReasonCode::UNSPECIFIED_ERROR,
        properties: Default::default(),
    }))
    .await
    .unwrap();
    assert_eq!(
        rec.next().await,
        dropped(
            &id,
            "ev/rej",
            DropCause::Rejected(ReasonCode::UNSPECIFIED_ERROR)
        )
    );
}

#[tokio::test]
async fn qos0_for_an_offline_session_and_a_full_queue_are_reported_dropped() {
    let mut rec = start_recording("[mqtt]\nmax_queued_messages = 1\n", true).await;
    let id = unique_id("evoff");
    let mut sub = common::clients::open_with(rec.broker.addr, persistent(&id)).await;
    common::clients::subscribed(&mut sub, "ev/off/#", QoS::AtLeastOnce).await;
    common::clients::drop_and_wait(&rec.broker, sub).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evoffp").await;
    publ.send(publish("ev/off/0", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/off/0", DropCause::Offline)
    );
    for (i, topic) in ["ev/off/kept", "ev/off/full"].into_iter().enumerate() {
        let pid = u16::try_from(i + 1).unwrap();
        publ.send(publish(topic, &b"x"[..], QoS::AtLeastOnce, Some(pid)))
            .await
            .unwrap();
        assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));
    }
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/off/full", DropCause::QueueFull)
    );
    rec.none_yet();
}

#[tokio::test]
async fn a_message_expired_in_the_offline_queue_is_reported_when_the_client_returns() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evexp");
    let mut sub = common::clients::open_with(rec.broker.addr, persistent(&id)).await;
    common::clients::subscribed(&mut sub, "ev/exp/#", QoS::AtLeastOnce).await;
    common::clients::drop_and_wait(&rec.broker, sub).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evexpp").await;
    let mut short = publish("ev/exp/short", &b"x"[..], QoS::AtLeastOnce, Some(1));
    short.properties.message_expiry_interval = Some(1);
    publ.send(short).await.unwrap();
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));
    publ.send(publish("ev/exp/long", &b"y"[..], QoS::AtLeastOnce, Some(2)))
        .await
        .unwrap();
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));
    // The expiry interval is in whole seconds: let it run out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut back = common::clients::open_with(rec.broker.addr, persistent(&id)).await;
    let p = back.recv_publish(T).await.unwrap();
    assert_eq!(&p.topic[..], "ev/exp/long");
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/exp/short", DropCause::Expired)
    );
    back.send(roost_testkit::packets::puback(p.packet_id.unwrap().get()))
        .await
        .unwrap();
    assert_eq!(
        rec.next().await,
        delivered(&id, "ev/exp/long", QoS::AtLeastOnce)
    );
}

#[tokio::test]
async fn a_message_larger_than_the_clients_maximum_packet_size_is_reported_dropped() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evbig");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.maximum_packet_size = Some(64);
    let mut sub = common::clients::open_with(rec.broker.addr, c).await;
    common::clients::subscribed(&mut sub, "ev/big", QoS::AtMostOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evbigp").await;
    publ.send(publish("ev/big", vec![b'x'; 200], QoS::AtMostOnce, None))
        .await
        .unwrap();
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/big", DropCause::TooLarge)
    );
}

#[tokio::test]
async fn messages_left_when_a_session_ends_are_reported_dropped() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evend");
    // Session Expiry 0: the session ends with the connection.
    let mut sub =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    common::clients::subscribed(&mut sub, "ev/end", QoS::AtLeastOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evendp").await;
    publ.send(publish("ev/end", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    // Received, never acknowledged.
    sub.recv_publish(T).await.unwrap();
    common::clients::drop_and_wait(&rec.broker, sub).await;
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/end", DropCause::SessionEnded)
    );
}

#[tokio::test]
async fn an_unauthorized_publish_is_reported_dropped_for_the_publisher() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evacl");
    let mut publ =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    publ.send(publish("private/x", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    match publ.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rec.next().await,
        dropped(&id, "private/x", DropCause::NotAuthorized)
    );
}

/// `acl_wildcards = "per_message"`: a message withheld from a wildcard
/// subscriber at delivery is reported dropped for that subscriber.
#[tokio::test]
async fn a_delivery_withheld_per_message_is_reported_dropped_for_the_subscriber() {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let acl = roost_auth::AclFile::from_text(
        "test.acl",
        "deny all subscribe test/nosubscribe\nallow all all #\n",
    )
    .unwrap();
    let broker = common::start_built(
        Broker::builder()
            .config(common::config(""))
            .authorizer(Arc::new(acl))
            .hooks(Arc::new(Recorder {
                events: tx,
                wanted: true,
            })),
    )
    .await;
    let mut rec = Recorded { broker, events };
    let id = unique_id("evread");
    let mut sub =
        common::clients::open_with(rec.broker.addr, connect(ProtocolVersion::V5, &id)).await;
    common::clients::subscribed(&mut sub, "#", QoS::AtMostOnce).await;
    rec.broker.handle.publish(
        "test/nosubscribe",
        Bytes::from_static(b"x"),
        QoS::AtMostOnce,
        false,
    );
    assert_eq!(
        rec.next().await,
        dropped(&id, "test/nosubscribe", DropCause::NotAuthorized)
    );
}

/// An authorizer that must wait (like the HTTP one) and allows everything.
struct AsyncAllow;

impl Authorizer for AsyncAllow {
    fn name(&self) -> &str {
        "async-allow"
    }
    fn authorize(&self, _client: &ClientInfo, _action: Action, _topic: &str) -> AclResult {
        AclResult::Deny
    }
    fn authorize_async<'a>(
        &'a self,
        _client: &'a ClientInfo,
        _action: Action,
        _topic: &'a str,
    ) -> Option<BoxFuture<'a, AclResult>> {
        Some(ready(AclResult::Allow))
    }
}

/// At delivery the routing path cannot wait: synchronous authorizers decide
/// (the ACL file's deny withholds), and when none does, a skipped async
/// authorizer (which allowed the filter at SUBSCRIBE) means "deliver",
/// even with `acl_default = "deny"`.
#[tokio::test]
async fn at_delivery_a_sync_deny_withholds_and_a_skipped_async_authorizer_delivers() {
    let acl = roost_auth::AclFile::from_text("test.acl", "deny all subscribe test/nosubscribe\n")
        .unwrap();
    let broker = common::start_built(
        Broker::builder()
            .config(common::config("[security]\nacl_default = \"deny\"\n"))
            .authorizer(Arc::new(acl))
            .authorizer(Arc::new(AsyncAllow)),
    )
    .await;
    let mut sub = common::clients::open_v5(broker.addr, "asyncread").await;
    // Refused as a whole by the ACL file; per message the file ignores it and
    // the async authorizer, awaited on the filter, allows it.
    common::clients::subscribed(&mut sub, "#", QoS::AtMostOnce).await;
    for topic in ["test/nosubscribe", "x/y"] {
        broker
            .handle
            .publish(topic, Bytes::from_static(b"x"), QoS::AtMostOnce, false);
    }
    assert_eq!(&*sub.recv_publish(T).await.unwrap().topic, "x/y");
    assert_eq!(broker.handle.stats().deliveries_not_authorized, 1);
}

#[tokio::test]
async fn hooks_that_opt_out_of_message_events_get_none() {
    let mut rec = start_recording("", false).await;
    let mut sub = common::clients::open_v5(rec.broker.addr, "evnone").await;
    common::clients::subscribed(&mut sub, "ev/none", QoS::AtMostOnce).await;
    sub.send(publish("ev/none", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    sub.recv_publish(T).await.unwrap();
    sub.send(publish("private/x", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    assert!(matches!(sub.recv(T).await.unwrap(), Packet::PubAck(_)));
    rec.none_yet();
}

#[tokio::test]
async fn a_message_expired_behind_a_full_window_is_reported_when_the_window_opens() {
    let mut rec = start_recording("", true).await;
    let id = unique_id("evwin");
    let mut c = connect(ProtocolVersion::V5, &id);
    c.properties.receive_maximum = Some(1);
    let mut sub = common::clients::open_with(rec.broker.addr, c).await;
    common::clients::subscribed(&mut sub, "ev/win/#", QoS::AtLeastOnce).await;
    let mut publ = common::clients::open_v5(rec.broker.addr, "evwinp").await;
    publ.send(publish(
        "ev/win/first",
        &b"1"[..],
        QoS::AtLeastOnce,
        Some(1),
    ))
    .await
    .unwrap();
    let first = sub.recv_publish(T).await.unwrap();
    let mut queued = publish("ev/win/queued", &b"2"[..], QoS::AtLeastOnce, Some(2));
    queued.properties.message_expiry_interval = Some(1);
    publ.send(queued).await.unwrap();
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));
    assert!(matches!(publ.recv(T).await.unwrap(), Packet::PubAck(_)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sub.send(roost_testkit::packets::puback(
        first.packet_id.unwrap().get(),
    ))
    .await
    .unwrap();
    assert_eq!(
        rec.next().await,
        delivered(&id, "ev/win/first", QoS::AtLeastOnce)
    );
    assert_eq!(
        rec.next().await,
        dropped(&id, "ev/win/queued", DropCause::Expired)
    );
}

// ---- per-session authorization cache ----

/// Allows everything and counts how often it is asked.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl Authorizer for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn authorize(&self, _client: &ClientInfo, _action: Action, _topic: &str) -> AclResult {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        AclResult::Allow
    }
}

#[tokio::test]
async fn sync_authorizer_answers_are_cached_per_session_until_a_reload() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let guard = common::start_built(
        Broker::builder()
            .config(common::config(""))
            .authorizer(Arc::new(Counting(Arc::clone(&calls)))),
    )
    .await;
    let addr = guard.addr;
    let count = || calls.load(std::sync::atomic::Ordering::SeqCst);
    let mut c = common::clients::open_v5(addr, "authzcache").await;
    for id in 1..=3 {
        c.send(publish("c/1", &b"x"[..], QoS::AtLeastOnce, Some(id)))
            .await
            .unwrap();
        assert!(matches!(c.recv(T).await.unwrap(), Packet::PubAck(_)));
    }
    assert_eq!(
        count(),
        1,
        "the same action on the same topic is asked once"
    );
    // Another QoS is another action; another topic is another key.
    c.send(publish("c/1", &b"x"[..], QoS::AtMostOnce, None))
        .await
        .unwrap();
    c.send(publish("c/2", &b"x"[..], QoS::AtLeastOnce, Some(4)))
        .await
        .unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::PubAck(_)));
    assert_eq!(count(), 3);
    // Another session has its own cache.
    let mut d = common::clients::open_v5(addr, "authzcache2").await;
    d.send(publish("c/1", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    assert!(matches!(d.recv(T).await.unwrap(), Packet::PubAck(_)));
    assert_eq!(count(), 4);
    // A reload makes every session ask again.
    assert!(guard.handle.reload_auth().is_empty());
    c.send(publish("c/1", &b"x"[..], QoS::AtLeastOnce, Some(5)))
        .await
        .unwrap();
    assert!(matches!(c.recv(T).await.unwrap(), Packet::PubAck(_)));
    assert_eq!(count(), 5);
}

// ---- reason strings ----

/// Refuses every connection with 0x9F and a reason string.
struct Closed;

impl Hooks for Closed {
    fn on_connect<'a>(&'a self, _client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        ready(Decision::deny_with(
            ReasonCode::CONNECTION_RATE_EXCEEDED,
            "maintenance until 10:00",
        ))
    }
}

#[tokio::test]
async fn an_on_connect_denial_sends_its_reason_code_and_reason_string() {
    let broker = common::start_built(
        Broker::builder()
            .config(common::config(""))
            .hooks(Arc::new(Closed)),
    )
    .await;
    let mut c = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    c.send(Packet::Connect(Box::new(connect(
        ProtocolVersion::V5,
        &unique_id("closed"),
    ))))
    .await
    .unwrap();
    match c.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.reason_code, ReasonCode::CONNECTION_RATE_EXCEEDED);
            assert_eq!(
                ack.properties.reason_string.as_deref(),
                Some("maintenance until 10:00")
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---- credentials that expire ----

#[tokio::test]
async fn expired_credentials_end_the_connection_with_0xa0() {
    let broker = common::start_built(Broker::builder().config(common::config("")).authenticator(
        Arc::new(common::short_lived::ShortLived(Duration::from_millis(300))),
    ))
    .await;
    let mut c =
        common::clients::open_with(broker.addr, login(ProtocolVersion::V5, "anyone", b"x")).await;
    common::clients::expect_disconnect(&mut c, ReasonCode::MAXIMUM_CONNECT_TIME).await;
}

// ---- a slow hook delays only its own client ----

/// Holds `on_publish` for `slow/...` topics until released.
struct Slow(Arc<tokio::sync::Notify>);

impl Hooks for Slow {
    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        if ctx.message.topic.starts_with("slow/") {
            let release = Arc::clone(&self.0);
            return Box::pin(async move {
                release.notified().await;
                PublishDecision::Allow
            });
        }
        ready(PublishDecision::Allow)
    }
}

#[tokio::test]
async fn a_slow_async_hook_does_not_stall_other_connections() {
    let release = Arc::new(tokio::sync::Notify::new());
    let broker = common::start_built(
        Broker::builder()
            .config(common::config(""))
            .hooks(Arc::new(Slow(Arc::clone(&release)))),
    )
    .await;
    let mut slow = common::clients::open_v5(broker.addr, "slowhook").await;
    let mut other = common::clients::open_v5(broker.addr, "fasthook").await;
    slow.send(publish("slow/1", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    // Served while the hook holds the slow client's publish.
    other
        .send(publish("fast/1", &b"x"[..], QoS::AtLeastOnce, Some(1)))
        .await
        .unwrap();
    assert!(matches!(other.recv(T).await.unwrap(), Packet::PubAck(_)));
    assert!(
        slow.recv(Duration::from_millis(50)).await.is_err(),
        "the slow client was answered before its hook finished"
    );
    release.notify_one();
    assert!(matches!(slow.recv(T).await.unwrap(), Packet::PubAck(_)));
}

// ---- listing clients ----

#[tokio::test]
async fn the_handle_lists_sessions_with_their_user_and_state() {
    let broker = start().await;
    let alice_id = unique_id("list-alice");
    let mut alice = login(ProtocolVersion::V5, "alice", b"secret");
    alice.client_id = ByteString::from(alice_id.as_str());
    alice.clean_start = false;
    alice.properties.session_expiry_interval = Some(300);
    let alice = common::clients::open_with(broker.addr, alice).await;
    let anon_id = unique_id("list-anon");
    let _anon =
        common::clients::open_with(broker.addr, connect(ProtocolVersion::V5, &anon_id)).await;
    let find = |id: &str| {
        broker
            .handle
            .clients()
            .into_iter()
            .find(|c| c.client_id == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
    };
    let a = find(&alice_id);
    assert_eq!((a.username.as_deref(), a.connected), (Some("alice"), true));
    let n = find(&anon_id);
    assert_eq!((n.username, n.connected), (None, true));
    common::clients::drop_and_wait(&broker, alice).await;
    assert!(
        !find(&alice_id).connected,
        "a parked session is listed offline"
    );
}
