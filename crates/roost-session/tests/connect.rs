//! CONNECT checks and CONNACK contents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use bytestring::ByteString;
use common::*;
use roost_codec::{
    ConnectReturnCode, LastWill, Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions,
    WillProperties,
};
use roost_session::{
    AuthSuccess, Session, SessionState, Subscription, check_connect, connack_refusal,
};

fn will(qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: "will/topic".into(),
        payload: Bytes::from_static(b"bye"),
        qos,
        retain,
        properties: WillProperties::default(),
    }
}

fn stored_state(client_id: &str) -> SessionState {
    let mut s = SessionState::new(client_id.into());
    s.subscriptions.insert(
        "a/b".into(),
        Subscription {
            options: SubscriptionOptions::default(),
            identifier: None,
        },
    );
    s
}

// ---------------------------------------------------------------- check_connect

#[test]
fn v311_mqtt_3_1_3_8_empty_client_id_with_clean_session_0_is_identifier_rejected() {
    let mut c = v311("");
    c.clean_start = false;
    let rc = check_connect(&c, &config()).unwrap_err();
    assert_eq!(
        ConnectReturnCode::from_reason(rc),
        ConnectReturnCode::IdentifierRejected
    );
    let ack = connack_refusal(&c, rc, None, None);
    assert!(!ack.session_present);
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
}

#[test]
fn v311_mqtt_3_1_3_6_empty_client_id_with_clean_session_1_is_assigned_one() {
    let c = v311("");
    assert_eq!(check_connect(&c, &config()), Ok(()));
    let s = Session::accept(c, Some("auto-1".into()), None, config(), None, t0());
    assert_eq!(s.client_id(), "auto-1");
    assert_eq!(s.state().client_id, "auto-1");
}

#[test]
fn v31_empty_client_id_is_rejected() {
    let c = connect(ProtocolVersion::V31, "");
    assert_eq!(
        check_connect(&c, &config()),
        Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
    );
}

#[test]
fn mqtt_3_1_3_5_short_alphanumeric_client_ids_are_allowed() {
    let alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for len in 1..=23 {
            for start in [0, 20, alphabet.len() - len] {
                let id = &alphabet[start..start + len];
                let mut c = connect(version, id);
                c.clean_start = false;
                assert_eq!(check_connect(&c, &config()), Ok(()), "{version:?} {id}");
            }
        }
    }
}

#[test]
fn v5_mqtt_3_1_3_8_client_id_over_limit_is_refused_with_0x85() {
    let cfg = config_with(|c| c.max_client_id_len = 8);
    assert_eq!(
        check_connect(&v5("123456789"), &cfg),
        Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
    );
    assert_eq!(check_connect(&v5("12345678"), &cfg), Ok(()));
}

#[test]
fn v311_mqtt_3_1_3_9_rejected_client_id_gets_return_code_2() {
    let cfg = config_with(|c| c.max_client_id_len = 4);
    let c = v311("too-long");
    let rc = check_connect(&c, &cfg).unwrap_err();
    assert_eq!(
        ConnectReturnCode::from_reason(rc),
        ConnectReturnCode::IdentifierRejected
    );
}

#[test]
fn v5_mqtt_3_1_3_6_empty_client_id_accepted_and_v5_mqtt_3_1_3_7_assigned_id_returned() {
    let mut c = v5("");
    c.clean_start = false;
    assert_eq!(check_connect(&c, &config()), Ok(()));
    let mut s = Session::accept(c, Some("roost-abc".into()), None, config(), None, t0());
    let out = drain(&mut s);
    let ack = connack(&out);
    assert_eq!(
        ack.properties.assigned_client_identifier.as_deref(),
        Some("roost-abc")
    );
    assert_eq!(s.client_id(), "roost-abc");
}

#[test]
fn v5_mqtt_3_2_2_16_connack_carries_assigned_client_identifier() {
    let mut s = Session::accept(
        v5(""),
        Some("assigned-7".into()),
        None,
        config(),
        None,
        t0(),
    );
    let out = drain(&mut s);
    assert_eq!(
        connack(&out)
            .properties
            .assigned_client_identifier
            .as_deref(),
        Some("assigned-7")
    );
}

#[test]
fn no_assigned_client_identifier_when_client_chose_one() {
    let (_, out) = accept_with(v5("mine"), None, config(), t0());
    assert_eq!(connack(&out).properties.assigned_client_identifier, None);
}

