//! UNSUBSCRIBE (3.10) and UNSUBACK (3.11).

use crate::error::DecodeError;
use crate::packet::{PacketType, UnsubAck, Unsubscribe};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::topic::validate_topic_filter;
use crate::types::ProtocolVersion;

use super::ack::read_ack_properties;
use super::read_packet_id;
use super::subscribe::read_reason_codes;

/// UNSUBACK reason codes of 5.0 (3.11.3).
const V5_UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];

pub(super) fn decode_unsubscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = read_packet_id(r)?;
    let mut user_properties = Vec::new();
    if version.is_v5() {
        props::read_block(r, Block::Packet, None, |r, property| {
            if property != id::USER_PROPERTY {
                return Ok(false);
            }
            user_properties.push(props::read_user_property(r)?);
            Ok(true)
        })?;
    }
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        validate_topic_filter(&filter).map_err(|error| DecodeError::InvalidTopicFilter {
            packet_type: PacketType::Unsubscribe,
            error,
        })?;
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
        });
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        user_properties,
    })
}

pub(super) fn decode_unsuback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let packet_id = read_packet_id(r)?;
    if !version.is_v5() {
        // 3.1.1 UNSUBACK is only the Packet Identifier.
        r.finish()?;
        return Ok(UnsubAck {
            packet_id,
            reason_codes: Vec::new(),
            properties: Default::default(),
        });
    }
    let properties = read_ack_properties(r)?;
    let reason_codes = read_reason_codes(r, V5_UNSUBACK_CODES)?;
    Ok(UnsubAck {
        packet_id,
        reason_codes,
        properties,
    })
}
