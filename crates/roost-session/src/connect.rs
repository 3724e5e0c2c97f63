//! CONNECT checks that need no broker state, and CONNACK refusals.

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::topic::validate_topic_name;
use roost_codec::{ConnAck, Connect, Encoder, Packet, ProtocolVersion, ReasonCode};

use crate::config::SessionConfig;
use crate::reason;
use roost_codec::PROTOCOL_MAX_PACKET_SIZE;

/// The outcome of a successful (enhanced) authentication, echoed in CONNACK.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSuccess {
    /// Authentication Method (must equal CONNECT's [MQTT-4.12.0-5]).
    pub method: ByteString,
    /// Final Authentication Data, if any. Redacted in `Debug`.
    pub data: Option<Bytes>,
}

impl std::fmt::Debug for AuthSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSuccess")
            .field("method", &self.method)
            .field("data", &self.data.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// CONNECT checks that need no broker state. `Err` is the reason code to put
/// in CONNACK (built with [`connack_refusal`]) before closing.
///
/// - client identifier longer than `max_client_id_len` → 0x85 [MQTT-3.1.3-8];
///   any identifier of 1..=23 alphanumerics is accepted [MQTT-3.1.3-5];
/// - empty identifier with Clean Session 0 in 3.1.1 → 0x85, i.e. return
///   code 0x02 Identifier rejected [MQTT-3.1.3-8 (3.1.1)]; 3.1 has no empty
///   identifiers at all;
/// - Will QoS above `maximum_qos` → 0x9B [MQTT-3.2.2-12];
/// - Will Retain while retain is unavailable → 0x9A [MQTT-3.2.2-13];
/// - Will Topic not a valid topic name or deeper than `max_topic_levels` → 0x90;
/// - Will payload flagged UTF-8 that is not (when validating) → 0x99.
pub fn check_connect(connect: &Connect, config: &SessionConfig) -> Result<(), ReasonCode> {
    let id = &connect.client_id;
    if id.len() > config.max_client_id_len {
        return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    }
    if id.is_empty() {
        match connect.protocol {
            ProtocolVersion::V31 => return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
            ProtocolVersion::V311 if !connect.clean_start => {
                return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            }
            _ => {}
        }
    }
    if let Some(will) = &connect.will {
        if will.qos > config.maximum_qos {
            return Err(ReasonCode::QOS_NOT_SUPPORTED);
        }
        if will.retain && !config.retain_available {
            return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        if validate_topic_name(&will.topic).is_err()
            || too_deep(&will.topic, config.max_topic_levels)
        {
            return Err(ReasonCode::TOPIC_NAME_INVALID);
        }
        if will.properties.payload_format_indicator == Some(true)
            && config.validate_utf8_payload
            && std::str::from_utf8(&will.payload).is_err()
        {
            return Err(ReasonCode::PAYLOAD_FORMAT_INVALID);
        }
    }
    Ok(())
}

/// True when `topic` has more than `max_levels` levels (0 = no limit).
pub(crate) fn too_deep(topic: &str, max_levels: usize) -> bool {
    max_levels != 0 && topic_levels(topic) > max_levels
}

/// Number of levels in a topic name or filter.
pub(crate) fn topic_levels(topic: &str) -> usize {
    topic.bytes().filter(|&b| b == b'/').count() + 1
}

/// The CONNACK refusing `connect` with `reason` (a failure code; anything
/// else becomes 0x80): Session Present 0 [MQTT-3.2.2-6]; for 5.0 a Reason
/// String only when the client did not set Request Problem Information to 0,
/// and a Server Reference when given (use with 0x9C / 0x9D). Properties that
/// would push the CONNACK past the client's Maximum Packet Size are left out
/// [MQTT-3.2.2-19] [MQTT-3.2.2-20]. For 3.x the encoder maps the reason to a
/// return code.
pub fn connack_refusal(
    connect: &Connect,
    reason: ReasonCode,
    reason_string: Option<&str>,
    server_reference: Option<&str>,
) -> ConnAck {
    let mut ack = ConnAck {
        session_present: false,
        reason_code: reason::for_connack_refusal(reason),
        ..ConnAck::default()
    };
    if connect.protocol.is_v5() {
        if connect.properties.request_problem_information != Some(false) {
            ack.properties.reason_string = reason_string.map(ByteString::from);
        }
        ack.properties.server_reference = server_reference.map(ByteString::from);
        let max = connect
            .properties
            .maximum_packet_size
            .unwrap_or(PROTOCOL_MAX_PACKET_SIZE);
        let encoder = Encoder::new(connect.protocol);
        // Refusals are rare: cloning to measure is fine here.
        let too_big = |a: &ConnAck| !fits(&encoder, &Packet::ConnAck(a.clone()), max);
        if too_big(&ack) {
            ack.properties.reason_string = None;
        }
        if too_big(&ack) {
            ack.properties.server_reference = None;
        }
    }
    ack
}

/// True when `packet` encodes within `max` bytes.
pub(crate) fn fits(encoder: &Encoder, packet: &Packet, max: u32) -> bool {
    encoder
        .encoded_len(packet)
        .is_ok_and(|len| u64::try_from(len).is_ok_and(|l| l <= u64::from(max)))
}
