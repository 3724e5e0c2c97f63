//! Messages to the client: QoS 1/2 sender flows, packet identifiers, the
//! inflight window, ordering, expiry, property forwarding, topic aliases and
//! the client's Maximum Packet Size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use roost_codec::{Connect, Packet, PubResponse, Publish, QoS, ReasonCode};
use roost_session::{Delivery, DeliveryOutcome, DropReason, Message, Session};
use smallvec::smallvec;

fn only_publish(s: &mut Session) -> Publish {
    let out = drain(s);
    assert_eq!(out.len(), 1, "{out:?}");
    match out.into_iter().next() {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

fn with_receive_maximum(mut c: Connect, n: u16) -> Connect {
    c.properties.receive_maximum = Some(n);
    c
}

fn with_alias_max(mut c: Connect, n: u16) -> Connect {
    c.properties.topic_alias_maximum = Some(n);
    c
}

fn deliver(s: &mut Session, topic: &str, qos: QoS) -> DeliveryOutcome {
    s.handle_delivery(t0(), delivery(topic, qos))
}

fn topics(packets: &[Packet]) -> Vec<String> {
    publishes(packets)
        .iter()
        .map(|p| p.topic.to_string())
        .collect()
}

// ---------------------------------------------------------------- QoS 0

#[test]
fn v5_mqtt_4_3_1_1_v5_mqtt_3_3_1_2_and_v5_mqtt_2_2_1_2_qos_0_has_dup_0_and_no_packet_identifier() {
    let mut s = session(v5("c"));
    assert_eq!(deliver(&mut s, "a", QoS::AtMostOnce), DeliveryOutcome::Sent);
    let p = only_publish(&mut s);
    assert_eq!((p.qos, p.dup, p.packet_id), (QoS::AtMostOnce, false, None));
    assert_eq!(s.state().inflight_len(), 0);
}

#[test]
fn v311_mqtt_4_3_1_1_v311_mqtt_3_3_1_2_and_v311_mqtt_2_3_1_5_qos_0_has_dup_0_and_no_packet_identifier()
 {
    let mut s = session(v311("c"));
    deliver(&mut s, "a", QoS::AtMostOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.qos, p.dup, p.packet_id), (QoS::AtMostOnce, false, None));
}

// ---------------------------------------------------------------- QoS 1

#[test]
fn v5_mqtt_4_3_2_1_v5_mqtt_4_3_2_2_v5_mqtt_4_3_2_3_qos_1_sender_flow() {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::AtLeastOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.qos, p.dup), (QoS::AtLeastOnce, false));
    let id = p.packet_id.unwrap();
    assert_eq!(s.state().inflight_len(), 1, "unacknowledged until PUBACK");
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(id)))
        .unwrap();
    assert_eq!(s.state().inflight_len(), 0);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn v311_mqtt_4_3_2_1_qos_1_sender_flow() {
    let mut s = session(v311("c"));
    deliver(&mut s, "a", QoS::AtLeastOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.qos, p.dup), (QoS::AtLeastOnce, false));
    s.handle_packet(
        t0(),
        Packet::PubAck(PubResponse::success(p.packet_id.unwrap())),
    )
    .unwrap();
    assert_eq!(s.state().inflight_len(), 0);
}

#[test]
fn puback_for_unknown_or_qos_2_identifier_is_ignored() {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::ExactlyOnce);
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubAck(ack(999))).unwrap();
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(id)))
        .unwrap();
    s.handle_packet(t0(), Packet::PubComp(PubResponse::success(id)))
        .unwrap();
    assert_eq!(
        s.state().inflight_len(),
        1,
        "a QoS 2 flow ends only by PUBREC error or PUBCOMP"
    );
    assert!(drain(&mut s).is_empty());
}

// ---------------------------------------------------------------- QoS 2

