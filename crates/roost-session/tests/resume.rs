//! Resuming a stored session: re-sending unacknowledged PUBLISH and PUBREL,
//! then queued messages; and the offline queue with its limits and policies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use roost_codec::{Connect, Packet, PubResponse, QoS};
use roost_session::{
    DeliveryOutcome, DropReason, EnqueueOutcome, QueueFullPolicy, Session, SessionConfig,
    SessionState,
};

fn persistent(mut c: Connect) -> Connect {
    c.clean_start = false;
    if c.protocol.is_v5() {
        c.properties.session_expiry_interval = Some(3600);
    }
    c
}

/// A session that sent a (QoS 1), b (QoS 2, PUBREC received → PUBREL sent),
/// c (QoS 2), d (QoS 1, acknowledged), then lost its connection.
fn interrupted(c: Connect) -> (SessionState, Vec<u16>) {
    let mut s = session(c);
    for (t, q) in [
        ("a", QoS::AtLeastOnce),
        ("b", QoS::ExactlyOnce),
        ("c", QoS::ExactlyOnce),
        ("d", QoS::AtLeastOnce),
    ] {
        s.handle_delivery(t0(), delivery(t, q));
    }
    let ids: Vec<u16> = publishes(&drain(&mut s))
        .iter()
        .map(|p| p.packet_id.unwrap().get())
        .collect();
    s.handle_packet(t0(), Packet::PubRec(ack(ids[1]))).unwrap();
    s.handle_packet(t0(), Packet::PubAck(ack(ids[3]))).unwrap();
    drain(&mut s);
    (s.into_state(), ids)
}

fn assert_resent_in_order(out: &[Packet], ids: &[u16]) {
    assert!(matches!(out[0], Packet::ConnAck(_)), "CONNACK first");
    match &out[1] {
        Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_ref(), p.packet_id.map(|i| i.get()), p.dup),
                ("a", Some(ids[0]), true)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        out[2],
        Packet::PubRel(ack(ids[1])),
        "PUBREL, not the PUBLISH again"
    );
    match &out[3] {
        Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_ref(), p.packet_id.map(|i| i.get()), p.dup),
                ("c", Some(ids[2]), true)
            );
            assert_eq!(p.qos, QoS::ExactlyOnce);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.len(), 4, "nothing else re-sent: {out:?}");
}

#[test]
fn v5_mqtt_4_4_0_1_and_v5_mqtt_3_3_1_1_unacknowledged_publish_and_pubrel_resent_in_order() {
    let (state, ids) = interrupted(persistent(v5("c")));
    let (_, out) = accept_with(persistent(v5("c")), Some(state), config(), t0());
    assert_resent_in_order(&out, &ids);
}

#[test]
fn v311_mqtt_4_4_0_1_and_v311_mqtt_3_3_1_1_unacknowledged_publish_and_pubrel_resent_in_order() {
    let (state, ids) = interrupted(persistent(v311("c")));
    let (_, out) = accept_with(persistent(v311("c")), Some(state), config(), t0());
    assert_resent_in_order(&out, &ids);
}

#[test]
fn v5_mqtt_4_3_3_6_publish_never_resent_after_pubrel() {
    let (state, ids) = interrupted(persistent(v5("c")));
    let (s, out) = accept_with(persistent(v5("c")), Some(state), config(), t0());
    let b_resent = publishes(&out)
        .iter()
        .any(|p| p.packet_id.map(|i| i.get()) == Some(ids[1]));
    assert!(!b_resent);
    // And a second interruption does not bring it back either.
    let (_, out) = accept_with(persistent(v5("c")), Some(s.into_state()), config(), t0());
    assert!(out.contains(&Packet::PubRel(ack(ids[1]))));
    assert!(
        !publishes(&out)
            .iter()
            .any(|p| p.packet_id.map(|i| i.get()) == Some(ids[1]))
    );
}

#[test]
fn resumed_flows_complete_normally() {
    let (state, ids) = interrupted(persistent(v5("c")));
    let (mut s, _) = accept_with(persistent(v5("c")), Some(state), config(), t0());
    s.handle_packet(t0(), Packet::PubAck(ack(ids[0]))).unwrap();
    s.handle_packet(t0(), Packet::PubComp(ack(ids[1]))).unwrap();
    s.handle_packet(t0(), Packet::PubRec(ack(ids[2]))).unwrap();
    assert_eq!(drain(&mut s), [Packet::PubRel(ack(ids[2]))]);
    s.handle_packet(t0(), Packet::PubComp(ack(ids[2]))).unwrap();
    assert_eq!(s.state().inflight_len(), 0);
}

