//! PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7): Packet Identifier, then in
//! 5.0 an optional reason code and optional properties. Also the Reason
//! String + User Property block shared with SUBACK and UNSUBACK.

use crate::error::DecodeError;
use crate::packet::{AckProperties, PacketType, PubResponse};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::types::{ProtocolVersion, ReasonCode};

use super::read_packet_id;

/// PUBACK and PUBREC reason codes (3.4.2.1, 3.5.2.1).
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
/// PUBREL and PUBCOMP reason codes (3.6.2.1, 3.7.2.1).
const PUBREL_CODES: &[u8] = &[0x00, 0x92];

pub(super) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<PubResponse, DecodeError> {
    let packet_id = read_packet_id(r)?;
    let mut response = PubResponse::success(packet_id);
    // The reason code and property length may be omitted: Remaining Length 2
    // means Success with no properties (3.4.2.1); 3 means no properties.
    if version.is_v5() && !r.is_empty() {
        let code = r.u8("reason code")?;
        let packet_type = r.packet_type();
        let allowed = match packet_type {
            PacketType::PubAck | PacketType::PubRec => PUBACK_CODES,
            _ => PUBREL_CODES,
        };
        if !allowed.contains(&code) {
            return Err(DecodeError::InvalidReasonCode { packet_type, code });
        }
        response.reason_code = ReasonCode(code);
        if !r.is_empty() {
            response.properties = read_ack_properties(r)?;
        }
    }
    r.finish()?;
    Ok(response)
}

/// Reason String and User Properties: the only properties of PUBACK,
/// PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
pub(super) fn read_ack_properties(r: &mut Reader) -> Result<AckProperties, DecodeError> {
    let mut p = AckProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::REASON_STRING => p.reason_string = Some(props::read_string(r, property)?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
