//! The store side of routing one message: every delivery to a stored
//! session gets its sequence number and a `MessageEnqueue` in the publish's
//! batch, which is written before any delivery is pushed (so a subscriber's
//! acknowledgement can never reach the store before its enqueue).

use std::time::{Instant, SystemTime};

use roost_codec::QoS;
use roost_session::{Delivery, Message};
use roost_store::{Delta, QueuedMessage, StoredMessage};

use super::Persist;
use crate::slot::SessionSlot;

impl Persist {
    /// Gives `delivery` the slot's next sequence number and records its
    /// enqueue, when the slot's session is stored. QoS 0 is stored only when
    /// offline sessions keep it (`queue_qos0_offline`).
    pub(crate) fn stamp(
        &self,
        slot: &SessionSlot,
        delivery: &mut Delivery,
        batch: &mut Vec<Delta>,
        keep_qos0: bool,
        now: Instant,
        wall: SystemTime,
    ) {
        if delivery.qos == QoS::AtMostOnce && !keep_qos0 {
            return;
        }
        let seq = {
            let mut inner = slot.inner.lock();
            if !inner.store.session || inner.ended {
                return;
            }
            let seq = inner.store.next_seq;
            inner.store.next_seq += 1;
            seq
        };
        delivery.store_seq = Some(seq);
        batch.push(Delta::MessageEnqueue {
            client_id: slot.client_id.clone(),
            seq,
            message: QueuedMessage::from_delivery(delivery, now, wall),
        });
    }
}

/// The retained-store delta of a PUBLISH with RETAIN: set, or delete for an
/// empty payload.
pub(crate) fn retain_delta(message: &Message, now: Instant, wall: SystemTime) -> Delta {
    if message.payload.is_empty() {
        Delta::RetainDelete {
            topic: message.topic.clone(),
        }
    } else {
        Delta::RetainSet {
            topic: message.topic.clone(),
            message: StoredMessage::from_message(message, now, wall),
        }
    }
}
