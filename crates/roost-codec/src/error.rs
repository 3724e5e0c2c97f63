//! Decode and encode errors. Each decode error names the exact peer
//! misbehaviour and the statement it violates; `From<&DecodeError> for
//! ReasonCode` at the bottom is the single table that decides what goes on the
//! wire (DISCONNECT or CONNACK reason code).

use bytes::Bytes;

use crate::packet::PacketType;
use crate::topic::TopicError;
use crate::types::{ProtocolVersion, ReasonCode};

/// Why bytes from the peer could not be decoded. Every error closes the
/// connection; [`ReasonCode::from`] gives the 5.0 reason code to report and
/// [`DecodeError::spec_id_in`] the violated statement (messages quote an id
/// only where it is the same in every version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    // ------------------------------------------------------------ framing
    /// Packet type 0, or 15 (AUTH) before MQTT 5.0: reserved values.
    #[error("packet type {packet_type} is reserved in this protocol version")]
    ReservedPacketType {
        /// The high nibble of the first byte.
        packet_type: u8,
    },
    /// A server connection must start with CONNECT [MQTT-3.1.0-1].
    #[error("first packet is type {packet_type}, not CONNECT [MQTT-3.1.0-1]")]
    FirstPacketNotConnect {
        /// The high nibble of the first byte.
        packet_type: u8,
    },
    /// A packet only the other side sends: from a client, CONNACK, SUBACK,
    /// UNSUBACK or PINGRESP. A Protocol Error (4.13), whatever its body
    /// holds: the body's grammar is the other direction's.
    #[error("{packet_type:?} is only sent by the other side")]
    WrongDirection {
        /// The packet type.
        packet_type: PacketType,
    },
    /// Fixed-header flag bits differ from the values the spec reserves.
    #[error("{packet_type:?} fixed header flags 0x{flags:X} are reserved")]
    InvalidFixedHeaderFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// PUBLISH with both QoS bits set [MQTT-3.3.1-4].
    #[error("PUBLISH QoS is 3 [MQTT-3.3.1-4]")]
    PublishQos3,
    /// PUBLISH at QoS 0 with DUP set [MQTT-3.3.1-2].
    #[error("PUBLISH with QoS 0 has DUP set [MQTT-3.3.1-2]")]
    DupOnQos0,
    /// A Variable Byte Integer longer than four bytes.
    #[error("{field} is a Variable Byte Integer longer than 4 bytes")]
    VarintTooLong {
        /// What was being read.
        field: &'static str,
    },
    /// A Variable Byte Integer not encoded in the fewest bytes [MQTT-1.5.5-1].
    #[error("{field} is not minimally encoded")]
    NonMinimalVarint {
        /// What was being read.
        field: &'static str,
    },
    /// The packet is larger than the Maximum Packet Size we accept. Detected
    /// from the fixed header, before the packet is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge {
        /// Total size on the wire, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// The Remaining Length ended inside a field.
    #[error("{packet_type:?} ends inside {field}: Remaining Length too short for its content")]
    Truncated {
        /// The packet type.
        packet_type: PacketType,
        /// The field being read.
        field: &'static str,
    },
    /// Bytes left over after the last field of a packet with no payload.
    #[error("{packet_type:?} has {count} bytes after its last field: Remaining Length too long")]
    TrailingBytes {
        /// The packet type.
        packet_type: PacketType,
        /// How many bytes were left.
        count: usize,
    },

    // ------------------------------------------------------------ strings
    /// A UTF-8 Encoded String is ill-formed, or encodes a surrogate [MQTT-1.5.4-1].
    #[error("{field} is not well-formed UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A UTF-8 Encoded String contains U+0000 [MQTT-1.5.4-2].
    #[error("{field} contains U+0000")]
    NullCharacter {
        /// The field.
        field: &'static str,
    },

    // ------------------------------------------------------------ properties
    /// A property identifier that MQTT 5.0 does not define.
    #[error("{packet_type:?} has unknown property identifier 0x{id:X}")]
    UnknownProperty {
        /// The packet type.
        packet_type: PacketType,
        /// The identifier.
        id: u32,
    },
    /// A property that is not valid for this packet type (or for the Will).
    #[error("property 0x{property:02X} is not allowed in {packet_type:?}{}", if *.in_will { " Will Properties" } else { "" })]
    PropertyNotAllowed {
        /// The packet type.
        packet_type: PacketType,
        /// True when found among the Will Properties of CONNECT.
        in_will: bool,
        /// The property identifier.
        property: u8,
    },
    /// A property other than User Property (or Subscription Identifier in
    /// PUBLISH) appears twice.
    #[error("property 0x{property:02X} appears more than once in {packet_type:?}")]
    DuplicateProperty {
        /// The packet type.
        packet_type: PacketType,
        /// The property identifier.
        property: u8,
    },
    /// Receive Maximum of 0.
    #[error("Receive Maximum is 0")]
    ReceiveMaximumZero,
    /// Maximum Packet Size of 0.
    #[error("Maximum Packet Size is 0")]
    MaximumPacketSizeZero,
    /// Subscription Identifier of 0.
    #[error("Subscription Identifier is 0")]
    SubscriptionIdentifierZero,
    /// Topic Alias of 0 [MQTT-3.3.2-8].
    #[error("Topic Alias is 0 [MQTT-3.3.2-8]")]
    TopicAliasZero,
    /// A one-byte boolean property holding neither 0 nor 1.
    #[error("property 0x{property:02X} must be 0 or 1, got {value}")]
    InvalidBooleanProperty {
        /// The property identifier.
        property: u8,
        /// The value received.
        value: u8,
    },
    /// Maximum QoS other than 0 or 1.
    #[error("Maximum QoS must be 0 or 1, got {value}")]
    InvalidMaximumQos {
        /// The value received.
        value: u8,
    },
    /// Authentication Data without Authentication Method.
    #[error("Authentication Data without Authentication Method")]
    AuthenticationDataWithoutMethod,
    /// AUTH with reason code 0x18 or 0x19 but no Authentication Method.
    #[error("AUTH continues or restarts authentication without an Authentication Method")]
    AuthenticationMethodMissing,
    /// A client sent a Subscription Identifier in PUBLISH [MQTT-3.3.4-6].
    #[error("PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]")]
    SubscriptionIdentifierFromClient,
    /// A server sent Session Expiry Interval in DISCONNECT [MQTT-3.14.2-2].
    #[error("DISCONNECT from the server carries a Session Expiry Interval [MQTT-3.14.2-2]")]
    SessionExpiryFromServer,

    // ------------------------------------------------------------ topics
    /// PUBLISH Topic Name contains `+` or `#` [MQTT-3.3.2-2].
    #[error("PUBLISH Topic Name contains a wildcard [MQTT-3.3.2-2]")]
    WildcardInTopicName,
    /// PUBLISH Topic Name is empty and there is no Topic Alias [MQTT-4.7.3-1].
    #[error("PUBLISH Topic Name is empty and no Topic Alias is given")]
    EmptyTopicName,
    /// The Will Topic is not a valid Topic Name.
    #[error("Will Topic is invalid: {error}")]
    InvalidWillTopic {
        /// Which rule it breaks.
        error: TopicError,
    },
    /// The Response Topic is not a valid Topic Name [MQTT-3.3.2-14].
    #[error("Response Topic is invalid: {error} [MQTT-3.3.2-14]")]
    InvalidResponseTopic {
        /// Which rule it breaks.
        error: TopicError,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE Topic Filter is malformed.
    #[error("{packet_type:?} Topic Filter is invalid: {error}")]
    InvalidTopicFilter {
        /// SUBSCRIBE or UNSUBSCRIBE.
        packet_type: PacketType,
        /// Which rule it breaks.
        error: TopicError,
    },

    // ------------------------------------------------------------ packet ids, SUBSCRIBE
    /// Packet Identifier 0 where a non-zero one is required [MQTT-2.2.1-3].
    #[error("{packet_type:?} has Packet Identifier 0")]
    PacketIdZero {
        /// The packet type.
        packet_type: PacketType,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without any Topic Filter.
    #[error("{packet_type:?} contains no Topic Filter")]
    NoTopicFilters {
        /// SUBSCRIBE or UNSUBSCRIBE.
        packet_type: PacketType,
    },
    /// Reserved bits of the Subscription Options are set [MQTT-3.8.3-5].
    #[error("Subscription Options 0x{options:02X} have reserved bits set")]
    SubscriptionOptionsReserved {
        /// The options byte.
        options: u8,
    },
    /// Subscription Options request QoS 3.
    #[error("Subscription Options request QoS 3")]
    SubscriptionQos3,
    /// Subscription Options have Retain Handling 3.
    #[error("Subscription Options have Retain Handling 3")]
    RetainHandling3,
    /// No Local set on a shared subscription [MQTT-3.8.3-4].
    #[error("No Local is set on a shared subscription")]
    NoLocalOnSharedSubscription,

    // ------------------------------------------------------------ reason codes
    /// A reason code not defined for this packet type.
    #[error("reason code 0x{code:02X} is not valid in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// CONNACK Acknowledge Flags bits 7-1 are not 0 [MQTT-3.2.2-1].
    #[error("CONNACK flags 0x{flags:02X} have reserved bits set")]
    ConnAckReservedFlags {
        /// The flags byte.
        flags: u8,
    },

    // ------------------------------------------------------------ CONNECT
    /// The protocol name is neither `MQTT` nor `MQIsdp`, or does not match the
    /// level [MQTT-3.1.2-1].
    #[error(
        "protocol name {:?} is not valid for this protocol level [MQTT-3.1.2-1]",
        String::from_utf8_lossy(name)
    )]
    InvalidProtocolName {
        /// The name as received (at most 65,535 bytes; a slice of the packet).
        name: Bytes,
    },
    /// The protocol level is not 3, 4 or 5 [MQTT-3.1.2-2]: answer CONNACK
    /// 0x84 (5.0) or return code 1 (3.1.1) and close.
    #[error("protocol level {level} is not supported [MQTT-3.1.2-2]")]
    UnsupportedProtocolVersion {
        /// The level received.
        level: u8,
    },
    /// The reserved CONNECT flag is set [MQTT-3.1.2-3].
    #[error("CONNECT reserved flag is set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    /// Will QoS is 3.
    #[error("Will QoS is 3")]
    WillQos3,
    /// Will QoS is not 0 while the Will Flag is 0.
    #[error("Will QoS is set without the Will Flag")]
    WillQosWithoutWill,
    /// Will Retain is set while the Will Flag is 0.
    #[error("Will Retain is set without the Will Flag")]
    WillRetainWithoutWill,
    /// 3.1 / 3.1.1: Password Flag set without the User Name Flag [MQTT-3.1.2-22].
    #[error("Password Flag is set without the User Name Flag")]
    PasswordWithoutUsername,
}