#[test]
fn v5_mqtt_4_3_3_1_v5_mqtt_4_3_3_2_v5_mqtt_4_3_3_3_v5_mqtt_4_3_3_4_v5_mqtt_4_3_3_5_v5_mqtt_2_2_1_5_qos_2_sender_flow()
 {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::ExactlyOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.qos, p.dup), (QoS::ExactlyOnce, false));
    let id = p.packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
        .unwrap();
    assert_eq!(drain(&mut s), [Packet::PubRel(PubResponse::success(id))]);
    assert_eq!(
        s.state().inflight_len(),
        1,
        "PUBREL unacknowledged until PUBCOMP"
    );
    s.handle_packet(t0(), Packet::PubComp(PubResponse::success(id)))
        .unwrap();
    assert_eq!(s.state().inflight_len(), 0);
}

#[test]
fn v311_mqtt_4_3_3_1_and_v311_mqtt_2_3_1_6_qos_2_sender_flow() {
    let mut s = session(v311("c"));
    deliver(&mut s, "a", QoS::ExactlyOnce);
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
        .unwrap();
    assert_eq!(drain(&mut s), [Packet::PubRel(PubResponse::success(id))]);
    s.handle_packet(t0(), Packet::PubComp(PubResponse::success(id)))
        .unwrap();
    assert_eq!(s.state().inflight_len(), 0);
}

#[test]
fn duplicate_pubrec_gets_pubrel_again() {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::ExactlyOnce);
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
        .unwrap();
    s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        [
            Packet::PubRel(PubResponse::success(id)),
            Packet::PubRel(PubResponse::success(id))
        ]
    );
}

#[test]
fn v5_mqtt_3_6_2_1_pubrec_for_unknown_identifier_gets_pubrel_0x92() {
    let mut s = session(v5("c"));
    s.handle_packet(t0(), Packet::PubRec(ack(42))).unwrap();
    assert_eq!(
        drain(&mut s),
        [Packet::PubRel(ack_with(
            42,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))]
    );
}

#[test]
fn v5_mqtt_4_4_0_2_error_pubrec_ends_the_flow_without_pubrel() {
    let mut s = session_with(with_receive_maximum(v5("c"), 1), config());
    deliver(&mut s, "a", QoS::ExactlyOnce);
    deliver(&mut s, "b", QoS::ExactlyOnce);
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(
        t0(),
        Packet::PubRec(ack_with(id.get(), ReasonCode::QUOTA_EXCEEDED)),
    )
    .unwrap();
    // No PUBREL; the slot is free, so the queued message goes out.
    let out = drain(&mut s);
    assert_eq!(topics(&out), ["b"]);
    assert!(out.iter().all(|p| !matches!(p, Packet::PubRel(_))));
}

#[test]
fn v5_mqtt_4_4_0_2_and_v5_mqtt_4_8_2_6_error_ack_is_never_retransmitted() {
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(60);
    let mut s = session(c.clone());
    deliver(&mut s, "a", QoS::AtLeastOnce);
    deliver(&mut s, "b", QoS::ExactlyOnce);
    let ids: Vec<_> = publishes(&drain(&mut s))
        .iter()
        .map(|p| p.packet_id.unwrap())
        .collect();
    s.handle_packet(
        t0(),
        Packet::PubAck(PubResponse {
            reason_code: ReasonCode::NOT_AUTHORIZED,
            ..PubResponse::success(ids[0])
        }),
    )
    .unwrap();
    s.handle_packet(
        t0(),
        Packet::PubRec(PubResponse {
            reason_code: ReasonCode::UNSPECIFIED_ERROR,
            ..PubResponse::success(ids[1])
        }),
    )
    .unwrap();
    let state = s.into_state();
    assert_eq!(
        state.inflight_len(),
        0,
        "nothing left to re-send or pass to another subscriber"
    );
    c.clean_start = false;
    let (_, out) = accept_with(c, Some(state), config(), t0());
    assert_eq!(out.len(), 1, "only CONNACK: {out:?}");
}

// ---------------------------------------------------------------- packet identifiers

