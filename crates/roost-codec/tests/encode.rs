//! Encoder behaviour: short forms, 3.x translations, Maximum Packet Size
//! (including dropping Reason String / User Properties to fit, as the spec
//! requires), and field limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use common::*;
use roost_codec::*;

use ProtocolVersion::{V5, V31, V311};

fn pid(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

fn wire(version: ProtocolVersion, packet: &Packet) -> String {
    hex::encode_upper(&encode(version, packet)[..])
}

fn publish_a(qos: QoS) -> Publish {
    Publish {
        qos,
        topic: ByteString::from_static("a"),
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(1)),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    }
}

// ------------------------------------------------------------ short forms

#[test]
fn v5_puback_success_without_properties_is_remaining_length_2() {
    assert_eq!(
        wire(V5, &Packet::PubAck(PubResponse::success(pid(1)))),
        "40020001"
    );
    assert_eq!(
        wire(V5, &Packet::PubRel(PubResponse::success(pid(2)))),
        "62020002"
    );
}

#[test]
fn v5_every_pub_response_with_success_and_no_properties_is_remaining_length_2() {
    let ok = PubResponse::success(pid(0x0102));
    assert_eq!(wire(V5, &Packet::PubAck(ok.clone())), "40020102");
    assert_eq!(wire(V5, &Packet::PubRec(ok.clone())), "50020102");
    assert_eq!(wire(V5, &Packet::PubRel(ok.clone())), "62020102");
    assert_eq!(wire(V5, &Packet::PubComp(ok.clone())), "70020102");
    // The same bytes as 3.1.1, which has no reason code.
    assert_eq!(wire(V311, &Packet::PubRec(ok.clone())), "50020102");
    assert_eq!(wire(V311, &Packet::PubComp(ok)), "70020102");
    // A reason code other than Success needs the byte.
    let missing = PubResponse {
        reason_code: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        ..PubResponse::success(pid(1))
    };
    assert_eq!(wire(V5, &Packet::PubComp(missing)), "7003000192");
}

#[test]
fn v5_puback_reason_code_without_properties_is_remaining_length_3() {
    let ack = PubResponse {
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..PubResponse::success(pid(1))
    };
    assert_eq!(wire(V5, &Packet::PubAck(ack)), "4003000110");
}

#[test]
fn v5_puback_with_properties_carries_reason_code_and_property_length() {
    let mut ack = PubResponse::success(pid(1));
    ack.properties.reason_string = Some(ByteString::from_static("x"));
    assert_eq!(wire(V5, &Packet::PubAck(ack)), "4008000100041F000178");
}

#[test]
fn v5_disconnect_short_forms() {
    assert_eq!(wire(V5, &Packet::Disconnect(Disconnect::default())), "E000");
    let taken = Disconnect {
        reason_code: ReasonCode::SESSION_TAKEN_OVER,
        ..Disconnect::default()
    };
    assert_eq!(wire(V5, &Packet::Disconnect(taken)), "E0018E");
    // Remaining Length 0 decodes as Normal disconnection.
    let mut d = server_after_connect(V5);
    let p = d.decode(&mut hex("E000")).unwrap().unwrap();
    assert_eq!(
        p,
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::NORMAL_DISCONNECTION,
            ..Default::default()
        })
    );
}

#[test]
fn v5_auth_success_without_properties_is_remaining_length_0() {
    assert_eq!(wire(V5, &Packet::Auth(Auth::default())), "F000");
}

#[test]
fn v5_mqtt_2_2_2_1_no_properties_is_a_property_length_of_zero() {
    assert_eq!(
        wire(V5, &Packet::Publish(publish_a(QoS::AtMostOnce))),
        "3006000161006869"
    );
    let sub = Subscribe {
        packet_id: pid(1),
        filters: vec![(ByteString::from_static("a"), SubscriptionOptions::default())],
        properties: SubscribeProperties::default(),
    };
    assert_eq!(wire(V5, &Packet::Subscribe(sub)), "820700010000016100");
}

#[test]
fn mqtt_4_3_1_1_qos_0_publish_is_sent_with_dup_0() {
    let p = Publish {
        dup: true,
        ..publish_a(QoS::AtMostOnce)
    };
    for v in VERSIONS {
        assert_eq!(encode(v, &Packet::Publish(p.clone()))[0], 0x30, "{v:?}");
    }
}

