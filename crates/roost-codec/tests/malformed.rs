//! Hex fixtures for every malformed or forbidden input the codec rejects.
//! Each test names the normative statement it checks (see the conformance
//! naming rule) and asserts the exact `DecodeError`, the reason code it
//! maps to, and the statement id the error reports.
//!
//! In a fixture, `LL` stands for the correct one-byte Remaining Length of
//! the bytes after it; fixtures that test a wrong length spell it out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use roost_codec::topic::TopicError;
use roost_codec::{DecodeError as E, PacketType as T, *};

/// Which decoder reads the fixture.
#[derive(Clone, Copy)]
enum Side {
    /// Server decoder that has not seen CONNECT yet.
    Fresh,
    /// Server decoder after a CONNECT of the fixture's version.
    Server,
    /// Client decoder of the fixture's version.
    Client,
}

fn fixture(s: &str) -> bytes::BytesMut {
    let clean: String = s.split_whitespace().collect();
    match clean.find("LL") {
        Some(at) => {
            let rest = (clean.len() - at - 2) / 2;
            let len = u8::try_from(rest).expect("fixture under 128 bytes");
            assert!(len < 128);
            hex(&format!("{}{len:02X}{}", &clean[..at], &clean[at + 2..]))
        }
        None => hex(&clean),
    }
}

fn decoder(version: ProtocolVersion, side: Side) -> Decoder {
    match side {
        Side::Fresh => Decoder::server(PROTOCOL_MAX_PACKET_SIZE),
        Side::Server => server_after_connect(version),
        Side::Client => Decoder::client(version, PROTOCOL_MAX_PACKET_SIZE),
    }
}

fn decode(version: ProtocolVersion, side: Side, hex: &str) -> Result<Option<Packet>, DecodeError> {
    decoder(version, side).decode(&mut fixture(hex))
}

#[track_caller]
fn check(
    version: ProtocolVersion,
    side: Side,
    hex: &str,
    expected: DecodeError,
    rc: ReasonCode,
    id: Option<&str>,
) {
    let err = decode(version, side, hex).expect_err("fixture must be rejected");
    assert_eq!(err, expected, "{version:?} {hex}");
    assert_eq!(ReasonCode::from(&err), rc, "reason code of {err:?}");
    assert_eq!(err.spec_id_in(version), id, "spec id of {err:?}");
}

#[track_caller]
fn accept(version: ProtocolVersion, side: Side, hex: &str) -> Packet {
    decode(version, side, hex)
        .expect("fixture must decode")
        .expect("fixture is complete")
}

/// One test per statement: `reject!(name: [VERSION SIDE "hex", ...] => error, CODE, id);`
macro_rules! reject {
    ($($name:ident: [$($v:ident $side:ident $hex:literal),+] => $err:expr, $rc:ident, $id:expr;)*) => {$(
        #[test]
        fn $name() {
            $(check(ProtocolVersion::$v, Side::$side, $hex, $err, ReasonCode::$rc, $id);)+
        }
    )*};
}

use ProtocolVersion::{V5, V311};

const V5_CONNECT_HEAD: &str = "0004 4D515454 05";
const V311_CONNECT_HEAD: &str = "0004 4D515454 04";

fn v5_connect(flags: &str, props: &str, payload: &str) -> String {
    format!("10 LL {V5_CONNECT_HEAD} {flags} 003C {props} {payload}")
}

fn v311_connect(flags: &str, payload: &str) -> String {
    format!("10 LL {V311_CONNECT_HEAD} {flags} 003C {payload}")
}

// ------------------------------------------------------------ fixed header

