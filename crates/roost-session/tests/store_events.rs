//! Store events: what a persistent session reports to the broker's store for
//! each step of a stored delivery and of an inbound QoS 2 flow, and that
//! nothing is reported without a store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use roost_codec::{Packet, QoS, ReasonCode};
use roost_session::{
    Delivery, DeliveryOutcome, Inbound, QueueFullPolicy, SessionConfig, SessionState, StoreEvent,
};

/// A delivery stored under `seq`.
fn stored(topic: &str, qos: QoS, seq: u64) -> Delivery {
    let mut d = delivery(topic, qos);
    d.store_seq = Some(seq);
    d
}

fn events(s: &mut roost_session::Session) -> Vec<StoreEvent> {
    std::iter::from_fn(|| s.poll_store_event()).collect()
}

fn state_events(s: &mut SessionState) -> Vec<StoreEvent> {
    std::iter::from_fn(|| s.poll_store_event()).collect()
}

/// A 5.0 client with a persistent session (expiry 1 h) and the store on.
fn persistent(config: Arc<SessionConfig>) -> roost_session::Session {
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(3600);
    session_with(c, config)
}

fn store_config() -> Arc<SessionConfig> {
    config_with(|c| c.store_events = true)
}

#[test]
fn qos1_sent_then_puback_completes() {
    let mut s = persistent(store_config());
    assert_eq!(
        s.handle_delivery(t0(), stored("a", QoS::AtLeastOnce, 7)),
        DeliveryOutcome::Sent
    );
    let id = only_publish(&mut s).packet_id.unwrap();
    assert_eq!(
        events(&mut s),
        vec![StoreEvent::Sent {
            seq: 7,
            packet_id: id
        }]
    );
    s.handle_packet(t0(), Packet::PubAck(ack(id.get())))
        .unwrap();
    assert_eq!(events(&mut s), vec![StoreEvent::Completed { seq: 7 }]);
}

#[test]
fn qos2_pubrec_then_pubcomp() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::ExactlyOnce, 3));
    let id = only_publish(&mut s).packet_id.unwrap();
    assert_eq!(
        events(&mut s),
        vec![StoreEvent::Sent {
            seq: 3,
            packet_id: id
        }]
    );
    s.handle_packet(t0(), Packet::PubRec(ack(id.get())))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![StoreEvent::PubRecReceived {
            seq: 3,
            packet_id: id
        }]
    );
    s.handle_packet(t0(), Packet::PubComp(ack(id.get())))
        .unwrap();
    assert_eq!(events(&mut s), vec![StoreEvent::Completed { seq: 3 }]);
}

#[test]
fn qos2_error_pubrec_completes() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::ExactlyOnce, 4));
    let id = only_publish(&mut s).packet_id.unwrap();
    events(&mut s);
    let rec = ack_with(id.get(), ReasonCode::UNSPECIFIED_ERROR);
    s.handle_packet(t0(), Packet::PubRec(rec)).unwrap();
    assert_eq!(events(&mut s), vec![StoreEvent::Completed { seq: 4 }]);
}

#[test]
fn qos0_completes_when_written() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::AtMostOnce, 9));
    assert_eq!(events(&mut s), vec![StoreEvent::Completed { seq: 9 }]);
}

#[test]
fn queued_delivery_is_sent_when_the_window_opens() {
    let mut s = persistent(store_config());
    // Fill the window (128 by default), then one more waits in the queue.
    for seq in 0..128 {
        s.handle_delivery(t0(), stored("a", QoS::AtLeastOnce, seq));
    }
    let sent = drain(&mut s);
    events(&mut s);
    assert_eq!(
        s.handle_delivery(t0(), stored("a", QoS::AtLeastOnce, 128)),
        DeliveryOutcome::Queued
    );
    assert!(events(&mut s).is_empty(), "queueing writes nothing new");
    let first = publishes(&sent)[0].packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubAck(ack(first.get())))
        .unwrap();
    let got = events(&mut s);
    assert_eq!(got[0], StoreEvent::Completed { seq: 0 });
    assert!(
        matches!(got[1], StoreEvent::Sent { seq: 128, .. }),
        "{got:?}"
    );
}

#[test]
fn expired_delivery_is_dropped() {
    let mut s = persistent(store_config());
    let mut p = publish("a", QoS::AtLeastOnce, None);
    p.properties.message_expiry_interval = Some(1);
    let message = Arc::new(roost_session::Message::from_publish(p, None, t0()));
    let mut d = Delivery::new(message, QoS::AtLeastOnce, false);
    d.store_seq = Some(5);
    s.handle_delivery(at(5.0), d);
    assert_eq!(events(&mut s), vec![StoreEvent::Dropped { seq: 5 }]);
}