#[test]
fn v5_mqtt_2_2_1_4_and_v311_mqtt_2_3_1_4_packet_identifiers_are_non_zero_and_unused() {
    for c in [v5("c"), v311("c")] {
        let mut s = session_with(c, config_with(|c| c.max_inflight = 100));
        for i in 0..100 {
            deliver(&mut s, &format!("t/{i}"), QoS::AtLeastOnce);
        }
        let ids: HashSet<u16> = publishes(&drain(&mut s))
            .iter()
            .map(|p| p.packet_id.unwrap().get())
            .collect();
        assert_eq!(ids.len(), 100);
        assert!(!ids.contains(&0));
    }
}

#[test]
fn v311_mqtt_2_3_1_4_identifier_in_use_is_skipped_after_wrap_around() {
    let mut s = session_with(v311("c"), config_with(|c| c.max_inflight = 2));
    deliver(&mut s, "stuck", QoS::AtLeastOnce);
    let stuck = only_publish(&mut s).packet_id.unwrap();
    // 70,000 more messages, each acknowledged at once: the counter wraps past 65,535.
    for _ in 0..70_000 {
        deliver(&mut s, "t", QoS::AtLeastOnce);
        let id = only_publish(&mut s).packet_id.unwrap();
        assert_ne!(id, stuck);
        s.handle_packet(t0(), Packet::PubAck(PubResponse::success(id)))
            .unwrap();
    }
}

// ---------------------------------------------------------------- flow control

#[test]
fn v5_mqtt_3_3_4_9_and_v5_mqtt_4_9_0_2_never_more_than_receive_maximum_unacknowledged() {
    let mut s = session(with_receive_maximum(v5("c"), 2));
    assert_eq!(s.send_window(), 2);
    assert_eq!(
        deliver(&mut s, "1", QoS::AtLeastOnce),
        DeliveryOutcome::Sent
    );
    assert_eq!(
        deliver(&mut s, "2", QoS::ExactlyOnce),
        DeliveryOutcome::Sent
    );
    assert_eq!(
        deliver(&mut s, "3", QoS::AtLeastOnce),
        DeliveryOutcome::Queued
    );
    assert_eq!(
        deliver(&mut s, "4", QoS::ExactlyOnce),
        DeliveryOutcome::Queued
    );
    let out = drain(&mut s);
    assert_eq!(topics(&out), ["1", "2"]);
    let ids: Vec<_> = publishes(&out)
        .iter()
        .map(|p| p.packet_id.unwrap())
        .collect();
    assert_eq!(s.stats().queued, 2);

    // PUBREC < 0x80 does not free the slot; PUBCOMP does.
    s.handle_packet(t0(), Packet::PubRec(PubResponse::success(ids[1])))
        .unwrap();
    assert_eq!(topics(&drain(&mut s)), Vec::<String>::new());
    s.handle_packet(t0(), Packet::PubComp(PubResponse::success(ids[1])))
        .unwrap();
    assert_eq!(topics(&drain(&mut s)), ["3"]);
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(ids[0])))
        .unwrap();
    assert_eq!(topics(&drain(&mut s)), ["4"]);
    assert_eq!(s.stats().queued, 0);
}

#[test]
fn window_is_also_bounded_by_max_inflight() {
    let mut s = session_with(
        with_receive_maximum(v5("c"), 100),
        config_with(|c| c.max_inflight = 3),
    );
    assert_eq!(s.send_window(), 3);
    for i in 0..5 {
        deliver(&mut s, &i.to_string(), QoS::AtLeastOnce);
    }
    assert_eq!(topics(&drain(&mut s)), ["0", "1", "2"]);
    let mut s = session_with(v311("c"), config_with(|c| c.max_inflight = 2));
    for i in 0..5 {
        deliver(&mut s, &i.to_string(), QoS::AtLeastOnce);
    }
    assert_eq!(topics(&drain(&mut s)), ["0", "1"]);
}

