//! What a session store must learn about one session: every step of a stored
//! message's life and of an inbound QoS 2 flow, as events the broker turns
//! into store deltas.
//!
//! Only a session that is stored produces them: outbound events need a
//! delivery that carries a store sequence number ([`crate::Delivery::store_seq`],
//! assigned by the broker only for persistent sessions with a store), inbound
//! events need [`crate::SessionConfig::store_events`] and a Session Expiry
//! Interval above 0. Without a store nothing is recorded, so the hot path
//! pays one branch.

use roost_codec::{PacketId, ReasonCode};

/// One persistence-relevant change, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// The message `seq` was sent as QoS 1/2 PUBLISH with `packet_id`.
    Sent {
        /// Store sequence number of the delivery.
        seq: u64,
        /// Packet identifier it was sent with.
        packet_id: PacketId,
    },
    /// A success PUBREC came back for message `seq`: only PUBREL is resent now.
    PubRecReceived {
        /// Store sequence number of the delivery.
        seq: u64,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// The message is done: PUBACK, PUBCOMP, an error PUBREC, or QoS 0 written.
    Completed {
        /// Store sequence number of the delivery.
        seq: u64,
    },
    /// The message was dropped before completing: expired, queue full, too
    /// large for the client.
    Dropped {
        /// Store sequence number of the delivery.
        seq: u64,
    },
    /// An inbound QoS 2 PUBLISH was answered with a success PUBREC; its
    /// identifier now awaits PUBREL.
    InboundPubRec {
        /// The publisher's packet identifier.
        packet_id: PacketId,
        /// The PUBREC reason code (below 0x80).
        reason_code: ReasonCode,
    },
    /// PUBREL released an inbound QoS 2 identifier.
    InboundReleased {
        /// The publisher's packet identifier.
        packet_id: PacketId,
    },
}
