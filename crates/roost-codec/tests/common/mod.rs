//! Shared helpers for the codec's integration tests: proptest strategies
//! that generate valid packets for a given protocol version, and small
//! encode/decode helpers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use roost_codec::*;

/// All three versions.
pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

/// Decodes hex (whitespace allowed).
pub fn hex(s: &str) -> BytesMut {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    BytesMut::from(&hex::decode(clean).expect("valid hex in fixture")[..])
}

/// Encodes with a fresh encoder for `version`.
pub fn encode(version: ProtocolVersion, packet: &Packet) -> BytesMut {
    let mut buf = BytesMut::new();
    Encoder::new(version)
        .encode(packet, &mut buf)
        .expect("encodable packet");
    buf
}

/// A minimal CONNECT of `version`.
pub fn connect(version: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: ByteString::from_static("c"),
        ..Connect::default()
    }))
}

/// A server decoder that has already decoded a CONNECT of `version`.
pub fn server_after_connect(version: ProtocolVersion) -> Decoder {
    let mut d = Decoder::server(PROTOCOL_MAX_PACKET_SIZE);
    let mut buf = encode(version, &connect(version));
    d.decode(&mut buf)
        .expect("valid CONNECT")
        .expect("complete CONNECT");
    assert_eq!(d.version(), Some(version));
    d
}

/// The decoder a round trip of `packet` should use: the client decoder
/// accepts everything a server sends; DISCONNECT with a Session Expiry
/// Interval only comes from a client [MQTT-3.14.2-2].
pub fn decoder_for(version: ProtocolVersion, packet: &Packet) -> Decoder {
    match packet {
        Packet::Disconnect(d) if d.properties.session_expiry_interval.is_some() => {
            server_after_connect(version)
        }
        _ => Decoder::client(version, PROTOCOL_MAX_PACKET_SIZE),
    }
}

// ------------------------------------------------------------ strategies

/// A UTF-8 string without U+0000, including U+FEFF and multi-byte chars.
pub fn text() -> impl Strategy<Value = ByteString> {
    "[a-zA-Z0-9 _\\-é€\u{FEFF}😀]{0,12}".prop_map(ByteString::from)
}

pub fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

pub fn topic_name() -> impl Strategy<Value = ByteString> {
    "[a-z0-9$é\u{FEFF}]{1,6}(/[a-z0-9 ]{0,5}){0,3}".prop_map(ByteString::from)
}

pub fn topic_filter() -> impl Strategy<Value = ByteString> {
    let level = prop_oneof![3 => "[a-z0-9é]{0,5}", 1 => Just("+".to_owned())];
    (
        vec(level, 1..4),
        any::<bool>(),
        prop_oneof![4 => Just(None), 1 => Just(Some("$share/grp/"))],
    )
        .prop_map(|(levels, hash, shared)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str(if f.is_empty() { "#" } else { "/#" });
            }
            if f.is_empty() {
                f.push('x');
            }
            if let Some(prefix) = shared {
                f.insert_str(0, prefix);
            }
            ByteString::from(f)
        })
}

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..=u16::MAX).prop_map(|v| PacketId::new(v).expect("non-zero"))
}

pub fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((text(), text()), 0..3)
}

