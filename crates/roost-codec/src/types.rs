//! Primitive protocol types shared by every packet: protocol version, QoS,
//! packet identifiers, reason codes and subscription options.

use std::num::NonZeroU16;

/// A packet identifier: never 0 on the wire where one is required [MQTT-2.2.1-3].
pub type PacketId = NonZeroU16;

/// The protocol level carried in CONNECT. Fixed for the rest of the connection.
/// Defaults to 5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    #[default]
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            Self::V31 => 3,
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }

    /// True for 5.0, which carries properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// The protocol name CONNECT must carry for this level.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V31 => "MQIsdp",
            Self::V311 | Self::V5 => "MQTT",
        }
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is not a QoS.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// Retain Handling subscription option (MQTT 5.0, 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not already exist.
    SendIfNew = 1,
    /// Never send retained messages for this subscription.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry. In 3.1.1 only `qos` is meaningful
/// and the other fields keep their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not deliver messages published by this same client [MQTT-3.8.3-3].
    pub no_local: bool,
    /// Keep the RETAIN flag as published when forwarding.
    pub retain_as_published: bool,
    /// When to send retained messages.
    pub retain_handling: RetainHandling,
}

/// One granted subscription: what the session remembers per filter and the
/// router stores per subscriber, the same value on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Subscription {
    /// Options of the SUBSCRIBE entry, with `qos` the granted maximum.
    pub options: SubscriptionOptions,
    /// Subscription Identifier (MQTT 5.0), echoed in matching PUBLISHes.
    pub identifier: Option<u32>,
}

/// An MQTT 5.0 reason code (also used for 3.1.1 CONNACK return codes and SUBACK
/// return codes, which share values). Values are shared between packet types
/// with different names, so this is a newtype with named constants rather than
/// an enum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ReasonCode(pub u8);

macro_rules! reason_codes {
    ($($name:ident = $v:literal, $text:literal;)*) => {
        impl ReasonCode {
            $(#[doc = $text] pub const $name: ReasonCode = ReasonCode($v);)*

            /// The spec's name of this code (the first name when several share a value).
            pub fn name(self) -> &'static str {
                $(if self.0 == $v { return $text; })*
                "Unknown reason code"
            }
        }
    };
}

reason_codes! {
    SUCCESS = 0x00, "Success";
    NORMAL_DISCONNECTION = 0x00, "Normal disconnection";
    GRANTED_QOS_0 = 0x00, "Granted QoS 0";
    GRANTED_QOS_1 = 0x01, "Granted QoS 1";
    GRANTED_QOS_2 = 0x02, "Granted QoS 2";
    DISCONNECT_WITH_WILL = 0x04, "Disconnect with Will Message";
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers";
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed";
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication";
    REAUTHENTICATE = 0x19, "Re-authenticate";
    UNSPECIFIED_ERROR = 0x80, "Unspecified error";
    MALFORMED_PACKET = 0x81, "Malformed Packet";
    PROTOCOL_ERROR = 0x82, "Protocol Error";
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error";
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version";
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid";
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password";
    NOT_AUTHORIZED = 0x87, "Not authorized";
    SERVER_UNAVAILABLE = 0x88, "Server unavailable";
    SERVER_BUSY = 0x89, "Server busy";
    BANNED = 0x8A, "Banned";
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down";
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method";
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout";
    SESSION_TAKEN_OVER = 0x8E, "Session taken over";
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid";
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid";
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use";
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found";
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded";
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid";
    PACKET_TOO_LARGE = 0x95, "Packet too large";
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high";
    QUOTA_EXCEEDED = 0x97, "Quota exceeded";
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action";
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid";
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported";
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported";
    USE_ANOTHER_SERVER = 0x9C, "Use another server";
    SERVER_MOVED = 0x9D, "Server moved";
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported";
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded";
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported";
}

