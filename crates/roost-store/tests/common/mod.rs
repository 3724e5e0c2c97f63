//! Shared fixtures: one delta of every kind and the snapshot they restore to.
// Each test binary uses a different part of this module.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod gated;
pub mod model;
#[cfg(feature = "redis")]
pub mod redis_server;
pub mod strategy;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PacketId, QoS, ReasonCode, RetainHandling, SubscriptionOptions};
use roost_store::{
    DelayedRecord, Delta, InflightRecord, InflightStage, QueuedMessage, RetainedRecord,
    SessionOwner, SessionRecord, SessionSnapshot, Snapshot, SnapshotMessage, Store, StoredMessage,
    StoredProperties, SubscriptionRecord, WillRecord,
};

/// A fixed wall-clock time `secs` after a base, with nanoseconds (round-trip check).
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_800_000_000 + secs, 123_456_789)
}

/// A store time `secs` after the same base, whole milliseconds (as stored).
pub fn stored_at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis((1_800_000_000 + secs) * 1_000 + 321)
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

pub fn id(s: &str) -> ByteString {
    ByteString::from(s)
}

/// A message with every stored property set.
pub fn message(topic: &str, payload: &'static [u8], qos: QoS) -> StoredMessage {
    StoredMessage {
        topic: id(topic),
        payload: Bytes::from_static(payload),
        qos,
        retain: false,
        properties: StoredProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            response_topic: Some(id("reply/here")),
            correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
            user_properties: vec![(id("k"), id("v1")), (id("k"), id("v2"))],
            content_type: Some(id("text/plain")),
        },
        expires_at: Some(at(60)),
        publisher: Some(id("pub-1")),
    }
}

/// A bare message (no properties, never expires, no publisher).
pub fn bare(topic: &str, payload: &'static [u8]) -> StoredMessage {
    StoredMessage {
        topic: id(topic),
        payload: Bytes::from_static(payload),
        qos: QoS::AtMostOnce,
        retain: true,
        properties: StoredProperties::default(),
        expires_at: None,
        publisher: None,
    }
}

pub fn queued(m: StoredMessage, qos: QoS, sub_ids: &[u32]) -> QueuedMessage {
    QueuedMessage {
        message: m,
        qos,
        retain: false,
        subscription_ids: sub_ids.to_vec(),
    }
}

pub fn sub(qos: QoS, identifier: Option<u32>) -> SubscriptionRecord {
    SubscriptionRecord {
        options: SubscriptionOptions {
            qos,
            no_local: true,
            retain_as_published: false,
            retain_handling: RetainHandling::SendIfNew,
        },
        identifier,
    }
}

fn shared_sub() -> SubscriptionRecord {
    SubscriptionRecord {
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: false,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        },
        identifier: Some(268_435_455),
    }
}

fn will(topic: &str, fire_at: Option<SystemTime>) -> WillRecord {
    WillRecord {
        message: message(topic, b"gone", QoS::AtLeastOnce),
        delay_interval: 30,
        fire_at,
    }
}

fn delayed(n: u64) -> DelayedRecord {
    DelayedRecord {
        message: bare("later", b"soon"),
        publish_at: at(n),
    }
}

