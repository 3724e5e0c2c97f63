//! Conversions between the stored records and `roost-session` types.
//!
//! Stored times are wall clock; the session works with `Instant`s. Every
//! conversion takes both clocks read at the same moment (`now`, `wall`), so
//! time spent while the broker was down counts: a message that expired
//! while it was stopped comes back already expired.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use roost_codec::{PacketId, PublishProperties, QoS};
use roost_session::{
    Delivery, InboundQos2, InflightEntry, Message, OutboundStage, SessionState, Subscription,
};
use smallvec::SmallVec;

use crate::record::{
    InflightStage, QueuedMessage, StoredMessage, StoredProperties, SubscriptionRecord,
};
use crate::snapshot::SessionSnapshot;

/// `instant` on the wall clock.
pub fn instant_to_wall(instant: Instant, now: Instant, wall: SystemTime) -> Option<SystemTime> {
    if instant >= now {
        wall.checked_add(instant.duration_since(now))
    } else {
        wall.checked_sub(now.duration_since(instant))
    }
}

/// `at` (wall clock) as an `Instant`; a time already past maps to `now`.
/// `None` when it lies too far ahead to represent (as good as never).
pub fn wall_to_instant(at: SystemTime, now: Instant, wall: SystemTime) -> Option<Instant> {
    match at.duration_since(wall) {
        Ok(ahead) => now.checked_add(ahead),
        Err(_) => Some(now),
    }
}

impl StoredMessage {
    /// Captures a message for storage.
    pub fn from_message(message: &Message, now: Instant, wall: SystemTime) -> Self {
        let p = &message.properties;
        StoredMessage {
            topic: message.topic.clone(),
            payload: message.payload.clone(),
            qos: message.qos,
            retain: message.retain,
            properties: StoredProperties {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                response_topic: p.response_topic.clone(),
                correlation_data: p.correlation_data.clone(),
                user_properties: p.user_properties.clone(),
                content_type: p.content_type.clone(),
            },
            expires_at: message
                .expires_at
                .and_then(|at| instant_to_wall(at, now, wall)),
            publisher: message.publisher.clone(),
        }
    }

    /// [`StoredMessage::to_message`], the fields moved rather than copied
    /// (a forwarded message on the receiving node).
    pub fn into_message(self, now: Instant, wall: SystemTime) -> Message {
        let p = self.properties;
        Message {
            topic: self.topic,
            payload: self.payload,
            qos: self.qos,
            retain: self.retain,
            properties: PublishProperties {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                topic_alias: None,
                response_topic: p.response_topic,
                correlation_data: p.correlation_data,
                user_properties: p.user_properties,
                subscription_identifiers: SmallVec::new(),
                content_type: p.content_type,
            },
            expires_at: self
                .expires_at
                .and_then(|at| wall_to_instant(at, now, wall)),
            publisher: self.publisher,
        }
    }

    /// Rebuilds the message; its expiry is moved onto the `Instant` clock.
    pub fn to_message(&self, now: Instant, wall: SystemTime) -> Message {
        let p = &self.properties;
        Message {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos: self.qos,
            retain: self.retain,
            properties: PublishProperties {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                topic_alias: None,
                response_topic: p.response_topic.clone(),
                correlation_data: p.correlation_data.clone(),
                user_properties: p.user_properties.clone(),
                subscription_identifiers: SmallVec::new(),
                content_type: p.content_type.clone(),
            },
            expires_at: self
                .expires_at
                .and_then(|at| wall_to_instant(at, now, wall)),
            publisher: self.publisher.clone(),
        }
    }
}

impl QueuedMessage {
    /// Captures a delivery for storage.
    pub fn from_delivery(delivery: &Delivery, now: Instant, wall: SystemTime) -> Self {
        QueuedMessage {
            message: StoredMessage::from_message(&delivery.message, now, wall),
            qos: delivery.qos,
            retain: delivery.retain,
            subscription_ids: delivery.subscription_ids.to_vec(),
        }
    }

    /// Rebuilds the delivery (with its own `Arc<Message>`).
    pub fn to_delivery(&self, now: Instant, wall: SystemTime) -> Delivery {
        Delivery {
            message: Arc::new(self.message.to_message(now, wall)),
            qos: self.qos,
            retain: self.retain,
            subscription_ids: SmallVec::from_slice(&self.subscription_ids),
            store_seq: None,
        }
    }
}

impl From<&Subscription> for SubscriptionRecord {
    fn from(s: &Subscription) -> Self {
        SubscriptionRecord {
            options: s.options,
            identifier: s.identifier,
        }
    }
}

impl From<SubscriptionRecord> for Subscription {
    fn from(r: SubscriptionRecord) -> Self {
        Subscription {
            options: r.options,
            identifier: r.identifier,
        }
    }
}

/// A session rebuilt from a snapshot, with the store sequence numbers the
/// broker needs to turn later acknowledgements into [`crate::Delta::MessageAck`].
#[derive(Debug)]
pub struct RestoredSession {
    /// The session state, ready to be parked in the registry.
    pub state: SessionState,
    /// The store `seq` of each inflight entry, by packet id, in send order.
    pub inflight_seqs: Vec<(PacketId, u64)>,
    /// The store `seq` of each queued delivery, in queue order.
    pub queued_seqs: Vec<u64>,
    /// The next free sequence number for this session.
    pub next_seq: u64,
}

impl SessionSnapshot {
    /// Rebuilds the session: subscriptions, expiry interval, inflight
    /// window (sent messages, resent on resume with DUP and the same packet
    /// id), queued messages and inbound QoS 2 ids (as awaiting PUBREL).
    ///
    /// A stored QoS 0 message marked as sent cannot be in flight; it goes
    /// back to the queue.
    pub fn to_session_state(&self, now: Instant, wall: SystemTime) -> RestoredSession {
        let mut state = SessionState::new(self.client_id.clone());
        state.set_session_expiry_interval(self.record.expiry_interval);
        for (filter, sub) in &self.subscriptions {
            state
                .subscriptions
                .insert(filter.clone(), Subscription::from(*sub));
        }
        let mut inflight_seqs = Vec::new();
        let mut queued_seqs = Vec::new();
        for m in &self.messages {
            let mut delivery = m.message.to_delivery(now, wall);
            // The session reports what becomes of it under its stored seq.
            delivery.store_seq = Some(m.seq);
            let stage = match (m.inflight, delivery.qos) {
                (Some(r), QoS::AtLeastOnce) if r.stage == InflightStage::Sent => {
                    Some((r.packet_id, OutboundStage::AwaitingPubAck(delivery.clone())))
                }
                (Some(r), QoS::ExactlyOnce) if r.stage == InflightStage::Sent => {
                    Some((r.packet_id, OutboundStage::AwaitingPubRec(delivery.clone())))
                }
                (Some(r), QoS::ExactlyOnce) => Some((r.packet_id, OutboundStage::AwaitingPubComp)),
                _ => None,
            };
            match stage {
                Some((packet_id, stage)) => {
                    state.inflight.push_restored(InflightEntry {
                        packet_id,
                        stage,
                        store_seq: Some(m.seq),
                    });
                    inflight_seqs.push((packet_id, m.seq));
                }
                None => {
                    state.restore_queued(delivery);
                    queued_seqs.push(m.seq);
                }
            }
        }
        for (packet_id, reason) in &self.inbound_qos2 {
            state.restore_inbound_qos2(*packet_id, InboundQos2::AwaitingPubRel(*reason));
        }
        RestoredSession {
            state,
            inflight_seqs,
            queued_seqs,
            next_seq: self.next_seq(),
        }
    }
}