#[test]
fn v5_mqtt_3_3_4_10_and_v5_mqtt_4_9_0_3_other_packets_are_not_held_back_by_a_full_window() {
    let mut s = session(with_receive_maximum(v5("c"), 1));
    deliver(&mut s, "held", QoS::AtLeastOnce);
    drain(&mut s);
    deliver(&mut s, "queued", QoS::AtLeastOnce);
    s.handle_packet(t0(), Packet::PingReq).unwrap();
    assert_eq!(
        deliver(&mut s, "qos0", QoS::AtMostOnce),
        DeliveryOutcome::Sent
    );
    s.handle_packet(
        t0(),
        Packet::Publish(publish("in", QoS::AtLeastOnce, Some(1))),
    )
    .unwrap();
    s.complete_publish(pid(1), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    let out = drain(&mut s);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], Packet::PingResp);
    assert_eq!(topics(&out), ["qos0"]);
    assert_eq!(out[2], Packet::PubAck(ack(1)));
}

#[test]
fn v5_mqtt_4_6_0_5_and_v5_mqtt_4_6_0_6_messages_are_sent_in_the_order_received() {
    let mut s = session(with_receive_maximum(v5("c"), 2));
    for i in 0..10 {
        deliver(&mut s, &format!("t/{i}"), QoS::AtLeastOnce);
    }
    let mut sent = Vec::new();
    loop {
        let out = drain(&mut s);
        let ps = publishes(&out);
        if ps.is_empty() {
            break;
        }
        for p in ps {
            sent.push(p.topic.to_string());
            s.handle_packet(
                t0(),
                Packet::PubAck(PubResponse::success(p.packet_id.unwrap())),
            )
            .unwrap();
        }
    }
    let want: Vec<String> = (0..10).map(|i| format!("t/{i}")).collect();
    assert_eq!(sent, want);
}

#[test]
fn v311_mqtt_4_6_0_5_and_v311_mqtt_4_6_0_6_ordered_topic_delivery() {
    let mut s = session_with(v311("c"), config_with(|c| c.max_inflight = 1));
    for i in 0..5 {
        deliver(&mut s, "same/topic", QoS::ExactlyOnce);
        let _ = i;
    }
    let mut ids = Vec::new();
    for _ in 0..5 {
        let p = only_publish(&mut s);
        let id = p.packet_id.unwrap();
        ids.push(id);
        s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
            .unwrap();
        assert_eq!(drain(&mut s), [Packet::PubRel(PubResponse::success(id))]);
        s.handle_packet(t0(), Packet::PubComp(PubResponse::success(id)))
            .unwrap();
    }
    assert!(ids.windows(2).all(|w| w[0].get() < w[1].get()));
}

// ---------------------------------------------------------------- expiry

fn expiring(topic: &str, qos: QoS, secs: u32, received: f64) -> Delivery {
    let mut p = publish(topic, qos, None);
    p.properties.message_expiry_interval = Some(secs);
    Delivery::new(
        Arc::new(Message::from_publish(p, None, at(received))),
        qos,
        false,
    )
}

#[test]
fn v5_mqtt_3_3_2_5_expired_message_is_not_delivered() {
    let mut s = session(v5("c"));
    let out = s.handle_delivery(at(20.0), expiring("a", QoS::AtLeastOnce, 10, 0.0));
    assert_eq!(out, DeliveryOutcome::Dropped(DropReason::Expired));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().dropped.expired, 1);
}

#[test]
fn v5_mqtt_3_3_2_5_message_expiring_in_the_queue_is_dropped() {
    let mut s = session(with_receive_maximum(v5("c"), 1));
    s.handle_delivery(at(0.0), delivery("first", QoS::AtLeastOnce));
    s.handle_delivery(at(0.0), expiring("short", QoS::AtLeastOnce, 5, 0.0));
    s.handle_delivery(at(0.0), delivery("last", QoS::AtLeastOnce));
    let id = only_publish(&mut s).packet_id.unwrap();
    s.handle_packet(at(6.0), Packet::PubAck(PubResponse::success(id)))
        .unwrap();
    assert_eq!(topics(&drain(&mut s)), ["last"]);
    assert_eq!(s.stats().dropped.expired, 1);
}

