//! Client DISCONNECT (will, session expiry), server close, and the timer
//! arithmetic for will delay and session expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use roost_codec::{
    Disconnect, DisconnectProperties, LastWill, Packet, QoS, ReasonCode, WillProperties,
};
use roost_session::{Inbound, Message, Violation, session_expires_at, will_fire_at};

fn will(delay: Option<u32>) -> LastWill {
    LastWill {
        topic: "status/c".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties {
            will_delay_interval: delay,
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            ..WillProperties::default()
        },
    }
}

fn with_will(mut c: roost_codec::Connect, delay: Option<u32>) -> roost_codec::Connect {
    c.will = Some(will(delay));
    c
}

fn disconnect(rc: ReasonCode, expiry: Option<u32>) -> Packet {
    Packet::Disconnect(Disconnect {
        reason_code: rc,
        properties: DisconnectProperties {
            session_expiry_interval: expiry,
            ..DisconnectProperties::default()
        },
    })
}

#[test]
fn v5_mqtt_3_1_2_7_will_is_stored_with_the_session() {
    let s = session(with_will(v5("c"), Some(5)));
    assert_eq!(s.will().map(|w| w.topic.as_ref()), Some("status/c"));
    assert_eq!(s.will_delay(), 5);
}

#[test]
fn v311_mqtt_3_1_2_12_no_will_flag_no_will() {
    let s = session(v311("c"));
    assert!(s.will().is_none());
    assert_eq!(s.will_delay(), 0);
}

#[test]
fn v5_mqtt_3_14_4_3_and_v5_mqtt_3_1_2_10_disconnect_0x00_discards_the_will() {
    let mut s = session(with_will(v5("c"), None));
    let inbound = s
        .handle_packet(t0(), disconnect(ReasonCode::NORMAL_DISCONNECTION, None))
        .unwrap();
    assert!(matches!(
        inbound,
        Inbound::Disconnect {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            publish_will: false
        }
    ));
    assert!(s.will().is_none());
}

#[test]
fn v5_mqtt_3_1_2_8_disconnect_0x04_keeps_the_will() {
    let mut s = session(with_will(v5("c"), None));
    let inbound = s
        .handle_packet(t0(), disconnect(ReasonCode::DISCONNECT_WITH_WILL, None))
        .unwrap();
    assert!(matches!(
        inbound,
        Inbound::Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            publish_will: true
        }
    ));
    assert!(s.will().is_some());
}

#[test]
fn v5_mqtt_3_1_2_8_disconnect_with_error_code_keeps_the_will() {
    let mut s = session(with_will(v5("c"), None));
    let inbound = s
        .handle_packet(t0(), disconnect(ReasonCode::UNSPECIFIED_ERROR, None))
        .unwrap();
    assert!(matches!(
        inbound,
        Inbound::Disconnect {
            publish_will: true,
            ..
        }
    ));
}

#[test]
fn disconnect_without_a_will_publishes_nothing() {
    let mut s = session(v5("c"));
    let inbound = s
        .handle_packet(t0(), disconnect(ReasonCode::DISCONNECT_WITH_WILL, None))
        .unwrap();
    assert!(matches!(
        inbound,
        Inbound::Disconnect {
            publish_will: false,
            ..
        }
    ));
}

#[test]
fn v311_mqtt_3_14_4_3_and_v311_mqtt_3_1_2_10_disconnect_discards_the_will() {
    let mut s = session(with_will(v311("c"), None));
    let inbound = s
        .handle_packet(t0(), disconnect(ReasonCode::NORMAL_DISCONNECTION, None))
        .unwrap();
    assert!(matches!(
        inbound,
        Inbound::Disconnect {
            publish_will: false,
            ..
        }
    ));
    assert!(s.will().is_none());
}

#[test]
fn v311_mqtt_3_1_2_8_will_kept_until_disconnect() {
    let mut s = session(with_will(v311("c"), None));
    // The network connection ends without DISCONNECT: the will is still there for the broker.
    assert!(s.take_will().is_some());
    assert!(s.will().is_none(), "removed once published [MQTT-3.1.2-10]");
}

