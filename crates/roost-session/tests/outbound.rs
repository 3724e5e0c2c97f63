//! Messages to the client: QoS 1/2 sender flows, packet identifiers, the
//! inflight window and ordering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use roost_codec::{Packet, PubResponse, QoS, ReasonCode};
use roost_session::DeliveryOutcome;

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

#[test]
fn v5_mqtt_4_4_0_1_no_resend_within_a_connection() {
    let mut s = session(v5("c"));
    deliver(&mut s, "a", QoS::AtLeastOnce);
    deliver(&mut s, "b", QoS::ExactlyOnce);
    drain(&mut s);
    for secs in [10.0, 100.0, 1000.0, 86_400.0] {
        let _ = s.handle_timeout(at(secs));
        s.handle_packet(at(secs), Packet::PingReq).unwrap();
        assert_eq!(drain(&mut s), [Packet::PingResp]);
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