#[test]
fn v5_mqtt_3_3_2_6_message_expiry_interval_is_the_time_left() {
    let mut s = session(v5("c"));
    s.handle_delivery(at(20.0), expiring("a", QoS::AtMostOnce, 60, 0.0));
    assert_eq!(
        only_publish(&mut s).properties.message_expiry_interval,
        Some(40)
    );
    // A fraction of a second left is rounded up, never sent as 0.
    s.handle_delivery(at(59.5), expiring("a", QoS::AtMostOnce, 60, 0.0));
    assert_eq!(
        only_publish(&mut s).properties.message_expiry_interval,
        Some(1)
    );
    // No expiry in, none out.
    deliver(&mut s, "a", QoS::AtMostOnce);
    assert_eq!(
        only_publish(&mut s).properties.message_expiry_interval,
        None
    );
}

#[test]
fn v5_mqtt_4_3_3_7_no_expiry_once_a_qos_2_publish_was_sent() {
    let mut c = v5("c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(600);
    let mut s = session(c.clone());
    s.handle_delivery(at(0.0), expiring("a", QoS::ExactlyOnce, 10, 0.0));
    let id = only_publish(&mut s).packet_id.unwrap();
    let state = s.into_state();
    // Reconnect long after the message would have expired: it is still re-sent.
    let (_, out) = accept_with(c, Some(state), config(), at(100.0));
    let resent = publishes(&out);
    assert_eq!(resent.len(), 1);
    assert_eq!((resent[0].packet_id, resent[0].dup), (Some(id), true));
    assert_eq!(resent[0].properties.message_expiry_interval, Some(0));
}

// ---------------------------------------------------------------- forwarding

#[test]
fn v5_mqtt_3_3_2_4_v5_mqtt_3_3_2_15_v5_mqtt_3_3_2_16_v5_mqtt_3_3_2_17_v5_mqtt_3_3_2_18_v5_mqtt_3_3_2_20_properties_forwarded_unaltered()
 {
    let mut p = publish("a", QoS::AtLeastOnce, Some(3));
    p.properties.payload_format_indicator = Some(true);
    p.properties.response_topic = Some("reply/here".into());
    p.properties.correlation_data = Some(Bytes::from_static(b"\x00\x01corr"));
    p.properties.content_type = Some("application/json".into());
    p.properties.user_properties = vec![
        ("z".into(), "1".into()),
        ("a".into(), "2".into()),
        ("z".into(), "3".into()),
    ];
    let want = p.properties.clone();
    let m = Arc::new(Message::from_publish(p, Some("pub".into()), t0()));
    let mut s = session(v5("c"));
    s.handle_delivery(t0(), Delivery::new(m, QoS::AtLeastOnce, false));
    let out = only_publish(&mut s);
    assert_eq!(
        out.properties.payload_format_indicator,
        want.payload_format_indicator
    );
    assert_eq!(out.properties.response_topic, want.response_topic);
    assert_eq!(out.properties.correlation_data, want.correlation_data);
    assert_eq!(out.properties.content_type, want.content_type);
    assert_eq!(out.properties.user_properties, want.user_properties);
    assert_eq!(out.payload, Bytes::from_static(b"payload"));
}

#[test]
fn v5_mqtt_3_3_4_3_and_v5_mqtt_3_3_4_4_subscription_identifiers_are_sent() {
    let mut s = session(v5("c"));
    let mut d = delivery("a", QoS::AtMostOnce);
    d.subscription_ids = smallvec![7, 42];
    s.handle_delivery(t0(), d);
    assert_eq!(
        only_publish(&mut s)
            .properties
            .subscription_identifiers
            .as_slice(),
        &[7, 42]
    );
}

#[test]
fn v5_mqtt_3_3_1_3_dup_is_not_propagated_from_the_incoming_publish() {
    let mut p = publish("a", QoS::AtLeastOnce, Some(1));
    p.dup = true;
    let m = Arc::new(Message::from_publish(p, None, t0()));
    let mut s = session(v5("c"));
    s.handle_delivery(t0(), Delivery::new(m, QoS::AtLeastOnce, false));
    assert!(!only_publish(&mut s).dup);
}

#[test]
fn v311_mqtt_3_3_1_3_dup_is_set_only_by_retransmission() {
    let mut p = publish("a", QoS::AtLeastOnce, Some(1));
    p.dup = true;
    let m = Arc::new(Message::from_publish(p, None, t0()));
    let mut s = session(v311("c"));
    s.handle_delivery(t0(), Delivery::new(m, QoS::AtLeastOnce, false));
    assert!(!only_publish(&mut s).dup);
}

#[test]
fn retain_flag_is_what_the_router_decided() {
    let mut s = session(v5("c"));
    let m = message("a", QoS::AtMostOnce);
    s.handle_delivery(t0(), Delivery::new(m.clone(), QoS::AtMostOnce, true));
    assert!(only_publish(&mut s).retain);
    s.handle_delivery(t0(), Delivery::new(m, QoS::AtMostOnce, false));
    assert!(!only_publish(&mut s).retain);
}

#[test]
fn v311_publish_carries_no_properties() {
    let mut p = publish("a", QoS::AtMostOnce, None);
    p.properties.user_properties.push(("k".into(), "v".into()));
    p.properties.message_expiry_interval = Some(100);
    let m = Arc::new(Message::from_publish(p, None, t0()));
    let mut s = session(with_alias_max(v311("c"), 10));
    let mut d = Delivery::new(m, QoS::AtMostOnce, false);
    d.subscription_ids = smallvec![1];
    s.handle_delivery(t0(), d);
    let out = only_publish(&mut s);
    assert_eq!(out.properties, Default::default());
    assert_eq!(out.topic, "a");
}

#[test]
fn payload_is_shared_not_copied() {
    let m = message("a", QoS::AtMostOnce);
    let mut s = session(v5("c"));
    s.handle_delivery(t0(), Delivery::new(m.clone(), QoS::AtMostOnce, false));
    assert_eq!(only_publish(&mut s).payload.as_ptr(), m.payload.as_ptr());
}

// ---------------------------------------------------------------- topic aliases

#[test]
fn v5_mqtt_3_1_2_26_and_v5_mqtt_3_3_2_11_aliases_never_exceed_client_maximum() {
    let mut s = session(with_alias_max(v5("c"), 2));
    for t in ["a", "b", "c", "a", "b", "c"] {
        deliver(&mut s, t, QoS::AtMostOnce);
    }
    let out = drain(&mut s);
    let got: Vec<(String, Option<u16>)> = publishes(&out)
        .iter()
        .map(|p| (p.topic.to_string(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        got,
        [
            ("a".to_string(), Some(1)),
            ("b".to_string(), Some(2)),
            ("c".to_string(), None),
            (String::new(), Some(1)),
            (String::new(), Some(2)),
            ("c".to_string(), None),
        ]
    );
}

#[test]
fn v5_mqtt_3_3_2_8_alias_zero_is_never_sent() {
    let mut s = session(with_alias_max(v5("c"), 1));
    deliver(&mut s, "a", QoS::AtMostOnce);
    assert_eq!(only_publish(&mut s).properties.topic_alias, Some(1));
}

#[test]
fn v5_mqtt_3_1_2_27_no_aliases_when_client_maximum_absent_or_0() {
    for c in [v5("c"), with_alias_max(v5("c"), 0)] {
        let mut s = session(c);
        deliver(&mut s, "a", QoS::AtMostOnce);
        deliver(&mut s, "a", QoS::AtMostOnce);
        for p in publishes(&drain(&mut s)) {
            assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("a", None));
        }
    }
}

#[test]
fn no_outbound_aliases_when_disabled_by_config() {
    let mut s = session_with(
        with_alias_max(v5("c"), 10),
        config_with(|c| c.outbound_topic_aliases = false),
    );
    deliver(&mut s, "a", QoS::AtMostOnce);
    deliver(&mut s, "a", QoS::AtMostOnce);
    for p in publishes(&drain(&mut s)) {
        assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("a", None));
    }
}

#[test]
fn v5_mqtt_3_3_2_7_outbound_aliases_start_afresh_on_a_new_connection() {
    let mut c = with_alias_max(v5("c"), 5);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let mut s = session(c.clone());
    deliver(&mut s, "a", QoS::AtMostOnce);
    deliver(&mut s, "a", QoS::AtMostOnce);
    drain(&mut s);
    let (mut s, _) = accept_with(c, Some(s.into_state()), config(), t0());
    deliver(&mut s, "a", QoS::AtMostOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("a", Some(1)));
}

// ---------------------------------------------------------------- maximum packet size

#[test]
fn v5_mqtt_3_1_2_24_and_v5_mqtt_3_1_2_25_packet_over_client_maximum_is_dropped() {
    let mut c = v5("c");
    c.properties.maximum_packet_size = Some(40);
    let mut s = session_with(with_receive_maximum(c, 1), config());
    let big = Arc::new(Message {
        payload: Bytes::from(vec![b'x'; 100]),
        ..(*message("big", QoS::AtLeastOnce)).clone()
    });
    assert_eq!(
        s.handle_delivery(t0(), Delivery::new(big, QoS::AtLeastOnce, false)),
        DeliveryOutcome::Dropped(DropReason::TooLarge)
    );
    assert!(drain(&mut s).is_empty());
    // Behaves as if delivered: no identifier or window slot is held.
    assert_eq!(s.state().inflight_len(), 0);
    assert_eq!(s.stats().dropped.too_large, 1);
    assert_eq!(
        deliver(&mut s, "small", QoS::AtLeastOnce),
        DeliveryOutcome::Sent
    );
    let p = only_publish(&mut s);
    assert!(s.encoder().publish_len(&p) <= 40);
}

#[test]
fn alias_is_not_committed_for_a_dropped_publish() {
    let mut c = with_alias_max(v5("c"), 5);
    c.properties.maximum_packet_size = Some(40);
    let mut s = session(c);
    let big = Arc::new(Message {
        payload: Bytes::from(vec![b'x'; 100]),
        ..(*message("t", QoS::AtMostOnce)).clone()
    });
    s.handle_delivery(t0(), Delivery::new(big, QoS::AtMostOnce, false));
    deliver(&mut s, "t", QoS::AtMostOnce);
    let p = only_publish(&mut s);
    assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("t", Some(1)));
}