#[test]
fn v5_mqtt_2_2_1_2_qos_0_publish_has_no_packet_identifier() {
    let p = Publish {
        packet_id: Some(pid(9)),
        ..publish_a(QoS::AtMostOnce)
    };
    assert_eq!(wire(V5, &Packet::Publish(p)), "3006000161006869");
}

#[test]
fn v311_mqtt_2_3_1_5_qos_0_publish_has_no_packet_identifier() {
    let p = Publish {
        packet_id: Some(pid(9)),
        ..publish_a(QoS::AtMostOnce)
    };
    assert_eq!(wire(V311, &Packet::Publish(p)), "30050001616869");
}

#[test]
fn qos_1_publish_without_packet_id_is_refused() {
    let p = Publish {
        packet_id: None,
        ..publish_a(QoS::AtLeastOnce)
    };
    let mut buf = BytesMut::new();
    assert_eq!(
        Encoder::new(V5).encode(&Packet::Publish(p), &mut buf),
        Err(EncodeError::MissingPacketId)
    );
    assert!(buf.is_empty());
}

// ------------------------------------------------------------ 3.x translations

#[test]
fn v311_connack_maps_reason_codes_to_return_codes() {
    for (rc, byte) in [
        (ReasonCode::SUCCESS, 0),
        (ReasonCode::UNSUPPORTED_PROTOCOL_VERSION, 1),
        (ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, 2),
        (ReasonCode::SERVER_BUSY, 3),
        (ReasonCode::BAD_USER_NAME_OR_PASSWORD, 4),
        (ReasonCode::BAD_AUTHENTICATION_METHOD, 4),
        (ReasonCode::BANNED, 5),
        (ReasonCode::NOT_AUTHORIZED, 5),
    ] {
        let ack = ConnAck {
            reason_code: rc,
            ..ConnAck::default()
        };
        assert_eq!(
            wire(V311, &Packet::ConnAck(ack)),
            format!("200200{byte:02X}"),
            "{rc}"
        );
    }
}

#[test]
fn v31_connack_has_no_session_present_flag() {
    let ack = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    assert_eq!(wire(V31, &Packet::ConnAck(ack.clone())), "20020000");
    assert_eq!(wire(V311, &Packet::ConnAck(ack)), "20020100");
    // Found by the roundtrip fuzz target: a 3.1 decoder must not report the
    // reserved bit as Session Present, or decode → encode → decode differs.
    let mut d = Decoder::client(V31, PROTOCOL_MAX_PACKET_SIZE);
    let Some(Packet::ConnAck(decoded)) = d.decode(&mut hex("20020100")).unwrap() else {
        panic!()
    };
    assert!(!decoded.session_present);
}

#[test]
fn v311_mqtt_3_9_3_2_suback_failures_are_encoded_as_0x80() {
    let codes = [
        ReasonCode::GRANTED_QOS_0,
        ReasonCode::GRANTED_QOS_2,
        ReasonCode::NOT_AUTHORIZED,
        ReasonCode(0xA2),
    ]
    .to_vec();
    let ack = SubAck {
        packet_id: pid(1),
        reason_codes: codes,
        properties: AckProperties::default(),
    };
    assert_eq!(wire(V311, &Packet::SubAck(ack)), "9006000100028080");
}

#[test]
fn v311_drops_what_only_v5_carries() {
    let unsuback = UnsubAck {
        packet_id: pid(1),
        reason_codes: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
        properties: AckProperties {
            reason_string: Some("r".into()),
            user_properties: vec![],
        },
    };
    assert_eq!(wire(V311, &Packet::UnsubAck(unsuback)), "B0020001");
    let ack = PubResponse {
        reason_code: ReasonCode::NO_MATCHING_SUBSCRIBERS,
        ..PubResponse::success(pid(1))
    };
    assert_eq!(wire(V311, &Packet::PubAck(ack)), "40020001");
    let mut p = publish_a(QoS::AtMostOnce);
    p.properties.content_type = Some("text/plain".into());
    assert_eq!(wire(V311, &Packet::Publish(p)), "30050001616869");
    let d = Disconnect {
        reason_code: ReasonCode::SERVER_SHUTTING_DOWN,
        ..Disconnect::default()
    };
    assert_eq!(wire(V311, &Packet::Disconnect(d)), "E000");
}

#[test]
fn v311_auth_cannot_be_encoded() {
    let mut buf = BytesMut::new();
    let e = Encoder::new(V311)
        .encode(&Packet::Auth(Auth::default()), &mut buf)
        .unwrap_err();
    assert_eq!(
        e,
        EncodeError::NotInVersion {
            packet_type: PacketType::Auth,
            version: V311
        }
    );
    assert!(buf.is_empty());
}

