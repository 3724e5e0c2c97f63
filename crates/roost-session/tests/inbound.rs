//! PUBLISH from the client: QoS 0/1/2 receiver flows, receive maximum,
//! topic aliases and the checks that close the connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use roost_codec::{Packet, PubResponse, Publish, QoS, ReasonCode};
use roost_session::{Inbound, Session, Violation};

fn send(s: &mut Session, p: Publish) -> Result<Inbound, Violation> {
    s.handle_packet(t0(), Packet::Publish(p))
}

fn with_alias(mut p: Publish, alias: u16) -> Publish {
    p.properties.topic_alias = Some(alias);
    p
}

fn only(packets: Vec<Packet>) -> Packet {
    assert_eq!(packets.len(), 1, "{packets:?}");
    packets.into_iter().next().unwrap()
}

fn pubrec(s: &mut Session) -> PubResponse {
    match only(drain(s)) {
        Packet::PubRec(r) => r,
        other => panic!("expected PUBREC, got {other:?}"),
    }
}

// ---------------------------------------------------------------- QoS 0 / 1

#[test]
fn v5_mqtt_3_3_4_1_qos_0_needs_no_response() {
    let mut s = session(v5("c"));
    let (m, id) = inbound_message(send(&mut s, publish("a/b", QoS::AtMostOnce, None)).unwrap());
    assert_eq!(id, None);
    assert_eq!(m.topic, "a/b");
    assert_eq!(m.payload, Bytes::from_static(b"payload"));
    assert_eq!(m.publisher.as_deref(), Some("c"));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn v5_mqtt_4_3_2_4_qos_1_puback_has_the_publish_packet_identifier() {
    let mut s = session(v5("c"));
    let (_, id) = inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(7))).unwrap());
    assert_eq!(id, Some(pid(7)));
    assert!(drain(&mut s).is_empty(), "PUBACK waits for routing");
    s.complete_publish(pid(7), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    assert_eq!(only(drain(&mut s)), Packet::PubAck(ack(7)));
}

#[test]
fn v311_mqtt_4_3_2_2_qos_1_receiver_acks_and_treats_reuse_as_new() {
    let mut s = session(v311("c"));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(3))).unwrap());
    s.complete_publish(pid(3), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    assert_eq!(only(drain(&mut s)), Packet::PubAck(ack(3)));
    let mut again = publish("a", QoS::AtLeastOnce, Some(3));
    again.dup = true;
    inbound_message(send(&mut s, again).unwrap());
}

#[test]
fn v5_mqtt_4_3_2_5_after_puback_same_identifier_is_a_new_message() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(1))).unwrap());
    s.complete_publish(pid(1), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    drain(&mut s);
    let mut again = publish("a", QoS::AtLeastOnce, Some(1));
    again.dup = true;
    let (m, id) = inbound_message(send(&mut s, again).unwrap());
    assert_eq!((m.topic.as_ref(), id), ("a", Some(pid(1))));
}

#[test]
fn v5_mqtt_3_4_2_1_puback_carries_the_routing_outcome() {
    let mut s = session(v5("c"));
    for (id, rc) in [
        (1, ReasonCode::NO_MATCHING_SUBSCRIBERS),
        (2, ReasonCode::NOT_AUTHORIZED),
        (3, ReasonCode::QUOTA_EXCEEDED),
        (4, ReasonCode::SESSION_TAKEN_OVER),
    ] {
        inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(id))).unwrap());
        s.complete_publish(pid(id), QoS::AtLeastOnce, rc);
    }
    let codes: Vec<_> = drain(&mut s)
        .into_iter()
        .map(|p| match p {
            Packet::PubAck(a) => a.reason_code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::QUOTA_EXCEEDED,
            ReasonCode::UNSPECIFIED_ERROR // 0x8E is not a PUBACK code
        ]
    );
}

// ---------------------------------------------------------------- QoS 2

#[test]
fn v5_mqtt_4_3_3_8_and_v5_mqtt_4_3_3_11_qos_2_receiver_flow() {
    let mut s = session(v5("c"));
    let (_, id) = inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(9))).unwrap());
    assert_eq!(id, Some(pid(9)));
    s.complete_publish(pid(9), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    assert_eq!(pubrec(&mut s), ack(9));
    assert!(matches!(
        s.handle_packet(t0(), Packet::PubRel(ack(9))).unwrap(),
        Inbound::Nothing
    ));
    assert_eq!(only(drain(&mut s)), Packet::PubComp(ack(9)));
}

