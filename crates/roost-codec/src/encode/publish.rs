//! PUBLISH: fixed-header flags and body (optionally without the payload).

use crate::error::EncodeError;
use crate::packet::Publish;
use crate::types::{ProtocolVersion, QoS};

use super::Payload;
use super::props::{Strip, put_block};
use super::sink::{Sink, put_str};

/// Type 3 with DUP, QoS and RETAIN.
pub(super) fn first_byte(p: &Publish) -> u8 {
    // DUP is only meaningful (and only allowed) at QoS > 0 [MQTT-3.3.1-2].
    let dup = p.dup && p.qos != QoS::AtMostOnce;
    0x30 | (u8::from(dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
}

pub(super) fn body<S: Sink>(
    version: ProtocolVersion,
    p: &Publish,
    payload: Payload,
    s: &mut S,
) -> Result<(), EncodeError> {
    put_str(s, &p.topic, "topic name")?;
    if p.qos != QoS::AtMostOnce {
        let packet_id = p.packet_id.ok_or(EncodeError::MissingPacketId)?;
        s.put_u16(packet_id.get());
    }
    if version.is_v5() {
        put_block(s, &p.properties, Strip::Nothing)?;
    }
    if payload == Payload::Include {
        s.put_slice(&p.payload);
    }
    Ok(())
}
