//! PUBLISH (3.3): Topic Name, Packet Identifier (QoS > 0), properties (5.0),
//! payload. The topic and payload are slices of the read buffer.

use crate::error::DecodeError;
use crate::packet::{Publish, PublishProperties};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::topic::{has_wildcards, validate_topic_name};
use crate::types::{ProtocolVersion, QoS};

use super::{Role, read_packet_id};

/// Decodes PUBLISH. The fixed-header flags were validated (QoS 3, DUP at
/// QoS 0) before the packet was buffered.
pub(super) fn decode(
    r: &mut Reader,
    flags: u8,
    version: ProtocolVersion,
    role: Role,
) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::PublishQos3)?;
    let topic = r.string("topic name")?;
    // A Packet Identifier only at QoS > 0 [MQTT-2.2.1-2], never 0 [MQTT-2.2.1-3].
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(read_packet_id(r)?)
    };
    let properties = if version.is_v5() {
        read_properties(r, role)?
    } else {
        PublishProperties::default()
    };

    if topic.is_empty() {
        // 5.0 allows an empty Topic Name only with a Topic Alias (3.3.2.1).
        if properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicName);
        }
    } else if has_wildcards(&topic) {
        return Err(DecodeError::WildcardInTopicName);
    }

    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 0b0001 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

fn read_properties(r: &mut Reader, role: Role) -> Result<PublishProperties, DecodeError> {
    let mut p = PublishProperties::default();
    let repeatable = Some(id::SUBSCRIPTION_IDENTIFIER);
    props::read_block(r, Block::Packet, repeatable, |r, property| {
        match property {
            id::PAYLOAD_FORMAT_INDICATOR => {
                p.payload_format_indicator = Some(props::read_bool(r, property)?);
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                p.message_expiry_interval = Some(props::read_u32(r, property)?);
            }
            id::TOPIC_ALIAS => {
                // A Topic Alias of 0 is not permitted [MQTT-3.3.2-8].
                match props::read_u16(r, property)? {
                    0 => return Err(DecodeError::TopicAliasZero),
                    alias => p.topic_alias = Some(alias),
                }
            }
            id::RESPONSE_TOPIC => {
                let topic = props::read_string(r, property)?;
                validate_topic_name(&topic)
                    .map_err(|error| DecodeError::InvalidResponseTopic { error })?;
                p.response_topic = Some(topic);
            }
            id::CORRELATION_DATA => p.correlation_data = Some(r.binary("Correlation Data")?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            id::SUBSCRIPTION_IDENTIFIER => {
                // Only a server may send it [MQTT-3.3.4-6].
                if role == Role::Server {
                    return Err(DecodeError::SubscriptionIdentifierFromClient);
                }
                p.subscription_identifiers
                    .push(props::read_subscription_identifier(r)?);
            }
            id::CONTENT_TYPE => p.content_type = Some(props::read_string(r, property)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