reject! {
    v5_mqtt_2_1_3_1_reserved_fixed_header_flags_are_malformed:
        [V5 Server "41 02 0001", V5 Client "41 02 0001", V5 Client "41 03 0001 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::PubAck, flags: 1 }, MALFORMED_PACKET, Some("MQTT-2.1.3-1");
    v311_mqtt_2_2_2_1_reserved_fixed_header_flags_are_malformed:
        [V311 Server "C2 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::PingReq, flags: 2 }, MALFORMED_PACKET, Some("MQTT-2.2.2-1");
    mqtt_3_6_1_1_pubrel_flags_must_be_0010:
        [V5 Server "60 02 0001", V311 Server "60 02 0001"]
        => E::InvalidFixedHeaderFlags { packet_type: T::PubRel, flags: 0 }, MALFORMED_PACKET, Some("MQTT-3.6.1-1");
    mqtt_3_8_1_1_subscribe_flags_must_be_0010:
        [V5 Server "80 LL 0001 00 0001 61 00", V311 Server "80 LL 0001 0001 61 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::Subscribe, flags: 0 }, MALFORMED_PACKET, Some("MQTT-3.8.1-1");
    mqtt_3_10_1_1_unsubscribe_flags_must_be_0010:
        [V5 Server "A3 LL 0001 00 0001 61", V311 Server "A3 LL 0001 0001 61"]
        => E::InvalidFixedHeaderFlags { packet_type: T::Unsubscribe, flags: 3 }, MALFORMED_PACKET, Some("MQTT-3.10.1-1");
    mqtt_3_14_1_1_disconnect_reserved_bits_are_malformed:
        [V5 Server "E1 00", V311 Server "E1 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::Disconnect, flags: 1 }, MALFORMED_PACKET, Some("MQTT-3.14.1-1");
    v5_mqtt_3_15_1_1_auth_reserved_bits_are_malformed:
        [V5 Server "F8 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::Auth, flags: 8 }, MALFORMED_PACKET, Some("MQTT-3.15.1-1");
    mqtt_3_3_1_4_qos_3_is_malformed:
        [V5 Server "36 LL 0001 61 0001 00", V311 Server "36 LL 0001 61 0001", V5 Client "37 00"]
        => E::PublishQos3, MALFORMED_PACKET, Some("MQTT-3.3.1-4");
    mqtt_3_3_1_2_dup_on_qos_0_is_malformed:
        [V5 Server "38 LL 0001 61 00", V311 Client "39 LL 0001 61"]
        => E::DupOnQos0, MALFORMED_PACKET, Some("MQTT-3.3.1-2");
    packet_type_0_is_reserved:
        [V5 Server "00 00", V311 Client "00 00", V5 Fresh "00 00"]
        => E::ReservedPacketType { packet_type: 0 }, MALFORMED_PACKET, None;
    v311_auth_packet_type_15_is_reserved_before_v5:
        [V311 Server "F0 00", V311 Client "F0 00"]
        => E::ReservedPacketType { packet_type: 15 }, MALFORMED_PACKET, None;
    // A packet only a server sends is a Protocol Error from a client (4.13),
    // whatever its body (a 3.1.1-shaped CONNACK on a 5.0 connection too).
    connack_from_a_client_is_a_protocol_error:
        [V5 Server "20 03 00 00 00", V5 Server "20 02 00 00", V311 Server "20 02 00 00"]
        => E::WrongDirection { packet_type: T::ConnAck }, PROTOCOL_ERROR, None;
    suback_from_a_client_is_a_protocol_error:
        [V5 Server "90 04 0001 00 00", V5 Server "90 03 0001 00", V311 Server "90 03 0001 00"]
        => E::WrongDirection { packet_type: T::SubAck }, PROTOCOL_ERROR, None;
    unsuback_from_a_client_is_a_protocol_error:
        [V5 Server "B0 04 0001 00 00", V5 Server "B0 02 0001", V311 Server "B0 02 0001"]
        => E::WrongDirection { packet_type: T::UnsubAck }, PROTOCOL_ERROR, None;
    pingresp_from_a_client_is_a_protocol_error:
        [V5 Server "D0 00", V311 Server "D0 00", V5 Server "D0 01 00"]
        => E::WrongDirection { packet_type: T::PingResp }, PROTOCOL_ERROR, None;
    v5_server_only_packet_with_reserved_flags_is_still_malformed:
        [V5 Server "D1 00"]
        => E::InvalidFixedHeaderFlags { packet_type: T::PingResp, flags: 1 }, MALFORMED_PACKET, Some("MQTT-2.1.3-1");
    mqtt_3_1_0_1_first_packet_must_be_connect:
        [V5 Fresh "C0 00", V311 Fresh "C0 00"]
        => E::FirstPacketNotConnect { packet_type: 12 }, PROTOCOL_ERROR, Some("MQTT-3.1.0-1");
}

#[test]
fn v311_mqtt_2_2_2_2_invalid_flags_close_the_connection() {
    // Any error closes the connection; the CONNECT flags nibble must be 0.
    let connect = format!("11 {}", &v311_connect("02", "0001 63")[3..]);
    check(
        V311,
        Side::Fresh,
        &connect,
        E::InvalidFixedHeaderFlags {
            packet_type: T::Connect,
            flags: 1,
        },
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-2.2.2-1"),
    );
}

#[test]
fn first_publish_without_connect_is_reported_with_its_type() {
    let e = decode(V5, Side::Fresh, "30 LL 0001 61 00").unwrap_err();
    assert_eq!(e, E::FirstPacketNotConnect { packet_type: 3 });
}

// ------------------------------------------------------------ lengths and integers

reject! {
    v5_mqtt_1_5_5_1_non_minimal_remaining_length_is_malformed:
        [V5 Server "C0 80 00", V5 Client "D0 80 80 00"]
        => E::NonMinimalVarint { field: "remaining length" }, MALFORMED_PACKET, Some("MQTT-1.5.5-1");
    v5_mqtt_1_5_5_1_non_minimal_property_length_is_malformed:
        [V5 Server "30 LL 0001 61 8000"]
        => E::NonMinimalVarint { field: "property length" }, MALFORMED_PACKET, Some("MQTT-1.5.5-1");
    remaining_length_of_five_bytes_is_malformed:
        [V5 Server "C0 FF FF FF FF 7F", V311 Client "D0 80 80 80 80 01"]
        => E::VarintTooLong { field: "remaining length" }, MALFORMED_PACKET, None;
    remaining_length_shorter_than_content_is_malformed:
        [V311 Server "40 01 00", V5 Client "40 01 00"]
        => E::Truncated { packet_type: T::PubAck, field: "packet identifier" }, MALFORMED_PACKET, None;
    remaining_length_longer_than_content_is_malformed:
        [V311 Server "40 03 0001 00", V311 Client "40 03 0001 00"]
        => E::TrailingBytes { packet_type: T::PubAck, count: 1 }, MALFORMED_PACKET, None;
    pingreq_with_a_body_is_malformed:
        [V5 Server "C0 01 00", V311 Server "C0 01 00"]
        => E::TrailingBytes { packet_type: T::PingReq, count: 1 }, MALFORMED_PACKET, None;
    v5_mqtt_2_2_2_1_missing_property_length_is_malformed:
        [V5 Server "30 LL 0001 61", V5 Client "30 LL 0001 61"]
        => E::Truncated { packet_type: T::Publish, field: "property length" }, MALFORMED_PACKET, None;
    property_length_beyond_the_packet_is_malformed:
        [V5 Server "30 LL 0001 61 05 0100"]
        => E::Truncated { packet_type: T::Publish, field: "properties" }, MALFORMED_PACKET, None;
    string_longer_than_the_packet_is_malformed:
        [V5 Server "30 LL 0009 61 00"]
        => E::Truncated { packet_type: T::Publish, field: "topic name" }, MALFORMED_PACKET, None;
}

#[test]
fn v5_mqtt_3_1_4_1_connect_not_matching_the_format_is_rejected() {
    let trailing = v5_connect("02", "00", "0001 63 FF");
    check(
        V5,
        Side::Fresh,
        &trailing,
        E::TrailingBytes {
            packet_type: T::Connect,
            count: 1,
        },
        ReasonCode::MALFORMED_PACKET,
        None,
    );
    let truncated = v5_connect("82", "00", "0001 63");
    check(
        V5,
        Side::Fresh,
        &truncated,
        E::Truncated {
            packet_type: T::Connect,
            field: "user name",
        },
        ReasonCode::MALFORMED_PACKET,
        None,
    );
}

#[test]
fn v311_mqtt_3_1_4_1_connect_not_matching_the_format_is_rejected() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("02", "0001 63 00"),
        E::TrailingBytes {
            packet_type: T::Connect,
            count: 1,
        },
        ReasonCode::MALFORMED_PACKET,
        None,
    );
}

// ------------------------------------------------------------ strings

reject! {
    v5_mqtt_1_5_4_1_ill_formed_utf8_is_malformed:
        [V5 Server "30 LL 0002 C0AF 00", V5 Server "30 LL 0003 EDA080 00", V5 Client "30 LL 0001 FF 00"]
        => E::InvalidUtf8 { field: "topic name" }, MALFORMED_PACKET, Some("MQTT-1.5.4-1");
    v311_mqtt_1_5_3_1_ill_formed_utf8_is_malformed:
        [V311 Server "30 LL 0002 C0AF", V311 Server "30 LL 0003 EDBFBF"]
        => E::InvalidUtf8 { field: "topic name" }, MALFORMED_PACKET, Some("MQTT-1.5.3-1");
    v5_mqtt_1_5_7_1_user_property_must_be_utf8:
        [V5 Server "30 LL 0001 61 07 26 0001 FF 0001 61"]
        => E::InvalidUtf8 { field: "User Property name" }, MALFORMED_PACKET, Some("MQTT-1.5.7-1");
}

#[test]
fn v5_mqtt_1_5_4_2_null_character_is_malformed() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("02", "00", "0001 00"),
        E::NullCharacter {
            field: "client identifier",
        },
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-1.5.4-2"),
    );
}

#[test]
fn v311_mqtt_1_5_3_2_null_character_closes_the_connection() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("02", "0002 6100"),
        E::NullCharacter {
            field: "client identifier",
        },
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-1.5.3-2"),
    );
}

