//! SUBSCRIBE / UNSUBSCRIBE: early refusals, SUBACK / UNSUBACK, the
//! subscriptions recorded in the session state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use roost_codec::{Packet, QoS, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe};
use roost_session::{Inbound, Session, Violation, validate_subscribe};

fn suback(s: &mut Session) -> SubAck {
    match drain(s).as_slice() {
        [Packet::SubAck(a)] => a.clone(),
        other => panic!("expected one SUBACK, got {other:?}"),
    }
}

fn unsuback(s: &mut Session) -> UnsubAck {
    match drain(s).as_slice() {
        [Packet::UnsubAck(a)] => a.clone(),
        other => panic!("expected one UNSUBACK, got {other:?}"),
    }
}

fn unsubscribe(id: u16, filters: &[&str]) -> Unsubscribe {
    Unsubscribe {
        packet_id: pid(id),
        filters: filters.iter().map(|f| (*f).into()).collect(),
        user_properties: vec![],
    }
}

fn handle_subscribe(s: &mut Session, sub: Subscribe) -> Subscribe {
    match s.handle_packet(t0(), Packet::Subscribe(sub)).unwrap() {
        Inbound::Subscribe(sub) => sub,
        other => panic!("{other:?}"),
    }
}

#[test]
fn v5_mqtt_3_8_4_1_and_v5_mqtt_3_8_4_2_and_v5_mqtt_2_2_1_6_suback_with_subscribe_identifier() {
    let mut s = session(v5("c"));
    let sub = handle_subscribe(&mut s, subscribe(10, &[("a/b", QoS::AtLeastOnce)]));
    s.complete_subscribe(&sub, &[ReasonCode::GRANTED_QOS_1]);
    let ack = suback(&mut s);
    assert_eq!(ack.packet_id, pid(10));
    assert_eq!(ack.reason_codes, [ReasonCode::GRANTED_QOS_1]);
    assert_eq!(s.subscriptions()["a/b"].options.qos, QoS::AtLeastOnce);
}

#[test]
fn v311_mqtt_3_8_4_1_and_v311_mqtt_3_8_4_2_and_v311_mqtt_2_3_1_7_suback_with_subscribe_identifier()
{
    let mut s = session(v311("c"));
    let sub = handle_subscribe(&mut s, subscribe(11, &[("a/b", QoS::AtMostOnce)]));
    s.complete_subscribe(&sub, &[ReasonCode::GRANTED_QOS_0]);
    assert_eq!(suback(&mut s).packet_id, pid(11));
}

#[test]
fn v5_mqtt_3_8_4_5_v5_mqtt_3_8_4_6_v5_mqtt_3_8_4_7_v5_mqtt_3_9_3_1_one_suback_one_code_per_filter_in_order()
 {
    let mut s = session(v5("c"));
    let sub = subscribe(
        1,
        &[
            ("a", QoS::ExactlyOnce),
            ("b", QoS::AtLeastOnce),
            ("c", QoS::AtMostOnce),
        ],
    );
    // The broker granted less than asked for "a" and refused "b".
    s.complete_subscribe(
        &sub,
        &[
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::GRANTED_QOS_0,
        ],
    );
    assert_eq!(
        suback(&mut s).reason_codes,
        [
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::GRANTED_QOS_0
        ]
    );
    assert_eq!(
        s.subscriptions()["a"].options.qos,
        QoS::AtLeastOnce,
        "granted QoS recorded"
    );
    assert!(!s.subscriptions().contains_key("b"));
    assert!(s.subscriptions().contains_key("c"));
}

#[test]
fn v311_mqtt_3_8_4_4_and_v311_mqtt_3_8_4_5_and_v311_mqtt_3_9_3_1_one_suback_one_code_per_filter_in_order()
 {
    let mut s = session(v311("c"));
    let sub = subscribe(1, &[("a", QoS::ExactlyOnce), ("b", QoS::AtLeastOnce)]);
    s.complete_subscribe(
        &sub,
        &[ReasonCode::GRANTED_QOS_2, ReasonCode::GRANTED_QOS_1],
    );
    assert_eq!(
        suback(&mut s).reason_codes,
        [ReasonCode::GRANTED_QOS_2, ReasonCode::GRANTED_QOS_1]
    );
}

