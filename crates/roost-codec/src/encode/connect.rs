//! CONNECT and CONNACK bodies.

use crate::error::EncodeError;
use crate::packet::{ConnAck, Connect};
use crate::types::{ConnectReturnCode, ProtocolVersion};

use super::props::{Strip, put_block};
use super::sink::{Sink, put_binary, put_str};

/// CONNECT in the layout of `version` (its name and level; `c.protocol` is
/// not consulted, so one encoder always speaks one version).
pub(super) fn connect<S: Sink>(
    version: ProtocolVersion,
    c: &Connect,
    s: &mut S,
) -> Result<(), EncodeError> {
    let v5 = version.is_v5();
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::PasswordWithoutUsername);
    }
    put_str(s, version.protocol_name(), "protocol name")?;
    s.put_u8(version.level());

    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(will) = &c.will {
        flags |= 0x04 | ((will.qos as u8) << 3);
        if will.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    s.put_u8(flags);
    s.put_u16(c.keep_alive);
    if v5 {
        put_block(s, &c.properties, Strip::Nothing)?;
    }

    put_str(s, &c.client_id, "client identifier")?;
    if let Some(will) = &c.will {
        if v5 {
            put_block(s, &will.properties, Strip::Nothing)?;
        }
        put_str(s, &will.topic, "will topic")?;
        put_binary(s, &will.payload, "will payload")?;
    }
    if let Some(username) = &c.username {
        put_str(s, username, "user name")?;
    }
    if let Some(password) = &c.password {
        put_binary(s, password, "password")?;
    }
    Ok(())
}

/// CONNACK: 5.0 reason code and properties, or the 3.x return code mapped
/// from the 5.0 reason code.
pub(super) fn connack<S: Sink>(
    version: ProtocolVersion,
    c: &ConnAck,
    strip: Strip,
    s: &mut S,
) -> Result<(), EncodeError> {
    // 3.1 has no Session Present flag: the byte is reserved.
    let session_present = c.session_present && version != ProtocolVersion::V31;
    s.put_u8(u8::from(session_present));
    if version.is_v5() {
        s.put_u8(c.reason_code.0);
        put_block(s, &c.properties, strip)
    } else {
        s.put_u8(ConnectReturnCode::from_reason(c.reason_code) as u8);
        Ok(())
    }
}