#[test]
fn mqtt_4_7_3_2_null_character_in_topic_is_malformed() {
    for (v, hex) in [(V5, "30 LL 0002 6100 00"), (V311, "30 LL 0002 6100")] {
        let e = decode(v, Side::Server, hex).unwrap_err();
        assert_eq!(
            e,
            E::NullCharacter {
                field: "topic name"
            }
        );
        assert_eq!(ReasonCode::from(&e), ReasonCode::MALFORMED_PACKET);
    }
}

#[test]
fn v5_mqtt_1_5_4_3_bom_is_not_stripped() {
    let Packet::Publish(p) = accept(V5, Side::Server, "30 LL 0004 EFBBBF61 00") else {
        panic!()
    };
    assert_eq!(&*p.topic, "\u{FEFF}a");
}

#[test]
fn v311_mqtt_1_5_3_3_bom_is_not_stripped() {
    let Packet::Publish(p) = accept(V311, Side::Server, "30 LL 0004 EFBBBF61") else {
        panic!()
    };
    assert_eq!(p.topic.as_bytes().as_ref(), b"\xEF\xBB\xBFa");
}

// ------------------------------------------------------------ properties

reject! {
    v5_unknown_property_identifier_is_malformed:
        [V5 Server "30 LL 0001 61 01 05", V5 Client "30 LL 0001 61 01 05"]
        => E::UnknownProperty { packet_type: T::Publish, id: 5 }, MALFORMED_PACKET, None;
    v5_property_not_allowed_in_packet_is_malformed:
        [V5 Server "30 LL 0001 61 05 11 00000000"]
        => E::PropertyNotAllowed { packet_type: T::Publish, in_will: false, property: 0x11 }, MALFORMED_PACKET, None;
    v5_duplicate_property_is_a_protocol_error:
        [V5 Server "30 LL 0001 61 0A 0200000001 0200000002"]
        => E::DuplicateProperty { packet_type: T::Publish, property: 0x02 }, PROTOCOL_ERROR, None;
    v5_subscription_identifier_0_is_a_protocol_error:
        [V5 Server "82 LL 0001 02 0B00 0001 61 00", V5 Client "30 LL 0001 61 02 0B00"]
        => E::SubscriptionIdentifierZero, PROTOCOL_ERROR, None;
    v5_duplicate_subscription_identifier_in_subscribe_is_a_protocol_error:
        [V5 Server "82 LL 0001 04 0B01 0B02 0001 61 00"]
        => E::DuplicateProperty { packet_type: T::Subscribe, property: 0x0B }, PROTOCOL_ERROR, None;
    v5_mqtt_3_3_2_8_topic_alias_0_is_invalid:
        [V5 Server "30 LL 0001 61 03 230000", V5 Client "30 LL 0000 03 230000"]
        => E::TopicAliasZero, TOPIC_ALIAS_INVALID, Some("MQTT-3.3.2-8");
    v5_maximum_qos_other_than_0_or_1_is_a_protocol_error:
        [V5 Client "20 LL 00 00 02 2402"]
        => E::InvalidMaximumQos { value: 2 }, PROTOCOL_ERROR, None;
    v5_boolean_property_other_than_0_or_1_is_a_protocol_error:
        [V5 Client "20 LL 00 00 02 2502"]
        => E::InvalidBooleanProperty { property: 0x25, value: 2 }, PROTOCOL_ERROR, None;
    v5_payload_format_indicator_other_than_0_or_1_is_a_protocol_error:
        [V5 Server "30 LL 0001 61 02 0103"]
        => E::InvalidBooleanProperty { property: 0x01, value: 3 }, PROTOCOL_ERROR, None;
    v5_mqtt_3_3_4_6_subscription_identifier_from_a_client_is_a_protocol_error:
        [V5 Server "30 LL 0001 61 02 0B01"]
        => E::SubscriptionIdentifierFromClient, PROTOCOL_ERROR, Some("MQTT-3.3.4-6");
    v5_mqtt_3_14_2_2_session_expiry_in_server_disconnect_is_a_protocol_error:
        [V5 Client "E0 LL 00 05 11 00000001"]
        => E::SessionExpiryFromServer, PROTOCOL_ERROR, Some("MQTT-3.14.2-2");
    v5_auth_continue_without_method_is_a_protocol_error:
        [V5 Server "F0 LL 18", V5 Client "F0 LL 19 00"]
        => E::AuthenticationMethodMissing, PROTOCOL_ERROR, None;
}

