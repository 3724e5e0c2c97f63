//! Outbound QoS 1/2 deliveries that were sent and are not yet complete, in
//! send order, plus packet identifier allocation.
//!
//! ```text
//!  QoS 1:  PUBLISH ──▶ AwaitingPubAck ──PUBACK──▶ (removed)
//!  QoS 2:  PUBLISH ──▶ AwaitingPubRec ──PUBREC <0x80──▶ AwaitingPubComp ──PUBCOMP──▶ (removed)
//!                                    └─PUBREC ≥0x80──▶ (removed, no PUBREL)
//! ```
//!
//! The window is small (bounded by the client's Receive Maximum and
//! `max_inflight`) and acknowledgements nearly always arrive in send order,
//! so a `VecDeque` searched from the front is both compact and fast.

use std::collections::VecDeque;

use roost_codec::PacketId;

use crate::message::Delivery;

/// Where an outbound QoS 1/2 delivery is in its flow.
#[derive(Clone, Debug)]
pub enum OutboundStage {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitingPubAck(Delivery),
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitingPubRec(Delivery),
    /// PUBREL sent, waiting for PUBCOMP. The message itself is no longer
    /// needed: it is never re-sent after PUBREC [MQTT-4.3.3-6].
    AwaitingPubComp,
}

/// One outbound delivery in flight.
#[derive(Clone, Debug)]
pub struct InflightEntry {
    /// The packet identifier it was sent with (kept on resend [MQTT-4.4.0-1]).
    pub packet_id: PacketId,
    /// Where it is in its flow.
    pub stage: OutboundStage,
    /// The delivery's store sequence number (see [`crate::Delivery::store_seq`]);
    /// kept here because an entry past PUBREC no longer holds its delivery.
    pub store_seq: Option<u64>,
}

/// The outbound inflight window, in original send order.
#[derive(Debug, Default)]
pub struct Inflight {
    entries: VecDeque<InflightEntry>,
    /// The last packet identifier handed out (0 = none yet).
    last_id: u16,
}

impl Inflight {
    /// Number of deliveries in flight (each counts against the client's
    /// Receive Maximum until PUBACK, PUBCOMP or an error PUBREC [MQTT-3.3.4-9]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Frees the window's allocation when nothing is in flight (idle).
    pub(crate) fn release_if_empty(&mut self) {
        if self.entries.is_empty() && self.entries.capacity() > 0 {
            self.entries = VecDeque::new();
        }
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last packet identifier handed out (0 = none yet).
    pub(crate) fn last_id(&self) -> u16 {
        self.last_id
    }

    /// An empty window whose next identifier follows `last_id`.
    pub(crate) fn after(last_id: u16) -> Self {
        Self {
            entries: VecDeque::new(),
            last_id,
        }
    }

    /// Entries in original send order.
    pub fn iter(&self) -> impl Iterator<Item = &InflightEntry> {
        self.entries.iter()
    }

    /// Adds a restored entry (from a session store) at the end, keeping
    /// the allocator past its id so it is not handed out again.
    pub fn push_restored(&mut self, entry: InflightEntry) {
        self.last_id = entry.packet_id.get();
        self.entries.push_back(entry);
    }

    /// A non-zero packet identifier not used by any entry in flight
    /// [MQTT-2.2.1-4]. Identifiers are handed out in sequence, so a
    /// collision needs 65,535 sends while one delivery stays unacknowledged.
    /// Returns `None` only when all 65,535 identifiers are in flight.
    pub(crate) fn allocate_id(&mut self) -> Option<PacketId> {
        if self.entries.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            let candidate = PacketId::new(self.last_id)?;
            if !self.contains(candidate) {
                return Some(candidate);
            }
        }
    }

    fn contains(&self, id: PacketId) -> bool {
        self.entries.iter().any(|e| e.packet_id == id)
    }

    pub(crate) fn push(
        &mut self,
        packet_id: PacketId,
        stage: OutboundStage,
        store_seq: Option<u64>,
    ) {
        self.entries.push_back(InflightEntry {
            packet_id,
            stage,
            store_seq,
        });
    }

    fn position(&self, id: PacketId) -> Option<usize> {
        self.entries.iter().position(|e| e.packet_id == id)
    }

    pub(crate) fn get_mut(&mut self, id: PacketId) -> Option<&mut InflightEntry> {
        let index = self.position(id)?;
        self.entries.get_mut(index)
    }

    pub(crate) fn get(&self, id: PacketId) -> Option<&InflightEntry> {
        self.entries.iter().find(|e| e.packet_id == id)
    }

    pub(crate) fn remove(&mut self, id: PacketId) -> Option<InflightEntry> {
        let index = self.position(id)?;
        self.entries.remove(index)
    }

    /// Removes every entry, returning the deliveries whose PUBLISH the client
    /// has not acknowledged (entries past PUBREC are dropped: the client
    /// already owns those messages).
    pub(crate) fn drain_unacknowledged(&mut self) -> impl Iterator<Item = Delivery> + '_ {
        self.entries.drain(..).filter_map(|e| match e.stage {
            OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => Some(d),
            OutboundStage::AwaitingPubComp => None,
        })
    }

    /// Gives every entry still holding its message (not yet past PUBREC)
    /// and no store sequence number one from `next`, on the entry and on
    /// its delivery (the session reports the delivery's fate under it).
    pub(crate) fn number_unstored(&mut self, next: &mut impl FnMut() -> u64) {
        for entry in &mut self.entries {
            if let OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) =
                &mut entry.stage
                && entry.store_seq.is_none()
            {
                let seq = next();
                d.store_seq = Some(seq);
                entry.store_seq = Some(seq);
            }
        }
    }

    /// Keeps only the entries `keep` approves, in order (used when a resend
    /// turns out impossible).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&InflightEntry) -> bool) {
        self.entries.retain(keep);
    }
}