#[test]
fn v311_packets_over_default_limit_are_not_dropped() {
    let mut s = session(v311("c"));
    let big = Arc::new(Message {
        payload: Bytes::from(vec![b'x'; 2_000_000]),
        ..(*message("t", QoS::AtMostOnce)).clone()
    });
    assert_eq!(
        s.handle_delivery(t0(), Delivery::new(big, QoS::AtMostOnce, false)),
        DeliveryOutcome::Sent
    );
}

#[test]
fn v5_mqtt_4_4_0_1_no_resend_within_a_connection() {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::AtLeastOnce);
    drain(&mut s);
    for secs in [10.0, 100.0, 1000.0] {
        let _ = s.handle_timeout(at(secs));
        s.handle_packet(at(secs), Packet::PingReq).unwrap();
        assert_eq!(drain(&mut s), [Packet::PingResp]);
    }
}

#[test]
fn v5_mqtt_3_3_4_5_each_copy_carries_its_own_subscription_identifier() {
    let mut s = session(v5("c"));
    let m = message("a/b", QoS::AtMostOnce);
    for id in [3, 4] {
        let mut d = Delivery::new(m.clone(), QoS::AtMostOnce, false);
        d.subscription_ids = smallvec![id];
        s.handle_delivery(t0(), d);
    }
    let out = drain(&mut s);
    let ids: Vec<Vec<u32>> = publishes(&out)
        .iter()
        .map(|p| p.properties.subscription_identifiers.to_vec())
        .collect();
    assert_eq!(ids, [vec![3], vec![4]]);
}