#[test]
fn v5_receive_maximum_0_is_a_protocol_error() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("02", "03 210000", "0001 63"),
        E::ReceiveMaximumZero,
        ReasonCode::PROTOCOL_ERROR,
        None,
    );
    check(
        V5,
        Side::Client,
        "20 LL 00 00 03 210000",
        E::ReceiveMaximumZero,
        ReasonCode::PROTOCOL_ERROR,
        None,
    );
}

#[test]
fn v5_maximum_packet_size_0_is_a_protocol_error() {
    let hex = v5_connect("02", "05 2700000000", "0001 63");
    check(
        V5,
        Side::Fresh,
        &hex,
        E::MaximumPacketSizeZero,
        ReasonCode::PROTOCOL_ERROR,
        None,
    );
}

#[test]
fn v5_request_problem_information_other_than_0_or_1_is_a_protocol_error() {
    let hex = v5_connect("02", "02 1702", "0001 63");
    let expected = E::InvalidBooleanProperty {
        property: 0x17,
        value: 2,
    };
    check(
        V5,
        Side::Fresh,
        &hex,
        expected,
        ReasonCode::PROTOCOL_ERROR,
        None,
    );
}

#[test]
fn v5_authentication_data_without_method_is_a_protocol_error() {
    let hex = v5_connect("02", "04 160001AA", "0001 63");
    check(
        V5,
        Side::Fresh,
        &hex,
        E::AuthenticationDataWithoutMethod,
        ReasonCode::PROTOCOL_ERROR,
        None,
    );
}

