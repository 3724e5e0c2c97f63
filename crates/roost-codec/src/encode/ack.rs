//! PUBACK / PUBREC / PUBREL / PUBCOMP, SUBACK and UNSUBACK bodies.

use crate::error::EncodeError;
use crate::packet::{PubResponse, SubAck, UnsubAck};
use crate::types::{ProtocolVersion, ReasonCode};

use super::props::{Strip, block_len, put_block};
use super::sink::Sink;

/// Packet Identifier, then in 5.0 the reason code and properties, using the
/// short forms: Success without properties is Remaining Length 2, a reason
/// code without properties is 3 (3.4.2.1).
pub(super) fn pub_response<S: Sink>(
    version: ProtocolVersion,
    a: &PubResponse,
    strip: Strip,
    s: &mut S,
) -> Result<(), EncodeError> {
    s.put_u16(a.packet_id.get());
    if !version.is_v5() {
        return Ok(());
    }
    let no_properties = block_len(&a.properties, strip)? == 0;
    if no_properties && a.reason_code == ReasonCode::SUCCESS {
        return Ok(());
    }
    s.put_u8(a.reason_code.0);
    if no_properties {
        return Ok(());
    }
    put_block(s, &a.properties, strip)
}

/// SUBACK: in 3.x any failure is 0x80 and granted QoS values pass through.
pub(super) fn suback<S: Sink>(
    version: ProtocolVersion,
    a: &SubAck,
    strip: Strip,
    s: &mut S,
) -> Result<(), EncodeError> {
    s.put_u16(a.packet_id.get());
    if version.is_v5() {
        put_block(s, &a.properties, strip)?;
        for code in &a.reason_codes {
            s.put_u8(code.0);
        }
    } else {
        for code in &a.reason_codes {
            s.put_u8(if code.0 <= 2 { code.0 } else { 0x80 });
        }
    }
    Ok(())
}

/// UNSUBACK: 3.x carries only the Packet Identifier.
pub(super) fn unsuback<S: Sink>(
    version: ProtocolVersion,
    a: &UnsubAck,
    strip: Strip,
    s: &mut S,
) -> Result<(), EncodeError> {
    s.put_u16(a.packet_id.get());
    if version.is_v5() {
        put_block(s, &a.properties, strip)?;
        for code in &a.reason_codes {
            s.put_u8(code.0);
        }
    }
    Ok(())
}
