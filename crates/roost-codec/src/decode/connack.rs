//! CONNACK (3.2): Acknowledge Flags, reason code (5.0) or return code (3.x),
//! properties (5.0).

use crate::error::DecodeError;
use crate::packet::{ConnAck, ConnAckProperties, PacketType};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::types::{ConnectReturnCode, ProtocolVersion, QoS, ReasonCode};

/// CONNACK reason codes of 5.0 (3.2.2.2).
const V5_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];

pub(super) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8("connect acknowledge flags")?;
    // Bits 7-1 are reserved [MQTT-3.2.2-1].
    if flags & 0xFE != 0 {
        return Err(DecodeError::ConnAckReservedFlags { flags });
    }
    let code = r.u8("connect reason code")?;
    let invalid = DecodeError::InvalidReasonCode {
        packet_type: PacketType::ConnAck,
        code,
    };
    let (reason_code, properties) = if version.is_v5() {
        if !V5_CODES.contains(&code) {
            return Err(invalid);
        }
        (ReasonCode(code), read_properties(r)?)
    } else {
        let rc = return_code(code).ok_or(invalid)?;
        (rc.to_reason(), ConnAckProperties::default())
    };
    r.finish()?;
    // 3.1 has no Session Present flag: the whole byte is reserved there.
    let session_present = flags & 0x01 != 0 && version != ProtocolVersion::V31;
    Ok(ConnAck {
        session_present,
        reason_code,
        properties,
    })
}

/// 3.1.1 Table 3.1: return codes 0..=5.
fn return_code(code: u8) -> Option<ConnectReturnCode> {
    Some(match code {
        0 => ConnectReturnCode::Accepted,
        1 => ConnectReturnCode::UnacceptableProtocolVersion,
        2 => ConnectReturnCode::IdentifierRejected,
        3 => ConnectReturnCode::ServerUnavailable,
        4 => ConnectReturnCode::BadUserNameOrPassword,
        5 => ConnectReturnCode::NotAuthorized,
        _ => return None,
    })
}

fn read_properties(r: &mut Reader) -> Result<ConnAckProperties, DecodeError> {
    let mut p = ConnAckProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::SESSION_EXPIRY_INTERVAL => {
                p.session_expiry_interval = Some(props::read_u32(r, property)?);
            }
            id::RECEIVE_MAXIMUM => p.receive_maximum = Some(props::read_receive_maximum(r)?),
            id::MAXIMUM_QOS => {
                // 3.2.2.3.4: only 0 or 1 may be sent; absent means 2.
                p.maximum_qos = Some(match r.u8("Maximum QoS")? {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    value => return Err(DecodeError::InvalidMaximumQos { value }),
                });
            }
            id::RETAIN_AVAILABLE => p.retain_available = Some(props::read_bool(r, property)?),
            id::MAXIMUM_PACKET_SIZE => {
                p.maximum_packet_size = Some(props::read_maximum_packet_size(r)?);
            }
            id::ASSIGNED_CLIENT_IDENTIFIER => {
                p.assigned_client_identifier = Some(props::read_string(r, property)?);
            }
            id::TOPIC_ALIAS_MAXIMUM => p.topic_alias_maximum = Some(props::read_u16(r, property)?),
            id::REASON_STRING => p.reason_string = Some(props::read_string(r, property)?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                p.wildcard_subscription_available = Some(props::read_bool(r, property)?);
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                p.subscription_identifiers_available = Some(props::read_bool(r, property)?);
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => {
                p.shared_subscription_available = Some(props::read_bool(r, property)?);
            }
            id::SERVER_KEEP_ALIVE => p.server_keep_alive = Some(props::read_u16(r, property)?),
            id::RESPONSE_INFORMATION => {
                p.response_information = Some(props::read_string(r, property)?);
            }
            id::SERVER_REFERENCE => p.server_reference = Some(props::read_string(r, property)?),
            id::AUTHENTICATION_METHOD => {
                p.authentication_method = Some(props::read_string(r, property)?);
            }
            id::AUTHENTICATION_DATA => {
                p.authentication_data = Some(r.binary("Authentication Data")?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
