//! Packets a client must not send, PINGREQ, and the reason-code table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::*;
use roost_codec::{ConnAck, Decoder, Packet, PacketType, QoS, ReasonCode, SubAck, UnsubAck};
use roost_session::{Inbound, Violation};

#[test]
fn mqtt_3_1_0_2_second_connect_is_a_protocol_error() {
    for c in [v5("c"), v311("c")] {
        let mut s = session(c.clone());
        let err = s
            .handle_packet(t0(), Packet::Connect(Box::new(c)))
            .unwrap_err();
        assert_eq!(err, Violation::SecondConnect);
        assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
        assert_eq!(err.spec_id(), Some("MQTT-3.1.0-2"));
    }
}

#[test]
fn server_only_packets_from_a_client_are_protocol_errors() {
    let mut s = session(v5("c"));
    let packets = [
        Packet::ConnAck(ConnAck::default()),
        Packet::SubAck(SubAck {
            packet_id: pid(1),
            reason_codes: vec![],
            properties: Default::default(),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: pid(1),
            reason_codes: vec![],
            properties: Default::default(),
        }),
        Packet::PingResp,
    ];
    for p in packets {
        let ty = p.packet_type();
        let err = s.handle_packet(t0(), p).unwrap_err();
        assert_eq!(err, Violation::ServerOnlyPacket(ty));
        assert_eq!(err.reason_code(), ReasonCode::PROTOCOL_ERROR);
    }
    assert!(drain(&mut s).is_empty());
}

#[test]
fn mqtt_3_12_4_1_pingreq_gets_pingresp() {
    for c in [v5("c"), v311("c")] {
        let mut s = session(c);
        assert!(matches!(
            s.handle_packet(t0(), Packet::PingReq).unwrap(),
            Inbound::Nothing
        ));
        assert_eq!(drain(&mut s), [Packet::PingResp]);
    }
}

#[test]
fn v5_mqtt_3_14_2_1_every_violation_maps_to_a_disconnect_reason_code() {
    // Table 3-10 (DISCONNECT Reason Codes), codes a server may send.
    let disconnect_codes: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
        0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    let all = [
        Violation::SecondConnect,
        Violation::ServerOnlyPacket(PacketType::ConnAck),
        Violation::V5OnlyPacket(PacketType::Auth),
        Violation::ReceiveMaximumExceeded,
        Violation::TopicAliasInvalid(0),
        Violation::UnknownTopicAlias(3),
        Violation::MissingPacketId,
        Violation::EmptyTopic,
        Violation::QosNotSupported(QoS::ExactlyOnce),
        Violation::RetainNotSupported,
        Violation::TopicTooDeep {
            levels: 9,
            maximum: 8,
        },
        Violation::PayloadFormatInvalid,
        Violation::SharedSubscriptionNoLocal,
        Violation::SessionExpiryFromZero,
        Violation::KeepAliveTimeout,
        Violation::AuthWithoutMethod,
        Violation::BadAuthMethod,
        Violation::UnexpectedAuthReason(ReasonCode::SUCCESS),
    ];
    for v in &all {
        let rc = v.reason_code();
        assert!(rc.is_error(), "{v:?}");
        assert!(disconnect_codes.contains(&rc.0), "{v:?} → {rc}");
        assert_eq!(ReasonCode::from(v), rc);
        assert!(!v.to_string().is_empty());
    }
}

#[test]
fn decode_errors_keep_the_codec_reason_and_spec_id() {
    // A PUBLISH with both QoS bits set [MQTT-3.3.1-4], after a valid CONNECT.
    let mut decoder = Decoder::server(1024);
    let mut buf = BytesMut::new();
    roost_codec::Encoder::new(roost_codec::ProtocolVersion::V5)
        .encode(&Packet::Connect(Box::new(v5("c"))), &mut buf)
        .unwrap();
    buf.extend_from_slice(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    let e = decoder.decode(&mut buf).unwrap_err();
    let v = Violation::from(e.clone());
    assert_eq!(v.reason_code(), ReasonCode::from(&e));
    assert_eq!(v.spec_id(), e.spec_id());
    assert_eq!(v.reason_code(), ReasonCode::MALFORMED_PACKET);
}