#[test]
fn v5_mqtt_3_2_0_1_and_v311_mqtt_3_2_0_1_connack_precedes_resent_and_queued_messages() {
    for c in [persistent(v5("c")), persistent(v311("c"))] {
        let mut s = session(c.clone());
        s.handle_delivery(t0(), delivery("x", QoS::AtLeastOnce));
        let _ = s.close(roost_codec::ReasonCode::SESSION_TAKEN_OVER, None, None);
        s.handle_delivery(t0(), delivery("y", QoS::AtLeastOnce));
        let (_, out) = accept_with(c, Some(s.into_state()), config(), t0());
        assert!(matches!(out[0], Packet::ConnAck(_)));
        assert_eq!(
            publishes(&out)
                .iter()
                .map(|p| (p.topic.to_string(), p.dup))
                .collect::<Vec<_>>(),
            [("x".to_string(), true), ("y".to_string(), false)]
        );
    }
}

#[test]
fn queued_messages_after_resume_respect_the_new_receive_maximum() {
    let mut state = SessionState::new("c".into());
    let cfg = SessionConfig::default();
    for i in 0..5 {
        assert_eq!(
            state.enqueue_offline(delivery(&i.to_string(), QoS::AtLeastOnce), &cfg, t0()),
            EnqueueOutcome::Queued
        );
    }
    let mut c = persistent(v5("c"));
    c.properties.receive_maximum = Some(2);
    let (mut s, out) = accept_with(c, Some(state), config(), t0());
    let sent = publishes(&out);
    assert_eq!(
        sent.iter().map(|p| p.topic.to_string()).collect::<Vec<_>>(),
        ["0", "1"]
    );
    let first = sent[0].packet_id.unwrap();
    assert_eq!(s.stats().queued, 3);
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(first)))
        .unwrap();
    assert_eq!(
        publishes(&drain(&mut s))
            .iter()
            .map(|p| p.topic.to_string())
            .collect::<Vec<_>>(),
        ["2"]
    );
}

#[test]
fn all_inflight_resent_even_beyond_a_smaller_receive_maximum() {
    let mut s = session(persistent(v5("c")));
    for t in ["a", "b", "c"] {
        s.handle_delivery(t0(), delivery(t, QoS::AtLeastOnce));
    }
    s.handle_delivery(t0(), delivery("later", QoS::AtLeastOnce));
    drain(&mut s);
    let mut c = persistent(v5("c"));
    c.properties.receive_maximum = Some(1);
    let (mut s, out) = accept_with(c, Some(s.into_state()), config(), t0());
    let sent = publishes(&out);
    assert_eq!(
        sent.iter().map(|p| p.topic.to_string()).collect::<Vec<_>>(),
        ["a", "b", "c", "later"]
    );
    let ids: Vec<_> = sent.iter().map(|p| p.packet_id.unwrap()).collect();
    s.handle_delivery(t0(), delivery("new", QoS::AtLeastOnce));
    for id in &ids[..3] {
        s.handle_packet(t0(), Packet::PubAck(PubResponse::success(*id)))
            .unwrap();
        assert!(drain(&mut s).is_empty(), "window still full");
    }
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(ids[3])))
        .unwrap();
    assert_eq!(publishes(&drain(&mut s))[0].topic, "new");
}

#[test]
fn resend_too_large_for_new_maximum_packet_size_is_dropped() {
    let mut s = session(persistent(v5("c")));
    s.handle_delivery(t0(), delivery("a", QoS::AtLeastOnce));
    drain(&mut s);
    let mut c = persistent(v5("c"));
    c.properties.maximum_packet_size = Some(8);
    let (s, out) = accept_with(c, Some(s.into_state()), config(), t0());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(s.state().inflight_len(), 0);
    assert_eq!(s.stats().dropped.too_large, 1);
}

// ---------------------------------------------------------------- offline queue

fn cfg(f: impl FnOnce(&mut SessionConfig)) -> SessionConfig {
    let mut c = SessionConfig::default();
    f(&mut c);
    c
}

