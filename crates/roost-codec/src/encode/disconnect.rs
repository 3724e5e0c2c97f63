//! DISCONNECT and AUTH bodies, with their short forms.

use crate::error::EncodeError;
use crate::packet::{Auth, Disconnect};
use crate::types::{ProtocolVersion, ReasonCode};

use super::props::{Strip, block_len, put_block};
use super::sink::Sink;

/// 3.x: empty. 5.0: empty for Normal disconnection without properties, the
/// reason code alone without properties, else reason code and properties.
pub(super) fn disconnect<S: Sink>(
    version: ProtocolVersion,
    d: &Disconnect,
    strip: Strip,
    s: &mut S,
) -> Result<(), EncodeError> {
    if !version.is_v5() {
        return Ok(());
    }
    let no_properties = block_len(&d.properties, strip)? == 0;
    if no_properties && d.reason_code == ReasonCode::NORMAL_DISCONNECTION {
        return Ok(());
    }
    s.put_u8(d.reason_code.0);
    if no_properties {
        return Ok(());
    }
    put_block(s, &d.properties, strip)
}

/// AUTH: empty for Success without properties (3.15.2.1), else reason code
/// and properties.
pub(super) fn auth<S: Sink>(a: &Auth, strip: Strip, s: &mut S) -> Result<(), EncodeError> {
    if a.reason_code == ReasonCode::SUCCESS && block_len(&a.properties, strip)? == 0 {
        return Ok(());
    }
    s.put_u8(a.reason_code.0);
    put_block(s, &a.properties, strip)
}