#[test]
fn v5_mqtt_4_3_3_10_duplicate_publish_before_pubrel_is_acked_not_delivered() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap());
    // Duplicate while the broker is still routing: the pending PUBREC answers both.
    assert!(matches!(
        send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap(),
        Inbound::Nothing
    ));
    assert!(drain(&mut s).is_empty());
    s.complete_publish(
        pid(5),
        QoS::ExactlyOnce,
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
    );
    assert_eq!(
        pubrec(&mut s).reason_code,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    // Duplicate while awaiting PUBREL: PUBREC again, with the same code, no second delivery.
    let mut dup = publish("a", QoS::ExactlyOnce, Some(5));
    dup.dup = true;
    assert!(matches!(send(&mut s, dup).unwrap(), Inbound::Nothing));
    let rec = pubrec(&mut s);
    assert_eq!(
        (rec.packet_id, rec.reason_code),
        (pid(5), ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
}

#[test]
fn v5_mqtt_4_3_3_12_after_pubcomp_same_identifier_is_a_new_message() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap());
    s.complete_publish(pid(5), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    s.handle_packet(t0(), Packet::PubRel(ack(5))).unwrap();
    drain(&mut s);
    inbound_message(send(&mut s, publish("b", QoS::ExactlyOnce, Some(5))).unwrap());
}

#[test]
fn v5_mqtt_4_3_3_9_after_error_pubrec_same_identifier_is_a_new_message() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap());
    s.complete_publish(pid(5), QoS::ExactlyOnce, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(pubrec(&mut s).reason_code, ReasonCode::NOT_AUTHORIZED);
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap());
}

#[test]
fn v311_mqtt_4_3_3_2_qos_2_receiver_flow() {
    let mut s = session(v311("c"));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(2))).unwrap());
    s.complete_publish(pid(2), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    assert_eq!(pubrec(&mut s).packet_id, pid(2));
    assert!(matches!(
        send(&mut s, publish("a", QoS::ExactlyOnce, Some(2))).unwrap(),
        Inbound::Nothing
    ));
    assert_eq!(pubrec(&mut s).packet_id, pid(2));
    s.handle_packet(t0(), Packet::PubRel(ack(2))).unwrap();
    assert_eq!(only(drain(&mut s)), Packet::PubComp(ack(2)));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(2))).unwrap());
}

#[test]
fn v5_pubrel_for_unknown_identifier_gets_pubcomp_0x92() {
    let mut s = session(v5("c"));
    assert!(matches!(
        s.handle_packet(t0(), Packet::PubRel(ack(77))).unwrap(),
        Inbound::Nothing
    ));
    assert_eq!(
        only(drain(&mut s)),
        Packet::PubComp(ack_with(77, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND))
    );
}

#[test]
fn v5_mqtt_4_3_3_13_qos_2_sequence_continues_for_an_expired_message() {
    let mut s = session(v5("c"));
    let mut p = publish("a", QoS::ExactlyOnce, Some(4));
    p.properties.message_expiry_interval = Some(0);
    let (m, _) = inbound_message(send(&mut s, p).unwrap());
    assert!(m.is_expired(t0()));
    s.complete_publish(pid(4), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    assert_eq!(pubrec(&mut s), ack(4));
    s.handle_packet(t0(), Packet::PubRel(ack(4))).unwrap();
    assert_eq!(only(drain(&mut s)), Packet::PubComp(ack(4)));
}

#[test]
fn v5_mqtt_4_3_3_10_qos_2_in_flight_survives_reconnect() {
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(60);
    let mut s = session(c.clone());
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(8))).unwrap());
    s.complete_publish(pid(8), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    inbound_message(send(&mut s, publish("b", QoS::ExactlyOnce, Some(9))).unwrap());
    // The connection drops before PUBREL (and before routing of 9 completed).
    let state = s.into_state();
    c.clean_start = false;
    let (mut s, _) = accept_with(c, Some(state), config(), t0());
    for id in [8, 9] {
        let mut dup = publish("a", QoS::ExactlyOnce, Some(id));
        dup.dup = true;
        assert!(
            matches!(send(&mut s, dup).unwrap(), Inbound::Nothing),
            "id {id} not delivered twice"
        );
        assert_eq!(pubrec(&mut s), ack(id));
    }
    s.handle_packet(t0(), Packet::PubRel(ack(8))).unwrap();
    assert_eq!(only(drain(&mut s)), Packet::PubComp(ack(8)));
}