#[test]
fn v311_mqtt_3_9_3_2_failures_are_0x80() {
    let mut s = session(v311("c"));
    let sub = subscribe(1, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]);
    s.complete_subscribe(
        &sub,
        &[
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ],
    );
    assert_eq!(
        suback(&mut s).reason_codes,
        [ReasonCode::UNSPECIFIED_ERROR, ReasonCode::UNSPECIFIED_ERROR]
    );
    assert!(s.subscriptions().is_empty());
}

#[test]
fn v5_mqtt_3_9_3_2_only_subscribe_reason_codes() {
    let mut s = session(v5("c"));
    let sub = subscribe(1, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]);
    // 0x10 is no SUBACK code; a missing result is a failure too.
    s.complete_subscribe(&sub, &[ReasonCode::NO_MATCHING_SUBSCRIBERS]);
    assert_eq!(
        suback(&mut s).reason_codes,
        [ReasonCode::UNSPECIFIED_ERROR, ReasonCode::UNSPECIFIED_ERROR]
    );
}

#[test]
fn v5_mqtt_3_8_4_3_same_filter_replaces_the_subscription() {
    let mut s = session(v5("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a/+", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0],
    );
    let mut sub = subscribe(2, &[("a/+", QoS::ExactlyOnce)]);
    sub.properties.subscription_identifier = Some(9);
    s.complete_subscribe(&sub, &[ReasonCode::GRANTED_QOS_2]);
    drain(&mut s);
    assert_eq!(s.subscriptions().len(), 1);
    assert_eq!(s.subscriptions()["a/+"].options.qos, QoS::ExactlyOnce);
    assert_eq!(s.subscriptions()["a/+"].identifier, Some(9));
}

