//! The compact form of an idle session (`Session::into_quiet`, kept while a
//! connection hibernates): it refuses a session with anything under way,
//! and waking it gives back the same protocol state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use roost_codec::{Packet, PubResponse, QoS, ReasonCode};
use roost_session::{DeliveryOutcome, Inbound, Session};

/// A v5 session with a subscription, an outbound topic alias in use, a
/// delivery acknowledged (the packet-identifier allocator has moved) and
/// every packet written: idle, but not fresh.
fn idle_session() -> Session {
    let mut s = session(with_alias_max(v5("quiet"), 4));
    let sub = match s
        .handle_packet(
            t0(),
            Packet::Subscribe(subscribe(7, &[("a/+", QoS::AtLeastOnce)])),
        )
        .unwrap()
    {
        Inbound::Subscribe(sub) => sub,
        other => panic!("{other:?}"),
    };
    s.complete_subscribe(&sub, &[ReasonCode::GRANTED_QOS_1]);
    deliver(&mut s, "a/b", QoS::AtLeastOnce);
    let sent = publishes(&drain(&mut s))
        .into_iter()
        .map(|p| p.packet_id.unwrap())
        .collect::<Vec<_>>();
    assert_eq!(sent.len(), 1);
    s.handle_packet(t0(), Packet::PubAck(PubResponse::success(sent[0])))
        .unwrap();
    s.release_idle_memory();
    s
}

#[test]
fn an_idle_session_wakes_with_the_same_state() {
    let s = idle_session();
    let before = format!("{s:?}");
    let client_id = s.client_id().clone();
    let quiet = s.into_quiet().expect("idle");
    assert_eq!(format!("{:?}", quiet.wake(client_id)), before);
}

#[test]
fn sessions_that_never_used_aliases_wake_with_the_same_state() {
    for connect in [
        v5("plain"),
        v311("plain"),
        with_alias_max(v5("plain"), 9),
        // The encoder is rebuilt on waking, with the client's limit.
        with_maximum_packet_size(v5("plain"), 300),
    ] {
        let mut s = session(connect);
        s.release_idle_memory();
        let before = format!("{s:?}");
        let quiet = s.into_quiet().expect("idle");
        assert_eq!(format!("{:?}", quiet.wake("plain".into())), before);
    }
}

#[test]
fn a_session_that_dropped_messages_wakes_with_its_drop_counts() {
    // A 20-byte Maximum Packet Size: the delivery below cannot be sent.
    let mut s = session(with_maximum_packet_size(v5("dropper"), 20));
    let outcome = deliver(&mut s, "a/topic/longer/than/the/limit", QoS::AtMostOnce);
    assert!(
        matches!(outcome, DeliveryOutcome::Dropped(_)),
        "{outcome:?}"
    );
    assert_eq!(s.stats().dropped.total(), 1);
    s.release_idle_memory();
    let before = format!("{s:?}");
    let woken = s.into_quiet().expect("idle").wake("dropper".into());
    assert_eq!(format!("{woken:?}"), before);
    assert_eq!(woken.stats().dropped.total(), 1);
}

#[test]
fn a_woken_session_goes_on_where_it_stopped() {
    let mut reference = idle_session();
    let mut woken = idle_session()
        .into_quiet()
        .expect("idle")
        .wake("quiet".into());
    // The next delivery uses the alias already sent (topic only once) and
    // the next packet identifier after the acknowledged one, as without the
    // hibernation.
    deliver(&mut reference, "a/b", QoS::AtLeastOnce);
    deliver(&mut woken, "a/b", QoS::AtLeastOnce);
    let expected = only_publish(&mut reference);
    let got = only_publish(&mut woken);
    assert_eq!(got.packet_id, expected.packet_id);
    assert_eq!(got.properties.topic_alias, Some(1));
    assert_eq!(got.topic, expected.topic);
    assert_eq!(got.topic, "", "the alias stands for the topic");
}

#[test]
fn a_session_with_a_packet_to_write_stays_as_it_is() {
    let mut s = session(v5("c"));
    s.handle_packet(t0(), Packet::PingReq).unwrap(); // PINGRESP not written yet
    let mut back = s.into_quiet().expect_err("PINGRESP pending");
    assert_eq!(drain(&mut back), [Packet::PingResp]);
}

#[test]
fn a_session_with_a_delivery_in_flight_stays_as_it_is() {
    let mut s = session(v5("c"));
    s.handle_packet(
        t0(),
        Packet::Subscribe(subscribe(1, &[("t", QoS::AtLeastOnce)])),
    )
    .unwrap();
    deliver(&mut s, "t", QoS::AtLeastOnce);
    drain(&mut s);
    let back = s.into_quiet().expect_err("PUBACK outstanding");
    assert_eq!(back.state().inflight_len(), 1);
}

#[test]
fn a_session_with_an_inbound_qos_2_exchange_open_stays_as_it_is() {
    let mut s = session(v5("c"));
    drain(&mut s);
    let inbound = s
        .handle_packet(
            t0(),
            Packet::Publish(publish("t", QoS::ExactlyOnce, Some(3))),
        )
        .unwrap();
    let (_, id) = inbound_message(inbound);
    s.complete_publish(id.unwrap(), QoS::ExactlyOnce, ReasonCode::SUCCESS);
    drain(&mut s); // PUBREC written; PUBREL not yet received
    assert!(s.into_quiet().is_err(), "awaiting PUBREL");
}