// ---------------------------------------------------------------- receive maximum

#[test]
fn v5_mqtt_3_3_4_7_more_than_receive_maximum_unacked_is_0x93() {
    let mut s = session_with(v5("c"), config_with(|c| c.receive_maximum = 2));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(1))).unwrap());
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(2))).unwrap());
    let err = send(&mut s, publish("a", QoS::AtLeastOnce, Some(3))).unwrap_err();
    assert_eq!(err, Violation::ReceiveMaximumExceeded);
    assert_eq!(err.reason_code(), ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
}

#[test]
fn v5_mqtt_3_3_4_7_quota_returns_on_puback_and_pubcomp_not_pubrec() {
    let mut s = session_with(v5("c"), config_with(|c| c.receive_maximum = 1));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(1))).unwrap());
    s.complete_publish(pid(1), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(2))).unwrap());
    s.complete_publish(pid(2), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    // PUBREC sent, PUBCOMP not yet: still counts.
    assert_eq!(
        send(&mut s, publish("a", QoS::AtLeastOnce, Some(3))).unwrap_err(),
        Violation::ReceiveMaximumExceeded
    );
    s.handle_packet(t0(), Packet::PubRel(ack(2))).unwrap();
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(3))).unwrap());
    // An error PUBREC also returns the quota.
    s.complete_publish(pid(3), QoS::AtLeastOnce, ReasonCode::SUCCESS);
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(4))).unwrap());
    s.complete_publish(pid(4), QoS::ExactlyOnce, ReasonCode::QUOTA_EXCEEDED);
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(5))).unwrap());
}

#[test]
fn qos_0_does_not_count_against_receive_maximum() {
    let mut s = session_with(v5("c"), config_with(|c| c.receive_maximum = 1));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(1))).unwrap());
    for _ in 0..10 {
        inbound_message(send(&mut s, publish("a", QoS::AtMostOnce, None)).unwrap());
    }
    assert_eq!(s.stats().inbound_unacked, 1);
}

#[test]
fn v311_has_no_receive_maximum() {
    let mut s = session_with(v311("c"), config_with(|c| c.receive_maximum = 1));
    for id in 1..=5 {
        inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(id))).unwrap());
    }
}

// ---------------------------------------------------------------- topic aliases

#[test]
fn v5_mqtt_3_3_2_12_every_alias_up_to_the_maximum_is_accepted() {
    let mut s = session_with(v5("c"), config_with(|c| c.topic_alias_maximum = 3));
    for alias in 1..=3 {
        let topic = format!("t/{alias}");
        let (m, _) = inbound_message(
            send(
                &mut s,
                with_alias(publish(&topic, QoS::AtMostOnce, None), alias),
            )
            .unwrap(),
        );
        assert_eq!(m.topic, topic.as_str());
        assert_eq!(m.properties.topic_alias, None, "aliases are per hop");
    }
    for alias in 1..=3 {
        let (m, _) = inbound_message(
            send(
                &mut s,
                with_alias(publish("", QoS::AtMostOnce, None), alias),
            )
            .unwrap(),
        );
        assert_eq!(m.topic, format!("t/{alias}").as_str());
    }
}

#[test]
fn v5_topic_alias_can_be_rebound() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, with_alias(publish("x", QoS::AtMostOnce, None), 1)).unwrap());
    inbound_message(send(&mut s, with_alias(publish("y", QoS::AtMostOnce, None), 1)).unwrap());
    let (m, _) =
        inbound_message(send(&mut s, with_alias(publish("", QoS::AtMostOnce, None), 1)).unwrap());
    assert_eq!(m.topic, "y");
}