impl DecodeError {
    /// The MQTT 5.0 normative statement this error violates, e.g.
    /// `"MQTT-3.3.1-4"`; `None` when the rule has no numbered statement. For
    /// the 3.1.1 numbering use [`Self::spec_id_in`].
    pub fn spec_id(&self) -> Option<&'static str> {
        self.spec_id_in(ProtocolVersion::V5)
    }

    /// The statement id in the numbering of `version` (3.1 uses the 3.1.1
    /// numbering); `None` when that version has no numbered statement for it.
    pub fn spec_id_in(&self, version: ProtocolVersion) -> Option<&'static str> {
        let v5 = version.is_v5();
        let pick = |five: &'static str, three: &'static str| Some(if v5 { five } else { three });
        match self {
            Self::FirstPacketNotConnect { .. } => Some("MQTT-3.1.0-1"),
            Self::InvalidFixedHeaderFlags { packet_type, .. } => match packet_type {
                PacketType::PubRel => Some("MQTT-3.6.1-1"),
                PacketType::Subscribe => Some("MQTT-3.8.1-1"),
                PacketType::Unsubscribe => Some("MQTT-3.10.1-1"),
                PacketType::Disconnect => Some("MQTT-3.14.1-1"),
                PacketType::Auth => Some("MQTT-3.15.1-1"),
                _ => pick("MQTT-2.1.3-1", "MQTT-2.2.2-1"),
            },
            Self::PublishQos3 => Some("MQTT-3.3.1-4"),
            Self::DupOnQos0 => Some("MQTT-3.3.1-2"),
            Self::NonMinimalVarint { .. } => v5.then_some("MQTT-1.5.5-1"),
            // A User Property is a UTF-8 String Pair [MQTT-1.5.7-1] (5.0 only).
            Self::InvalidUtf8 { field } | Self::NullCharacter { field }
                if v5 && field.starts_with("User Property") =>
            {
                Some("MQTT-1.5.7-1")
            }
            Self::InvalidUtf8 { .. } => pick("MQTT-1.5.4-1", "MQTT-1.5.3-1"),
            Self::NullCharacter { .. } => pick("MQTT-1.5.4-2", "MQTT-1.5.3-2"),
            Self::TopicAliasZero => Some("MQTT-3.3.2-8"),
            Self::SubscriptionIdentifierFromClient => Some("MQTT-3.3.4-6"),
            Self::SessionExpiryFromServer => Some("MQTT-3.14.2-2"),
            Self::WildcardInTopicName => Some("MQTT-3.3.2-2"),
            Self::EmptyTopicName => Some("MQTT-4.7.3-1"),
            Self::InvalidWillTopic { error } | Self::InvalidTopicFilter { error, .. } => {
                if v5 {
                    Some(error.spec_id())
                } else {
                    error.spec_id_v311()
                }
            }
            Self::InvalidResponseTopic { .. } => Some("MQTT-3.3.2-14"),
            Self::PacketIdZero { .. } => pick("MQTT-2.2.1-3", "MQTT-2.3.1-1"),
            Self::NoTopicFilters {
                packet_type: PacketType::Subscribe,
            } => pick("MQTT-3.8.3-2", "MQTT-3.8.3-3"),
            Self::NoTopicFilters { .. } => Some("MQTT-3.10.3-2"),
            Self::SubscriptionOptionsReserved { .. } => pick("MQTT-3.8.3-5", "MQTT-3.8.3-4"),
            Self::SubscriptionQos3 => (!v5).then_some("MQTT-3.8.3-4"),
            Self::NoLocalOnSharedSubscription => v5.then_some("MQTT-3.8.3-4"),
            Self::InvalidReasonCode { packet_type, .. } => reason_code_spec_id(*packet_type, v5),
            Self::ConnAckReservedFlags { .. } => v5.then_some("MQTT-3.2.2-1"),
            Self::InvalidProtocolName { .. } => Some("MQTT-3.1.2-1"),
            Self::UnsupportedProtocolVersion { .. } => Some("MQTT-3.1.2-2"),
            Self::ConnectReservedFlag => Some("MQTT-3.1.2-3"),
            Self::WillQos3 => pick("MQTT-3.1.2-12", "MQTT-3.1.2-14"),
            Self::WillQosWithoutWill => pick("MQTT-3.1.2-11", "MQTT-3.1.2-13"),
            Self::WillRetainWithoutWill => pick("MQTT-3.1.2-13", "MQTT-3.1.2-15"),
            Self::PasswordWithoutUsername => (!v5).then_some("MQTT-3.1.2-22"),
            Self::ReservedPacketType { .. }
            | Self::WrongDirection { .. }
            | Self::VarintTooLong { .. }
            | Self::PacketTooLarge { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::UnknownProperty { .. }
            | Self::PropertyNotAllowed { .. }
            | Self::DuplicateProperty { .. }
            | Self::ReceiveMaximumZero
            | Self::MaximumPacketSizeZero
            | Self::SubscriptionIdentifierZero
            | Self::InvalidBooleanProperty { .. }
            | Self::InvalidMaximumQos { .. }
            | Self::AuthenticationDataWithoutMethod
            | Self::AuthenticationMethodMissing
            | Self::RetainHandling3 => None,
        }
    }
}

