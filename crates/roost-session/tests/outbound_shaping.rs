//! Shaping of messages to the client: expiry, property forwarding, topic
//! aliases and the client's Maximum Packet Size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use roost_codec::{Packet, PubResponse, QoS};
use roost_session::{Delivery, DeliveryOutcome, DropReason, Message};
use smallvec::smallvec;

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