#[test]
fn v5_mqtt_3_2_2_12_will_qos_above_maximum_is_refused_with_0x9b() {
    let cfg = config_with(|c| c.maximum_qos = QoS::AtLeastOnce);
    let mut c = v5("c");
    c.will = Some(will(QoS::ExactlyOnce, false));
    assert_eq!(check_connect(&c, &cfg), Err(ReasonCode::QOS_NOT_SUPPORTED));
    c.will = Some(will(QoS::AtLeastOnce, false));
    assert_eq!(check_connect(&c, &cfg), Ok(()));
}

#[test]
fn v5_mqtt_3_2_2_13_will_retain_unsupported_is_refused_with_0x9a() {
    let cfg = config_with(|c| c.retain_available = false);
    let mut c = v5("c");
    c.will = Some(will(QoS::AtMostOnce, true));
    assert_eq!(
        check_connect(&c, &cfg),
        Err(ReasonCode::RETAIN_NOT_SUPPORTED)
    );
    c.will = Some(will(QoS::AtMostOnce, false));
    assert_eq!(check_connect(&c, &cfg), Ok(()));
}

#[test]
fn will_topic_must_be_a_valid_topic_name() {
    let mut c = v5("c");
    let mut w = will(QoS::AtMostOnce, false);
    w.topic = "will/#".into();
    c.will = Some(w);
    assert_eq!(
        check_connect(&c, &config()),
        Err(ReasonCode::TOPIC_NAME_INVALID)
    );
}

#[test]
fn will_payload_flagged_utf8_must_be_utf8() {
    let mut c = v5("c");
    let mut w = will(QoS::AtMostOnce, false);
    w.payload = Bytes::from_static(&[0xff, 0xfe]);
    w.properties.payload_format_indicator = Some(true);
    c.will = Some(w);
    assert_eq!(
        check_connect(&c, &config()),
        Err(ReasonCode::PAYLOAD_FORMAT_INVALID)
    );
}

// ---------------------------------------------------------------- CONNACK

#[test]
fn v5_mqtt_3_1_4_5_connack_success() {
    let (_, out) = accept_with(v5("c"), None, config(), t0());
    assert_eq!(connack(&out).reason_code, ReasonCode::SUCCESS);
}

#[test]
fn v311_mqtt_3_1_4_4_connack_zero_return_code() {
    let (_, out) = accept_with(v311("c"), None, config(), t0());
    assert_eq!(connack(&out).reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        ConnectReturnCode::from_reason(connack(&out).reason_code),
        ConnectReturnCode::Accepted
    );
}

#[test]
fn v5_mqtt_3_2_2_2_v5_mqtt_3_1_2_4_and_v5_mqtt_3_1_4_4_clean_start_discards_session() {
    let (s, out) = accept_with(v5("c"), Some(stored_state("c")), config(), t0());
    assert!(!connack(&out).session_present);
    assert!(!s.session_present());
    assert!(s.subscriptions().is_empty());
}

#[test]
fn v5_mqtt_3_2_2_3_and_v5_mqtt_3_1_2_5_resume_sets_session_present() {
    let mut c = v5("c");
    c.clean_start = false;
    let (s, out) = accept_with(c, Some(stored_state("c")), config(), t0());
    assert!(connack(&out).session_present);
    assert!(s.session_present());
    assert!(s.subscriptions().contains_key("a/b"));
}

#[test]
fn v5_mqtt_3_2_2_3_and_v5_mqtt_3_1_2_6_no_stored_session_creates_one() {
    let mut c = v5("c");
    c.clean_start = false;
    let (s, out) = accept_with(c, None, config(), t0());
    assert!(!connack(&out).session_present);
    assert!(s.subscriptions().is_empty());
}

#[test]
fn v311_mqtt_3_2_2_1_v311_mqtt_3_1_2_6_and_v311_mqtt_3_1_4_3_clean_session_1_present_0() {
    let (s, out) = accept_with(v311("c"), Some(stored_state("c")), config(), t0());
    assert!(!connack(&out).session_present);
    assert!(s.subscriptions().is_empty());
    assert_eq!(
        s.session_expiry_interval(),
        0,
        "a clean session lasts as long as the connection"
    );
}