#[test]
fn v5_disconnect_session_expiry_from_0_to_non_zero_is_a_protocol_error() {
    let mut s = session(v5("c"));
    let err = s
        .handle_packet(t0(), disconnect(ReasonCode::NORMAL_DISCONNECTION, Some(60)))
        .unwrap_err();
    assert_eq!(err, Violation::SessionExpiryFromZero);
    assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    // 0 → 0 is fine.
    let mut s = session(v5("c"));
    s.handle_packet(t0(), disconnect(ReasonCode::NORMAL_DISCONNECTION, Some(0)))
        .unwrap();
    assert_eq!(s.session_expiry_interval(), 0);
}

#[test]
fn v5_mqtt_3_1_2_23_disconnect_updates_session_expiry() {
    let cfg = config_with(|c| c.max_session_expiry_interval = 3600);
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(10);
    let mut s = session_with(c, cfg);
    s.handle_packet(
        t0(),
        disconnect(ReasonCode::NORMAL_DISCONNECTION, Some(100_000)),
    )
    .unwrap();
    assert_eq!(s.session_expiry_interval(), 3600, "capped");
    let state = s.into_state();
    assert_eq!(
        state.session_expiry_interval(),
        3600,
        "state kept after the connection closes"
    );

    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(10);
    let mut s = session(c);
    s.handle_packet(t0(), disconnect(ReasonCode::NORMAL_DISCONNECTION, Some(0)))
        .unwrap();
    assert_eq!(s.session_expiry_interval(), 0, "may be lowered to 0");
}

#[test]
fn v5_mqtt_3_1_2_8_will_fires_at_the_earlier_of_delay_and_session_expiry() {
    let closed = at(100.0);
    assert_eq!(
        will_fire_at(closed, 30, 60),
        closed + Duration::from_secs(30)
    );
    assert_eq!(
        will_fire_at(closed, 120, 60),
        closed + Duration::from_secs(60)
    );
    assert_eq!(will_fire_at(closed, 0, 60), closed);
    assert_eq!(
        will_fire_at(closed, 30, 0),
        closed,
        "session ends with the connection"
    );
    assert_eq!(
        will_fire_at(closed, u32::MAX, u32::MAX),
        closed + Duration::from_secs(u64::from(u32::MAX))
    );
}

#[test]
fn v5_mqtt_4_1_0_2_session_expires_after_interval() {
    let closed = at(100.0);
    assert_eq!(session_expires_at(closed, 0), Some(closed));
    assert_eq!(
        session_expires_at(closed, 60),
        Some(closed + Duration::from_secs(60))
    );
    assert_eq!(session_expires_at(closed, u32::MAX), None);
}

#[test]
fn v5_mqtt_3_1_2_15_and_v5_mqtt_3_1_3_10_will_message_keeps_retain_and_property_order() {
    let s = session(with_will(v5("c"), Some(5)));
    let w = s.will().cloned().unwrap();
    let m = Message::from_will(w, Some(s.client_id().clone()), at(10.0));
    assert!(m.retain);
    assert_eq!(m.qos, QoS::AtLeastOnce);
    assert_eq!(
        m.properties.user_properties,
        vec![("b".into(), "2".into()), ("a".into(), "1".into())]
    );
    assert_eq!(m.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(m.expires_at, Some(at(70.0)));
    assert_eq!(m.publisher.as_deref(), Some("c"));
}

#[test]
fn v5_mqtt_3_1_2_14_non_retained_will_is_published_non_retained() {
    let mut w = will(None);
    w.retain = false;
    assert!(!Message::from_will(w, None, t0()).retain);
}

#[test]
fn v311_mqtt_3_1_2_16_and_v311_mqtt_3_1_2_17_will_retain_flag_is_kept() {
    for retain in [false, true] {
        let mut c = v311("c");
        let mut w = will(None);
        w.retain = retain;
        w.properties = WillProperties::default();
        c.will = Some(w);
        let s = session(c);
        assert_eq!(
            Message::from_will(s.will().cloned().unwrap(), None, t0()).retain,
            retain
        );
    }
}

// ---------------------------------------------------------------- server close

#[test]
fn v5_mqtt_3_14_2_2_server_disconnect_has_no_session_expiry() {
    let mut c = v5("c");
    c.properties.session_expiry_interval = Some(100);
    let mut s = session(c);
    let Some(Packet::Disconnect(d)) = s.close(ReasonCode::SERVER_SHUTTING_DOWN, Some("bye"), None)
    else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.reason_code, ReasonCode::SERVER_SHUTTING_DOWN);
    assert_eq!(d.properties.session_expiry_interval, None);
    assert_eq!(d.properties.reason_string.as_deref(), Some("bye"));
}