#[test]
fn v5_mqtt_3_8_4_8_and_v311_mqtt_3_8_4_6_publish_sent_at_the_delivery_qos() {
    for c in [v5("c"), v311("c")] {
        let mut s = session(c);
        let m = message("a", QoS::ExactlyOnce);
        // The router computed min(published QoS, granted QoS) = 1.
        s.handle_delivery(t0(), Delivery::new(m, QoS::AtLeastOnce, false));
        assert_eq!(only_publish(&mut s).qos, QoS::AtLeastOnce);
    }
}

#[test]
fn v5_mqtt_4_9_0_1_send_quota_is_non_zero_and_at_most_receive_maximum() {
    let s = session_with(
        with_receive_maximum(v5("c"), 5),
        config_with(|c| c.max_inflight = 0),
    );
    assert_eq!(s.send_window(), 1, "never 0, even when configured so");
    let s = session_with(with_receive_maximum(v5("c"), 5), config());
    assert_eq!(s.send_window(), 5);
    let s = session_with(v5("c"), config_with(|c| c.max_inflight = u16::MAX));
    assert_eq!(
        s.send_window(),
        usize::from(u16::MAX),
        "absent Receive Maximum is 65,535"
    );
}

#[test]
fn v5_mqtt_4_5_0_1_and_v311_mqtt_4_5_0_1_delivery_is_kept_in_session_state_until_acknowledged() {
    for c in [with_receive_maximum(v5("c"), 1), v311("c")] {
        let mut s = session_with(c, config_with(|c| c.max_inflight = 1));
        deliver(&mut s, "sent", QoS::AtLeastOnce);
        deliver(&mut s, "waiting", QoS::ExactlyOnce);
        let id = only_publish(&mut s).packet_id.unwrap();
        assert_eq!((s.state().inflight_len(), s.state().queued_len()), (1, 1));
        s.handle_packet(t0(), Packet::PubAck(PubResponse::success(id)))
            .unwrap();
        assert_eq!((s.state().inflight_len(), s.state().queued_len()), (1, 0));
    }
}