#[test]
fn v311_connect_with_password_but_no_user_name_is_refused() {
    let Packet::Connect(mut c) = connect(V311) else {
        unreachable!()
    };
    c.password = Some(Bytes::from_static(b"pw"));
    let mut buf = BytesMut::new();
    assert_eq!(
        Encoder::new(V311).encode(&Packet::Connect(c), &mut buf),
        Err(EncodeError::PasswordWithoutUsername)
    );
}

#[test]
fn connect_carries_the_encoders_protocol_name_and_level() {
    assert!(wire(V31, &connect(V31)).contains("00064D514973647003"));
    assert!(wire(V311, &connect(V311)).contains("00044D51545404"));
    assert!(wire(V5, &connect(V5)).contains("00044D51545405"));
}

// ------------------------------------------------------------ Maximum Packet Size

#[test]
fn v5_mqtt_3_1_2_24_packets_over_the_peer_maximum_are_not_encoded() {
    let p = Publish {
        payload: Bytes::from(vec![0u8; 100]),
        ..publish_a(QoS::AtLeastOnce)
    };
    let enc = Encoder::new(V5).with_max_packet_size(64);
    let size = enc.publish_len(&p);
    assert_eq!(enc.encoded_len(&Packet::Publish(p.clone())), Ok(size));
    let mut buf = BytesMut::from(&b"keep"[..]);
    let err = EncodeError::PacketTooLarge { size, max: 64 };
    assert_eq!(
        enc.encode(&Packet::Publish(p.clone()), &mut buf),
        Err(err.clone())
    );
    assert_eq!(enc.encode_publish_header(&p, &mut buf), Err(err));
    assert_eq!(&buf[..], b"keep", "nothing written on failure");
    // At exactly the limit it is encoded.
    let exact = Encoder::new(V5).with_max_packet_size(u32::try_from(size).unwrap());
    assert!(exact.encode(&Packet::Publish(p), &mut buf).is_ok());
    assert_eq!(buf.len(), 4 + size);
}

#[test]
fn oversized_fields_are_refused() {
    let p = Publish {
        topic: ByteString::from("t".repeat(70_000)),
        ..publish_a(QoS::AtMostOnce)
    };
    let enc = Encoder::new(V311);
    let mut buf = BytesMut::new();
    assert_eq!(
        enc.encode(&Packet::Publish(p.clone()), &mut buf),
        Err(EncodeError::FieldTooLong {
            field: "topic name",
            len: 70_000
        })
    );
    assert_eq!(enc.publish_len(&p), usize::MAX);
    assert!(buf.is_empty());
}

#[test]
fn encode_appends_after_existing_bytes() {
    let mut buf = BytesMut::from(&b"\x01\x02"[..]);
    Encoder::new(V311)
        .encode(&Packet::PingResp, &mut buf)
        .unwrap();
    assert_eq!(&buf[..], &[0x01, 0x02, 0xD0, 0x00]);
}

/// Builds the packet under test from a Reason String and User Properties.
type Make = fn(Option<ByteString>, Vec<UserProperty>) -> Packet;

fn ack_props(
    reason_string: Option<ByteString>,
    user_properties: Vec<UserProperty>,
) -> AckProperties {
    AckProperties {
        reason_string,
        user_properties,
    }
}

/// A v5 packet with both a Reason String and a User Property: with a
/// maximum that only fits it without the Reason String, the Reason String is
/// dropped (`drop_user_properties == false`); with a maximum that fits
/// neither, both are dropped; below that the packet is refused.
fn check_dropped_to_fit(make: Make, drop_user_properties: bool) {
    let rs = Some(ByteString::from_static("a long reason string"));
    let up = vec![(ByteString::from_static("k"), ByteString::from_static("v"))];
    let full = make(rs.clone(), up.clone());
    let without_rs = make(None, up.clone());
    let bare = make(None, Vec::new());
    let plain = Encoder::new(V5);
    let expected = if drop_user_properties {
        &bare
    } else {
        &without_rs
    };
    let max = plain.encoded_len(expected).unwrap();
    assert!(plain.encoded_len(&full).unwrap() > max);

    let enc = plain.with_max_packet_size(u32::try_from(max).unwrap());
    let mut buf = BytesMut::new();
    enc.encode(&full, &mut buf).unwrap();
    assert_eq!(buf, encode(V5, expected), "{full:?}");
    assert_eq!(buf.len(), max);

    let below =
        plain.with_max_packet_size(u32::try_from(plain.encoded_len(&bare).unwrap() - 1).unwrap());
    let mut buf = BytesMut::new();
    assert!(matches!(
        below.encode(&full, &mut buf),
        Err(EncodeError::PacketTooLarge { .. })
    ));
    assert!(buf.is_empty());
}

