//! Everything a client can do that ends its connection, named exactly, and
//! THE one table that turns each into the reason code put on the wire.
//! Decoder errors delegate to roost-codec's own table.

use roost_codec::{DecodeError, PacketType, QoS, ReasonCode};

/// A peer misbehaviour that closes the connection. The broker sends
/// `session.close(violation.reason_code(), ..)` (5.0) and then closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The decoder rejected the bytes (its own table gives the reason code).
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A second CONNECT on the same connection [MQTT-3.1.0-2].
    #[error("second CONNECT on a connection [MQTT-3.1.0-2]")]
    SecondConnect,
    /// A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP).
    #[error("client sent {0:?}, which only a server sends")]
    ServerOnlyPacket(PacketType),
    /// A 5.0-only packet (AUTH) on a 3.x connection.
    #[error("client sent {0:?} on a 3.x connection")]
    V5OnlyPacket(PacketType),
    /// More unacknowledged QoS 1/2 PUBLISH packets than our Receive Maximum.
    #[error("receive maximum exceeded [MQTT-3.3.4-7]")]
    ReceiveMaximumExceeded,
    /// Topic Alias 0 [MQTT-3.3.2-8] or above the maximum we advertised
    /// [MQTT-3.2.2-17] (any alias when we advertised none [MQTT-3.2.2-18]).
    #[error("topic alias {0} is 0 or above the server's Topic Alias Maximum")]
    TopicAliasInvalid(u16),
    /// Empty topic with a Topic Alias that was never set on this connection.
    #[error("topic alias {0} used before it was set")]
    UnknownTopicAlias(u16),
    /// QoS 1/2 PUBLISH without a packet identifier (the decoder normally
    /// rejects it first) [MQTT-2.2.1-3].
    #[error("QoS > 0 PUBLISH without a packet identifier [MQTT-2.2.1-3]")]
    MissingPacketId,
    /// Empty topic name without a Topic Alias.
    #[error("empty topic name without a topic alias")]
    EmptyTopic,
    /// PUBLISH QoS above the Maximum QoS we advertised [MQTT-3.2.2-11].
    #[error("PUBLISH with {0:?} above the server's maximum QoS [MQTT-3.2.2-11]")]
    QosNotSupported(QoS),
    /// RETAIN = 1 when we advertised Retain Available = 0 [MQTT-3.2.2-14].
    #[error("PUBLISH with RETAIN while retain is unavailable [MQTT-3.2.2-14]")]
    RetainNotSupported,
    /// PUBLISH topic with more levels than allowed.
    #[error("topic has {levels} levels, more than the {maximum} allowed")]
    TopicTooDeep {
        /// Levels in the topic.
        levels: usize,
        /// Configured maximum.
        maximum: usize,
    },
    /// Payload Format Indicator = 1 but the payload is not UTF-8.
    #[error("payload flagged as UTF-8 is not UTF-8")]
    PayloadFormatInvalid,
    /// No Local on a shared subscription [MQTT-3.8.3-4].
    #[error("no local set on a shared subscription [MQTT-3.8.3-4]")]
    SharedSubscriptionNoLocal,
    /// DISCONNECT sets a non-zero Session Expiry Interval after CONNECT had 0.
    #[error("session expiry interval set on DISCONNECT after CONNECT had 0")]
    SessionExpiryFromZero,
    /// No packet within 1.5 × Keep Alive [MQTT-3.1.2-22].
    #[error("keep alive timeout [MQTT-3.1.2-22]")]
    KeepAliveTimeout,
    /// AUTH from a client whose CONNECT had no Authentication Method [MQTT-4.12.0-7].
    #[error("AUTH without an authentication method in CONNECT [MQTT-4.12.0-7]")]
    AuthWithoutMethod,
    /// AUTH with an Authentication Method other than CONNECT's [MQTT-4.12.1-1].
    /// A protocol error (0x82): 0x8C Bad authentication method is a CONNACK
    /// code, not a DISCONNECT one.
    #[error("AUTH method differs from CONNECT's [MQTT-4.12.1-1]")]
    BadAuthMethod,
    /// AUTH with a reason code that does not fit the exchange (e.g. 0x18
    /// with no re-authentication in progress).
    #[error("unexpected AUTH reason code {0}")]
    UnexpectedAuthReason(ReasonCode),
}

impl Violation {
    /// The reason code to send in DISCONNECT (5.0) for this violation.
    pub fn reason_code(&self) -> ReasonCode {
        ReasonCode::from(self)
    }

    /// The normative statement this violation breaks, when the spec numbers one.
    pub fn spec_id(&self) -> Option<&'static str> {
        match self {
            Self::Decode(e) => e.spec_id(),
            Self::SecondConnect => Some("MQTT-3.1.0-2"),
            Self::ReceiveMaximumExceeded => Some("MQTT-3.3.4-7"),
            Self::TopicAliasInvalid(0) => Some("MQTT-3.3.2-8"),
            Self::TopicAliasInvalid(_) => Some("MQTT-3.2.2-17"),
            Self::QosNotSupported(_) => Some("MQTT-3.2.2-11"),
            Self::MissingPacketId => Some("MQTT-2.2.1-3"),
            Self::RetainNotSupported => Some("MQTT-3.2.2-14"),
            Self::SharedSubscriptionNoLocal => Some("MQTT-3.8.3-4"),
            Self::KeepAliveTimeout => Some("MQTT-3.1.2-22"),
            Self::AuthWithoutMethod => Some("MQTT-4.12.0-7"),
            Self::BadAuthMethod => Some("MQTT-4.12.1-1"),
            Self::ServerOnlyPacket(_)
            | Self::V5OnlyPacket(_)
            | Self::UnknownTopicAlias(_)
            | Self::EmptyTopic
            | Self::TopicTooDeep { .. }
            | Self::PayloadFormatInvalid
            | Self::SessionExpiryFromZero
            | Self::UnexpectedAuthReason(_) => None,
        }
    }
}

/// THE table: every violation's reason code. Every code here is a valid
/// DISCONNECT reason code [MQTT-3.14.2-1].
impl From<&Violation> for ReasonCode {
    fn from(v: &Violation) -> Self {
        match v {
            Violation::Decode(e) => ReasonCode::from(e),
            Violation::SecondConnect
            | Violation::ServerOnlyPacket(_)
            | Violation::V5OnlyPacket(_)
            | Violation::UnknownTopicAlias(_)
            | Violation::EmptyTopic
            | Violation::SharedSubscriptionNoLocal
            | Violation::SessionExpiryFromZero
            | Violation::AuthWithoutMethod
            | Violation::BadAuthMethod
            | Violation::UnexpectedAuthReason(_) => ReasonCode::PROTOCOL_ERROR,
            Violation::MissingPacketId => ReasonCode::MALFORMED_PACKET,
            Violation::ReceiveMaximumExceeded => ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            Violation::TopicAliasInvalid(_) => ReasonCode::TOPIC_ALIAS_INVALID,
            Violation::QosNotSupported(_) => ReasonCode::QOS_NOT_SUPPORTED,
            Violation::RetainNotSupported => ReasonCode::RETAIN_NOT_SUPPORTED,
            Violation::TopicTooDeep { .. } => ReasonCode::TOPIC_NAME_INVALID,
            Violation::PayloadFormatInvalid => ReasonCode::PAYLOAD_FORMAT_INVALID,
            Violation::KeepAliveTimeout => ReasonCode::KEEP_ALIVE_TIMEOUT,
        }
    }
}
