//! Session events: what a session reports to the broker's store for each
//! step of a stored delivery and of an inbound QoS 2 flow, what it reports to
//! the hooks (with the message) when `message_events` is on, and that nothing
//! is reported when neither asked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use roost_codec::{Packet, PacketId, QoS, ReasonCode};
use roost_session::{
    Delivery, DeliveryOutcome, DropReason, Inbound, QueueFullPolicy, SessionConfig, SessionEvent,
    SessionState,
};

/// A delivery stored under `seq`.
fn stored(topic: &str, qos: QoS, seq: u64) -> Delivery {
    let mut d = delivery(topic, qos);
    d.store_seq = Some(seq);
    d
}

fn events(s: &mut roost_session::Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn state_events(s: &mut SessionState) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
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

/// The store's view of a sent delivery (no message: no hooks).
fn sent(seq: u64, packet_id: Option<PacketId>, qos: QoS) -> SessionEvent {
    SessionEvent::Sent {
        seq: Some(seq),
        packet_id,
        qos,
        message: None,
    }
}

/// The store's view of a PUBACK / PUBREC.
fn acked(seq: u64, packet_id: PacketId, qos: QoS, reason: ReasonCode) -> SessionEvent {
    SessionEvent::Acknowledged {
        seq: Some(seq),
        packet_id,
        qos,
        reason,
        message: None,
    }
}

/// The store's view of a drop.
fn dropped(seq: u64, qos: QoS, reason: DropReason) -> SessionEvent {
    SessionEvent::Dropped {
        seq: Some(seq),
        qos,
        reason,
        message: None,
    }
}

#[test]
fn qos1_sent_then_puback_completes() {
    let mut s = persistent(store_config());
    assert_eq!(
        s.handle_delivery(t0(), stored("a", QoS::AtLeastOnce, 7)),
        DeliveryOutcome::Sent
    );
    let id = only_publish(&mut s).packet_id.unwrap();
    assert_eq!(events(&mut s), vec![sent(7, Some(id), QoS::AtLeastOnce)]);
    s.handle_packet(t0(), Packet::PubAck(ack(id.get())))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![acked(7, id, QoS::AtLeastOnce, ReasonCode::SUCCESS)]
    );
}

#[test]
fn qos2_pubrec_then_pubcomp() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::ExactlyOnce, 3));
    let id = only_publish(&mut s).packet_id.unwrap();
    assert_eq!(events(&mut s), vec![sent(3, Some(id), QoS::ExactlyOnce)]);
    s.handle_packet(t0(), Packet::PubRec(ack(id.get())))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![acked(3, id, QoS::ExactlyOnce, ReasonCode::SUCCESS)]
    );
    s.handle_packet(t0(), Packet::PubComp(ack(id.get())))
        .unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Completed { seq: 3 }]);
}

#[test]
fn qos2_error_pubrec_completes() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::ExactlyOnce, 4));
    let id = only_publish(&mut s).packet_id.unwrap();
    events(&mut s);
    let rec = ack_with(id.get(), ReasonCode::UNSPECIFIED_ERROR);
    s.handle_packet(t0(), Packet::PubRec(rec)).unwrap();
    assert_eq!(
        events(&mut s),
        vec![acked(
            4,
            id,
            QoS::ExactlyOnce,
            ReasonCode::UNSPECIFIED_ERROR
        )]
    );
}

#[test]
fn qos0_completes_when_written() {
    let mut s = persistent(store_config());
    s.handle_delivery(t0(), stored("a", QoS::AtMostOnce, 9));
    assert_eq!(events(&mut s), vec![sent(9, None, QoS::AtMostOnce)]);
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
    assert_eq!(
        got[0],
        acked(0, first, QoS::AtLeastOnce, ReasonCode::SUCCESS)
    );
    assert!(
        matches!(got[1], SessionEvent::Sent { seq: Some(128), .. }),
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
    assert_eq!(
        events(&mut s),
        vec![dropped(5, QoS::AtLeastOnce, DropReason::Expired)]
    );
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
        vec![dropped(2, QoS::AtLeastOnce, DropReason::QueueFull)]
    );

    let oldest = SessionConfig {
        queue_full_policy: QueueFullPolicy::DropOldest,
        ..newest
    };
    state.enqueue_offline(stored("a", QoS::AtLeastOnce, 3), &oldest, t0());
    assert_eq!(
        state_events(&mut state),
        vec![dropped(1, QoS::AtLeastOnce, DropReason::QueueFull)]
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
        vec![dropped(6, QoS::AtMostOnce, DropReason::Qos0WhileOffline)]
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
        vec![SessionEvent::InboundPubRec {
            packet_id: pid(11),
            reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS
        }]
    );
    s.handle_packet(t0(), Packet::PubRel(ack(11))).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::InboundReleased { packet_id: pid(11) }]
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
    assert_eq!(events(&mut s), vec![SessionEvent::Completed { seq: 21 }]);
}