#[test]
fn v5_will_property_not_allowed_in_will_is_malformed() {
    // Topic Alias (0x23) among the Will Properties.
    let hex = v5_connect("06", "00", "0001 63 03 230001 0001 61 0000");
    let expected = E::PropertyNotAllowed {
        packet_type: T::Connect,
        in_will: true,
        property: 0x23,
    };
    check(
        V5,
        Side::Fresh,
        &hex,
        expected,
        ReasonCode::MALFORMED_PACKET,
        None,
    );
}

#[test]
fn v5_user_property_and_subscription_identifier_may_repeat_where_allowed() {
    let Packet::Publish(p) = accept(
        V5,
        Side::Client,
        "30 LL 0001 61 12 260001610001 62 260001610001 63 0B01 0B02",
    ) else {
        panic!()
    };
    assert_eq!(p.properties.user_properties.len(), 2);
    assert_eq!(&p.properties.subscription_identifiers[..], &[1, 2]);
}

#[test]
fn client_decoder_accepts_what_only_servers_send() {
    accept(V5, Side::Client, "30 LL 0001 61 02 0B01");
    accept(V5, Side::Server, "E0 LL 00 05 11 00000001");
}

// ------------------------------------------------------------ topics

reject! {
    mqtt_3_3_2_2_wildcard_in_publish_topic_is_rejected:
        [V5 Server "30 LL 0001 2B 00", V311 Server "30 LL 0003 612F23", V5 Client "30 LL 0003 2B2F61 00"]
        => E::WildcardInTopicName, TOPIC_NAME_INVALID, Some("MQTT-3.3.2-2");
    mqtt_4_7_3_1_empty_publish_topic_without_alias_is_rejected:
        [V5 Server "30 LL 0000 00", V311 Server "30 LL 0000", V31 Server "30 LL 0000"]
        => E::EmptyTopicName, PROTOCOL_ERROR, Some("MQTT-4.7.3-1");
    v5_mqtt_3_3_2_14_response_topic_with_wildcard_is_rejected:
        [V5 Server "30 LL 0001 61 04 08 0001 23"]
        => E::InvalidResponseTopic { error: TopicError::WildcardInName }, PROTOCOL_ERROR, Some("MQTT-3.3.2-14");
    v5_mqtt_4_7_1_1_multi_level_wildcard_not_last_is_malformed:
        [V5 Server "82 LL 0001 00 0003 232F61 00", V5 Server "82 LL 0001 00 0004 612F2362 01"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::MultiLevelWildcardMisplaced }, MALFORMED_PACKET, Some("MQTT-4.7.1-1");
    v5_mqtt_4_7_1_2_single_level_wildcard_not_alone_is_malformed:
        [V5 Server "82 LL 0001 00 0002 612B 00"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::SingleLevelWildcardMisplaced }, MALFORMED_PACKET, Some("MQTT-4.7.1-2");
    v311_mqtt_4_7_1_2_multi_level_wildcard_not_last_is_malformed:
        [V311 Server "82 LL 0001 0002 6123 00"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::MultiLevelWildcardMisplaced }, MALFORMED_PACKET, Some("MQTT-4.7.1-2");
    v311_mqtt_4_7_1_3_single_level_wildcard_not_alone_is_malformed:
        [V311 Server "A2 LL 0001 0002 612B"]
        => E::InvalidTopicFilter { packet_type: T::Unsubscribe, error: TopicError::SingleLevelWildcardMisplaced }, MALFORMED_PACKET, Some("MQTT-4.7.1-3");
    mqtt_4_7_3_1_empty_topic_filter_is_malformed:
        [V5 Server "82 LL 0001 00 0000 00", V311 Server "82 LL 0001 0000 00"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::Empty }, MALFORMED_PACKET, Some("MQTT-4.7.3-1");
    v5_mqtt_4_8_2_1_shared_subscription_without_share_name_is_malformed:
        [V5 Server "82 LL 0001 00 0009 2473686172652F2F61 00"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::SharedEmptyGroup }, MALFORMED_PACKET, Some("MQTT-4.8.2-1");
    v5_mqtt_4_8_2_2_share_name_without_filter_is_malformed:
        [V5 Server "82 LL 0001 00 0008 2473686172652F67 00"]
        => E::InvalidTopicFilter { packet_type: T::Subscribe, error: TopicError::SharedInvalidGroup }, MALFORMED_PACKET, Some("MQTT-4.8.2-2");
    v5_mqtt_3_8_3_4_no_local_on_shared_subscription_is_a_protocol_error:
        [V5 Server "82 LL 0001 00 000A 2473686172652F672F61 04"]
        => E::NoLocalOnSharedSubscription, PROTOCOL_ERROR, Some("MQTT-3.8.3-4");
}

