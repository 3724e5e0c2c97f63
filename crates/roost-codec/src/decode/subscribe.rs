//! SUBSCRIBE (3.8) and SUBACK (3.9).

use crate::error::DecodeError;
use crate::packet::{AckProperties, PacketType, SubAck, Subscribe, SubscribeProperties};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::topic::{parse_shared, validate_topic_filter};
use crate::types::{ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions};

use super::ack::read_ack_properties;
use super::read_packet_id;

/// SUBACK reason codes of 5.0 (3.9.3).
const V5_SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
/// SUBACK return codes of 3.1.1 [MQTT-3.9.3-2].
const V3_SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

pub(super) fn decode_subscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let packet_id = read_packet_id(r)?;
    let v5 = version.is_v5();
    let properties = if v5 {
        read_properties(r)?
    } else {
        SubscribeProperties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let options = read_options(r.u8("subscription options")?, v5)?;
        validate_topic_filter(&filter).map_err(|error| DecodeError::InvalidTopicFilter {
            packet_type: PacketType::Subscribe,
            error,
        })?;
        if options.no_local && parse_shared(&filter).is_some() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
        });
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

/// Subscription Options (5.0 3.8.3.1; 3.1.1 3.8.3: only the QoS bits).
fn read_options(byte: u8, v5: bool) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if v5 { 0b1100_0000 } else { 0b1111_1100 };
    if byte & reserved != 0 {
        return Err(DecodeError::SubscriptionOptionsReserved { options: byte });
    }
    let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::SubscriptionQos3)?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::RetainHandling3),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling,
    })
}

fn read_properties(r: &mut Reader) -> Result<SubscribeProperties, DecodeError> {
    let mut p = SubscribeProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::SUBSCRIPTION_IDENTIFIER => {
                p.subscription_identifier = Some(props::read_subscription_identifier(r)?);
            }
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

pub(super) fn decode_suback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let packet_id = read_packet_id(r)?;
    let (properties, allowed) = if version.is_v5() {
        (read_ack_properties(r)?, V5_SUBACK_CODES)
    } else {
        (AckProperties::default(), V3_SUBACK_CODES)
    };
    let reason_codes = read_reason_codes(r, allowed)?;
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

/// The rest of the packet as one reason code per byte, each from `allowed`.
pub(super) fn read_reason_codes(
    r: &mut Reader,
    allowed: &[u8],
) -> Result<Vec<ReasonCode>, DecodeError> {
    let packet_type = r.packet_type();
    r.rest()
        .iter()
        .map(|&code| {
            if allowed.contains(&code) {
                Ok(ReasonCode(code))
            } else {
                Err(DecodeError::InvalidReasonCode { packet_type, code })
            }
        })
        .collect()
}