fn code(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

fn nonzero_u16() -> impl Strategy<Value = u16> {
    1u16..=u16::MAX
}

fn nonzero_u32() -> impl Strategy<Value = u32> {
    1u32..=u32::MAX
}

fn sub_id() -> impl Strategy<Value = u32> {
    1u32..=MAX_VARINT
}

fn will(version: ProtocolVersion) -> impl Strategy<Value = LastWill> {
    let v5 = version.is_v5();
    let props = (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(binary()),
        user_properties(),
    )
        .prop_map(move |(delay, pfi, expiry, ct, rt, cd, up)| {
            if !v5 {
                return WillProperties::default();
            }
            WillProperties {
                will_delay_interval: delay,
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
            }
        });
    (topic_name(), binary(), qos(), any::<bool>(), props).prop_map(
        |(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        },
    )
}

fn connect_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let props = (
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(nonzero_u32()),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        user_properties(),
        option::of((text(), option::of(binary()))),
    )
        .prop_map(move |(sei, rm, mps, tam, rri, rpi, up, auth)| {
            if !v5 {
                return ConnectProperties::default();
            }
            ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                authentication_method: auth.as_ref().map(|a| a.0.clone()),
                authentication_data: auth.and_then(|a| a.1),
            }
        });
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        option::of(will(version)),
        option::of(text()),
        option::of(binary()),
        props,
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // 3.x: no password without a user name [MQTT-3.1.2-22].
                let password = if v5 || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// The 5.0 codes that 3.1.1 return codes decode to.
const CONNACK_V3: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];

fn connack_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let props = (
        (
            option::of(any::<u32>()),
            option::of(nonzero_u16()),
            option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
            option::of(any::<bool>()),
            option::of(nonzero_u32()),
            option::of(text()),
            option::of(any::<u16>()),
            option::of(text()),
        ),
        (
            user_properties(),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<u16>()),
            option::of(text()),
            option::of(text()),
            option::of((text(), option::of(binary()))),
        ),
    )
        .prop_map(
            |((sei, rm, mq, ra, mps, aci, tam, rs), (up, wsa, sia, ssa, ska, ri, sr, auth))| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties: up,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: auth.as_ref().map(|a| a.0.clone()),
                    authentication_data: auth.and_then(|a| a.1),
                }
            },
        );
    (
        any::<bool>(),
        code(if v5 { CONNACK_V5 } else { CONNACK_V3 }),
        props,
    )
        .prop_map(move |(session_present, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: session_present && version != ProtocolVersion::V31,
                reason_code,
                properties: if v5 {
                    properties
                } else {
                    ConnAckProperties::default()
                },
            })
        })
}

pub fn publish(version: ProtocolVersion) -> impl Strategy<Value = Publish> {
    let v5 = version.is_v5();
    let props = (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(topic_name()),
        option::of(binary()),
        user_properties(),
        vec(sub_id(), 0..3),
        option::of(text()),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, up, ids, ct)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
            subscription_identifiers: ids.into_iter().collect(),
            content_type: ct,
        });
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        props,
        binary(),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, retain, topic, pid, properties, payload, empty_topic)| {
                let properties = if v5 {
                    properties
                } else {
                    PublishProperties::default()
                };
                // 5.0: an empty Topic Name is fine with a Topic Alias.
                let topic = if empty_topic && properties.topic_alias.is_some() {
                    ByteString::new()
                } else {
                    topic
                };
                let at_least_once = qos != QoS::AtMostOnce;
                Publish {
                    dup: dup && at_least_once,
                    qos,
                    retain,
                    topic,
                    packet_id: at_least_once.then_some(pid),
                    properties,
                    payload,
                }
            },
        )
}

fn ack_properties(v5: bool) -> impl Strategy<Value = AckProperties> {
    (option::of(text()), user_properties()).prop_map(move |(reason_string, user_properties)| {
        if v5 {
            AckProperties {
                reason_string,
                user_properties,
            }
        } else {
            AckProperties::default()
        }
    })
}

const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];

fn pub_response(
    version: ProtocolVersion,
    codes: &'static [u8],
) -> impl Strategy<Value = PubResponse> {
    let v5 = version.is_v5();
    (packet_id(), code(codes), ack_properties(v5)).prop_map(
        move |(packet_id, reason_code, properties)| PubResponse {
            packet_id,
            reason_code: if v5 { reason_code } else { ReasonCode::SUCCESS },
            properties,
        },
    )
}