#[test]
fn v5_mqtt_4_7_0_1_wildcard_in_will_topic_is_rejected() {
    let hex = v5_connect("06", "00", "0001 63 00 0001 23 0000");
    let expected = E::InvalidWillTopic {
        error: TopicError::WildcardInName,
    };
    check(
        V5,
        Side::Fresh,
        &hex,
        expected,
        ReasonCode::TOPIC_NAME_INVALID,
        Some("MQTT-4.7.0-1"),
    );
}

#[test]
fn v311_mqtt_4_7_1_1_wildcards_are_not_allowed_in_topic_names() {
    let expected = E::InvalidWillTopic {
        error: TopicError::WildcardInName,
    };
    check(
        V311,
        Side::Fresh,
        &v311_connect("06", "0001 63 0001 2B 0000"),
        expected,
        ReasonCode::TOPIC_NAME_INVALID,
        Some("MQTT-4.7.1-1"),
    );
}

#[test]
fn v5_empty_topic_with_topic_alias_is_accepted() {
    let Packet::Publish(p) = accept(V5, Side::Server, "30 LL 0000 03 230001") else {
        panic!()
    };
    assert!(p.topic.is_empty());
    assert_eq!(p.properties.topic_alias, Some(1));
}

// ------------------------------------------------------------ packet ids, SUBSCRIBE, UNSUBSCRIBE

reject! {
    v5_mqtt_2_2_1_3_packet_identifier_0_is_a_protocol_error:
        [V5 Server "32 LL 0001 61 0000 00", V5 Client "34 LL 0001 61 0000 00"]
        => E::PacketIdZero { packet_type: T::Publish }, PROTOCOL_ERROR, Some("MQTT-2.2.1-3");
    v311_mqtt_2_3_1_1_packet_identifier_must_be_non_zero:
        [V311 Server "82 LL 0000 0001 61 00"]
        => E::PacketIdZero { packet_type: T::Subscribe }, PROTOCOL_ERROR, Some("MQTT-2.3.1-1");
    v5_mqtt_3_8_3_2_subscribe_without_filters_is_a_protocol_error:
        [V5 Server "82 LL 0001 00"]
        => E::NoTopicFilters { packet_type: T::Subscribe }, PROTOCOL_ERROR, Some("MQTT-3.8.3-2");
    v311_mqtt_3_8_3_3_subscribe_without_filters_is_a_protocol_violation:
        [V311 Server "82 LL 0001", V31 Server "82 LL 0001"]
        => E::NoTopicFilters { packet_type: T::Subscribe }, PROTOCOL_ERROR, Some("MQTT-3.8.3-3");
    mqtt_3_10_3_2_unsubscribe_without_filters_is_a_protocol_error:
        [V5 Server "A2 LL 0001 00", V311 Server "A2 LL 0001"]
        => E::NoTopicFilters { packet_type: T::Unsubscribe }, PROTOCOL_ERROR, Some("MQTT-3.10.3-2");
    v5_mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed:
        [V5 Server "82 LL 0001 00 0001 61 40"]
        => E::SubscriptionOptionsReserved { options: 0x40 }, MALFORMED_PACKET, Some("MQTT-3.8.3-5");
    v311_mqtt_3_8_3_4_reserved_subscription_bits_are_malformed:
        [V311 Server "82 LL 0001 0001 61 04"]
        => E::SubscriptionOptionsReserved { options: 0x04 }, MALFORMED_PACKET, Some("MQTT-3.8.3-4");
    v5_retain_handling_3_is_a_protocol_error:
        [V5 Server "82 LL 0001 00 0001 61 30"]
        => E::RetainHandling3, PROTOCOL_ERROR, None;
    v5_subscription_qos_3_is_a_protocol_error:
        [V5 Server "82 LL 0001 00 0001 61 03"]
        => E::SubscriptionQos3, PROTOCOL_ERROR, None;
}

#[test]
fn v311_mqtt_3_8_3_4_subscription_qos_3_is_malformed() {
    let e = decode(V311, Side::Server, "82 LL 0001 0001 61 03").unwrap_err();
    assert_eq!(e, E::SubscriptionQos3);
    assert_eq!(e.spec_id_in(V311), Some("MQTT-3.8.3-4"));
}

// ------------------------------------------------------------ reason codes