#[test]
fn v5_mqtt_3_14_2_1_server_disconnect_uses_disconnect_reason_codes() {
    let mut s = session(v5("c"));
    let Some(Packet::Disconnect(d)) = s.close(ReasonCode::BAD_AUTHENTICATION_METHOD, None, None)
    else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.reason_code, ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn v5_server_disconnect_carries_server_reference() {
    let mut s = session(v5("c"));
    let Some(Packet::Disconnect(d)) = s.close(ReasonCode::USE_ANOTHER_SERVER, None, Some("b:1883"))
    else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.properties.server_reference.as_deref(), Some("b:1883"));
}

#[test]
fn v5_mqtt_3_1_2_29_server_disconnect_reason_string_only_when_allowed() {
    let mut c = v5("c");
    c.properties.request_problem_information = Some(false);
    let mut s = session(c);
    let Some(Packet::Disconnect(d)) =
        s.close(ReasonCode::ADMINISTRATIVE_ACTION, Some("kicked"), None)
    else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.properties.reason_string, None);
}

#[test]
fn v5_mqtt_3_14_2_3_reason_string_left_out_when_too_large() {
    let mut c = v5("c");
    c.properties.maximum_packet_size = Some(20);
    let mut s = session(c);
    let long = "x".repeat(64);
    let Some(Packet::Disconnect(d)) = s.close(ReasonCode::ADMINISTRATIVE_ACTION, Some(&long), None)
    else {
        panic!("expected DISCONNECT");
    };
    assert_eq!(d.properties.reason_string, None);
    assert_eq!(d.reason_code, ReasonCode::ADMINISTRATIVE_ACTION);
}

#[test]
fn v5_mqtt_3_14_4_1_nothing_is_sent_after_disconnect() {
    let mut s = session(v5("c"));
    s.handle_packet(t0(), Packet::PingReq).unwrap();
    assert!(
        s.close(ReasonCode::SERVER_SHUTTING_DOWN, None, None)
            .is_some()
    );
    assert!(
        s.close(ReasonCode::SERVER_SHUTTING_DOWN, None, None)
            .is_none(),
        "one DISCONNECT only"
    );
    assert!(drain(&mut s).is_empty(), "queued PINGRESP discarded");
    s.handle_packet(t0(), Packet::PingReq).unwrap();
    let _ = s.handle_delivery(t0(), delivery("t", QoS::AtLeastOnce));
    assert!(drain(&mut s).is_empty());
    assert!(s.is_closed());
}

#[test]
fn v311_server_close_sends_no_disconnect() {
    let mut s = session(v311("c"));
    assert!(
        s.close(ReasonCode::SESSION_TAKEN_OVER, None, None)
            .is_none()
    );
    assert!(s.is_closed());
}

#[test]
fn deliveries_after_close_are_kept_for_the_next_connection() {
    let mut s = session(v5("c"));
    let _ = s.close(ReasonCode::SESSION_TAKEN_OVER, None, None);
    assert_eq!(
        s.handle_delivery(t0(), delivery("t", QoS::AtLeastOnce)),
        roost_session::DeliveryOutcome::Queued
    );
    assert_eq!(
        s.handle_delivery(t0(), delivery("t", QoS::AtMostOnce)),
        roost_session::DeliveryOutcome::Dropped(roost_session::DropReason::Qos0WhileOffline)
    );
    assert_eq!(s.into_state().queued_len(), 1);
}

#[test]
fn v5_mqtt_3_14_0_1_no_disconnect_before_connack() {
    let mut s = roost_session::Session::accept(v5("c"), None, None, config(), None, t0());
    assert!(
        s.close(ReasonCode::SESSION_TAKEN_OVER, None, None)
            .is_none()
    );
    assert!(s.poll_transmit(t0()).is_none());
}