#[test]
fn v5_mqtt_3_3_2_8_topic_alias_0_is_0x94() {
    let mut s = session(v5("c"));
    let err = send(&mut s, with_alias(publish("x", QoS::AtMostOnce, None), 0)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::TOPIC_ALIAS_INVALID);
    assert_eq!(err.spec_id(), Some("MQTT-3.3.2-8"));
}

#[test]
fn v5_mqtt_3_2_2_17_topic_alias_above_maximum_is_0x94() {
    let mut s = session_with(v5("c"), config_with(|c| c.topic_alias_maximum = 4));
    let err = send(&mut s, with_alias(publish("x", QoS::AtMostOnce, None), 5)).unwrap_err();
    assert_eq!(err, Violation::TopicAliasInvalid(5));
    assert_eq!(err.reason_code(), ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn v5_mqtt_3_2_2_18_no_aliases_when_maximum_is_0() {
    let cfg = config_with(|c| c.topic_alias_maximum = 0);
    let (mut s, out) = accept_with(v5("c"), None, cfg, t0());
    assert_eq!(connack(&out).properties.topic_alias_maximum, None);
    let err = send(&mut s, with_alias(publish("x", QoS::AtMostOnce, None), 1)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::TOPIC_ALIAS_INVALID);
}

#[test]
fn v5_unknown_topic_alias_with_empty_topic_is_a_protocol_error() {
    let mut s = session(v5("c"));
    let err = send(&mut s, with_alias(publish("", QoS::AtMostOnce, None), 2)).unwrap_err();
    assert_eq!(err, Violation::UnknownTopicAlias(2));
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v5_empty_topic_without_alias_is_a_protocol_error() {
    let mut s = session(v5("c"));
    let err = send(&mut s, publish("", QoS::AtMostOnce, None)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v5_mqtt_3_3_2_7_inbound_aliases_are_not_carried_to_the_next_connection() {
    let mut c = v5("c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let mut s = session(c.clone());
    inbound_message(send(&mut s, with_alias(publish("x", QoS::AtMostOnce, None), 1)).unwrap());
    let (mut s, _) = accept_with(c, Some(s.into_state()), config(), t0());
    assert_eq!(
        send(&mut s, with_alias(publish("", QoS::AtMostOnce, None), 1)).unwrap_err(),
        Violation::UnknownTopicAlias(1)
    );
}

// ---------------------------------------------------------------- refusals

#[test]
fn v5_mqtt_3_2_2_11_publish_above_maximum_qos_is_0x9b() {
    let mut s = session_with(v5("c"), config_with(|c| c.maximum_qos = QoS::AtLeastOnce));
    let err = send(&mut s, publish("a", QoS::ExactlyOnce, Some(1))).unwrap_err();
    assert_eq!(err, Violation::QosNotSupported(QoS::ExactlyOnce));
    assert_eq!(err.reason_code(), ReasonCode::QOS_NOT_SUPPORTED);
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(1))).unwrap());
}

#[test]
fn v5_mqtt_3_2_2_14_retain_when_unavailable_is_0x9a() {
    let mut s = session_with(v5("c"), config_with(|c| c.retain_available = false));
    let mut p = publish("a", QoS::AtMostOnce, None);
    p.retain = true;
    let err = send(&mut s, p).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::RETAIN_NOT_SUPPORTED);
}

#[test]
fn topic_deeper_than_allowed_is_topic_name_invalid() {
    let mut s = session_with(v5("c"), config_with(|c| c.max_topic_levels = 3));
    inbound_message(send(&mut s, publish("a/b/c", QoS::AtMostOnce, None)).unwrap());
    let err = send(&mut s, publish("a/b/c/d", QoS::AtMostOnce, None)).unwrap_err();
    assert_eq!(
        err,
        Violation::TopicTooDeep {
            levels: 4,
            maximum: 3
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::TOPIC_NAME_INVALID);
}

#[test]
fn payload_flagged_utf8_must_be_utf8() {
    let mut s = session(v5("c"));
    let mut p = publish("a", QoS::AtMostOnce, None);
    p.properties.payload_format_indicator = Some(true);
    p.payload = Bytes::from_static("héllo".as_bytes());
    inbound_message(send(&mut s, p.clone()).unwrap());
    p.payload = Bytes::from_static(&[0xc3, 0x28]);
    assert_eq!(
        send(&mut s, p.clone()).unwrap_err().reason_code(),
        ReasonCode::PAYLOAD_FORMAT_INVALID
    );
    let mut s = session_with(v5("c"), config_with(|c| c.validate_utf8_payload = false));
    inbound_message(send(&mut s, p).unwrap());
}

#[test]
fn inbound_message_strips_per_hop_properties_and_sets_expiry() {
    let mut s = session(v5("c"));
    let mut p = publish("a", QoS::AtMostOnce, None);
    p.properties.message_expiry_interval = Some(30);
    p.properties.subscription_identifiers.push(5);
    p.properties.user_properties.push(("k".into(), "v".into()));
    let (m, _) = inbound_message(s.handle_packet(at(10.0), Packet::Publish(p)).unwrap());
    assert_eq!(m.expires_at, Some(at(40.0)));
    assert!(m.properties.subscription_identifiers.is_empty());
    assert_eq!(m.properties.user_properties, vec![("k".into(), "v".into())]);
    assert!(
        format!("{m:?}").contains("<7 bytes>"),
        "payload redacted in Debug"
    );
}

#[test]
fn mqtt_3_3_4_1_response_matches_the_publish_qos() {
    for c in [v5("c"), v311("c")] {
        let mut s = session(c);
        for (qos, id) in [
            (QoS::AtMostOnce, None),
            (QoS::AtLeastOnce, Some(1)),
            (QoS::ExactlyOnce, Some(2)),
        ] {
            let (m, packet_id) = inbound_message(send(&mut s, publish("a", qos, id)).unwrap());
            if let Some(packet_id) = packet_id {
                s.complete_publish(packet_id, m.qos, ReasonCode::SUCCESS);
            }
        }
        assert_eq!(
            drain(&mut s),
            [Packet::PubAck(ack(1)), Packet::PubRec(ack(2))]
        );
    }
}

#[test]
fn v5_mqtt_3_5_2_1_pubrec_uses_pubrec_reason_codes() {
    let mut s = session(v5("c"));
    for (id, rc) in [
        (1, ReasonCode::NO_MATCHING_SUBSCRIBERS),
        (2, ReasonCode::PAYLOAD_FORMAT_INVALID),
        (3, ReasonCode::BANNED),
    ] {
        inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(id))).unwrap());
        s.complete_publish(pid(id), QoS::ExactlyOnce, rc);
    }
    let codes: Vec<ReasonCode> = drain(&mut s)
        .into_iter()
        .map(|p| match p {
            Packet::PubRec(r) => r.reason_code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ReasonCode::PAYLOAD_FORMAT_INVALID,
            ReasonCode::UNSPECIFIED_ERROR
        ]
    );
}