#[test]
fn v311_mqtt_3_1_2_5_qos_1_and_2_stored_while_disconnected() {
    let mut s = session(persistent(v311("c")));
    s.complete_subscribe(
        &subscribe(1, &[("a/#", QoS::ExactlyOnce)]),
        &[roost_codec::ReasonCode::GRANTED_QOS_2],
    );
    let mut state = s.into_state();
    let config = SessionConfig::default();
    assert_eq!(
        state.enqueue_offline(delivery("a/1", QoS::AtLeastOnce), &config, t0()),
        EnqueueOutcome::Queued
    );
    assert_eq!(
        state.enqueue_offline(delivery("a/2", QoS::ExactlyOnce), &config, t0()),
        EnqueueOutcome::Queued
    );
    assert_eq!(
        state.enqueue_offline(delivery("a/3", QoS::AtMostOnce), &config, t0()),
        EnqueueOutcome::DroppedQos0
    );
    let (_, out) = accept_with(
        persistent(v311("c")),
        Some(state),
        config_with(|_| {}),
        t0(),
    );
    assert_eq!(
        publishes(&out)
            .iter()
            .map(|p| p.topic.to_string())
            .collect::<Vec<_>>(),
        ["a/1", "a/2"]
    );
}

#[test]
fn qos_0_kept_offline_when_configured() {
    let config = cfg(|c| c.queue_qos0_offline = true);
    let mut state = SessionState::new("c".into());
    assert_eq!(
        state.enqueue_offline(delivery("q0", QoS::AtMostOnce), &config, t0()),
        EnqueueOutcome::Queued
    );
    let (_, out) = accept_with(persistent(v5("c")), Some(state), config_with(|_| {}), t0());
    let sent = publishes(&out);
    assert_eq!((sent[0].topic.as_ref(), sent[0].packet_id), ("q0", None));
}