impl ReasonCode {
    /// Codes of 0x80 and above report failure [MQTT-2.4].
    pub const fn is_error(self) -> bool {
        self.0 >= 0x80
    }
}

impl std::fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReasonCode(0x{:02X} {})", self.0, self.name())
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:02X} {}", self.0, self.name())
    }
}

/// The 3.1 / 3.1.1 CONNACK return codes (Table 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// Connection accepted.
    Accepted = 0,
    /// The server does not support the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// The client identifier is correct UTF-8 but not allowed.
    IdentifierRejected = 2,
    /// The MQTT service is unavailable.
    ServerUnavailable = 3,
    /// Malformed user name or password.
    BadUserNameOrPassword = 4,
    /// The client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// THE 3.x CONNACK table: the 3.1.1 return code that says what a 5.0
    /// CONNACK reason code says, or `None` when no return code does (e.g.
    /// Malformed Packet, Protocol Error); a 3.x server then closes without a
    /// CONNACK instead of claiming a reason it does not have [MQTT-3.2.2-6].
    pub fn try_from_reason(rc: ReasonCode) -> Option<Self> {
        Some(match rc {
            ReasonCode::SUCCESS => Self::Accepted,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => Self::UnacceptableProtocolVersion,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => Self::IdentifierRejected,
            ReasonCode::SERVER_UNAVAILABLE
            | ReasonCode::SERVER_BUSY
            | ReasonCode::QUOTA_EXCEEDED
            | ReasonCode::CONNECTION_RATE_EXCEEDED
            | ReasonCode::USE_ANOTHER_SERVER
            | ReasonCode::SERVER_MOVED => Self::ServerUnavailable,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::BAD_AUTHENTICATION_METHOD => {
                Self::BadUserNameOrPassword
            }
            ReasonCode::NOT_AUTHORIZED | ReasonCode::BANNED => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// Maps a 5.0 CONNACK reason code onto the closest 3.1.1 return code, so
    /// the broker decides once with 5.0 codes and the encoder translates; a
    /// code with no 3.1.1 counterpart ([`Self::try_from_reason`] is `None`)
    /// becomes Server Unavailable.
    pub fn from_reason(rc: ReasonCode) -> Self {
        Self::try_from_reason(rc).unwrap_or(Self::ServerUnavailable)
    }

    /// The inverse of [`Self::from_reason`], used when decoding a 3.1.1 CONNACK.
    pub fn to_reason(self) -> ReasonCode {
        match self {
            Self::Accepted => ReasonCode::SUCCESS,
            Self::UnacceptableProtocolVersion => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            Self::IdentifierRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            Self::ServerUnavailable => ReasonCode::SERVER_UNAVAILABLE,
            Self::BadUserNameOrPassword => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            Self::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_from_reason_maps_refusals_with_a_3x_return_code_and_nothing_else() {
        use ConnectReturnCode as C;
        let table = [
            (
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                Some(C::UnacceptableProtocolVersion),
            ),
            (
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                Some(C::IdentifierRejected),
            ),
            (ReasonCode::SERVER_BUSY, Some(C::ServerUnavailable)),
            (
                ReasonCode::CONNECTION_RATE_EXCEEDED,
                Some(C::ServerUnavailable),
            ),
            (
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                Some(C::BadUserNameOrPassword),
            ),
            (ReasonCode::BANNED, Some(C::NotAuthorized)),
            (ReasonCode::MALFORMED_PACKET, None),
            (ReasonCode::PROTOCOL_ERROR, None),
            (ReasonCode::PACKET_TOO_LARGE, None),
        ];
        for (reason, code) in table {
            assert_eq!(
                ConnectReturnCode::try_from_reason(reason),
                code,
                "{reason:?}"
            );
            // The encoder's total mapping agrees wherever a code exists.
            assert_eq!(
                ConnectReturnCode::from_reason(reason),
                code.unwrap_or(C::ServerUnavailable)
            );
        }
    }
}