/// "The sender MUST use one of the X Reason Codes" per packet type.
fn reason_code_spec_id(packet_type: PacketType, v5: bool) -> Option<&'static str> {
    if !v5 {
        return (packet_type == PacketType::SubAck).then_some("MQTT-3.9.3-2");
    }
    Some(match packet_type {
        PacketType::ConnAck => "MQTT-3.2.2-8",
        PacketType::PubAck => "MQTT-3.4.2-1",
        PacketType::PubRec => "MQTT-3.5.2-1",
        PacketType::PubRel => "MQTT-3.6.2-1",
        PacketType::PubComp => "MQTT-3.7.2-1",
        PacketType::SubAck => "MQTT-3.9.3-2",
        PacketType::UnsubAck => "MQTT-3.11.3-2",
        PacketType::Disconnect => "MQTT-3.14.2-1",
        PacketType::Auth => "MQTT-3.15.2-1",
        _ => return None,
    })
}

/// THE table from decode errors to 5.0 reason codes (DISCONNECT, or CONNACK
/// when the error is in CONNECT). 3.x connections have no reason codes; the
/// broker maps 0x84 to CONNACK return code 1 with
/// [`crate::ConnectReturnCode::from_reason`] and otherwise just closes.
///
/// The choice follows the 5.0 text: "Malformed Packet" where the spec calls
/// the packet malformed or it cannot be parsed per 1.5 / 2.x (bad flags,
/// lengths, UTF-8, property identifiers 2.2.2.2, reserved option bits,
/// invalid filter syntax 4.7); "Protocol Error" where the spec says so
/// (duplicate properties, 0 values, Retain Handling 3, empty SUBSCRIBE,
/// invalid reason codes); the specific code where one exists.
impl From<&DecodeError> for ReasonCode {
    fn from(e: &DecodeError) -> Self {
        use DecodeError as E;
        match e {
            E::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            E::UnsupportedProtocolVersion { .. } | E::InvalidProtocolName { .. } => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            E::TopicAliasZero => ReasonCode::TOPIC_ALIAS_INVALID,
            E::WildcardInTopicName | E::InvalidWillTopic { .. } => ReasonCode::TOPIC_NAME_INVALID,

            E::ReservedPacketType { .. }
            | E::InvalidFixedHeaderFlags { .. }
            | E::PublishQos3
            | E::DupOnQos0
            | E::VarintTooLong { .. }
            | E::NonMinimalVarint { .. }
            | E::Truncated { .. }
            | E::TrailingBytes { .. }
            | E::InvalidUtf8 { .. }
            | E::NullCharacter { .. }
            | E::UnknownProperty { .. }
            | E::PropertyNotAllowed { .. }
            | E::InvalidTopicFilter { .. }
            | E::SubscriptionOptionsReserved { .. }
            | E::ConnAckReservedFlags { .. }
            | E::ConnectReservedFlag
            | E::WillQos3
            | E::WillQosWithoutWill
            | E::WillRetainWithoutWill
            | E::PasswordWithoutUsername => ReasonCode::MALFORMED_PACKET,

            E::FirstPacketNotConnect { .. }
            | E::WrongDirection { .. }
            | E::DuplicateProperty { .. }
            | E::ReceiveMaximumZero
            | E::MaximumPacketSizeZero
            | E::SubscriptionIdentifierZero
            | E::InvalidBooleanProperty { .. }
            | E::InvalidMaximumQos { .. }
            | E::AuthenticationDataWithoutMethod
            | E::AuthenticationMethodMissing
            | E::SubscriptionIdentifierFromClient
            | E::SessionExpiryFromServer
            | E::EmptyTopicName
            | E::InvalidResponseTopic { .. }
            | E::PacketIdZero { .. }
            | E::NoTopicFilters { .. }
            | E::SubscriptionQos3
            | E::RetainHandling3
            | E::NoLocalOnSharedSubscription
            | E::InvalidReasonCode { .. } => ReasonCode::PROTOCOL_ERROR,
        }
    }
}

