//! AUTH (3.15, 5.0 only). Remaining Length 0 means Success with no
//! properties.

use crate::error::DecodeError;
use crate::packet::{Auth, AuthProperties, PacketType};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::types::ReasonCode;

/// AUTH reason codes (3.15.2.1).
const CODES: &[u8] = &[0x00, 0x18, 0x19];

pub(super) fn decode(r: &mut Reader) -> Result<Auth, DecodeError> {
    let mut auth = Auth::default();
    if !r.is_empty() {
        let code = r.u8("reason code")?;
        if !CODES.contains(&code) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type: PacketType::Auth,
                code,
            });
        }
        auth.reason_code = ReasonCode(code);
        if !r.is_empty() {
            auth.properties = read_properties(r)?;
        }
    }
    r.finish()?;
    // 3.15.2.2.2: the Authentication Method must be present when
    // authentication continues or restarts.
    if auth.reason_code != ReasonCode::SUCCESS && auth.properties.authentication_method.is_none() {
        return Err(DecodeError::AuthenticationMethodMissing);
    }
    if auth.properties.authentication_data.is_some()
        && auth.properties.authentication_method.is_none()
    {
        return Err(DecodeError::AuthenticationDataWithoutMethod);
    }
    Ok(auth)
}

fn read_properties(r: &mut Reader) -> Result<AuthProperties, DecodeError> {
    let mut p = AuthProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::AUTHENTICATION_METHOD => {
                p.authentication_method = Some(props::read_string(r, property)?);
            }
            id::AUTHENTICATION_DATA => {
                p.authentication_data = Some(r.binary("Authentication Data")?);
            }
            id::REASON_STRING => p.reason_string = Some(props::read_string(r, property)?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