macro_rules! dropped_to_fit {
    ($($reason_string_test:ident, $user_property_test:ident => $make:expr;)*) => {$(
        #[test]
        fn $reason_string_test() {
            check_dropped_to_fit($make, false);
        }
        #[test]
        fn $user_property_test() {
            check_dropped_to_fit($make, true);
        }
    )*};
}

dropped_to_fit! {
    v5_mqtt_3_2_2_19_connack_reason_string_dropped_to_fit, v5_mqtt_3_2_2_20_connack_user_property_dropped_to_fit
        => |rs, up| Packet::ConnAck(ConnAck {
            properties: ConnAckProperties { reason_string: rs, user_properties: up, ..Default::default() },
            ..ConnAck::default()
        });
    v5_mqtt_3_4_2_2_puback_reason_string_dropped_to_fit, v5_mqtt_3_4_2_3_puback_user_property_dropped_to_fit
        => |rs, up| Packet::PubAck(PubResponse { properties: ack_props(rs, up), ..PubResponse::success(pid(1)) });
    v5_mqtt_3_5_2_2_pubrec_reason_string_dropped_to_fit, v5_mqtt_3_5_2_3_pubrec_user_property_dropped_to_fit
        => |rs, up| Packet::PubRec(PubResponse { properties: ack_props(rs, up), ..PubResponse::success(pid(1)) });
    v5_mqtt_3_6_2_2_pubrel_reason_string_dropped_to_fit, v5_mqtt_3_6_2_3_pubrel_user_property_dropped_to_fit
        => |rs, up| Packet::PubRel(PubResponse { properties: ack_props(rs, up), ..PubResponse::success(pid(1)) });
    v5_mqtt_3_7_2_2_pubcomp_reason_string_dropped_to_fit, v5_mqtt_3_7_2_3_pubcomp_user_property_dropped_to_fit
        => |rs, up| Packet::PubComp(PubResponse { properties: ack_props(rs, up), ..PubResponse::success(pid(1)) });
    v5_mqtt_3_9_2_1_suback_reason_string_dropped_to_fit, v5_mqtt_3_9_2_2_suback_user_property_dropped_to_fit
        => |rs, up| Packet::SubAck(SubAck { packet_id: pid(1), reason_codes: vec![ReasonCode::GRANTED_QOS_1], properties: ack_props(rs, up) });
    v5_mqtt_3_11_2_1_unsuback_reason_string_dropped_to_fit, v5_mqtt_3_11_2_2_unsuback_user_property_dropped_to_fit
        => |rs, up| Packet::UnsubAck(UnsubAck { packet_id: pid(1), reason_codes: vec![ReasonCode::SUCCESS], properties: ack_props(rs, up) });
    v5_mqtt_3_14_2_3_disconnect_reason_string_dropped_to_fit, v5_mqtt_3_14_2_4_disconnect_user_property_dropped_to_fit
        => |rs, up| Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::SERVER_BUSY,
            properties: DisconnectProperties { reason_string: rs, user_properties: up, ..Default::default() },
        });
    v5_mqtt_3_15_2_2_auth_reason_string_dropped_to_fit, v5_mqtt_3_15_2_3_auth_user_property_dropped_to_fit
        => |rs, up| Packet::Auth(Auth {
            reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: AuthProperties {
                authentication_method: Some(ByteString::from_static("m")),
                reason_string: rs,
                user_properties: up,
                ..Default::default()
            },
        });
}

#[test]
fn publish_properties_are_never_dropped_to_fit() {
    let mut p = publish_a(QoS::AtMostOnce);
    p.properties.user_properties.push(("k".into(), "v".into()));
    let packet = Packet::Publish(p);
    let bare_len = Encoder::new(V5).encoded_len(&packet).unwrap() - 7;
    let enc = Encoder::new(V5).with_max_packet_size(u32::try_from(bare_len).unwrap());
    assert!(matches!(
        enc.encode(&packet, &mut BytesMut::new()),
        Err(EncodeError::PacketTooLarge { .. })
    ));
}