#[test]
fn offline_queue_drop_newest() {
    let config = cfg(|c| {
        c.max_queued_messages = 2;
        c.queue_full_policy = QueueFullPolicy::DropNewest;
    });
    let mut state = SessionState::new("c".into());
    for t in ["1", "2"] {
        assert_eq!(
            state.enqueue_offline(delivery(t, QoS::AtLeastOnce), &config, t0()),
            EnqueueOutcome::Queued
        );
    }
    assert_eq!(
        state.enqueue_offline(delivery("3", QoS::AtLeastOnce), &config, t0()),
        EnqueueOutcome::DroppedNewest
    );
    assert_eq!(state.queued_len(), 2);
    assert_eq!(
        state
            .queued()
            .map(|d| d.message.topic.to_string())
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(state.dropped_messages(), 1);
    assert_eq!(state.drop_counters().queue_full, 1);
}

#[test]
fn offline_queue_drop_oldest() {
    let config = cfg(|c| {
        c.max_queued_messages = 2;
        c.queue_full_policy = QueueFullPolicy::DropOldest;
    });
    let mut state = SessionState::new("c".into());
    for t in ["1", "2"] {
        state.enqueue_offline(delivery(t, QoS::AtLeastOnce), &config, t0());
    }
    assert_eq!(
        state.enqueue_offline(delivery("3", QoS::AtLeastOnce), &config, t0()),
        EnqueueOutcome::DroppedOldest
    );
    assert_eq!(
        state
            .queued()
            .map(|d| d.message.topic.to_string())
            .collect::<Vec<_>>(),
        ["2", "3"]
    );
    assert_eq!(state.dropped_messages(), 1);
}

#[test]
fn offline_queue_of_size_zero_keeps_nothing() {
    for policy in [QueueFullPolicy::DropOldest, QueueFullPolicy::DropNewest] {
        let config = cfg(|c| {
            c.max_queued_messages = 0;
            c.queue_full_policy = policy;
        });
        let mut state = SessionState::new("c".into());
        assert_eq!(
            state.enqueue_offline(delivery("1", QoS::AtLeastOnce), &config, t0()),
            EnqueueOutcome::DroppedNewest
        );
        assert_eq!(state.queued_len(), 0);
    }
}

#[test]
fn v5_mqtt_3_3_2_5_expired_message_not_queued() {
    let mut p = publish("a", QoS::AtLeastOnce, None);
    p.properties.message_expiry_interval = Some(1);
    let m = std::sync::Arc::new(roost_session::Message::from_publish(p, None, t0()));
    let mut state = SessionState::new("c".into());
    let d = roost_session::Delivery::new(m, QoS::AtLeastOnce, false);
    assert_eq!(
        state.enqueue_offline(d, &SessionConfig::default(), at(2.0)),
        EnqueueOutcome::Expired
    );
    assert_eq!(state.drop_counters().expired, 1);
}

#[test]
fn online_queue_full_applies_the_policy() {
    let mut c = v5("c");
    c.properties.receive_maximum = Some(1);
    let mut s = session_with(c.clone(), config_with(|c| c.max_queued_messages = 1));
    assert_eq!(
        s.handle_delivery(t0(), delivery("sent", QoS::AtLeastOnce)),
        DeliveryOutcome::Sent
    );
    assert_eq!(
        s.handle_delivery(t0(), delivery("q", QoS::AtLeastOnce)),
        DeliveryOutcome::Queued
    );
    assert_eq!(
        s.handle_delivery(t0(), delivery("x", QoS::AtLeastOnce)),
        DeliveryOutcome::Dropped(DropReason::QueueFull)
    );
    let mut s = session_with(
        c,
        config_with(|c| {
            c.max_queued_messages = 1;
            c.queue_full_policy = QueueFullPolicy::DropOldest;
        }),
    );
    s.handle_delivery(t0(), delivery("sent", QoS::AtLeastOnce));
    s.handle_delivery(t0(), delivery("q", QoS::AtLeastOnce));
    assert_eq!(
        s.handle_delivery(t0(), delivery("x", QoS::AtLeastOnce)),
        DeliveryOutcome::QueuedDroppedOldest
    );
    assert_eq!(
        s.state()
            .queued()
            .map(|d| d.message.topic.to_string())
            .collect::<Vec<_>>(),
        ["x"]
    );
    assert_eq!(s.stats().dropped.queue_full, 1);
}

#[test]
fn take_undelivered_returns_unacknowledged_and_queued_qos_1_2() {
    let mut c = v5("c");
    c.properties.receive_maximum = Some(2);
    let mut s = session_with(c, config_with(|c| c.queue_qos0_offline = true));
    s.handle_delivery(t0(), delivery("a", QoS::AtLeastOnce));
    s.handle_delivery(t0(), delivery("b", QoS::ExactlyOnce));
    s.handle_delivery(t0(), delivery("c", QoS::AtLeastOnce));
    let ids: Vec<_> = publishes(&drain(&mut s))
        .iter()
        .map(|p| p.packet_id.unwrap().get())
        .collect();
    s.handle_packet(t0(), Packet::PubRec(ack(ids[1]))).unwrap();
    let _ = s.close(roost_codec::ReasonCode::SESSION_TAKEN_OVER, None, None);
    s.handle_delivery(t0(), delivery("q0", QoS::AtMostOnce));
    let mut state: SessionState = s.into_state();
    let taken: Vec<String> = state
        .take_undelivered()
        .iter()
        .map(|d| d.message.topic.to_string())
        .collect();
    assert_eq!(taken, ["a", "c"], "b is past PUBREC, q0 is QoS 0");
    assert_eq!(state.inflight_len(), 0);
    assert_eq!(state.queued_len(), 0);
}

#[test]
fn session_state_survives_detach() {
    let mut s: Session = session(persistent(v5("c")));
    s.complete_subscribe(
        &subscribe(1, &[("x", QoS::AtLeastOnce)]),
        &[roost_codec::ReasonCode::GRANTED_QOS_1],
    );
    s.handle_delivery(t0(), delivery("x", QoS::AtLeastOnce));
    let state = s.into_state();
    assert_eq!(state.client_id, "c");
    assert_eq!(state.inflight_len(), 1);
    assert!(state.subscriptions.contains_key("x"));
    assert_eq!(state.session_expiry_interval(), 3600);
}

#[test]
fn v5_mqtt_4_1_0_1_and_v311_mqtt_4_1_0_1_and_v311_mqtt_4_1_0_2_state_kept_while_connected() {
    // Session Expiry 0 / Clean Session 1: the session still lasts as long as the connection.
    for c in [v5("c"), v311("c")] {
        let mut s = session_with(c, config_with(|c| c.max_inflight = 1));
        s.complete_subscribe(
            &subscribe(1, &[("a", QoS::AtLeastOnce)]),
            &[roost_codec::ReasonCode::GRANTED_QOS_1],
        );
        s.handle_delivery(t0(), delivery("a", QoS::AtLeastOnce));
        s.handle_delivery(t0(), delivery("a", QoS::AtLeastOnce));
        for secs in [1.0, 1000.0, 100_000.0] {
            s.handle_packet(at(secs), Packet::PingReq).unwrap();
        }
        assert_eq!(s.session_expiry_interval(), 0);
        assert!(s.subscriptions().contains_key("a"));
        assert_eq!((s.state().inflight_len(), s.state().queued_len()), (1, 1));
    }
}