impl From<DecodeError> for ReasonCode {
    fn from(e: DecodeError) -> Self {
        Self::from(&e)
    }
}

/// Why a packet could not be encoded. Nothing is written to the buffer when
/// encoding fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet exceeds the peer's Maximum Packet Size [MQTT-3.1.2-24]: do
    /// not send it.
    #[error("packet of {size} bytes exceeds the peer's maximum packet size {max}")]
    PacketTooLarge {
        /// Total size on the wire, fixed header included.
        size: usize,
        /// The limit in force.
        max: u32,
    },
    /// The Remaining Length exceeds 268,435,455, the protocol maximum.
    #[error("remaining length {len} exceeds the protocol maximum 268435455")]
    RemainingLengthTooLarge {
        /// The remaining length that would be needed.
        len: usize,
    },
    /// A string or binary field exceeds 65,535 bytes.
    #[error("{field} is {len} bytes, more than 65535")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A Variable Byte Integer property value exceeds 268,435,455.
    #[error("{field} value {value} exceeds 268435455")]
    VarintTooLarge {
        /// The field.
        field: &'static str,
        /// The value.
        value: u32,
    },
    /// The packet type does not exist in this protocol version (AUTH before 5.0).
    #[error("{packet_type:?} does not exist in {version:?}")]
    NotInVersion {
        /// The packet type.
        packet_type: PacketType,
        /// The encoder's version.
        version: ProtocolVersion,
    },
    /// PUBLISH with QoS > 0 but no Packet Identifier.
    #[error("PUBLISH with QoS > 0 needs a Packet Identifier")]
    MissingPacketId,
    /// 3.1 / 3.1.1 CONNECT with a password but no user name [MQTT-3.1.2-22].
    #[error("a 3.1.1 CONNECT cannot carry a password without a user name [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
}
