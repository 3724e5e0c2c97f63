//! A hook's denial at the wire: its reason code and Reason String reach the
//! packet that answers (PUBACK, PUBREC, SUBACK per filter, UNSUBACK,
//! DISCONNECT), and the Reason String is left out where the client may not
//! receive it (Request Problem Information = 0, Maximum Packet Size, 3.x).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytestring::ByteString;
use roost_broker::Broker;
use roost_broker::hooks::{
    BoxFuture, ClientInfo, Decision, Hooks, PublishCtx, PublishDecision, SubscribeCtx, ready,
};
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, subscribe, unique_id, unsubscribe};

use common::T;

const NO_WRITES: &str = "no writes here";
const NO_READS: &str = "no reading here";
const KEPT: &str = "this subscription stays";
const NO_PINGS: &str = "pings are off";

/// A Reason String longer than the Maximum Packet Size the size tests set.
fn long_reason() -> String {
    "x".repeat(300)
}

/// Refuses publishing to `ro/...` (0x87, "no writes here") and `long/...`
/// (0x87, a 300-byte reason), subscribing to `ro/...` (0x87, "no reading
/// here"), unsubscribing from `keep/...` (0x87), and pings from clients whose
/// id starts with `noping` (0x87).
struct Refusing;

impl Hooks for Refusing {
    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        let reason_string = if ctx.message.topic.starts_with("ro/") {
            Some(NO_WRITES.to_owned())
        } else if ctx.message.topic.starts_with("long/") {
            Some(long_reason())
        } else {
            None
        };
        ready(match reason_string {
            Some(reason_string) => PublishDecision::Deny {
                reason: ReasonCode::NOT_AUTHORIZED,
                reason_string: Some(reason_string),
            },
            None => PublishDecision::Allow,
        })
    }
    fn on_subscribe<'a>(&'a self, ctx: &'a SubscribeCtx<'a>) -> BoxFuture<'a, Decision> {
        ready(if ctx.filter.starts_with("ro/") {
            Decision::deny_with(ReasonCode::NOT_AUTHORIZED, NO_READS)
        } else {
            Decision::Allow
        })
    }
    fn on_unsubscribe<'a>(
        &'a self,
        _client: &'a ClientInfo,
        filter: &'a str,
    ) -> BoxFuture<'a, Decision> {
        ready(if filter.starts_with("keep/") {
            Decision::deny_with(ReasonCode::NOT_AUTHORIZED, KEPT)
        } else {
            Decision::Allow
        })
    }
    fn on_ping<'a>(&'a self, client: &'a ClientInfo) -> BoxFuture<'a, Decision> {
        ready(if client.client_id.starts_with("noping") {
            Decision::deny_with(ReasonCode::NOT_AUTHORIZED, NO_PINGS)
        } else {
            Decision::Allow
        })
    }
}

async fn start() -> common::TestBroker {
    common::start_built(
        Broker::builder()
            .config(common::config(""))
            .hooks(Arc::new(Refusing)),
    )
    .await
}

/// A 5.0 CONNECT; `problem_information` false sends Request Problem Information = 0.
fn v5(prefix: &str, problem_information: bool) -> Connect {
    let mut c = connect(ProtocolVersion::V5, &unique_id(prefix));
    if !problem_information {
        c.properties.request_problem_information = Some(false);
    }
    c
}

async fn open(broker: &common::TestBroker, connect: Connect) -> RawClient {
    common::clients::open_with(broker.addr, connect).await
}

/// Publishes to `topic` at `qos` (packet id 1) and returns the PUBACK /
/// PUBREC code and Reason String.
async fn publish_answer(c: &mut RawClient, topic: &str, qos: QoS) -> (ReasonCode, Option<String>) {
    c.send(publish(topic, &b"x"[..], qos, Some(1)))
        .await
        .unwrap();
    match (qos, c.recv(T).await.unwrap()) {
        (QoS::AtLeastOnce, Packet::PubAck(a)) | (QoS::ExactlyOnce, Packet::PubRec(a)) => (
            a.reason_code,
            a.properties.reason_string.map(|s| s.to_string()),
        ),
        (_, other) => {
            panic!("expected the acknowledgement of a QoS {qos:?} PUBLISH, got {other:?}")
        }
    }
}