fn subscribe_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    let entry = (topic_filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        move |(filter, qos, nl, rap, rh)| {
            let shared = filter.starts_with("$share/");
            let options = if v5 {
                SubscriptionOptions {
                    qos,
                    // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
                    no_local: nl && !shared,
                    retain_as_published: rap,
                    retain_handling: match rh {
                        0 => RetainHandling::SendAtSubscribe,
                        1 => RetainHandling::SendIfNew,
                        _ => RetainHandling::DoNotSend,
                    },
                }
            } else {
                SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                }
            };
            (filter, options)
        },
    );
    (
        packet_id(),
        vec(entry, 1..4),
        option::of(sub_id()),
        user_properties(),
    )
        .prop_map(move |(packet_id, filters, sid, up)| {
            let properties = if v5 {
                SubscribeProperties {
                    subscription_identifier: sid,
                    user_properties: up,
                }
            } else {
                SubscribeProperties::default()
            };
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

const SUBACK_V5: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_V5: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

fn disconnect_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version.is_v5();
    (
        code(DISCONNECT_CODES),
        option::of(any::<u32>()),
        option::of(text()),
        user_properties(),
        option::of(text()),
    )
        .prop_map(move |(reason_code, sei, rs, up, sr)| {
            if !v5 {
                return Packet::Disconnect(Disconnect::default());
            }
            Packet::Disconnect(Disconnect {
                reason_code,
                properties: DisconnectProperties {
                    session_expiry_interval: sei,
                    reason_string: rs,
                    user_properties: up,
                    server_reference: sr,
                },
            })
        })
}

fn auth_packet() -> impl Strategy<Value = Packet> {
    (
        code(&[0x00, 0x18, 0x19]),
        option::of(text()),
        option::of(binary()),
        option::of(text()),
        user_properties(),
    )
        .prop_map(|(reason_code, method, data, rs, up)| {
            // Continue / Re-authenticate need a method; data needs a method.
            let method = if reason_code != ReasonCode::SUCCESS || data.is_some() {
                Some(method.unwrap_or_else(|| ByteString::from_static("SCRAM-SHA-1")))
            } else {
                method
            };
            Packet::Auth(Auth {
                reason_code,
                properties: AuthProperties {
                    authentication_method: method,
                    authentication_data: data,
                    reason_string: rs,
                    user_properties: up,
                },
            })
        })
}

/// Any valid packet of `version`.
pub fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let mut choices: Vec<BoxedStrategy<Packet>> = vec![
        connect_packet(version).boxed(),
        connack_packet(version).boxed(),
        publish(version).prop_map(Packet::Publish).boxed(),
        pub_response(version, PUBACK_CODES)
            .prop_map(Packet::PubAck)
            .boxed(),
        pub_response(version, PUBACK_CODES)
            .prop_map(Packet::PubRec)
            .boxed(),
        pub_response(version, PUBREL_CODES)
            .prop_map(Packet::PubRel)
            .boxed(),
        pub_response(version, PUBREL_CODES)
            .prop_map(Packet::PubComp)
            .boxed(),
        subscribe_packet(version).boxed(),
        (
            packet_id(),
            vec(code(if v5 { SUBACK_V5 } else { SUBACK_V3 }), 1..4),
            ack_properties(v5),
        )
            .prop_map(|(packet_id, reason_codes, properties)| {
                Packet::SubAck(SubAck {
                    packet_id,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        (packet_id(), vec(topic_filter(), 1..4), user_properties())
            .prop_map(move |(packet_id, filters, up)| {
                Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    filters,
                    user_properties: if v5 { up } else { Vec::new() },
                })
            })
            .boxed(),
        (
            packet_id(),
            vec(code(UNSUBACK_V5), 1..4),
            ack_properties(v5),
        )
            .prop_map(move |(packet_id, codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    reason_codes: if v5 { codes } else { Vec::new() },
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect_packet(version).boxed(),
    ];
    if v5 {
        choices.push(auth_packet().boxed());
    }
    proptest::strategy::Union::new(choices).boxed()
}