#[test]
fn offline_queue_full_drops_are_reported_per_policy() {
    let newest = SessionConfig {
        max_queued_messages: 1,
        ..SessionConfig::default()
    };
    let mut state = SessionState::new("c".into());
    state.enqueue_offline(stored("a", QoS::AtLeastOnce, 1), &newest, t0());
    state.enqueue_offline(stored("a", QoS::AtLeastOnce, 2), &newest, t0());
    assert_eq!(
        state_events(&mut state),
        vec![StoreEvent::Dropped { seq: 2 }]
    );

    let oldest = SessionConfig {
        queue_full_policy: QueueFullPolicy::DropOldest,
        ..newest
    };
    state.enqueue_offline(stored("a", QoS::AtLeastOnce, 3), &oldest, t0());
    assert_eq!(
        state_events(&mut state),
        vec![StoreEvent::Dropped { seq: 1 }]
    );
}

#[test]
fn qos0_offline_is_dropped() {
    let mut state = SessionState::new("c".into());
    state.enqueue_offline(
        stored("a", QoS::AtMostOnce, 6),
        &SessionConfig::default(),
        t0(),
    );
    assert_eq!(
        state_events(&mut state),
        vec![StoreEvent::Dropped { seq: 6 }]
    );
}

#[test]
fn inbound_qos2_pubrec_sent_then_pubrel_received() {
    let mut s = persistent(store_config());
    let inbound = s
        .handle_packet(
            t0(),
            Packet::Publish(publish("a", QoS::ExactlyOnce, Some(11))),
        )
        .unwrap();
    assert!(matches!(inbound, Inbound::Publish { .. }));
    assert!(
        events(&mut s).is_empty(),
        "nothing before the broker answers"
    );
    s.complete_publish(
        pid(11),
        QoS::ExactlyOnce,
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
    );
    assert_eq!(
        events(&mut s),
        vec![StoreEvent::InboundPubRec {
            packet_id: pid(11),
            reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS
        }]
    );
    s.handle_packet(t0(), Packet::PubRel(ack(11))).unwrap();
    assert_eq!(
        events(&mut s),
        vec![StoreEvent::InboundReleased { packet_id: pid(11) }]
    );
}

#[test]
fn refused_inbound_qos2_records_nothing() {
    let mut s = persistent(store_config());
    s.handle_packet(
        t0(),
        Packet::Publish(publish("a", QoS::ExactlyOnce, Some(12))),
    )
    .unwrap();
    s.complete_publish(pid(12), QoS::ExactlyOnce, ReasonCode::NOT_AUTHORIZED);
    assert!(events(&mut s).is_empty());
}

#[test]
fn nothing_is_recorded_without_a_store_or_for_a_clean_session() {
    // Store on, but the session ends with its connection (expiry 0).
    let mut s = session_with(v5("c"), store_config());
    s.handle_packet(
        t0(),
        Packet::Publish(publish("a", QoS::ExactlyOnce, Some(1))),
    )
    .unwrap();
    s.complete_publish(pid(1), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    s.handle_packet(t0(), Packet::PubRel(ack(1))).unwrap();
    assert!(events(&mut s).is_empty());

    // Persistent, but no store: deliveries carry no seq, inbound is not recorded.
    let mut s = persistent(config());
    s.handle_delivery(t0(), delivery("a", QoS::AtLeastOnce));
    s.handle_packet(
        t0(),
        Packet::Publish(publish("a", QoS::ExactlyOnce, Some(2))),
    )
    .unwrap();
    s.complete_publish(pid(2), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    assert!(events(&mut s).is_empty());
}

#[test]
fn resumed_inflight_keeps_its_seq() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::ExactlyOnce, 21));
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubRec(ack(id.get())))
        .unwrap();
    events(&mut s);
    let state = s.into_state();
    let mut c = v5("c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(3600);
    let (mut s, out) = accept_with(c, Some(state), store_config(), t0());
    assert!(matches!(out.get(1), Some(Packet::PubRel(_))), "{out:?}");
    assert!(
        events(&mut s).is_empty(),
        "a resend is not a new store event"
    );
    s.handle_packet(t0(), Packet::PubComp(ack(id.get())))
        .unwrap();
    assert_eq!(events(&mut s), vec![StoreEvent::Completed { seq: 21 }]);
}