#[test]
fn v311_mqtt_3_2_2_2_and_v311_mqtt_3_1_2_4_clean_session_0_with_state_present_1() {
    let mut c = v311("c");
    c.clean_start = false;
    let (s, out) = accept_with(c, Some(stored_state("c")), config(), t0());
    assert!(connack(&out).session_present);
    assert!(s.subscriptions().contains_key("a/b"));
    assert_eq!(
        s.session_expiry_interval(),
        u32::MAX,
        "kept after disconnect"
    );
}

#[test]
fn v311_mqtt_3_2_2_3_clean_session_0_without_state_present_0() {
    let mut c = v311("c");
    c.clean_start = false;
    let (_, out) = accept_with(c, None, config(), t0());
    assert!(!connack(&out).session_present);
}

#[test]
fn v311_connack_has_no_properties() {
    let (_, out) = accept_with(v311("c"), None, config(), t0());
    assert_eq!(connack(&out).properties, Default::default());
}

#[test]
fn v5_mqtt_3_2_2_6_refusal_has_session_present_0() {
    let mut c = v5("c");
    c.clean_start = false;
    let ack = connack_refusal(&c, ReasonCode::NOT_AUTHORIZED, Some("no"), None);
    assert!(!ack.session_present);
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(ack.properties.reason_string.as_deref(), Some("no"));
}

#[test]
fn v311_mqtt_3_2_2_4_refusal_has_session_present_0() {
    let mut c = v311("c");
    c.clean_start = false;
    let ack = connack_refusal(&c, ReasonCode::BAD_USER_NAME_OR_PASSWORD, None, None);
    assert!(!ack.session_present);
    assert_eq!(
        ConnectReturnCode::from_reason(ack.reason_code),
        ConnectReturnCode::BadUserNameOrPassword
    );
}

#[test]
fn v5_mqtt_3_2_2_8_refusal_uses_a_connect_reason_code() {
    let ack = connack_refusal(&v5("c"), ReasonCode::KEEP_ALIVE_TIMEOUT, None, None);
    assert_eq!(ack.reason_code, ReasonCode::UNSPECIFIED_ERROR);
    let ack = connack_refusal(&v5("c"), ReasonCode::SERVER_MOVED, None, Some("other:1883"));
    assert_eq!(ack.reason_code, ReasonCode::SERVER_MOVED);
    assert_eq!(
        ack.properties.server_reference.as_deref(),
        Some("other:1883")
    );
}

#[test]
fn v5_mqtt_3_1_2_29_refusal_without_reason_string_when_problem_information_0() {
    let mut c = v5("c");
    c.properties.request_problem_information = Some(false);
    let ack = connack_refusal(&c, ReasonCode::NOT_AUTHORIZED, Some("no"), None);
    assert_eq!(ack.properties.reason_string, None);
}

#[test]
fn v5_mqtt_3_2_2_19_refusal_reason_string_left_out_when_too_large() {
    let mut c = v5("c");
    c.properties.maximum_packet_size = Some(32);
    let long = "x".repeat(100);
    let ack = connack_refusal(&c, ReasonCode::NOT_AUTHORIZED, Some(&long), None);
    assert_eq!(ack.properties.reason_string, None);
    let ack = connack_refusal(&c, ReasonCode::NOT_AUTHORIZED, Some("short"), None);
    assert_eq!(ack.properties.reason_string.as_deref(), Some("short"));
}

#[test]
fn v5_mqtt_3_2_2_9_maximum_qos_advertised_when_qos_2_unsupported() {
    let (_, out) = accept_with(
        v5("c"),
        None,
        config_with(|c| c.maximum_qos = QoS::AtLeastOnce),
        t0(),
    );
    assert_eq!(connack(&out).properties.maximum_qos, Some(QoS::AtLeastOnce));
    let (_, out) = accept_with(v5("c"), None, config(), t0());
    assert_eq!(
        connack(&out).properties.maximum_qos,
        None,
        "absent means QoS 2"
    );
}

#[test]
fn v5_connack_advertises_server_limits() {
    let cfg = config_with(|c| {
        c.receive_maximum = 10;
        c.retain_available = false;
        c.maximum_packet_size = 4096;
        c.topic_alias_maximum = 5;
        c.wildcard_subscription_available = false;
        c.subscription_identifiers_available = false;
        c.shared_subscription_available = false;
    });
    let (_, out) = accept_with(v5("c"), None, cfg, t0());
    let p = &connack(&out).properties;
    assert_eq!(p.receive_maximum, Some(10));
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.topic_alias_maximum, Some(5));
    assert_eq!(p.wildcard_subscription_available, Some(false));
    assert_eq!(p.subscription_identifiers_available, Some(false));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.reason_string, None);
}

