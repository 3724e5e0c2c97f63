//! The ordered state changes a store consumes.

use std::time::SystemTime;

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};

use crate::record::{
    DelayedRecord, InflightStage, QueuedMessage, SessionRecord, StoredMessage, SubscriptionRecord,
    WillRecord,
};

/// One state change. A store applies a batch of them in order; later deltas
/// of a batch see the effect of earlier ones. Every delta is idempotent (a
/// set or a delete), so replaying a batch after an ambiguous failure is safe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delta {
    /// Creates or replaces a session: its record and its *whole* subscription
    /// set. Queued messages and inbound QoS 2 ids are kept.
    SessionUpsert {
        /// Client id.
        client_id: ByteString,
        /// Expiry interval and disconnect time.
        record: SessionRecord,
        /// Every subscription, keyed by the full filter text (with any `$share/g/`).
        subscriptions: Vec<(ByteString, SubscriptionRecord)>,
    },
    /// Removes a session and everything kept under it: subscriptions, queued
    /// and inflight messages, inbound QoS 2 ids. The client's will is separate
    /// (see [`Delta::WillDelete`]).
    SessionDelete {
        /// Client id.
        client_id: ByteString,
    },
    /// Adds or replaces one subscription.
    SubAdd {
        /// Client id.
        client_id: ByteString,
        /// Full filter text.
        filter: ByteString,
        /// Options and identifier.
        subscription: SubscriptionRecord,
    },
    /// Removes one subscription.
    SubDelete {
        /// Client id.
        client_id: ByteString,
        /// Full filter text.
        filter: ByteString,
    },
    /// Queues a message for a session under `seq` (a per-session sequence
    /// number the broker assigns in delivery order; restore returns messages
    /// in `seq` order). A new message is not in flight: any inflight state
    /// stored under the same `seq` goes (the broker never reuses a stored
    /// seq, so this only pins down what a reuse would mean).
    MessageEnqueue {
        /// Client id.
        client_id: ByteString,
        /// Per-session sequence number.
        seq: u64,
        /// The message and this subscriber's delivery fields.
        message: QueuedMessage,
    },
    /// The message `seq` is done (PUBACK, PUBCOMP, PUBREC with an error,
    /// QoS 0 sent, expired or dropped): removes it and its inflight state.
    MessageAck {
        /// Client id.
        client_id: ByteString,
        /// Sequence number given at enqueue.
        seq: u64,
    },
    /// Records that message `seq` was sent with `packet_id`, or moved on to
    /// awaiting PUBCOMP.
    OutboundStage {
        /// Client id.
        client_id: ByteString,
        /// Sequence number given at enqueue.
        seq: u64,
        /// Packet identifier it was sent with.
        packet_id: PacketId,
        /// Where it is in its flow.
        stage: InflightStage,
    },
    /// An inbound QoS 2 PUBLISH was answered with PUBREC `reason_code`; the
    /// packet id stays taken until PUBREL.
    InboundQos2 {
        /// Client id.
        client_id: ByteString,
        /// The publisher's packet identifier.
        packet_id: PacketId,
        /// The PUBREC reason code (a success code).
        reason_code: ReasonCode,
    },
    /// PUBREL received for an inbound QoS 2 packet id: it is free again.
    InboundQos2Release {
        /// Client id.
        client_id: ByteString,
        /// The publisher's packet identifier.
        packet_id: PacketId,
    },
    /// Sets the retained message of a topic.
    RetainSet {
        /// Topic name.
        topic: ByteString,
        /// The message.
        message: StoredMessage,
        /// When the broker stored it (wall clock; kept to the millisecond):
        /// its `retain_ttl` counts from here, across restarts.
        stored_at: SystemTime,
    },
    /// Clears the retained message of a topic.
    RetainDelete {
        /// Topic name.
        topic: ByteString,
    },
    /// Sets (or reschedules) a client's Will Message.
    WillSet {
        /// Client id.
        client_id: ByteString,
        /// The will and when to publish it.
        will: WillRecord,
    },
    /// The will was published or cancelled.
    WillDelete {
        /// Client id.
        client_id: ByteString,
    },
    /// Stores a delayed publication under an id the broker chooses.
    DelayedPut {
        /// Unique id.
        id: u64,
        /// The message and its publication time.
        delayed: DelayedRecord,
    },
    /// The delayed message was published or cancelled.
    DelayedDelete {
        /// The id given at put.
        id: u64,
    },
}