/// Batches using every delta kind, including overwrites and deletes inside
/// one batch and across batches, and a session deleted with all its rows.
pub fn every_kind() -> Vec<Vec<Delta>> {
    let c1 = id("client-1");
    let c2 = id("client-2");
    let c3 = id("gone-3");
    vec![
        vec![
            Delta::SessionUpsert {
                client_id: c1.clone(),
                record: SessionRecord {
                    expiry_interval: 3600,
                    disconnected_at: Some(at(1)),
                    owner: SessionOwner::User(id("alice")),
                },
                subscriptions: vec![
                    (id("a/+"), sub(QoS::AtLeastOnce, None)),
                    (id("$share/g/b/#"), shared_sub()),
                ],
            },
            Delta::SessionUpsert {
                client_id: c2.clone(),
                record: SessionRecord {
                    expiry_interval: u32::MAX,
                    disconnected_at: None,
                    owner: SessionOwner::Anonymous,
                },
                subscriptions: vec![(id("old"), sub(QoS::AtMostOnce, None))],
            },
            Delta::SubAdd {
                client_id: c2.clone(),
                filter: id("x/y"),
                subscription: sub(QoS::ExactlyOnce, Some(9)),
            },
            Delta::SubAdd {
                client_id: c2.clone(),
                filter: id("z"),
                subscription: sub(QoS::AtMostOnce, None),
            },
            Delta::SubDelete {
                client_id: c2.clone(),
                filter: id("z"),
            },
            Delta::MessageEnqueue {
                client_id: c1.clone(),
                seq: 1,
                message: queued(
                    message("a/1", b"one", QoS::AtLeastOnce),
                    QoS::AtLeastOnce,
                    &[7],
                ),
            },
            Delta::MessageEnqueue {
                client_id: c1.clone(),
                seq: 2,
                message: queued(
                    message("a/2", b"two", QoS::ExactlyOnce),
                    QoS::ExactlyOnce,
                    &[],
                ),
            },
            Delta::MessageEnqueue {
                client_id: c1.clone(),
                seq: 3,
                message: queued(bare("a/3", b"three"), QoS::AtMostOnce, &[1, 2]),
            },
            Delta::OutboundStage {
                client_id: c1.clone(),
                seq: 1,
                packet_id: pid(10),
                stage: InflightStage::Sent,
            },
            Delta::OutboundStage {
                client_id: c1.clone(),
                seq: 2,
                packet_id: pid(11),
                stage: InflightStage::Sent,
            },
            Delta::InboundQos2 {
                client_id: c1.clone(),
                packet_id: pid(5),
                reason_code: ReasonCode(0x00),
            },
            Delta::InboundQos2 {
                client_id: c1.clone(),
                packet_id: pid(6),
                reason_code: ReasonCode(0x10),
            },
            Delta::RetainSet {
                topic: id("r/1"),
                message: message("r/1", b"kept", QoS::AtLeastOnce),
                stored_at: stored_at(3),
            },
            Delta::RetainSet {
                topic: id("r/2"),
                message: bare("r/2", b"dropped"),
                stored_at: stored_at(4),
            },
            Delta::WillSet {
                client_id: c1.clone(),
                will: will("will/1", None),
            },
            Delta::WillSet {
                client_id: c3.clone(),
                will: will("will/3", Some(at(5))),
            },
            Delta::DelayedPut {
                id: 1,
                delayed: delayed(100),
            },
            Delta::DelayedPut {
                id: 2,
                delayed: delayed(200),
            },
            Delta::SessionUpsert {
                client_id: c3.clone(),
                record: SessionRecord {
                    expiry_interval: 10,
                    disconnected_at: None,
                    owner: SessionOwner::User(id("bob")),
                },
                subscriptions: vec![(id("c3/#"), sub(QoS::AtLeastOnce, None))],
            },
            Delta::MessageEnqueue {
                client_id: c3.clone(),
                seq: 0,
                message: queued(bare("c3/x", b"x"), QoS::AtMostOnce, &[]),
            },
        ],
        vec![
            // Replaces client-2's subscription set wholesale.
            Delta::SessionUpsert {
                client_id: c2.clone(),
                record: SessionRecord {
                    expiry_interval: u32::MAX,
                    disconnected_at: Some(at(2)),
                    owner: SessionOwner::Anonymous,
                },
                subscriptions: vec![(id("x/y"), sub(QoS::ExactlyOnce, Some(9)))],
            },
            Delta::OutboundStage {
                client_id: c1.clone(),
                seq: 2,
                packet_id: pid(11),
                stage: InflightStage::AwaitingPubComp,
            },
            Delta::MessageAck {
                client_id: c1.clone(),
                seq: 3,
            },
            Delta::InboundQos2Release {
                client_id: c1.clone(),
                packet_id: pid(6),
            },
            Delta::RetainDelete { topic: id("r/2") },
            Delta::WillSet {
                client_id: c1.clone(),
                will: will("will/1", Some(at(31))),
            },
            Delta::DelayedDelete { id: 2 },
            Delta::SessionDelete {
                client_id: c3.clone(),
            },
            Delta::WillDelete { client_id: c3 },
        ],
    ]
}

/// What [`every_kind`] restores to.
pub fn every_kind_snapshot() -> Snapshot {
    Snapshot {
        sessions: vec![
            SessionSnapshot {
                client_id: id("client-1"),
                record: SessionRecord {
                    expiry_interval: 3600,
                    disconnected_at: Some(at(1)),
                    owner: SessionOwner::User(id("alice")),
                },
                subscriptions: vec![
                    (id("$share/g/b/#"), shared_sub()),
                    (id("a/+"), sub(QoS::AtLeastOnce, None)),
                ],
                messages: vec![
                    SnapshotMessage {
                        seq: 1,
                        message: queued(
                            message("a/1", b"one", QoS::AtLeastOnce),
                            QoS::AtLeastOnce,
                            &[7],
                        ),
                        inflight: Some(InflightRecord {
                            packet_id: pid(10),
                            stage: InflightStage::Sent,
                        }),
                    },
                    SnapshotMessage {
                        seq: 2,
                        message: queued(
                            message("a/2", b"two", QoS::ExactlyOnce),
                            QoS::ExactlyOnce,
                            &[],
                        ),
                        inflight: Some(InflightRecord {
                            packet_id: pid(11),
                            stage: InflightStage::AwaitingPubComp,
                        }),
                    },
                ],
                inbound_qos2: vec![(pid(5), ReasonCode(0x00))],
            },
            SessionSnapshot {
                client_id: id("client-2"),
                record: SessionRecord {
                    expiry_interval: u32::MAX,
                    disconnected_at: Some(at(2)),
                    owner: SessionOwner::Anonymous,
                },
                subscriptions: vec![(id("x/y"), sub(QoS::ExactlyOnce, Some(9)))],
                messages: vec![],
                inbound_qos2: vec![],
            },
        ],
        retained: vec![(
            id("r/1"),
            RetainedRecord {
                message: message("r/1", b"kept", QoS::AtLeastOnce),
                stored_at: stored_at(3),
            },
        )],
        wills: vec![(id("client-1"), will("will/1", Some(at(31))))],
        delayed: vec![(1, delayed(100))],
        orphans: 0,
    }
}

/// Applies [`every_kind`] to `store`.
pub fn apply_every_kind(store: &dyn Store) {
    for batch in every_kind() {
        store.apply(&batch).expect("apply");
    }
}

/// Unique names for parallel tests.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