#[test]
fn v5_mqtt_3_7_2_1_pubcomp_uses_pubcomp_reason_codes() {
    let mut s = session(v5("c"));
    inbound_message(send(&mut s, publish("a", QoS::ExactlyOnce, Some(1))).unwrap());
    s.complete_publish(pid(1), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    drain(&mut s);
    s.handle_packet(t0(), Packet::PubRel(ack(1))).unwrap();
    s.handle_packet(t0(), Packet::PubRel(ack(1))).unwrap();
    assert_eq!(
        drain(&mut s),
        [
            Packet::PubComp(ack(1)),
            Packet::PubComp(ack_with(1, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND))
        ]
    );
}

#[test]
fn v311_mqtt_3_3_5_2_unauthorized_publish_still_gets_a_positive_ack() {
    let mut s = session(v311("c"));
    inbound_message(send(&mut s, publish("a", QoS::AtLeastOnce, Some(9))).unwrap());
    s.complete_publish(pid(9), QoS::AtLeastOnce, ReasonCode::NOT_AUTHORIZED);
    let out = drain(&mut s);
    let mut buf = bytes::BytesMut::new();
    s.encoder().encode(&out[0], &mut buf).unwrap();
    assert_eq!(&buf[..], &[0x40, 0x02, 0x00, 0x09], "a plain 3.1.1 PUBACK");
}