// ---- What the hooks hear (`message_events`), with the message itself ----

fn hooks_config() -> Arc<SessionConfig> {
    config_with(|c| c.message_events = true)
}

/// A delivery of a fresh message, and that message.
fn watched(topic: &str, qos: QoS) -> (Delivery, Arc<roost_session::Message>) {
    let m = message(topic, qos);
    (Delivery::new(Arc::clone(&m), qos, false), m)
}

/// The message an event carries.
fn message_of(event: &SessionEvent) -> Option<&Arc<roost_session::Message>> {
    match event {
        SessionEvent::Sent { message, .. }
        | SessionEvent::Acknowledged { message, .. }
        | SessionEvent::Dropped { message, .. } => message.as_ref(),
        _ => None,
    }
}

#[test]
fn hooks_hear_a_qos0_delivery_when_its_publish_is_queued_for_the_transport() {
    let mut s = session_with(v5("c"), hooks_config());
    let (d, m) = watched("a", QoS::AtMostOnce);
    assert_eq!(s.handle_delivery(t0(), d), DeliveryOutcome::Sent);
    let got = events(&mut s);
    assert_eq!(
        got,
        vec![SessionEvent::Sent {
            seq: None,
            packet_id: None,
            qos: QoS::AtMostOnce,
            message: Some(m),
        }]
    );
}

#[test]
fn hooks_hear_a_qos1_delivery_at_its_puback_not_at_its_send() {
    let mut s = session_with(v5("c"), hooks_config());
    let (d, m) = watched("a", QoS::AtLeastOnce);
    s.handle_delivery(t0(), d);
    let id = only_publish(&mut s).packet_id.unwrap();
    assert!(events(&mut s).is_empty(), "sent is not delivered yet");
    s.handle_packet(t0(), Packet::PubAck(ack(id.get())))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Acknowledged {
            seq: None,
            packet_id: id,
            qos: QoS::AtLeastOnce,
            reason: ReasonCode::SUCCESS,
            message: Some(m),
        }]
    );
}

#[test]
fn hooks_hear_a_qos2_delivery_at_its_pubrec_and_nothing_at_its_pubcomp() {
    let mut s = session_with(v5("c"), hooks_config());
    let (d, m) = watched("a", QoS::ExactlyOnce);
    s.handle_delivery(t0(), d);
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubRec(ack(id.get())))
        .unwrap();
    let got = events(&mut s);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(matches!(
        got[0],
        SessionEvent::Acknowledged {
            qos: QoS::ExactlyOnce,
            reason: ReasonCode::SUCCESS,
            ..
        }
    ));
    assert!(message_of(&got[0]).is_some_and(|x| Arc::ptr_eq(x, &m)));
    s.handle_packet(t0(), Packet::PubComp(ack(id.get())))
        .unwrap();
    assert!(events(&mut s).is_empty(), "an unstored PUBCOMP is no event");
}

#[test]
fn hooks_hear_a_refused_puback_with_the_clients_reason() {
    let mut s = session_with(v5("c"), hooks_config());
    let (d, m) = watched("a", QoS::AtLeastOnce);
    s.handle_delivery(t0(), d);
    let id = only_publish(&mut s).packet_id.unwrap();
    let refused = ack_with(id.get(), ReasonCode::NOT_AUTHORIZED);
    s.handle_packet(t0(), Packet::PubAck(refused)).unwrap();
    let got = events(&mut s);
    assert!(
        matches!(
            got[..],
            [SessionEvent::Acknowledged {
                reason: ReasonCode::NOT_AUTHORIZED,
                ..
            }]
        ),
        "{got:?}"
    );
    assert!(message_of(&got[0]).is_some_and(|x| Arc::ptr_eq(x, &m)));
}

#[test]
fn hooks_hear_an_expired_delivery_dropped_with_its_message() {
    let mut s = session_with(v5("c"), hooks_config());
    let mut p = publish("a", QoS::AtLeastOnce, None);
    p.properties.message_expiry_interval = Some(1);
    let m = Arc::new(roost_session::Message::from_publish(p, None, t0()));
    let d = Delivery::new(Arc::clone(&m), QoS::AtLeastOnce, false);
    s.handle_delivery(at(5.0), d);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Dropped {
            seq: None,
            qos: QoS::AtLeastOnce,
            reason: DropReason::Expired,
            message: Some(m),
        }]
    );
}

#[test]
fn hooks_hear_which_qos0_delivery_was_too_large_for_the_client() {
    let mut s = session_with(with_maximum_packet_size(v5("c"), 64), hooks_config());
    let (small, small_m) = watched("a", QoS::AtMostOnce);
    let mut big_p = publish("a", QoS::AtMostOnce, None);
    big_p.payload = vec![0u8; 200].into();
    let big_m = Arc::new(roost_session::Message::from_publish(big_p, None, t0()));
    s.handle_delivery(
        t0(),
        Delivery::new(Arc::clone(&big_m), QoS::AtMostOnce, false),
    );
    s.handle_delivery(t0(), small);
    let got = events(&mut s);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(
        got[0],
        SessionEvent::Dropped {
            reason: DropReason::TooLarge,
            ..
        }
    ));
    assert!(message_of(&got[0]).is_some_and(|x| Arc::ptr_eq(x, &big_m)));
    assert!(matches!(got[1], SessionEvent::Sent { .. }));
    assert!(message_of(&got[1]).is_some_and(|x| Arc::ptr_eq(x, &small_m)));
}

