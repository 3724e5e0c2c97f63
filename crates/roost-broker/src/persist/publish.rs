//! The store side of routing one message: every delivery to a stored
//! session gets its sequence number (from its slot, under the lock that
//! found the session stored) and a `MessageEnqueue` in the publish's batch,
//! which is submitted before that delivery is pushed (so a subscriber's
//! acknowledgement can never reach the store before its enqueue).

use std::time::{Instant, SystemTime};

use roost_codec::QoS;
use std::sync::Weak;

use bytestring::ByteString;
use roost_session::Delivery;
use roost_store::{CommitTicket, Delta, QueuedMessage, StoredMessage};

use crate::retained::{ChangeSink, RetainedChange};

use super::Persist;
use crate::slot::SessionSlot;

impl Persist {
    /// Whether a delivery of `qos` to a stored session is stored with it:
    /// QoS 0 only when offline sessions keep it (`queue_qos0_offline`).
    pub(crate) fn stores(qos: QoS, keep_qos0: bool) -> bool {
        qos != QoS::AtMostOnce || keep_qos0
    }

    /// Records the enqueue of `delivery`, which its stored session's slot
    /// numbered ([`SessionSlot::push_unless_stored`]), in the publish's
    /// batch. `wall`: the wall clock of the message's batch, read at its
    /// first enqueue (not at all when none of its subscribers' sessions is
    /// stored).
    pub(crate) fn enqueue(
        slot: &SessionSlot,
        delivery: &Delivery,
        batch: &mut Vec<Delta>,
        now: Instant,
        wall: &mut Option<SystemTime>,
    ) {
        let Some(seq) = delivery.store_seq else {
            return;
        };
        batch.push(Delta::MessageEnqueue {
            client_id: slot.client_id.clone(),
            seq,
            message: QueuedMessage::from_delivery(
                delivery,
                now,
                *wall.get_or_insert_with(SystemTime::now),
            ),
        });
    }

    /// Submits a routed message's batch. A retained message's change went
    /// to the writer just before (from the retained store); when nothing else
    /// is written for it, `sync` mode still gets a ticket covering it, so its
    /// PUBACK waits for the retained write.
    pub(crate) fn submit_publish(&self, batch: Vec<Delta>, retained: bool) -> Option<CommitTicket> {
        if batch.is_empty() && retained && self.acks_wait() {
            return self.barrier();
        }
        self.submit(batch)
    }
}

/// The session store's receiver of retained-message changes: every set
/// and removal (PUBLISH, the API, expiry) becomes a `RetainSet` /
/// `RetainDelete`. It holds the store weakly: the broker's core owns both
/// the retained store and this.
pub(crate) fn retained_sink(persist: Weak<Persist>) -> ChangeSink {
    Box::new(move |change| {
        let Some(persist) = persist.upgrade() else {
            return;
        };
        let delta = match change {
            RetainedChange::Set { message, stored_at } => Delta::RetainSet {
                topic: message.topic.clone(),
                message: StoredMessage::from_message(message, Instant::now(), SystemTime::now()),
                stored_at,
            },
            RetainedChange::Removed(topic) => Delta::RetainDelete {
                topic: ByteString::from(topic),
            },
        };
        drop(persist.submit(vec![delta]));
    })
}