#[test]
fn v311_mqtt_3_8_4_3_same_filter_replaces_the_subscription() {
    let mut s = session(v311("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0],
    );
    s.complete_subscribe(
        &subscribe(2, &[("a", QoS::AtLeastOnce)]),
        &[ReasonCode::GRANTED_QOS_1],
    );
    assert_eq!(s.subscriptions().len(), 1);
    assert_eq!(s.subscriptions()["a"].options.qos, QoS::AtLeastOnce);
}

#[test]
fn v5_mqtt_3_8_3_4_no_local_on_shared_subscription_is_a_protocol_error() {
    let mut s = session(v5("c"));
    let mut sub = subscribe(1, &[("$share/g/a", QoS::AtMostOnce)]);
    sub.filters[0].1.no_local = true;
    let err = s.handle_packet(t0(), Packet::Subscribe(sub)).unwrap_err();
    assert_eq!(err, Violation::SharedSubscriptionNoLocal);
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    let mut sub = subscribe(1, &[("a", QoS::AtMostOnce)]);
    sub.filters[0].1.no_local = true;
    handle_subscribe(&mut s, sub);
}

#[test]
fn v5_mqtt_3_2_2_10_subscribe_with_any_qos_accepted_when_qos_is_limited() {
    let mut s = session_with(v5("c"), config_with(|c| c.maximum_qos = QoS::AtMostOnce));
    let sub = handle_subscribe(
        &mut s,
        subscribe(1, &[("a", QoS::ExactlyOnce), ("b", QoS::AtLeastOnce)]),
    );
    assert_eq!(validate_subscribe(&sub, s.config()), [None, None]);
}

// ---------------------------------------------------------------- validate_subscribe

#[test]
fn validate_subscribe_refuses_invalid_filters() {
    let sub = subscribe(
        1,
        &[
            ("a/#/b", QoS::AtMostOnce),
            ("$share//a", QoS::AtMostOnce),
            ("ok/+", QoS::AtMostOnce),
        ],
    );
    assert_eq!(
        validate_subscribe(&sub, &config()),
        [
            Some(ReasonCode::TOPIC_FILTER_INVALID),
            Some(ReasonCode::TOPIC_FILTER_INVALID),
            None
        ]
    );
}

#[test]
fn validate_subscribe_refuses_too_deep_filters() {
    let cfg = config_with(|c| c.max_topic_levels = 2);
    let sub = subscribe(
        1,
        &[
            ("a/b", QoS::AtMostOnce),
            ("a/b/c", QoS::AtMostOnce),
            ("$share/g/a/b", QoS::AtMostOnce),
        ],
    );
    assert_eq!(
        validate_subscribe(&sub, &cfg),
        [None, Some(ReasonCode::TOPIC_FILTER_INVALID), None]
    );
}

#[test]
fn validate_subscribe_refuses_shared_when_unavailable() {
    let cfg = config_with(|c| c.shared_subscription_available = false);
    let sub = subscribe(
        1,
        &[("$share/g/a", QoS::AtMostOnce), ("a", QoS::AtMostOnce)],
    );
    assert_eq!(
        validate_subscribe(&sub, &cfg),
        [Some(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED), None]
    );
}

#[test]
fn validate_subscribe_refuses_wildcards_when_unavailable() {
    let cfg = config_with(|c| c.wildcard_subscription_available = false);
    let sub = subscribe(
        1,
        &[
            ("a/+", QoS::AtMostOnce),
            ("a/#", QoS::AtMostOnce),
            ("a/b", QoS::AtMostOnce),
            ("$share/g/+", QoS::AtMostOnce),
        ],
    );
    let w = Some(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    assert_eq!(validate_subscribe(&sub, &cfg), [w, w, None, w]);
}

#[test]
fn v311_mqtt_3_8_3_2_wildcard_filters_rejected_when_unsupported() {
    let cfg = config_with(|c| c.wildcard_subscription_available = false);
    let mut s = session_with(v311("c"), cfg);
    let sub = handle_subscribe(
        &mut s,
        subscribe(1, &[("a/#", QoS::AtMostOnce), ("a/b", QoS::AtMostOnce)]),
    );
    let results: Vec<ReasonCode> = s
        .validate_subscribe(&sub)
        .into_iter()
        .map(|r| r.unwrap_or(ReasonCode::GRANTED_QOS_0))
        .collect();
    s.complete_subscribe(&sub, &results);
    assert_eq!(
        suback(&mut s).reason_codes,
        [ReasonCode::UNSPECIFIED_ERROR, ReasonCode::GRANTED_QOS_0]
    );
    assert!(!s.subscriptions().contains_key("a/#"));
}

#[test]
fn validate_subscribe_refuses_subscription_identifiers_when_unavailable() {
    let cfg = config_with(|c| c.subscription_identifiers_available = false);
    let mut sub = subscribe(1, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]);
    assert_eq!(validate_subscribe(&sub, &cfg), [None, None]);
    sub.properties.subscription_identifier = Some(3);
    let r = Some(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
    assert_eq!(validate_subscribe(&sub, &cfg), [r, r]);
}

#[test]
fn validate_subscribe_enforces_max_subscriptions() {
    let cfg = config_with(|c| c.max_subscriptions = 2);
    let sub = subscribe(
        1,
        &[
            ("a", QoS::AtMostOnce),
            ("b", QoS::AtMostOnce),
            ("c", QoS::AtMostOnce),
        ],
    );
    assert_eq!(
        validate_subscribe(&sub, &cfg),
        [None, None, Some(ReasonCode::QUOTA_EXCEEDED)]
    );

    // The session method counts what is already subscribed; a replacement takes no new quota.
    let mut s = session_with(v5("c"), cfg);
    s.complete_subscribe(
        &subscribe(1, &[("a", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0],
    );
    let sub = subscribe(
        2,
        &[
            ("a", QoS::AtLeastOnce),
            ("b", QoS::AtMostOnce),
            ("c", QoS::AtMostOnce),
        ],
    );
    assert_eq!(
        s.validate_subscribe(&sub),
        [None, None, Some(ReasonCode::QUOTA_EXCEEDED)]
    );
}

// ---------------------------------------------------------------- UNSUBSCRIBE

#[test]
fn v5_mqtt_3_10_4_1_exact_filter_is_deleted_and_v5_mqtt_3_11_3_1_codes_in_order() {
    let mut s = session(v5("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a/+", QoS::AtMostOnce), ("a/b", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0; 2],
    );
    drain(&mut s);
    let u = match s
        .handle_packet(
            t0(),
            Packet::Unsubscribe(unsubscribe(5, &["a/b", "a/#", "a/+"])),
        )
        .unwrap()
    {
        Inbound::Unsubscribe(u) => u,
        other => panic!("{other:?}"),
    };
    s.complete_unsubscribe(&u, &[]);
    let ack = unsuback(&mut s);
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::SUCCESS,
            ReasonCode::NO_SUBSCRIPTION_EXISTED,
            ReasonCode::SUCCESS
        ]
    );
    assert!(s.subscriptions().is_empty());
}

#[test]
fn v5_mqtt_3_10_4_4_and_v5_mqtt_3_10_4_5_unsuback_even_when_nothing_deleted() {
    let mut s = session(v5("c"));
    s.complete_unsubscribe(&unsubscribe(6, &["x"]), &[]);
    let ack = unsuback(&mut s);
    assert_eq!(ack.packet_id, pid(6));
    assert_eq!(ack.reason_codes, [ReasonCode::NO_SUBSCRIPTION_EXISTED]);
}

#[test]
fn v5_mqtt_3_10_4_6_many_filters_one_unsuback() {
    let mut s = session(v5("c"));
    s.complete_unsubscribe(&unsubscribe(6, &["x", "y", "z"]), &[]);
    assert_eq!(unsuback(&mut s).reason_codes.len(), 3);
}

#[test]
fn v311_mqtt_3_10_4_4_and_v311_mqtt_3_10_4_5_unsuback_with_the_packet_identifier() {
    let mut s = session(v311("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0],
    );
    drain(&mut s);
    s.complete_unsubscribe(&unsubscribe(7, &["a", "never"]), &[]);
    let ack = unsuback(&mut s);
    assert_eq!(ack.packet_id, pid(7));
    assert!(ack.reason_codes.is_empty(), "3.1.1 UNSUBACK has no payload");
    assert!(s.subscriptions().is_empty());
}

#[test]
fn v311_mqtt_3_10_4_6_many_filters_one_unsuback() {
    let mut s = session(v311("c"));
    s.complete_unsubscribe(&unsubscribe(8, &["a", "b"]), &[]);
    assert_eq!(unsuback(&mut s).packet_id, pid(8));
}

#[test]
fn v5_mqtt_3_11_3_2_unsubscribe_failure_keeps_the_subscription() {
    let mut s = session(v5("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a", QoS::AtMostOnce), ("b", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0; 2],
    );
    drain(&mut s);
    s.complete_unsubscribe(
        &unsubscribe(2, &["a", "b"]),
        &[ReasonCode::NOT_AUTHORIZED, ReasonCode::QUOTA_EXCEEDED],
    );
    // 0x97 is not an UNSUBACK code.
    assert_eq!(
        unsuback(&mut s).reason_codes,
        [ReasonCode::NOT_AUTHORIZED, ReasonCode::UNSPECIFIED_ERROR]
    );
    assert_eq!(s.subscriptions().len(), 2);
}

#[test]
fn v311_mqtt_3_10_4_1_exact_filter_is_deleted() {
    let mut s = session(v311("c"));
    s.complete_subscribe(
        &subscribe(1, &[("a/+", QoS::AtMostOnce), ("a/b", QoS::AtMostOnce)]),
        &[ReasonCode::GRANTED_QOS_0; 2],
    );
    s.complete_unsubscribe(&unsubscribe(2, &["a/#", "a/b"]), &[]);
    assert_eq!(
        s.subscriptions()
            .keys()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a/+"]
    );
}