#[test]
fn v5_session_expiry_capped_and_announced() {
    let cfg = config_with(|c| c.max_session_expiry_interval = 100);
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(1000);
    let (s, out) = accept_with(c, None, cfg.clone(), t0());
    assert_eq!(connack(&out).properties.session_expiry_interval, Some(100));
    assert_eq!(s.session_expiry_interval(), 100);

    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(50);
    let (s, out) = accept_with(c, None, cfg, t0());
    assert_eq!(connack(&out).properties.session_expiry_interval, None);
    assert_eq!(s.session_expiry_interval(), 50);
}

#[test]
fn v5_mqtt_3_1_2_28_response_information_only_when_requested() {
    let cfg = config_with(|c| c.response_information = Some("roost/response/".into()));
    let (_, out) = accept_with(v5("dev1"), None, cfg.clone(), t0());
    assert_eq!(connack(&out).properties.response_information, None);

    let mut c = v5("dev1");
    c.properties.request_response_information = Some(false);
    let (_, out) = accept_with(c, None, cfg.clone(), t0());
    assert_eq!(connack(&out).properties.response_information, None);

    let mut c = v5("dev1");
    c.properties.request_response_information = Some(true);
    let (_, out) = accept_with(c, None, cfg, t0());
    assert_eq!(
        connack(&out).properties.response_information.as_deref(),
        Some("roost/response/dev1")
    );
}

#[test]
fn v5_mqtt_4_12_0_6_no_authentication_method_in_connack_without_one_in_connect() {
    let auth = AuthSuccess {
        method: "SCRAM-SHA-256".into(),
        data: Some(Bytes::from_static(b"x")),
    };
    let mut s = Session::accept(v5("c"), None, None, config(), Some(auth), t0());
    let out = drain(&mut s);
    assert_eq!(connack(&out).properties.authentication_method, None);
    assert_eq!(connack(&out).properties.authentication_data, None);
}

#[test]
fn v5_mqtt_4_12_0_5_connack_carries_connect_authentication_method() {
    let mut c = v5("c");
    c.properties.authentication_method = Some("SCRAM-SHA-256".into());
    let auth = AuthSuccess {
        method: "SCRAM-SHA-256".into(),
        data: Some(Bytes::from_static(b"final")),
    };
    let mut s = Session::accept(c, None, None, config(), Some(auth), t0());
    let out = drain(&mut s);
    let p = &connack(&out).properties;
    assert_eq!(p.authentication_method.as_deref(), Some("SCRAM-SHA-256"));
    assert_eq!(p.authentication_data.as_deref(), Some(&b"final"[..]));
}

#[test]
fn auth_success_debug_redacts_data() {
    let auth = AuthSuccess {
        method: "m".into(),
        data: Some(Bytes::from_static(b"secret")),
    };
    assert!(!format!("{auth:?}").contains("secret"));
}

#[test]
fn v5_mqtt_3_2_0_2_only_one_connack_per_connection() {
    let mut s = session(v5("c"));
    s.handle_packet(t0(), Packet::PingReq).unwrap();
    s.handle_packet(t0(), Packet::Publish(publish("t", QoS::AtMostOnce, None)))
        .unwrap();
    let _ = s.handle_delivery(t0(), delivery("t", QoS::AtLeastOnce));
    let out = drain(&mut s);
    assert!(out.iter().all(|p| !matches!(p, Packet::ConnAck(_))));
}

#[test]
fn client_id_is_kept_as_given() {
    let s = session(v5("Mixed-Case_id"));
    assert_eq!(s.client_id(), &ByteString::from("Mixed-Case_id"));
}

#[test]
fn mqtt_3_1_3_2_client_id_identifies_the_session_state() {
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut c = connect(version, "device-42");
        c.clean_start = false;
        let (s, _) = accept_with(c.clone(), Some(stored_state("device-42")), config(), t0());
        assert_eq!(s.client_id(), "device-42");
        let state = s.into_state();
        assert_eq!(state.client_id, "device-42");
        let (s, out) = accept_with(c, Some(state), config(), t0());
        assert!(connack(&out).session_present);
        assert_eq!(s.state().client_id, "device-42");
    }
}
