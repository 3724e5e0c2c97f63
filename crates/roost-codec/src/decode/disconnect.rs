//! DISCONNECT (3.14). 3.x: no variable header. 5.0: Remaining Length 0 is a
//! Normal disconnection; 1 is a reason code without properties.

use crate::error::DecodeError;
use crate::packet::{Disconnect, DisconnectProperties, PacketType};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::types::{ProtocolVersion, ReasonCode};

use super::Role;

/// DISCONNECT reason codes (3.14.2.1).
const CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

pub(super) fn decode(
    r: &mut Reader,
    version: ProtocolVersion,
    role: Role,
) -> Result<Disconnect, DecodeError> {
    let mut disconnect = Disconnect::default();
    if version.is_v5() && !r.is_empty() {
        let code = r.u8("reason code")?;
        if !CODES.contains(&code) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type: PacketType::Disconnect,
                code,
            });
        }
        disconnect.reason_code = ReasonCode(code);
        if !r.is_empty() {
            disconnect.properties = read_properties(r, role)?;
        }
    }
    r.finish()?;
    Ok(disconnect)
}

fn read_properties(r: &mut Reader, role: Role) -> Result<DisconnectProperties, DecodeError> {
    let mut p = DisconnectProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::SESSION_EXPIRY_INTERVAL => {
                // A server never sends it [MQTT-3.14.2-2].
                if role == Role::Client {
                    return Err(DecodeError::SessionExpiryFromServer);
                }
                p.session_expiry_interval = Some(props::read_u32(r, property)?);
            }
            id::REASON_STRING => p.reason_string = Some(props::read_string(r, property)?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            id::SERVER_REFERENCE => p.server_reference = Some(props::read_string(r, property)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
