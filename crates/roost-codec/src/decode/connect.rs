//! CONNECT (3.1): protocol name and level, flags, keep alive, properties,
//! then Client Identifier, Will (properties, topic, payload), User Name,
//! Password, in that order [MQTT-3.1.3-1].

use bytes::Bytes;

use crate::error::DecodeError;
use crate::packet::{Connect, ConnectProperties, LastWill, WillProperties};
use crate::props::{self, Block, id};
use crate::reader::Reader;
use crate::topic::validate_topic_name;
use crate::types::{ProtocolVersion, QoS};

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN_START: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

/// Decodes CONNECT. `fixed` is the connection's version: set from this
/// CONNECT's level if still unknown (a later CONNECT never changes it).
pub(super) fn decode(
    r: &mut Reader,
    fixed: &mut Option<ProtocolVersion>,
) -> Result<Connect, DecodeError> {
    let version = read_protocol(r)?;
    if fixed.is_none() {
        *fixed = Some(version);
    }
    let v5 = version.is_v5();

    let flags = r.u8("connect flags")?;
    let will_flag = flags & FLAG_WILL != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & FLAG_WILL_RETAIN != 0;
    if flags & FLAG_RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    if will_qos == 3 {
        return Err(DecodeError::WillQos3);
    }
    if !will_flag && will_qos != 0 {
        return Err(DecodeError::WillQosWithoutWill);
    }
    if !will_flag && will_retain {
        return Err(DecodeError::WillRetainWithoutWill);
    }
    if !v5 && flags & FLAG_PASSWORD != 0 && flags & FLAG_USERNAME == 0 {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = if v5 {
        read_properties(r)?
    } else {
        ConnectProperties::default()
    };

    let client_id = r.string("client identifier")?;
    let will = if will_flag {
        let properties = if v5 {
            read_will_properties(r)?
        } else {
            WillProperties::default()
        };
        let topic = r.string("will topic")?;
        validate_topic_name(&topic).map_err(|error| DecodeError::InvalidWillTopic { error })?;
        let payload = r.binary("will payload")?;
        // `will_qos` is 0..=2 here: 3 was rejected above.
        let qos = QoS::from_u8(will_qos).unwrap_or_default();
        Some(LastWill {
            topic,
            payload,
            qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if flags & FLAG_USERNAME != 0 {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if flags & FLAG_PASSWORD != 0 {
        Some(r.binary("password")?)
    } else {
        None
    };
    r.finish()?;

    Ok(Connect {
        protocol: version,
        clean_start: flags & FLAG_CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// Protocol name and level: `MQIsdp`/3, `MQTT`/4, `MQTT`/5.
fn read_protocol(r: &mut Reader) -> Result<ProtocolVersion, DecodeError> {
    let name: Bytes = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    match (&name[..], level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V31),
        // A known name with another level: an MQTT client of a version we do
        // not speak, which deserves CONNACK 0x84 / return code 1.
        (b"MQTT" | b"MQIsdp", level) => Err(DecodeError::UnsupportedProtocolVersion { level }),
        _ => Err(DecodeError::InvalidProtocolName { name }),
    }
}

fn read_properties(r: &mut Reader) -> Result<ConnectProperties, DecodeError> {
    let mut p = ConnectProperties::default();
    props::read_block(r, Block::Packet, None, |r, property| {
        match property {
            id::SESSION_EXPIRY_INTERVAL => {
                p.session_expiry_interval = Some(props::read_u32(r, property)?);
            }
            id::RECEIVE_MAXIMUM => p.receive_maximum = Some(props::read_receive_maximum(r)?),
            id::MAXIMUM_PACKET_SIZE => {
                p.maximum_packet_size = Some(props::read_maximum_packet_size(r)?);
            }
            id::TOPIC_ALIAS_MAXIMUM => p.topic_alias_maximum = Some(props::read_u16(r, property)?),
            id::REQUEST_RESPONSE_INFORMATION => {
                p.request_response_information = Some(props::read_bool(r, property)?);
            }
            id::REQUEST_PROBLEM_INFORMATION => {
                p.request_problem_information = Some(props::read_bool(r, property)?);
            }
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            id::AUTHENTICATION_METHOD => {
                p.authentication_method = Some(props::read_string(r, property)?);
            }
            id::AUTHENTICATION_DATA => {
                p.authentication_data = Some(r.binary("Authentication Data")?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    // 3.1.2.11.10: Authentication Data without Authentication Method.
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(DecodeError::AuthenticationDataWithoutMethod);
    }
    Ok(p)
}

fn read_will_properties(r: &mut Reader) -> Result<WillProperties, DecodeError> {
    let mut p = WillProperties::default();
    props::read_block(r, Block::Will, None, |r, property| {
        match property {
            id::WILL_DELAY_INTERVAL => p.will_delay_interval = Some(props::read_u32(r, property)?),
            id::PAYLOAD_FORMAT_INDICATOR => {
                p.payload_format_indicator = Some(props::read_bool(r, property)?);
            }
            id::MESSAGE_EXPIRY_INTERVAL => {
                p.message_expiry_interval = Some(props::read_u32(r, property)?);
            }
            id::CONTENT_TYPE => p.content_type = Some(props::read_string(r, property)?),
            id::RESPONSE_TOPIC => {
                let topic = props::read_string(r, property)?;
                validate_topic_name(&topic)
                    .map_err(|error| DecodeError::InvalidResponseTopic { error })?;
                p.response_topic = Some(topic);
            }
            id::CORRELATION_DATA => p.correlation_data = Some(r.binary("Correlation Data")?),
            id::USER_PROPERTY => p.user_properties.push(props::read_user_property(r)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}