#[test]
fn v5_mqtt_3_10_4_3_and_v311_mqtt_3_10_4_3_started_deliveries_complete_after_unsubscribe() {
    for c in [with_receive_maximum(v5("c"), 1), v311("c")] {
        let mut s = session_with(c, config_with(|c| c.max_inflight = 1));
        s.complete_subscribe(
            &subscribe(1, &[("a/#", QoS::ExactlyOnce)]),
            &[ReasonCode::GRANTED_QOS_2],
        );
        deliver(&mut s, "a/1", QoS::ExactlyOnce);
        deliver(&mut s, "a/2", QoS::AtLeastOnce);
        drain(&mut s);
        s.complete_unsubscribe(
            &roost_codec::Unsubscribe {
                packet_id: pid(2),
                filters: vec!["a/#".into()],
                user_properties: vec![],
            },
            &[],
        );
        drain(&mut s);
        let id = s.state().inflight.iter().next().unwrap().packet_id;
        s.handle_packet(t0(), Packet::PubRec(PubResponse::success(id)))
            .unwrap();
        assert_eq!(drain(&mut s), [Packet::PubRel(PubResponse::success(id))]);
        s.handle_packet(t0(), Packet::PubComp(PubResponse::success(id)))
            .unwrap();
        assert_eq!(
            topics(&drain(&mut s)),
            ["a/2"],
            "already queued for the client, still delivered"
        );
    }
}

#[test]
fn v5_mqtt_4_8_2_4_shared_subscription_delivery_completed_on_reconnect() {
    let mut c = v5("member");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let mut s = session(c.clone());
    s.complete_subscribe(
        &subscribe(1, &[("$share/g/jobs", QoS::AtLeastOnce)]),
        &[ReasonCode::GRANTED_QOS_1],
    );
    drain(&mut s);
    deliver(&mut s, "jobs", QoS::AtLeastOnce);
    let id = only_publish(&mut s).packet_id.unwrap();
    let (_, out) = accept_with(c, Some(s.into_state()), config(), t0());
    let resent = publishes(&out);
    assert_eq!(
        (resent[0].topic.as_ref(), resent[0].packet_id, resent[0].dup),
        ("jobs", Some(id), true)
    );
}