/// Subscribes to `ro/a` and `open/b` in one SUBSCRIBE; returns the SUBACK's
/// codes and Reason String.
async fn subscribe_answer(c: &mut RawClient) -> (Vec<ReasonCode>, Option<String>) {
    let mut s = subscribe(2, "ro/a", QoS::AtLeastOnce);
    s.filters.push((ByteString::from("open/b"), s.filters[0].1));
    c.send(s).await.unwrap();
    match c.recv(T).await.unwrap() {
        Packet::SubAck(a) => (
            a.reason_codes,
            a.properties.reason_string.map(|s| s.to_string()),
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Subscribes to `keep/a`, then unsubscribes from it; returns the UNSUBACK's
/// codes and Reason String.
async fn unsubscribe_answer(c: &mut RawClient) -> (Vec<ReasonCode>, Option<String>) {
    common::clients::subscribed(c, "keep/a", QoS::AtMostOnce).await;
    c.send(unsubscribe(3, "keep/a")).await.unwrap();
    match c.recv(T).await.unwrap() {
        Packet::UnsubAck(a) => (
            a.reason_codes,
            a.properties.reason_string.map(|s| s.to_string()),
        ),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn v5_a_denied_qos1_publish_gets_puback_with_the_hooks_code_and_reason_string() {
    let broker = start().await;
    let mut c = open(&broker, v5("puback", true)).await;
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::AtLeastOnce).await,
        (ReasonCode::NOT_AUTHORIZED, Some(NO_WRITES.to_owned()))
    );
}

#[tokio::test]
async fn v5_a_denied_qos2_publish_gets_pubrec_with_the_hooks_code_and_reason_string() {
    let broker = start().await;
    let mut c = open(&broker, v5("pubrec", true)).await;
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::ExactlyOnce).await,
        (ReasonCode::NOT_AUTHORIZED, Some(NO_WRITES.to_owned()))
    );
    // An error PUBREC ends the flow [MQTT-4.3.3-9]: the id is free again.
    assert_eq!(
        publish_answer(&mut c, "open/t", QoS::ExactlyOnce).await.0,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
}

#[tokio::test]
async fn v5_a_denied_filter_gets_its_suback_code_and_the_reason_string() {
    let broker = start().await;
    let mut c = open(&broker, v5("suback", true)).await;
    assert_eq!(
        subscribe_answer(&mut c).await,
        (
            vec![ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_1],
            Some(NO_READS.to_owned())
        )
    );
}

#[tokio::test]
async fn v5_a_denied_unsubscribe_gets_its_unsuback_code_and_the_reason_string() {
    let broker = start().await;
    let mut c = open(&broker, v5("unsuback", true)).await;
    assert_eq!(
        unsubscribe_answer(&mut c).await,
        (vec![ReasonCode::NOT_AUTHORIZED], Some(KEPT.to_owned()))
    );
}

#[tokio::test]
async fn v5_a_denied_ping_closes_with_disconnect_carrying_the_reason_string() {
    let broker = start().await;
    let mut c = open(&broker, connect(ProtocolVersion::V5, &unique_id("noping"))).await;
    c.send(Packet::PingReq).await.unwrap();
    let disconnect = c.expect_closed(T).await.unwrap().expect("a DISCONNECT");
    assert_eq!(disconnect.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(
        disconnect.properties.reason_string.as_deref(),
        Some(NO_PINGS)
    );
}

#[tokio::test]
async fn v5_mqtt_3_1_2_29_no_reason_string_on_acks_when_problem_information_is_off() {
    let broker = start().await;
    let mut c = open(&broker, v5("quiet", false)).await;
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::AtLeastOnce).await,
        (ReasonCode::NOT_AUTHORIZED, None)
    );
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::ExactlyOnce).await,
        (ReasonCode::NOT_AUTHORIZED, None)
    );
    assert_eq!(
        subscribe_answer(&mut c).await,
        (
            vec![ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_1],
            None
        )
    );
    assert_eq!(
        unsubscribe_answer(&mut c).await,
        (vec![ReasonCode::NOT_AUTHORIZED], None)
    );
}

#[tokio::test]
async fn v5_mqtt_3_4_2_2_v5_mqtt_3_5_2_2_reason_string_left_out_beyond_maximum_packet_size() {
    let broker = start().await;
    let mut small = v5("small", true);
    small.properties.maximum_packet_size = Some(200);
    let mut c = open(&broker, small).await;
    // The 300-byte reason would take the acknowledgement past 200 bytes: the
    // code still goes out, without the Reason String.
    assert_eq!(
        publish_answer(&mut c, "long/t", QoS::AtLeastOnce).await,
        (ReasonCode::NOT_AUTHORIZED, None)
    );
    assert_eq!(
        publish_answer(&mut c, "long/t", QoS::ExactlyOnce).await,
        (ReasonCode::NOT_AUTHORIZED, None)
    );
    // A reason that fits is still sent.
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::AtLeastOnce).await,
        (ReasonCode::NOT_AUTHORIZED, Some(NO_WRITES.to_owned()))
    );
}

#[tokio::test]
async fn v311_a_denied_publish_is_acknowledged_and_a_denied_filter_fails_with_0x80() {
    let broker = start().await;
    let mut c = open(&broker, connect(ProtocolVersion::V311, &unique_id("old"))).await;
    // 3.1.1 acknowledgements carry no reason: the refused message is
    // acknowledged and dropped, the refused filter fails with 0x80.
    assert_eq!(
        publish_answer(&mut c, "ro/t", QoS::AtLeastOnce).await,
        (ReasonCode::SUCCESS, None)
    );
    assert_eq!(
        subscribe_answer(&mut c).await,
        (
            vec![ReasonCode::UNSPECIFIED_ERROR, ReasonCode::GRANTED_QOS_1],
            None
        )
    );
}