reject! {
    v5_mqtt_3_4_2_1_puback_reason_code_must_be_a_puback_code:
        [V5 Server "40 LL 0001 05"]
        => E::InvalidReasonCode { packet_type: T::PubAck, code: 5 }, PROTOCOL_ERROR, Some("MQTT-3.4.2-1");
    v5_mqtt_3_5_2_1_pubrec_reason_code_must_be_a_pubrec_code:
        [V5 Client "50 LL 0001 92"]
        => E::InvalidReasonCode { packet_type: T::PubRec, code: 0x92 }, PROTOCOL_ERROR, Some("MQTT-3.5.2-1");
    v5_mqtt_3_6_2_1_pubrel_reason_code_must_be_a_pubrel_code:
        [V5 Server "62 LL 0001 10"]
        => E::InvalidReasonCode { packet_type: T::PubRel, code: 0x10 }, PROTOCOL_ERROR, Some("MQTT-3.6.2-1");
    v5_mqtt_3_7_2_1_pubcomp_reason_code_must_be_a_pubcomp_code:
        [V5 Client "70 LL 0001 80 00"]
        => E::InvalidReasonCode { packet_type: T::PubComp, code: 0x80 }, PROTOCOL_ERROR, Some("MQTT-3.7.2-1");
    v5_mqtt_3_2_2_8_connack_reason_code_must_be_a_connect_code:
        [V5 Client "20 LL 00 01 00"]
        => E::InvalidReasonCode { packet_type: T::ConnAck, code: 1 }, PROTOCOL_ERROR, Some("MQTT-3.2.2-8");
    v5_mqtt_3_9_3_2_suback_reason_code_must_be_a_subscribe_code:
        [V5 Client "90 LL 0001 00 03"]
        => E::InvalidReasonCode { packet_type: T::SubAck, code: 3 }, PROTOCOL_ERROR, Some("MQTT-3.9.3-2");
    v311_mqtt_3_9_3_2_suback_return_codes_other_than_0_1_2_0x80_are_reserved:
        [V311 Client "90 LL 0001 03"]
        => E::InvalidReasonCode { packet_type: T::SubAck, code: 3 }, PROTOCOL_ERROR, Some("MQTT-3.9.3-2");
    v5_mqtt_3_11_3_2_unsuback_reason_code_must_be_an_unsubscribe_code:
        [V5 Client "B0 LL 0001 00 01"]
        => E::InvalidReasonCode { packet_type: T::UnsubAck, code: 1 }, PROTOCOL_ERROR, Some("MQTT-3.11.3-2");
    v5_mqtt_3_14_2_1_disconnect_reason_code_must_be_a_disconnect_code:
        [V5 Server "E0 LL 05", V5 Client "E0 LL 05 00"]
        => E::InvalidReasonCode { packet_type: T::Disconnect, code: 5 }, PROTOCOL_ERROR, Some("MQTT-3.14.2-1");
    v5_mqtt_3_15_2_1_auth_reason_code_must_be_an_authenticate_code:
        [V5 Server "F0 LL 05"]
        => E::InvalidReasonCode { packet_type: T::Auth, code: 5 }, PROTOCOL_ERROR, Some("MQTT-3.15.2-1");
    v311_connack_return_code_above_5_is_rejected:
        [V311 Client "20 LL 00 06"]
        => E::InvalidReasonCode { packet_type: T::ConnAck, code: 6 }, PROTOCOL_ERROR, None;
    v5_mqtt_3_2_2_1_connack_reserved_flags_are_malformed:
        [V5 Client "20 LL 02 00 00"]
        => E::ConnAckReservedFlags { flags: 2 }, MALFORMED_PACKET, Some("MQTT-3.2.2-1");
}

// ------------------------------------------------------------ CONNECT

#[test]
fn v5_mqtt_3_1_2_1_bad_protocol_name_is_rejected() {
    let hex = "10 LL 0004 4D515458 05 02 003C 00 0001 63";
    let expected = E::InvalidProtocolName {
        name: Bytes::from_static(b"MQTX"),
    };
    check(
        V5,
        Side::Fresh,
        hex,
        expected,
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        Some("MQTT-3.1.2-1"),
    );
}

#[test]
fn v311_mqtt_3_1_2_1_bad_protocol_name_closes() {
    let hex = "10 LL 0004 6D717474 04 02 003C 0001 63";
    let expected = E::InvalidProtocolName {
        name: Bytes::from_static(b"mqtt"),
    };
    check(
        V311,
        Side::Fresh,
        hex,
        expected,
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        Some("MQTT-3.1.2-1"),
    );
}

#[test]
fn v5_mqtt_3_1_2_2_unsupported_protocol_level_carries_the_level() {
    let hex = "10 LL 0004 4D515454 06 02 003C 00 0001 63";
    check(
        V5,
        Side::Fresh,
        hex,
        E::UnsupportedProtocolVersion { level: 6 },
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        Some("MQTT-3.1.2-2"),
    );
}

#[test]
fn v311_mqtt_3_1_2_2_unsupported_level_maps_to_return_code_1() {
    let e = decode(V311, Side::Fresh, "10 LL 0004 4D515454 07 02 003C 0001 63").unwrap_err();
    assert_eq!(e, E::UnsupportedProtocolVersion { level: 7 });
    assert_eq!(
        ConnectReturnCode::from_reason(ReasonCode::from(&e)),
        ConnectReturnCode::UnacceptableProtocolVersion
    );
    assert_eq!(e.spec_id_in(V311), Some("MQTT-3.1.2-2"));
}