#[test]
fn hooks_hear_the_oldest_queued_message_evicted_by_a_full_queue() {
    let config = config_with(|c| {
        c.message_events = true;
        c.max_queued_messages = 1;
        c.queue_full_policy = QueueFullPolicy::DropOldest;
    });
    let mut state = SessionState::new("c".into());
    let (first, first_m) = watched("a", QoS::AtLeastOnce);
    let (second, _) = watched("b", QoS::AtLeastOnce);
    state.enqueue_offline(first, &config, t0());
    assert!(state_events(&mut state).is_empty(), "queued is no event");
    state.enqueue_offline(second, &config, t0());
    let got = state_events(&mut state);
    assert!(
        matches!(
            got[..],
            [SessionEvent::Dropped {
                reason: DropReason::QueueFull,
                seq: None,
                ..
            }]
        ),
        "{got:?}"
    );
    assert!(message_of(&got[0]).is_some_and(|x| Arc::ptr_eq(x, &first_m)));
}

#[test]
fn hooks_hear_a_qos0_message_dropped_while_offline() {
    let mut state = SessionState::new("c".into());
    let (d, m) = watched("a", QoS::AtMostOnce);
    state.enqueue_offline(d, &hooks_config(), t0());
    assert_eq!(
        state_events(&mut state),
        vec![SessionEvent::Dropped {
            seq: None,
            qos: QoS::AtMostOnce,
            reason: DropReason::Qos0WhileOffline,
            message: Some(m),
        }]
    );
}

#[test]
fn hooks_hear_an_inflight_message_too_large_for_the_resuming_client() {
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(3600);
    let mut s = session_with(c, hooks_config());
    let mut p = publish("a", QoS::AtLeastOnce, None);
    p.payload = vec![0u8; 200].into();
    let m = Arc::new(roost_session::Message::from_publish(p, None, t0()));
    s.handle_delivery(t0(), Delivery::new(Arc::clone(&m), QoS::AtLeastOnce, false));
    only_publish(&mut s);
    let state = s.into_state();
    let mut c = with_maximum_packet_size(v5("c"), 64);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(3600);
    let (mut s, _) = accept_with(c, Some(state), hooks_config(), t0());
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Dropped {
            seq: None,
            qos: QoS::AtLeastOnce,
            reason: DropReason::TooLarge,
            message: Some(m),
        }]
    );
}

#[test]
fn a_stored_delivery_with_hooks_carries_both_its_seq_and_its_message() {
    let config = config_with(|c| {
        c.store_events = true;
        c.message_events = true;
    });
    let mut s = persistent(config);
    let (mut d, m) = watched("a", QoS::AtLeastOnce);
    d.store_seq = Some(8);
    s.handle_delivery(t0(), d);
    let id = only_publish(&mut s).packet_id.unwrap();
    assert_eq!(
        events(&mut s),
        vec![sent(8, Some(id), QoS::AtLeastOnce)],
        "the hooks need no message at the send of a QoS 1 delivery"
    );
    s.handle_packet(t0(), Packet::PubAck(ack(id.get())))
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Acknowledged {
            seq: Some(8),
            packet_id: id,
            qos: QoS::AtLeastOnce,
            reason: ReasonCode::SUCCESS,
            message: Some(m),
        }]
    );
}

#[test]
fn nothing_is_recorded_when_neither_store_nor_hooks_asked() {
    let mut s = session_with(with_maximum_packet_size(v5("c"), 64), config());
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        s.handle_delivery(t0(), delivery("a", qos));
    }
    let mut big = publish("a", QoS::AtMostOnce, None);
    big.payload = vec![0u8; 200].into();
    let big = Arc::new(roost_session::Message::from_publish(big, None, t0()));
    s.handle_delivery(t0(), Delivery::new(big, QoS::AtMostOnce, false));
    for p in publishes(&drain(&mut s)) {
        if let Some(id) = p.packet_id {
            let ack = ack(id.get());
            let packet = if p.qos == QoS::AtLeastOnce {
                Packet::PubAck(ack)
            } else {
                Packet::PubRec(ack)
            };
            s.handle_packet(t0(), packet).unwrap();
        }
    }
    assert!(events(&mut s).is_empty());
    let mut state = SessionState::new("c".into());
    state.enqueue_offline(delivery("a", QoS::AtMostOnce), &config(), t0());
    assert!(state_events(&mut state).is_empty());
}
