//! Snapshots become `roost-session` state the broker can resume, with wall
//! clock times moved onto the `Instant` clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use roost_codec::{QoS, ReasonCode};
use roost_session::{InboundQos2, Message, OutboundStage};
use roost_store::{
    InflightRecord, InflightStage, SessionRecord, SessionSnapshot, SnapshotMessage, StoredMessage,
};

fn stored(seq: u64, qos: QoS, inflight: Option<(u16, InflightStage)>) -> SnapshotMessage {
    SnapshotMessage {
        seq,
        message: common::queued(common::message("t", b"p", qos), qos, &[seq as u32]),
        inflight: inflight.map(|(p, stage)| InflightRecord {
            packet_id: common::pid(p),
            stage,
        }),
    }
}

#[test]
fn a_snapshot_becomes_inflight_window_queue_and_awaiting_pubrel_ids_with_their_seqs() {
    let snapshot = SessionSnapshot {
        client_id: common::id("c"),
        record: SessionRecord {
            expiry_interval: 600,
            disconnected_at: Some(common::at(0)),
            owner: roost_store::SessionOwner::Anonymous,
        },
        subscriptions: vec![(common::id("a/#"), common::sub(QoS::AtLeastOnce, Some(3)))],
        messages: vec![
            stored(1, QoS::AtLeastOnce, Some((10, InflightStage::Sent))),
            stored(2, QoS::ExactlyOnce, Some((11, InflightStage::Sent))),
            stored(
                3,
                QoS::ExactlyOnce,
                Some((12, InflightStage::AwaitingPubComp)),
            ),
            stored(4, QoS::AtLeastOnce, None),
            // A QoS 0 delivery is never in flight: it goes back to the queue.
            stored(5, QoS::AtMostOnce, Some((13, InflightStage::Sent))),
        ],
        inbound_qos2: vec![(common::pid(7), ReasonCode(0x10))],
    };
    let restored = snapshot.to_session_state(Instant::now(), common::at(1));
    let state = &restored.state;
    assert_eq!(state.session_expiry_interval(), 600);
    assert_eq!(state.subscriptions.len(), 1);
    let stages: Vec<(u16, &'static str)> = state
        .inflight
        .iter()
        .map(|e| {
            let kind = match e.stage {
                OutboundStage::AwaitingPubAck(_) => "puback",
                OutboundStage::AwaitingPubRec(_) => "pubrec",
                OutboundStage::AwaitingPubComp => "pubcomp",
            };
            (e.packet_id.get(), kind)
        })
        .collect();
    assert_eq!(stages, [(10, "puback"), (11, "pubrec"), (12, "pubcomp")]);
    assert_eq!(state.queued_len(), 2);
    let queued_qos: Vec<QoS> = state.queued().map(|d| d.qos).collect();
    assert_eq!(queued_qos, [QoS::AtLeastOnce, QoS::AtMostOnce]);
    let inbound: Vec<_> = state.inbound_qos2().collect();
    assert_eq!(
        inbound,
        [(
            common::pid(7),
            InboundQos2::AwaitingPubRel(ReasonCode(0x10))
        )]
    );
    assert_eq!(
        restored.inflight_seqs,
        [
            (common::pid(10), 1),
            (common::pid(11), 2),
            (common::pid(12), 3)
        ]
    );
    assert_eq!(restored.queued_seqs, [4, 5]);
    assert_eq!(restored.next_seq, 6);
}

#[test]
fn expiry_moves_between_clocks_and_downtime_counts() {
    let now = Instant::now();
    let wall = common::at(1000);
    let mut m = common::message("t", b"p", QoS::AtLeastOnce);

    m.expires_at = Some(wall + Duration::from_secs(30));
    assert_eq!(
        m.to_message(now, wall).expires_at,
        Some(now + Duration::from_secs(30))
    );

    // Expired while the broker was down: comes back already expired.
    m.expires_at = Some(wall - Duration::from_secs(5));
    let back = m.to_message(now, wall);
    assert!(back.is_expired(now));

    m.expires_at = None;
    assert_eq!(m.to_message(now, wall).expires_at, None);
}

#[test]
fn a_message_round_trips_through_storage_with_its_properties() {
    let now = Instant::now();
    let wall = common::at(0);
    let stored = common::message("t/x", b"payload", QoS::ExactlyOnce);
    let message: Message = stored.to_message(now, wall);
    assert_eq!(message.properties.topic_alias, None);
    assert!(message.properties.subscription_identifiers.is_empty());
    let again = StoredMessage::from_message(&message, now, wall);
    assert_eq!(again, stored);

    let delivery = roost_session::Delivery::new(Arc::new(message), QoS::AtLeastOnce, true);
    let queued = roost_store::QueuedMessage::from_delivery(&delivery, now, wall);
    assert_eq!(queued.qos, QoS::AtLeastOnce);
    assert!(queued.retain);
    assert_eq!(
        queued.to_delivery(now, wall).message.payload,
        delivery.message.payload
    );
}

#[test]
fn a_restored_session_resumes_by_resending_its_inflight_window() {
    use roost_codec::{Connect, Packet, ProtocolVersion};
    use roost_session::{Session, SessionConfig};

    let snapshot = SessionSnapshot {
        client_id: common::id("c"),
        record: SessionRecord {
            expiry_interval: 600,
            disconnected_at: Some(common::at(0)),
            owner: roost_store::SessionOwner::Anonymous,
        },
        subscriptions: vec![],
        messages: vec![
            stored(1, QoS::AtLeastOnce, Some((10, InflightStage::Sent))),
            stored(
                2,
                QoS::ExactlyOnce,
                Some((12, InflightStage::AwaitingPubComp)),
            ),
        ],
        inbound_qos2: vec![],
    };
    let now = Instant::now();
    let restored = snapshot.to_session_state(now, common::at(1));
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        client_id: common::id("c"),
        clean_start: false,
        keep_alive: 30,
        ..Connect::default()
    };
    let mut session = Session::accept(
        connect,
        None,
        Some(restored.state),
        Arc::new(SessionConfig::default()),
        None,
        now,
    );
    let mut sent = Vec::new();
    while let Some(p) = session.poll_transmit(now) {
        sent.push(p);
    }
    assert!(
        matches!(&sent[0], Packet::ConnAck(c) if c.session_present),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[1], Packet::Publish(p) if p.dup && p.packet_id == Some(common::pid(10))),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[2], Packet::PubRel(r) if r.packet_id == common::pid(12)),
        "{sent:?}"
    );
}
