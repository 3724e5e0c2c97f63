//! What happened to a session's messages, as events its readers drain: the
//! broker's session store (every step of a stored message's life and of an
//! inbound QoS 2 flow) and the hooks (`on_message_delivered`,
//! `on_message_dropped`). One queue for both, in the order things happened.
//!
//! Nothing is recorded unless somebody asked, so the hot path with neither
//! a store nor message hooks pays a branch and allocates nothing:
//! - the store's parts need a delivery that carries a store sequence number
//!   ([`crate::Delivery::store_seq`], assigned by the broker only for
//!   persistent sessions with a store), and, for inbound QoS 2,
//!   [`crate::SessionConfig::store_events`] and a Session Expiry Interval
//!   above 0;
//! - the hooks' parts (the message, and the events only hooks need: a QoS 0
//!   delivery written without a store, a PUBACK for an unstored message,
//!   drops of unstored messages) need [`crate::SessionConfig::message_events`].
//!
//! Bounded: the broker drains a live session's events after every input
//! (one connection turn) and a parked session's right after each call, and
//! one input records at most a few per delivery it moves, so the queue
//! holds no more than one turn's worth.

use std::sync::Arc;

use roost_codec::{PacketId, QoS, ReasonCode};

use crate::message::{Delivery, Message};

/// One change to a session's messages, in the order it happened. `seq` is
/// the delivery's store sequence number (`None`: not stored); `message` is
/// set only when [`crate::SessionConfig::message_events`] is on.
#[derive(Clone, Debug)]
pub enum SessionEvent {
    /// A delivery went out. QoS 0: its PUBLISH was queued for the transport
    /// and it is done (`packet_id` is `None`). QoS 1/2: its PUBLISH was sent
    /// with `packet_id` (the first time; a resend is not an event) and it is
    /// in flight until [`SessionEvent::Acknowledged`].
    Sent {
        /// Store sequence number of the delivery.
        seq: Option<u64>,
        /// Packet identifier it was sent with (QoS 1/2).
        packet_id: Option<PacketId>,
        /// The QoS it was sent with.
        qos: QoS,
        /// The message (for hooks).
        message: Option<Arc<Message>>,
    },
    /// The client answered a QoS 1/2 PUBLISH: PUBACK (QoS 1) or PUBREC
    /// (QoS 2) with `reason`. A success code means delivered (QoS 2: only
    /// PUBREL is resent now, until [`SessionEvent::Completed`]); an error
    /// code means the client refused it and the flow is over.
    Acknowledged {
        /// Store sequence number of the delivery.
        seq: Option<u64>,
        /// Its packet identifier.
        packet_id: PacketId,
        /// QoS 1 (PUBACK) or 2 (PUBREC).
        qos: QoS,
        /// The client's reason code.
        reason: ReasonCode,
        /// The message (for hooks).
        message: Option<Arc<Message>>,
    },
    /// PUBCOMP ended a QoS 2 flow (recorded for stored messages only: the
    /// hooks heard of the delivery at PUBREC).
    Completed {
        /// Store sequence number of the delivery.
        seq: u64,
    },
    /// The delivery was dropped before completing: expired, queue full (the
    /// new one, or the oldest queued one evicted for it), too large for the
    /// client, QoS 0 while offline.
    Dropped {
        /// Store sequence number of the delivery.
        seq: Option<u64>,
        /// The QoS it would have been sent with.
        qos: QoS,
        /// Why.
        reason: DropReason,
        /// The message (for hooks).
        message: Option<Arc<Message>>,
    },
    /// An inbound QoS 2 PUBLISH was answered with a success PUBREC; its
    /// identifier now awaits PUBREL (recorded for the store only).
    InboundPubRec {
        /// The publisher's packet identifier.
        packet_id: PacketId,
        /// The PUBREC reason code (below 0x80).
        reason_code: ReasonCode,
    },
    /// PUBREL released an inbound QoS 2 identifier (recorded for the store only).
    InboundReleased {
        /// The publisher's packet identifier.
        packet_id: PacketId,
    },
}

/// Two events are equal when they say the same of the same message (the
/// same `Arc`, or both without one).
impl PartialEq for SessionEvent {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &Option<Arc<Message>>, b: &Option<Arc<Message>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        use SessionEvent::*;
        match (self, other) {
            (
                Sent {
                    seq,
                    packet_id,
                    qos,
                    message,
                },
                Sent {
                    seq: s2,
                    packet_id: p2,
                    qos: q2,
                    message: m2,
                },
            ) => seq == s2 && packet_id == p2 && qos == q2 && same(message, m2),
            (
                Acknowledged {
                    seq,
                    packet_id,
                    qos,
                    reason,
                    message,
                },
                Acknowledged {
                    seq: s2,
                    packet_id: p2,
                    qos: q2,
                    reason: r2,
                    message: m2,
                },
            ) => seq == s2 && packet_id == p2 && qos == q2 && reason == r2 && same(message, m2),
            (Completed { seq }, Completed { seq: s2 }) => seq == s2,
            (
                Dropped {
                    seq,
                    qos,
                    reason,
                    message,
                },
                Dropped {
                    seq: s2,
                    qos: q2,
                    reason: r2,
                    message: m2,
                },
            ) => seq == s2 && qos == q2 && reason == r2 && same(message, m2),
            (
                InboundPubRec {
                    packet_id,
                    reason_code,
                },
                InboundPubRec {
                    packet_id: p2,
                    reason_code: r2,
                },
            ) => packet_id == p2 && reason_code == r2,
            (InboundReleased { packet_id }, InboundReleased { packet_id: p2 }) => packet_id == p2,
            _ => false,
        }
    }
}

/// Why a delivery was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Message Expiry Interval ran out [MQTT-3.3.2-5].
    Expired,
    /// Larger than the client's Maximum Packet Size [MQTT-3.1.2-25].
    TooLarge,
    /// The session's queue is full (`DropNewest`).
    QueueFull,
    /// QoS 0 for a closed connection while `queue_qos0_offline` is false.
    Qos0WhileOffline,
}

/// Who wants events, read from the configuration at each record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wanted {
    /// Hooks want the messages (and the events only they need).
    pub(crate) messages: bool,
}

impl Wanted {
    /// What `config` asks for.
    pub(crate) fn of(config: &crate::SessionConfig) -> Self {
        Self {
            messages: config.message_events,
        }
    }

    /// The message for an event, when hooks want it.
    pub(crate) fn message(self, delivery: &Delivery) -> Option<Arc<Message>> {
        self.messages.then(|| Arc::clone(&delivery.message))
    }
}
