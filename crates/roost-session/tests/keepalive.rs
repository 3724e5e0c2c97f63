//! Keep-alive: 1.5 × the interval since the last packet, reset by any
//! packet, 0 disables it, Server Keep Alive caps it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use roost_codec::{Packet, QoS, ReasonCode};
use roost_session::{Violation, effective_keep_alive};

fn with_keep_alive(mut c: roost_codec::Connect, secs: u16) -> roost_codec::Connect {
    c.keep_alive = secs;
    c
}

#[test]
fn v5_mqtt_3_1_2_22_no_packet_within_one_and_a_half_keep_alive_closes() {
    let mut s = session(with_keep_alive(v5("c"), 10));
    assert_eq!(s.poll_timeout(), Some(at(15.0)));
    assert_eq!(s.handle_timeout(at(14.999)), Ok(()));
    let err = s.handle_timeout(at(15.0)).unwrap_err();
    assert_eq!(err, Violation::KeepAliveTimeout);
    assert_eq!(err.reason_code(), ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn v311_mqtt_3_1_2_24_no_packet_within_one_and_a_half_keep_alive_closes() {
    let mut s = session(with_keep_alive(v311("c"), 4));
    assert_eq!(s.poll_timeout(), Some(at(6.0)));
    assert_eq!(s.handle_timeout(at(5.9)), Ok(()));
    assert_eq!(s.handle_timeout(at(6.0)), Err(Violation::KeepAliveTimeout));
}

#[test]
fn v5_mqtt_3_1_2_22_any_packet_resets_the_timer() {
    let mut s = session(with_keep_alive(v5("c"), 10));
    s.handle_packet(at(10.0), Packet::PingReq).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(25.0)));
    s.handle_packet(
        at(20.0),
        Packet::Publish(publish("t", QoS::AtMostOnce, None)),
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(at(35.0)));
    assert_eq!(s.handle_timeout(at(34.0)), Ok(()));
    // Even a packet that turns out to be a violation shows the peer is alive.
    let _ = s.handle_packet(at(30.0), Packet::PingResp);
    assert_eq!(s.poll_timeout(), Some(at(45.0)));
}

#[test]
fn keep_alive_deadline_never_moves_back() {
    let mut s = session(with_keep_alive(v5("c"), 10));
    s.handle_packet(at(10.0), Packet::PingReq).unwrap();
    s.handle_packet(at(5.0), Packet::PingReq).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(25.0)));
}

#[test]
fn v5_mqtt_3_1_2_22_and_v311_mqtt_3_1_2_24_keep_alive_0_disables_the_timer() {
    for c in [v5("c"), v311("c")] {
        let mut s = session(with_keep_alive(c, 0));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(at(1_000_000.0)), Ok(()));
    }
}

#[test]
fn v5_server_keep_alive_caps_client_value() {
    let cfg = config_with(|c| c.server_keep_alive = Some(30));
    // Asking for more than the cap, or for none at all, gets the cap.
    for asked in [0, 31, 600] {
        let (s, out) = accept_with(with_keep_alive(v5("c"), asked), None, cfg.clone(), t0());
        assert_eq!(
            connack(&out).properties.server_keep_alive,
            Some(30),
            "asked {asked}"
        );
        assert_eq!(s.keep_alive(), 30);
        assert_eq!(s.poll_timeout(), Some(at(45.0)));
    }
}

#[test]
fn v5_mqtt_3_2_2_22_without_server_keep_alive_the_client_value_is_used() {
    let cfg = config_with(|c| c.server_keep_alive = Some(30));
    let (s, out) = accept_with(with_keep_alive(v5("c"), 20), None, cfg, t0());
    assert_eq!(connack(&out).properties.server_keep_alive, None);
    assert_eq!(s.keep_alive(), 20);
    assert_eq!(s.poll_timeout(), Some(at(30.0)));

    let (s, out) = accept_with(with_keep_alive(v5("c"), 20), None, config(), t0());
    assert_eq!(connack(&out).properties.server_keep_alive, None);
    assert_eq!(s.keep_alive(), 20);
}

#[test]
fn v311_server_keep_alive_cap_does_not_apply() {
    let cfg = config_with(|c| c.server_keep_alive = Some(30));
    let (s, _) = accept_with(with_keep_alive(v311("c"), 600), None, cfg, t0());
    assert_eq!(s.keep_alive(), 600);
    assert_eq!(
        effective_keep_alive(0, Some(30), roost_codec::ProtocolVersion::V311).seconds,
        0
    );
}

#[test]
fn keep_alive_deadline_is_exactly_one_and_a_half_times() {
    let mut s = session(with_keep_alive(v5("c"), 1));
    assert_eq!(s.poll_timeout(), Some(t0() + Duration::from_millis(1500)));
    let mut s2 = session(with_keep_alive(v5("c"), u16::MAX));
    assert_eq!(
        s2.poll_timeout(),
        Some(t0() + Duration::from_millis(u64::from(u16::MAX) * 1500))
    );
    assert_eq!(s.handle_timeout(t0() + Duration::from_millis(1499)), Ok(()));
    assert_eq!(s2.handle_timeout(at(90_000.0)), Ok(()));
}

#[test]
fn no_timeout_after_close() {
    let mut s = session(with_keep_alive(v5("c"), 10));
    let _ = s.close(ReasonCode::SERVER_SHUTTING_DOWN, None, None);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(at(100.0)), Ok(()));
}