#[test]
fn mqtt_3_1_2_3_reserved_connect_flag_is_malformed() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("03", "00", "0001 63"),
        E::ConnectReservedFlag,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-3"),
    );
    check(
        V311,
        Side::Fresh,
        &v311_connect("03", "0001 63"),
        E::ConnectReservedFlag,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-3"),
    );
}

#[test]
fn v5_mqtt_3_1_2_11_will_qos_without_will_flag_is_malformed() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("0A", "00", "0001 63"),
        E::WillQosWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-11"),
    );
}

#[test]
fn v5_mqtt_3_1_2_12_will_qos_3_is_malformed() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("1E", "00", "0001 63 00 0001 61 0000"),
        E::WillQos3,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-12"),
    );
}

#[test]
fn v5_mqtt_3_1_2_13_will_retain_without_will_flag_is_malformed() {
    check(
        V5,
        Side::Fresh,
        &v5_connect("22", "00", "0001 63"),
        E::WillRetainWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-13"),
    );
}

#[test]
fn v311_mqtt_3_1_2_11_will_fields_must_be_zero_without_will_flag() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("12", "0001 63"),
        E::WillQosWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-13"),
    );
    check(
        V311,
        Side::Fresh,
        &v311_connect("22", "0001 63"),
        E::WillRetainWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-15"),
    );
}

#[test]
fn v311_mqtt_3_1_2_13_will_qos_without_will_flag_is_malformed() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("0A", "0001 63"),
        E::WillQosWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-13"),
    );
}

#[test]
fn v311_mqtt_3_1_2_14_will_qos_3_is_malformed() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("1E", "0001 63 0001 61 0000"),
        E::WillQos3,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-14"),
    );
}

#[test]
fn v311_mqtt_3_1_2_15_will_retain_without_will_flag_is_malformed() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("22", "0001 63"),
        E::WillRetainWithoutWill,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-15"),
    );
}

#[test]
fn v311_mqtt_3_1_2_22_password_without_user_name_is_malformed() {
    check(
        V311,
        Side::Fresh,
        &v311_connect("42", "0001 63 0000"),
        E::PasswordWithoutUsername,
        ReasonCode::MALFORMED_PACKET,
        Some("MQTT-3.1.2-22"),
    );
    // 3.1 (MQIsdp) follows the same rule.
    let v31 = "10 LL 0006 4D5149736470 03 42 003C 0001 63 0000";
    assert_eq!(
        decode(ProtocolVersion::V31, Side::Fresh, v31).unwrap_err(),
        E::PasswordWithoutUsername
    );
}

#[test]
fn v5_password_without_user_name_is_allowed() {
    let Packet::Connect(c) = accept(
        V5,
        Side::Fresh,
        &v5_connect("42", "00", "0001 63 0002 7077"),
    ) else {
        panic!()
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}

#[test]
fn protocol_level_fixes_the_version_even_when_connect_is_bad() {
    let mut d = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
    let e = d
        .decode(&mut fixture(&v5_connect("03", "00", "0001 63")))
        .unwrap_err();
    assert_eq!(e, E::ConnectReservedFlag);
    assert_eq!(d.version(), Some(V5));
}

#[test]
fn second_connect_decodes_and_keeps_the_first_version() {
    let mut d = server_after_connect(V311);
    let packet = d.decode(&mut encode(V5, &connect(V5))).unwrap().unwrap();
    assert!(matches!(packet, Packet::Connect(c) if c.protocol == V5));
    assert_eq!(d.version(), Some(V311));
}

#[test]
fn v31_connect_uses_mqisdp_level_3() {
    let hex = "10 LL 0006 4D5149736470 03 02 003C 0001 63";
    let mut d = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
    let Some(Packet::Connect(c)) = d.decode(&mut fixture(hex)).unwrap() else {
        panic!()
    };
    assert_eq!(c.protocol, ProtocolVersion::V31);
    assert_eq!(d.version(), Some(ProtocolVersion::V31));
}

// ------------------------------------------------------------ size

#[test]
fn v5_mqtt_3_2_2_15_packet_over_maximum_size_is_rejected_from_the_header() {
    let mut d = server_after_connect(V5);
    d.set_max_packet_size(16);
    // 17 bytes in all: 2 header bytes + 15.
    let mut buf = fixture("30 0F 0001 61 00 0000000000000000000000");
    let e = d.decode(&mut buf).unwrap_err();
    assert_eq!(e, E::PacketTooLarge { size: 17, max: 16 });
    assert_eq!(ReasonCode::from(&e), ReasonCode::PACKET_TOO_LARGE);
    // Exactly at the limit is fine.
    let mut ok = fixture("30 0E 0001 61 00 00000000000000000000");
    assert!(d.decode(&mut ok).unwrap().is_some());
}
