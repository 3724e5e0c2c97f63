//! proptest strategies for random deltas over a few colliding keys.

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use proptest::prelude::*;
use roost_codec::{QoS, ReasonCode};
use roost_store::{
    DelayedRecord, Delta, InflightStage, QueuedMessage, SessionOwner, SessionRecord, StoredMessage,
    StoredProperties, WillRecord,
};

use crate::common;

// Few distinct keys, so deltas collide; "a" and "ab" test prefix isolation.
fn client() -> impl Strategy<Value = ByteString> {
    prop_oneof![Just("a"), Just("ab"), Just("b")].prop_map(ByteString::from)
}

fn filter() -> impl Strategy<Value = ByteString> {
    prop_oneof![Just("f"), Just("f/+"), Just("$share/g/f")].prop_map(ByteString::from)
}

fn topic() -> impl Strategy<Value = ByteString> {
    prop_oneof![Just("t"), Just("t/u"), Just("")].prop_map(ByteString::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn time() -> impl Strategy<Value = std::time::SystemTime> {
    (0u64..4_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| std::time::UNIX_EPOCH + Duration::new(s, n))
}

/// A store time: whole milliseconds, as the stores keep it.
fn stored_time() -> impl Strategy<Value = std::time::SystemTime> {
    (0u64..4_000_000_000_000).prop_map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

fn message() -> impl Strategy<Value = StoredMessage> {
    (
        topic(),
        proptest::collection::vec(any::<u8>(), 0..8),
        qos(),
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(time()),
        proptest::option::of(client()),
    )
        .prop_map(
            |(topic, payload, qos, retain, expiry, expires_at, publisher)| StoredMessage {
                topic,
                payload: Bytes::from(payload),
                qos,
                retain,
                properties: StoredProperties {
                    message_expiry_interval: expiry,
                    ..StoredProperties::default()
                },
                expires_at,
                publisher,
            },
        )
}

pub fn delta() -> impl Strategy<Value = Delta> {
    let seq = 0u64..4;
    let pid = (1u16..4).prop_map(common::pid);
    prop_oneof![
        (
            client(),
            any::<u32>(),
            proptest::option::of(time()),
            proptest::collection::vec((filter(), qos(), proptest::option::of(1u32..5)), 0..3)
        )
            .prop_map(|(client_id, expiry_interval, disconnected_at, subs)| {
                Delta::SessionUpsert {
                    client_id,
                    record: SessionRecord {
                        expiry_interval,
                        disconnected_at,
                        owner: SessionOwner::Anonymous,
                    },
                    subscriptions: subs
                        .into_iter()
                        .map(|(f, q, i)| (f, common::sub(q, i)))
                        .collect(),
                }
            }),
        client().prop_map(|client_id| Delta::SessionDelete { client_id }),
        (client(), filter(), qos(), proptest::option::of(1u32..5)).prop_map(|(c, f, q, i)| {
            Delta::SubAdd {
                client_id: c,
                filter: f,
                subscription: common::sub(q, i),
            }
        }),
        (client(), filter()).prop_map(|(client_id, filter)| Delta::SubDelete { client_id, filter }),
        (
            client(),
            seq.clone(),
            message(),
            qos(),
            proptest::collection::vec(1u32..9, 0..3)
        )
            .prop_map(|(client_id, seq, m, q, ids)| Delta::MessageEnqueue {
                client_id,
                seq,
                message: QueuedMessage {
                    message: m,
                    qos: q,
                    retain: false,
                    subscription_ids: ids,
                },
            }),
        (client(), seq.clone()).prop_map(|(client_id, seq)| Delta::MessageAck { client_id, seq }),
        (client(), seq, pid.clone(), any::<bool>()).prop_map(
            |(client_id, seq, packet_id, comp)| {
                Delta::OutboundStage {
                    client_id,
                    seq,
                    packet_id,
                    stage: if comp {
                        InflightStage::AwaitingPubComp
                    } else {
                        InflightStage::Sent
                    },
                }
            }
        ),
        (client(), pid.clone(), any::<u8>()).prop_map(|(client_id, packet_id, r)| {
            Delta::InboundQos2 {
                client_id,
                packet_id,
                reason_code: ReasonCode(r),
            }
        }),
        (client(), pid).prop_map(|(client_id, packet_id)| Delta::InboundQos2Release {
            client_id,
            packet_id
        }),
        (topic(), message(), stored_time()).prop_map(|(topic, message, stored_at)| {
            Delta::RetainSet {
                topic,
                message,
                stored_at,
            }
        }),
        topic().prop_map(|topic| Delta::RetainDelete { topic }),
        (
            client(),
            message(),
            any::<u32>(),
            proptest::option::of(time())
        )
            .prop_map(
                |(client_id, message, delay_interval, fire_at)| Delta::WillSet {
                    client_id,
                    will: WillRecord {
                        message,
                        delay_interval,
                        fire_at,
                    },
                }
            ),
        client().prop_map(|client_id| Delta::WillDelete { client_id }),
        (0u64..3, message(), time()).prop_map(|(id, message, publish_at)| Delta::DelayedPut {
            id,
            delayed: DelayedRecord {
                message,
                publish_at,
            },
        }),
        (0u64..3).prop_map(|id| Delta::DelayedDelete { id }),
    ]
}

pub fn batches() -> impl Strategy<Value = Vec<Vec<Delta>>> {
    proptest::collection::vec(proptest::collection::vec(delta(), 0..10), 1..6)
}
