//! Version-neutral packet structures: what the broker sees. Fields that only
//! exist in MQTT 5.0 (properties, reason codes) keep their defaults for 3.1 and
//! 3.1.1; the encoder for those versions ignores them.
//!
//! Strings are [`ByteString`] and binary data is [`Bytes`]: both are slices of
//! the read buffer, never copies.

use bytes::Bytes;
use bytestring::ByteString;
use smallvec::SmallVec;

use crate::types::{PacketId, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};

/// One User Property (name, value). Order is significant and kept [MQTT-3.3.2-18].
pub type UserProperty = (ByteString, ByteString);

/// Every MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client → server). Boxed: it is large and rare.
    Connect(Box<Connect>),
    /// CONNACK (server → client).
    ConnAck(ConnAck),
    /// PUBLISH (both directions).
    Publish(Publish),
    /// PUBACK (QoS 1 acknowledgement).
    PubAck(PubResponse),
    /// PUBREC (QoS 2, part 1).
    PubRec(PubResponse),
    /// PUBREL (QoS 2, part 2).
    PubRel(PubResponse),
    /// PUBCOMP (QoS 2, part 3).
    PubComp(PubResponse),
    /// SUBSCRIBE (client → server).
    Subscribe(Subscribe),
    /// SUBACK (server → client).
    SubAck(SubAck),
    /// UNSUBSCRIBE (client → server).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (server → client).
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (both directions in 5.0; client → server in 3.1.1).
    Disconnect(Disconnect),
    /// AUTH (5.0 only).
    Auth(Auth),
}

/// The control packet type, the high nibble of the fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// CONNECT = 1
    Connect = 1,
    /// CONNACK = 2
    ConnAck = 2,
    /// PUBLISH = 3
    Publish = 3,
    /// PUBACK = 4
    PubAck = 4,
    /// PUBREC = 5
    PubRec = 5,
    /// PUBREL = 6
    PubRel = 6,
    /// PUBCOMP = 7
    PubComp = 7,
    /// SUBSCRIBE = 8
    Subscribe = 8,
    /// SUBACK = 9
    SubAck = 9,
    /// UNSUBSCRIBE = 10
    Unsubscribe = 10,
    /// UNSUBACK = 11
    UnsubAck = 11,
    /// PINGREQ = 12
    PingReq = 12,
    /// PINGRESP = 13
    PingResp = 13,
    /// DISCONNECT = 14
    Disconnect = 14,
    /// AUTH = 15 (5.0 only)
    Auth = 15,
}

impl Packet {
    /// The type of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }
}

// ---------------------------------------------------------------- CONNECT

/// CONNECT.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// Protocol level from the variable header; fixes the codec for the connection.
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client Identifier; may be empty.
    pub client_id: ByteString,
    /// The Will Message, if the Will Flag is set.
    pub will: Option<LastWill>,
    /// User Name, if the flag is set.
    pub username: Option<ByteString>,
    /// Password, if the flag is set. Redacted in `Debug`.
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0).
    pub properties: ConnectProperties,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// CONNECT properties (MQTT 5.0, 3.1.2.11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    /// Session Expiry Interval in seconds (absent = 0).
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum (never 0).
    pub receive_maximum: Option<u16>,
    /// Maximum Packet Size the client accepts (never 0).
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum the client accepts from the server.
    pub topic_alias_maximum: Option<u16>,
    /// Request Response Information (0 or 1).
    pub request_response_information: Option<bool>,
    /// Request Problem Information (0 or 1; absent = 1).
    pub request_problem_information: Option<bool>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
    /// Authentication Method (enhanced authentication).
    pub authentication_method: Option<ByteString>,
    /// Authentication Data.
    pub authentication_data: Option<Bytes>,
}

/// The Will Message carried by CONNECT.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct LastWill {
    /// Will Topic.
    pub topic: ByteString,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: WillProperties,
}

impl std::fmt::Debug for LastWill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastWill")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .finish()
    }
}

/// Will properties (MQTT 5.0, 3.1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WillProperties {
    /// Will Delay Interval in seconds.
    pub will_delay_interval: Option<u32>,
    /// Payload Format Indicator: true = UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// Message Expiry Interval in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Content Type.
    pub content_type: Option<ByteString>,
    /// Response Topic.
    pub response_topic: Option<ByteString>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
}

// ---------------------------------------------------------------- CONNACK

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    /// Session Present flag.
    pub session_present: bool,
    /// The 5.0 reason code; for 3.1.1 it is mapped to a return code by
    /// [`crate::ConnectReturnCode::from_reason`] when encoding.
    pub reason_code: ReasonCode,
    /// CONNACK properties (5.0).
    pub properties: ConnAckProperties,
}

