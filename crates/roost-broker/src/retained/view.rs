//! What the embedding API shows of retained messages, and its errors.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{PublishProperties, QoS};

use super::Entry;

/// One retained message as [`crate::BrokerHandle`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetainedMessage {
    /// Topic name.
    pub topic: ByteString,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published (or set) with.
    pub qos: QoS,
    /// Properties as a subscriber would get them now: the Message Expiry
    /// Interval is what is left of it [MQTT-3.3.2-6].
    pub properties: PublishProperties,
    /// Client id of the publisher (`None` = the broker or the application).
    pub publisher: Option<ByteString>,
    /// When it was stored (wall clock).
    pub stored_at: SystemTime,
    /// Time until it stops being delivered and is removed: the earlier of its
    /// Message Expiry and `retain_ttl`. `None` = kept until replaced.
    pub expires_in: Option<Duration>,
}

impl RetainedMessage {
    pub(super) fn new(entry: &Entry, now: Instant) -> Self {
        let message = &entry.message;
        let mut properties = message.properties.clone();
        properties.message_expiry_interval = message.remaining_expiry_interval(now);
        Self {
            topic: message.topic.clone(),
            payload: message.payload.clone(),
            qos: message.qos,
            properties,
            publisher: message.publisher.clone(),
            stored_at: entry.stored_at,
            expires_in: entry.dies_at.map(|at| at.saturating_duration_since(now)),
        }
    }
}

/// One page of [`crate::BrokerHandle::retained_list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetainedPage {
    /// The messages of this page, in topic order.
    pub messages: Vec<RetainedMessage>,
    /// Pass this as `after` to get the next page; `None` = the listing is
    /// complete. A page can hold fewer messages than asked for (even none)
    /// and still have a `next`: each call scans a bounded number of topics.
    pub next: Option<String>,
}

/// Why a retained-message operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetainedError {
    /// Not a valid topic name (empty, wildcards, U+0000, too long).
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    /// Not a valid topic filter, or a shared-subscription filter.
    #[error("invalid topic filter: {0}")]
    InvalidFilter(String),
    /// The payload is larger than `max_retained_payload`.
    #[error("retained payload of {size} bytes is over max_retained_payload = {limit}")]
    PayloadTooLarge {
        /// Payload size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The store holds `max_retained_messages` and the topic is new.
    #[error("the retained store is full (max_retained_messages = {limit})")]
    StoreFull {
        /// The configured limit.
        limit: usize,
    },
    /// `retain_available = false`.
    #[error("retained messages are disabled (retain_available = false)")]
    Unavailable,
}
