//! What a restore returns: everything the broker needs to rebuild its state.

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};

use crate::record::{
    DelayedRecord, InflightRecord, QueuedMessage, RetainedRecord, SessionRecord,
    SubscriptionRecord, WillRecord,
};

/// The whole stored state. Every list is sorted by its key. Times are wall
/// clock, so the broker can subtract the time it was down.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Persistent sessions, by client id.
    pub sessions: Vec<SessionSnapshot>,
    /// Retained messages with their store times, by topic.
    pub retained: Vec<(ByteString, RetainedRecord)>,
    /// Pending wills, by client id.
    pub wills: Vec<(ByteString, WillRecord)>,
    /// Delayed publications, by id.
    pub delayed: Vec<(u64, DelayedRecord)>,
    /// Entries that belong to no session (a subscription, message or packet
    /// id whose client has no session record, or an inflight state whose
    /// message is gone). Left out of `sessions`; counted so the broker can
    /// report them.
    pub orphans: u64,
}

/// One persistent session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// Client id.
    pub client_id: ByteString,
    /// Expiry interval and disconnect time.
    pub record: SessionRecord,
    /// Subscriptions, by filter.
    pub subscriptions: Vec<(ByteString, SubscriptionRecord)>,
    /// Queued and inflight messages in `seq` order (= delivery order).
    pub messages: Vec<SnapshotMessage>,
    /// Inbound QoS 2 packet ids awaiting PUBREL, ascending, with their PUBREC reason.
    pub inbound_qos2: Vec<(PacketId, ReasonCode)>,
}

impl SessionSnapshot {
    /// The next free message sequence number for this session (1 past the
    /// highest stored; 0 when none is stored).
    pub fn next_seq(&self) -> u64 {
        self.messages.last().map_or(0, |m| m.seq.saturating_add(1))
    }
}

/// One stored message of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMessage {
    /// Its sequence number.
    pub seq: u64,
    /// The message and delivery fields.
    pub message: QueuedMessage,
    /// `Some` once it was sent (restore into the inflight window, resend with
    /// DUP and this packet id); `None` = still queued.
    pub inflight: Option<InflightRecord>,
}
