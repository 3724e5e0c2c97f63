//! The application message, stored once, and the per-subscriber [`Delivery`]
//! record that points at it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use roost_codec::{LastWill, Publish, PublishProperties, QoS};
use smallvec::SmallVec;

/// One application message, stored once and shared by every delivery: the
/// payload is never copied.
#[derive(Clone)]
pub struct Message {
    /// Topic name (alias already resolved).
    pub topic: ByteString,
    /// Application payload (a slice of the publisher's read buffer).
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties to forward. `topic_alias` is `None` and
    /// `subscription_identifiers` is empty: both are per hop.
    pub properties: PublishProperties,
    /// When the Message Expiry Interval runs out (`None` = never). Computed at receipt.
    pub expires_at: Option<Instant>,
    /// Client id of the publisher (`None` = published by the broker or an embedder).
    pub publisher: Option<ByteString>,
}

impl Message {
    /// Builds the message from an inbound PUBLISH (topic alias already
    /// resolved), stripping the per-hop properties.
    pub fn from_publish(publish: Publish, publisher: Option<ByteString>, now: Instant) -> Message {
        let mut properties = publish.properties;
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        let expires_at = expiry_instant(now, properties.message_expiry_interval);
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            publisher,
        }
    }

    /// Builds the message a Will turns into when it is published. The Will
    /// properties map onto PUBLISH properties one for one; User Property
    /// order is kept [MQTT-3.1.3-10] and the RETAIN flag is the Will Retain
    /// flag [MQTT-3.1.2-14] [MQTT-3.1.2-15].
    pub fn from_will(will: LastWill, publisher: Option<ByteString>, now: Instant) -> Message {
        let w = will.properties;
        let properties = PublishProperties {
            payload_format_indicator: w.payload_format_indicator,
            message_expiry_interval: w.message_expiry_interval,
            topic_alias: None,
            response_topic: w.response_topic,
            correlation_data: w.correlation_data,
            user_properties: w.user_properties,
            subscription_identifiers: SmallVec::new(),
            content_type: w.content_type,
        };
        let expires_at = expiry_instant(now, properties.message_expiry_interval);
        Message {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties,
            expires_at,
            publisher,
        }
    }

    /// True once the Message Expiry Interval has run out.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The Message Expiry Interval to put on an outgoing PUBLISH: the received
    /// value minus the time the message waited in the server [MQTT-3.3.2-6],
    /// rounded up so a message with half a second left is not sent as
    /// "0 seconds". `None` when the message never expires.
    pub fn remaining_expiry_interval(&self, now: Instant) -> Option<u32> {
        let at = self.expires_at?;
        let left = at.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }
}

fn expiry_instant(now: Instant, interval: Option<u32>) -> Option<Instant> {
    // An interval too large to represent is as good as "never".
    interval.and_then(|secs| now.checked_add(Duration::from_secs(u64::from(secs))))
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("properties", &self.properties)
            .field("expires_at", &self.expires_at)
            .field("publisher", &self.publisher)
            .finish()
    }
}

/// What the router hands one subscriber. Small: the message is behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS to deliver at: already `min(message.qos, granted QoS)`.
    pub qos: QoS,
    /// RETAIN flag to put on the outgoing PUBLISH.
    pub retain: bool,
    /// Subscription Identifiers of the matching subscriptions.
    pub subscription_ids: SmallVec<[u32; 2]>,
    /// The delivery's sequence number in the session store, when the session
    /// is stored (persistent, with a store attached); `None` otherwise. The
    /// session reports what happens to it as [`crate::SessionEvent`]s.
    pub store_seq: Option<u64>,
}

impl Delivery {
    /// A delivery with no subscription identifiers.
    pub fn new(message: Arc<Message>, qos: QoS, retain: bool) -> Self {
        Self {
            message,
            qos,
            retain,
            subscription_ids: SmallVec::new(),
            store_seq: None,
        }
    }
}
