//! Shared helpers for the session tests: packet builders and a virtual clock
//! (a base `Instant` plus durations; nothing sleeps).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{
    ConnAck, Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, PublishProperties,
    QoS, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
};
use roost_session::{
    Delivery, DeliveryOutcome, Inbound, Message, Session, SessionConfig, SessionState,
};

/// The virtual clock's origin.
pub fn t0() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `t0 + secs`.
pub fn at(secs: f64) -> Instant {
    t0() + Duration::from_secs_f64(secs)
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        ..Connect::default()
    }
}

pub fn v5(client_id: &str) -> Connect {
    connect(ProtocolVersion::V5, client_id)
}

pub fn v311(client_id: &str) -> Connect {
    connect(ProtocolVersion::V311, client_id)
}

pub fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig::default())
}

pub fn config_with(f: impl FnOnce(&mut SessionConfig)) -> Arc<SessionConfig> {
    let mut c = SessionConfig::default();
    f(&mut c);
    Arc::new(c)
}

/// Accepts `connect` and returns the session plus everything it queued
/// (CONNACK first).
pub fn accept_with(
    connect: Connect,
    previous: Option<SessionState>,
    config: Arc<SessionConfig>,
    now: Instant,
) -> (Session, Vec<Packet>) {
    let mut s = Session::accept(connect, None, previous, config, None, now);
    let out = drain(&mut s);
    (s, out)
}

/// Accepts `connect` with the default config at t0 and discards the CONNACK.
pub fn session(connect: Connect) -> Session {
    session_with(connect, config())
}

pub fn session_with(connect: Connect, config: Arc<SessionConfig>) -> Session {
    let (s, out) = accept_with(connect, None, config, t0());
    assert!(matches!(out.first(), Some(Packet::ConnAck(_))));
    s
}

pub fn connack(packets: &[Packet]) -> &ConnAck {
    match packets.first() {
        Some(Packet::ConnAck(c)) => c,
        other => panic!("expected CONNACK first, got {other:?}"),
    }
}

pub fn drain(s: &mut Session) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Some(p) = s.poll_transmit(t0()) {
        out.push(p);
    }
    out
}

pub fn publish(topic: &str, qos: QoS, id: Option<u16>) -> Publish {
    Publish {
        qos,
        topic: topic.into(),
        packet_id: id.map(pid),
        payload: Bytes::from_static(b"payload"),
        ..Publish::default()
    }
}

pub fn message(topic: &str, qos: QoS) -> Arc<Message> {
    Arc::new(Message {
        topic: topic.into(),
        payload: Bytes::from_static(b"hello"),
        qos,
        retain: false,
        properties: PublishProperties::default(),
        expires_at: None,
        publisher: Some("publisher".into()),
    })
}

pub fn delivery(topic: &str, qos: QoS) -> Delivery {
    Delivery::new(message(topic, qos), qos, false)
}

pub fn subscribe(id: u16, filters: &[(&str, QoS)]) -> Subscribe {
    Subscribe {
        packet_id: pid(id),
        filters: filters
            .iter()
            .map(|(f, q)| {
                (
                    ByteString::from(*f),
                    SubscriptionOptions {
                        qos: *q,
                        ..SubscriptionOptions::default()
                    },
                )
            })
            .collect(),
        properties: SubscribeProperties::default(),
    }
}

pub fn ack(id: u16) -> PubResponse {
    PubResponse::success(pid(id))
}

pub fn ack_with(id: u16, rc: ReasonCode) -> PubResponse {
    PubResponse {
        reason_code: rc,
        ..PubResponse::success(pid(id))
    }
}

/// The PUBLISH packets among `packets`.
pub fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Unwraps an `Inbound::Publish`.
pub fn inbound_message(inbound: Inbound) -> (Message, Option<PacketId>) {
    match inbound {
        Inbound::Publish { message, packet_id } => (message, packet_id),
        other => panic!("expected Inbound::Publish, got {other:?}"),
    }
}

/// The one PUBLISH `s` has queued.
pub fn only_publish(s: &mut Session) -> Publish {
    let out = drain(s);
    assert_eq!(out.len(), 1, "{out:?}");
    match out.into_iter().next() {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

pub fn with_receive_maximum(mut c: Connect, n: u16) -> Connect {
    c.properties.receive_maximum = Some(n);
    c
}

pub fn with_maximum_packet_size(mut c: Connect, n: u32) -> Connect {
    c.properties.maximum_packet_size = Some(n);
    c
}

pub fn with_alias_max(mut c: Connect, n: u16) -> Connect {
    c.properties.topic_alias_maximum = Some(n);
    c
}

pub fn deliver(s: &mut Session, topic: &str, qos: QoS) -> DeliveryOutcome {
    s.handle_delivery(t0(), delivery(topic, qos))
}

pub fn topics(packets: &[Packet]) -> Vec<String> {
    publishes(packets)
        .iter()
        .map(|p| p.topic.to_string())
        .collect()
}
