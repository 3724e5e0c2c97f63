//! The records a store keeps. These types *are* the stored format, version
//! [`crate::FORMAT_VERSION`]: values are their postcard encoding (field order
//! matters, no field names). Changing a field here changes the format: bump
//! `FORMAT_VERSION`, keep a reader for the old version, and add golden files
//! (`tests/golden/`). The golden test fails when this is forgotten.

use std::time::SystemTime;

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PacketId, QoS, SubscriptionOptions};
use serde::{Deserialize, Serialize};

/// A persistent session's own fields (its subscriptions and messages are
/// kept beside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session Expiry Interval in seconds (`u32::MAX` = never).
    pub expiry_interval: u32,
    /// When the client disconnected; `None` while a connection is attached.
    /// After a restart the broker counts the session's offline time from
    /// here (and, for `None`, from the restart: the crash ended the connection).
    #[serde(with = "crate::time::optional")]
    pub disconnected_at: Option<SystemTime>,
    /// Who may attach to this session (format 2): the identity that created
    /// it. Restored with the session and checked on every attach.
    pub owner: SessionOwner,
}

/// The identity a session belongs to: the user name it was created with, as
/// authorized (after a certificate or token mapped it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionOwner {
    /// Written by format 1, which did not record an owner. The broker
    /// resumes such a session for nobody (docs/persistence.md, "Upgrading
    /// from format 1").
    #[default]
    Unknown,
    /// Created by a client without a user name.
    Anonymous,
    /// Created by a client with this user name.
    User(ByteString),
}

impl SessionOwner {
    /// The owner for a client's (authorized) user name.
    pub fn of(username: Option<&str>) -> Self {
        match username {
            Some(name) => Self::User(ByteString::from(name)),
            None => Self::Anonymous,
        }
    }
}

/// One granted subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Options as granted, stored as the SUBSCRIBE options byte.
    #[serde(with = "crate::wire::sub_options")]
    pub options: SubscriptionOptions,
    /// Subscription Identifier, if the SUBSCRIBE carried one.
    pub identifier: Option<u32>,
}

/// PUBLISH properties a message needs to be sent again. Topic Alias and
/// Subscription Identifiers are per hop and not stored here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProperties {
    /// Payload Format Indicator: true = UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// Message Expiry Interval in seconds as received (the remaining time is
    /// computed from [`StoredMessage::expires_at`]).
    pub message_expiry_interval: Option<u32>,
    /// Response Topic.
    pub response_topic: Option<ByteString>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User Properties in order.
    pub user_properties: Vec<(ByteString, ByteString)>,
    /// Content Type.
    pub content_type: Option<ByteString>,
}

/// An application message as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Topic name.
    pub topic: ByteString,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    #[serde(with = "crate::wire::qos")]
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties to send again.
    pub properties: StoredProperties,
    /// When the Message Expiry Interval runs out (wall clock); `None` = never.
    #[serde(with = "crate::time::optional")]
    pub expires_at: Option<SystemTime>,
    /// Client id of the publisher (`None` = the broker or an embedder).
    pub publisher: Option<ByteString>,
}

/// A topic's retained message with the time it was stored (format 2), so
/// that after a restart its `retain_ttl` still counts from when it was
/// published, not from the restore. (Its Message Expiry already is a wall
/// clock time in [`StoredMessage::expires_at`].)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedRecord {
    /// The message.
    pub message: StoredMessage,
    /// When the broker stored it (wall clock, kept to the millisecond).
    #[serde(with = "crate::time::millis")]
    pub stored_at: SystemTime,
}

/// A [`RetainedRecord`] by reference, for encoding a
/// [`crate::Delta::RetainSet`] without copying its message: the same fields
/// in the same order, so the same bytes.
#[cfg(any(feature = "disk", feature = "redis"))]
#[derive(Serialize)]
pub(crate) struct RetainedRecordRef<'a> {
    pub(crate) message: &'a StoredMessage,
    #[serde(with = "crate::time::millis")]
    pub(crate) stored_at: SystemTime,
}

/// One message queued for (or in flight to) one session: the message plus
/// what this subscriber gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// The message.
    pub message: StoredMessage,
    /// QoS to deliver at (`min(message QoS, granted QoS)`).
    #[serde(with = "crate::wire::qos")]
    pub qos: QoS,
    /// RETAIN flag to put on the outgoing PUBLISH.
    pub retain: bool,
    /// Subscription Identifiers of the matching subscriptions.
    pub subscription_ids: Vec<u32>,
}

/// Where an outbound QoS 1/2 delivery is in its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InflightStage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    /// Resent with DUP and the same packet id on resume.
    Sent,
    /// PUBREL sent; waiting for PUBCOMP. On resume the broker resends PUBREL.
    AwaitingPubComp,
}

/// The outbound state of one queued message once it has been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflightRecord {
    /// The packet identifier it was sent with.
    #[serde(with = "crate::wire::packet_id")]
    pub packet_id: PacketId,
    /// Where it is.
    pub stage: InflightStage,
}

/// A client's Will Message, kept until it is published or cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillRecord {
    /// The message to publish.
    pub message: StoredMessage,
    /// Will Delay Interval in seconds.
    pub delay_interval: u32,
    /// When to publish it; `None` while the connection is alive. After a
    /// restart, `None` means the crash ended the connection: the broker
    /// schedules it from the restart (delay and session expiry permitting).
    #[serde(with = "crate::time::optional")]
    pub fire_at: Option<SystemTime>,
}

/// A message whose publication is delayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayedRecord {
    /// The message to publish.
    pub message: StoredMessage,
    /// When to publish it.
    #[serde(with = "crate::time::required")]
    pub publish_at: SystemTime,
}
