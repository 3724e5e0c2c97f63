//! Enhanced re-authentication and Request Problem Information.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use roost_codec::{Auth, AuthProperties, Connect, Packet, ReasonCode};
use roost_session::{Inbound, Session, Violation};

const METHOD: &str = "SCRAM-SHA-256";

fn with_method(mut c: Connect) -> Connect {
    c.properties.authentication_method = Some(METHOD.into());
    c
}

fn auth(rc: ReasonCode, method: Option<&str>) -> Auth {
    Auth {
        reason_code: rc,
        properties: AuthProperties {
            authentication_method: method.map(Into::into),
            authentication_data: Some(Bytes::from_static(b"data")),
            ..AuthProperties::default()
        },
    }
}

fn sent_auth(s: &mut Session) -> Auth {
    match drain(s).as_slice() {
        [Packet::Auth(a)] => a.clone(),
        other => panic!("expected one AUTH, got {other:?}"),
    }
}

#[test]
fn v5_mqtt_4_12_1_1_and_v5_mqtt_4_12_0_2_and_v5_mqtt_4_12_0_5_reauthentication_exchange() {
    let mut s = session(with_method(v5("c")));
    let inbound = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some(METHOD))),
        )
        .unwrap();
    assert!(matches!(inbound, Inbound::Auth(a) if a.reason_code == ReasonCode::REAUTHENTICATE));
    // The server needs more: 0x18, with CONNECT's method even if the broker left it out.
    s.send_auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, None));
    let a = sent_auth(&mut s);
    assert_eq!(a.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
    let inbound = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, Some(METHOD))),
        )
        .unwrap();
    assert!(matches!(inbound, Inbound::Auth(_)));
    s.send_auth(auth(ReasonCode::SUCCESS, Some("other")));
    let a = sent_auth(&mut s);
    assert_eq!(a.reason_code, ReasonCode::SUCCESS);
    assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
    // Exchange over: a stray 0x18 is a protocol error, a new 0x19 is fine.
    let err = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, Some(METHOD))),
        )
        .unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v5_mqtt_4_12_0_7_auth_without_method_in_connect_is_a_protocol_error() {
    let mut s = session(v5("c"));
    let err = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some(METHOD))),
        )
        .unwrap_err();
    assert_eq!(err, Violation::AuthWithoutMethod);
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v5_mqtt_4_12_1_1_auth_with_another_method_is_refused() {
    let mut s = session(with_method(v5("c")));
    let err = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some("PLAIN"))),
        )
        .unwrap_err();
    assert_eq!(err, Violation::BadAuthMethod);
    let err = s
        .handle_packet(t0(), Packet::Auth(auth(ReasonCode::REAUTHENTICATE, None)))
        .unwrap_err();
    assert_eq!(err, Violation::BadAuthMethod);
}

#[test]
fn auth_success_code_from_client_is_a_protocol_error() {
    let mut s = session(with_method(v5("c")));
    let err = s
        .handle_packet(t0(), Packet::Auth(auth(ReasonCode::SUCCESS, Some(METHOD))))
        .unwrap_err();
    assert_eq!(err, Violation::UnexpectedAuthReason(ReasonCode::SUCCESS));
}

#[test]
fn reauthenticate_twice_without_answer_is_a_protocol_error() {
    let mut s = session(with_method(v5("c")));
    s.handle_packet(
        t0(),
        Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some(METHOD))),
    )
    .unwrap();
    let err = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some(METHOD))),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Violation::UnexpectedAuthReason(ReasonCode::REAUTHENTICATE)
    );
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v311_auth_packet_is_a_protocol_violation() {
    let mut s = session(with_method(v311("c")));
    let err = s
        .handle_packet(
            t0(),
            Packet::Auth(auth(ReasonCode::REAUTHENTICATE, Some(METHOD))),
        )
        .unwrap_err();
    assert_eq!(err, Violation::V5OnlyPacket(roost_codec::PacketType::Auth));
}

#[test]
fn v5_mqtt_4_12_0_6_no_auth_sent_without_authentication_method() {
    let mut s = session(v5("c"));
    s.send_auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, Some(METHOD)));
    assert!(drain(&mut s).is_empty());
    let mut s = session(v311("c"));
    s.send_auth(auth(ReasonCode::CONTINUE_AUTHENTICATION, Some(METHOD)));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn v5_mqtt_3_15_2_1_server_auth_uses_auth_reason_codes() {
    let mut s = session(with_method(v5("c")));
    s.send_auth(auth(ReasonCode::REAUTHENTICATE, None));
    assert_eq!(
        sent_auth(&mut s).reason_code,
        ReasonCode::CONTINUE_AUTHENTICATION
    );
}

#[test]
fn v5_mqtt_3_1_2_29_no_reason_string_or_user_properties_when_problem_information_0() {
    let mut c = with_method(v5("c"));
    c.properties.request_problem_information = Some(false);
    let mut s = session(c);
    let mut a = auth(ReasonCode::CONTINUE_AUTHENTICATION, None);
    a.properties.reason_string = Some("more please".into());
    a.properties.user_properties.push(("k".into(), "v".into()));
    s.send_auth(a.clone());
    let sent = sent_auth(&mut s);
    assert_eq!(sent.properties.reason_string, None);
    assert!(sent.properties.user_properties.is_empty());
    assert_eq!(
        sent.properties.authentication_data.as_deref(),
        Some(&b"data"[..]),
        "data is not problem information"
    );

    // Allowed when the client did not turn it off.
    let mut s = session(with_method(v5("c")));
    s.send_auth(a);
    assert_eq!(
        sent_auth(&mut s).properties.reason_string.as_deref(),
        Some("more please")
    );
}

#[test]
fn v5_mqtt_3_1_2_29_acks_carry_no_reason_string_or_user_properties() {
    let mut c = v5("c");
    c.properties.request_problem_information = Some(false);
    let mut s = session(c);
    s.handle_packet(
        t0(),
        Packet::Publish(publish("a", roost_codec::QoS::AtLeastOnce, Some(1))),
    )
    .unwrap();
    s.complete_publish(
        pid(1),
        roost_codec::QoS::AtLeastOnce,
        ReasonCode::NOT_AUTHORIZED,
    );
    s.complete_subscribe(
        &subscribe(2, &[("a", roost_codec::QoS::AtMostOnce)]),
        &[ReasonCode::NOT_AUTHORIZED],
    );
    s.handle_packet(t0(), Packet::PubRel(ack(3))).unwrap();
    for p in drain(&mut s) {
        let props = match &p {
            Packet::PubAck(a) | Packet::PubComp(a) => &a.properties,
            Packet::SubAck(a) => &a.properties,
            other => panic!("{other:?}"),
        };
        assert!(props.is_empty(), "{p:?}");
    }
}