/// CONNACK properties (MQTT 5.0, 3.2.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    /// Session Expiry Interval the server will use.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum of the server.
    pub receive_maximum: Option<u16>,
    /// Maximum QoS of the server (0 or 1; absent = 2).
    pub maximum_qos: Option<QoS>,
    /// Retain Available (absent = true).
    pub retain_available: Option<bool>,
    /// Maximum Packet Size the server accepts.
    pub maximum_packet_size: Option<u32>,
    /// Client identifier assigned by the server.
    pub assigned_client_identifier: Option<ByteString>,
    /// Topic Alias Maximum the server accepts.
    pub topic_alias_maximum: Option<u16>,
    /// Reason String.
    pub reason_string: Option<ByteString>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
    /// Wildcard Subscription Available (absent = true).
    pub wildcard_subscription_available: Option<bool>,
    /// Subscription Identifiers Available (absent = true).
    pub subscription_identifiers_available: Option<bool>,
    /// Shared Subscription Available (absent = true).
    pub shared_subscription_available: Option<bool>,
    /// Server Keep Alive.
    pub server_keep_alive: Option<u16>,
    /// Response Information.
    pub response_information: Option<ByteString>,
    /// Server Reference.
    pub server_reference: Option<ByteString>,
    /// Authentication Method.
    pub authentication_method: Option<ByteString>,
    /// Authentication Data.
    pub authentication_data: Option<Bytes>,
}

// ---------------------------------------------------------------- PUBLISH

/// PUBLISH.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS of this transmission.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic Name; may be empty in 5.0 when a Topic Alias is present.
    pub topic: ByteString,
    /// Packet Identifier, present iff QoS > 0.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (5.0).
    pub properties: PublishProperties,
    /// Application payload; a slice of the read buffer.
    pub payload: Bytes,
}

impl std::fmt::Debug for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("packet_id", &self.packet_id)
            .field("properties", &self.properties)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}

/// PUBLISH properties (MQTT 5.0, 3.3.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishProperties {
    /// Payload Format Indicator: true = UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// Message Expiry Interval in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic Alias (never 0).
    pub topic_alias: Option<u16>,
    /// Response Topic (a topic name: no wildcards).
    pub response_topic: Option<ByteString>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
    /// Subscription Identifiers (server → client only; never 0).
    pub subscription_identifiers: SmallVec<[u32; 2]>,
    /// Content Type.
    pub content_type: Option<ByteString>,
}

// ------------------------------------------------ PUBACK/PUBREC/PUBREL/PUBCOMP

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id, a reason code and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    /// The acknowledged packet identifier.
    pub packet_id: PacketId,
    /// Reason code (5.0); 0x00 Success in 3.1.1.
    pub reason_code: ReasonCode,
    /// Reason String and User Properties.
    pub properties: AckProperties,
}

impl PubResponse {
    /// A successful response with no properties.
    pub fn success(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }
}

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK:
/// Reason String and User Properties only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckProperties {
    /// Reason String.
    pub reason_string: Option<ByteString>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when no property is set (lets the encoder use the short forms).
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

// ------------------------------------------------------ SUBSCRIBE / SUBACK

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters with their options, in order. Never empty [MQTT-3.8.3-3].
    pub filters: Vec<(ByteString, SubscriptionOptions)>,
    /// SUBSCRIBE properties (5.0).
    pub properties: SubscribeProperties,
}

/// SUBSCRIBE properties (MQTT 5.0, 3.8.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeProperties {
    /// Subscription Identifier (1 ..= 268,435,455).
    pub subscription_identifier: Option<u32>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
}

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter, in order (granted QoS or failure).
    pub reason_codes: Vec<ReasonCode>,
    /// Reason String and User Properties.
    pub properties: AckProperties,
}

// -------------------------------------------------- UNSUBSCRIBE / UNSUBACK

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters, in order. Never empty [MQTT-3.10.3-2].
    pub filters: Vec<ByteString>,
    /// User Properties (5.0).
    pub user_properties: Vec<UserProperty>,
}

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter (5.0 only; empty for 3.1.1).
    pub reason_codes: Vec<ReasonCode>,
    /// Reason String and User Properties.
    pub properties: AckProperties,
}

// ------------------------------------------------------------- DISCONNECT

/// DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Reason code (5.0); 0x00 Normal disconnection when absent.
    pub reason_code: ReasonCode,
    /// DISCONNECT properties (5.0).
    pub properties: DisconnectProperties,
}

/// DISCONNECT properties (MQTT 5.0, 3.14.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    /// Session Expiry Interval (client → server only).
    pub session_expiry_interval: Option<u32>,
    /// Reason String.
    pub reason_string: Option<ByteString>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
    /// Server Reference (server → client, with 0x9C / 0x9D).
    pub server_reference: Option<ByteString>,
}

// ------------------------------------------------------------------- AUTH

/// AUTH (MQTT 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication or 0x19 Re-authenticate.
    pub reason_code: ReasonCode,
    /// AUTH properties.
    pub properties: AuthProperties,
}

/// AUTH properties (MQTT 5.0, 3.15.2.2).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthProperties {
    /// Authentication Method.
    pub authentication_method: Option<ByteString>,
    /// Authentication Data. Redacted in `Debug`.
    pub authentication_data: Option<Bytes>,
    /// Reason String.
    pub reason_string: Option<ByteString>,
    /// User Properties in order.
    pub user_properties: Vec<UserProperty>,
}

impl std::fmt::Debug for AuthProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthProperties")
            .field("authentication_method", &self.authentication_method)
            .field(
                "authentication_data",
                &self.authentication_data.as_ref().map(|_| "<redacted>"),
            )
            .field("reason_string", &self.reason_string)
            .field("user_properties", &self.user_properties)
            .finish()
    }
}
