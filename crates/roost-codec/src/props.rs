//! MQTT 5.0 properties (2.2.2): identifiers, the shared reading loop (length
//! prefix, unknown identifiers, duplicates) and value readers that enforce the
//! ranges the spec gives. Which property a packet accepts is decided by each
//! packet's own property matcher: anything it does not handle is reported as
//! [`DecodeError::PropertyNotAllowed`].

use bytestring::ByteString;

use crate::error::DecodeError;
use crate::packet::UserProperty;
use crate::reader::Reader;

/// Property identifiers (Table 2-4).
pub(crate) mod id {
    pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub(crate) const CONTENT_TYPE: u8 = 0x03;
    pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
    pub(crate) const CORRELATION_DATA: u8 = 0x09;
    pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
    pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
    pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
    pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
    pub(crate) const REASON_STRING: u8 = 0x1F;
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    pub(crate) const MAXIMUM_QOS: u8 = 0x24;
    pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
    pub(crate) const USER_PROPERTY: u8 = 0x26;
    pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The spec's name of a property, for error messages and field names.
pub(crate) fn name(property: u8) -> Option<&'static str> {
    Some(match property {
        id::PAYLOAD_FORMAT_INDICATOR => "Payload Format Indicator",
        id::MESSAGE_EXPIRY_INTERVAL => "Message Expiry Interval",
        id::CONTENT_TYPE => "Content Type",
        id::RESPONSE_TOPIC => "Response Topic",
        id::CORRELATION_DATA => "Correlation Data",
        id::SUBSCRIPTION_IDENTIFIER => "Subscription Identifier",
        id::SESSION_EXPIRY_INTERVAL => "Session Expiry Interval",
        id::ASSIGNED_CLIENT_IDENTIFIER => "Assigned Client Identifier",
        id::SERVER_KEEP_ALIVE => "Server Keep Alive",
        id::AUTHENTICATION_METHOD => "Authentication Method",
        id::AUTHENTICATION_DATA => "Authentication Data",
        id::REQUEST_PROBLEM_INFORMATION => "Request Problem Information",
        id::WILL_DELAY_INTERVAL => "Will Delay Interval",
        id::REQUEST_RESPONSE_INFORMATION => "Request Response Information",
        id::RESPONSE_INFORMATION => "Response Information",
        id::SERVER_REFERENCE => "Server Reference",
        id::REASON_STRING => "Reason String",
        id::RECEIVE_MAXIMUM => "Receive Maximum",
        id::TOPIC_ALIAS_MAXIMUM => "Topic Alias Maximum",
        id::TOPIC_ALIAS => "Topic Alias",
        id::MAXIMUM_QOS => "Maximum QoS",
        id::RETAIN_AVAILABLE => "Retain Available",
        id::USER_PROPERTY => "User Property",
        id::MAXIMUM_PACKET_SIZE => "Maximum Packet Size",
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => "Wildcard Subscription Available",
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => "Subscription Identifier Available",
        id::SHARED_SUBSCRIPTION_AVAILABLE => "Shared Subscription Available",
        _ => return None,
    })
}

/// Where a property block sits, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// The packet's own properties.
    Packet,
    /// The Will Properties in the CONNECT payload.
    Will,
}

/// Reads one property block: the length, then each property. `handle` reads
/// the value of a property the packet accepts and returns `Ok(false)` for
/// one it does not. Unknown identifiers, properties the packet does not
/// accept and duplicates (anything but User Property and `repeatable`) are
/// errors.
pub(crate) fn read_block(
    r: &mut Reader,
    block: Block,
    repeatable: Option<u8>,
    mut handle: impl FnMut(&mut Reader, u8) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.varint("property length")?;
    // A u32 always fits in usize on the platforms we build for; a failing
    // conversion can only mean "more than the packet holds".
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let saved = r.narrow(len, "properties")?;
    let packet_type = r.packet_type();
    // Every identifier is below 0x2B, so one bit each fits in a u64.
    let mut seen: u64 = 0;
    while !r.is_empty() {
        let raw = r.varint("property identifier")?;
        let Some(property) = u8::try_from(raw).ok().filter(|p| name(*p).is_some()) else {
            return Err(DecodeError::UnknownProperty {
                packet_type,
                id: raw,
            });
        };
        let bit = 1u64 << property;
        let may_repeat = property == id::USER_PROPERTY || Some(property) == repeatable;
        let duplicate = seen & bit != 0 && !may_repeat;
        seen |= bit;
        // "Not allowed" wins over "duplicate": the first occurrence already
        // reported it, so a duplicate here is of an allowed property.
        if duplicate {
            return Err(DecodeError::DuplicateProperty {
                packet_type,
                property,
            });
        }
        if !handle(r, property)? {
            return Err(DecodeError::PropertyNotAllowed {
                packet_type,
                in_will: block == Block::Will,
                property,
            });
        }
    }
    r.widen(saved);
    Ok(())
}

fn field(property: u8) -> &'static str {
    name(property).unwrap_or("property")
}

/// A Byte property that must be 0 or 1.
pub(crate) fn read_bool(r: &mut Reader, property: u8) -> Result<bool, DecodeError> {
    match r.u8(field(property))? {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(DecodeError::InvalidBooleanProperty { property, value }),
    }
}

/// A Two Byte Integer property.
pub(crate) fn read_u16(r: &mut Reader, property: u8) -> Result<u16, DecodeError> {
    r.u16(field(property))
}

/// A Four Byte Integer property.
pub(crate) fn read_u32(r: &mut Reader, property: u8) -> Result<u32, DecodeError> {
    r.u32(field(property))
}

/// Receive Maximum: 0 is a Protocol Error (3.1.2.11.3, 3.2.2.3.3).
pub(crate) fn read_receive_maximum(r: &mut Reader) -> Result<u16, DecodeError> {
    match read_u16(r, id::RECEIVE_MAXIMUM)? {
        0 => Err(DecodeError::ReceiveMaximumZero),
        v => Ok(v),
    }
}

/// Maximum Packet Size: 0 is a Protocol Error (3.1.2.11.4, 3.2.2.3.6).
pub(crate) fn read_maximum_packet_size(r: &mut Reader) -> Result<u32, DecodeError> {
    match read_u32(r, id::MAXIMUM_PACKET_SIZE)? {
        0 => Err(DecodeError::MaximumPacketSizeZero),
        v => Ok(v),
    }
}

/// Subscription Identifier: a Variable Byte Integer, 0 is a Protocol Error.
pub(crate) fn read_subscription_identifier(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.varint("Subscription Identifier")? {
        0 => Err(DecodeError::SubscriptionIdentifierZero),
        v => Ok(v),
    }
}

/// A UTF-8 String property.
pub(crate) fn read_string(r: &mut Reader, property: u8) -> Result<ByteString, DecodeError> {
    r.string(field(property))
}

/// A User Property: a UTF-8 String Pair [MQTT-1.5.7-1].
pub(crate) fn read_user_property(r: &mut Reader) -> Result<UserProperty, DecodeError> {
    let key = r.string("User Property name")?;
    let value = r.string("User Property value")?;
    Ok((key, value))
}
