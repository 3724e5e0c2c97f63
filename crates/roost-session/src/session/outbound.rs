//! Messages to the client: expiry, the inflight window (client Receive
//! Maximum and `max_inflight`), the pending queue, packet identifiers,
//! outbound topic aliases and the client's Maximum Packet Size.
//!
//! Hot path: the `Delivery` is moved in (no extra `Arc` clone); building the
//! PUBLISH costs two refcount increments (topic, payload) and, for 5.0, a
//! clone of the message properties. The payload is never copied.

use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use roost_codec::{
    Encoder, PROTOCOL_MAX_PACKET_SIZE, Packet, PacketId, ProtocolVersion, Publish,
    PublishProperties, QoS,
};

use super::{DeliveryOutcome, DropReason, Session};
use crate::alias::AliasPlan;
use crate::inflight::OutboundStage;
use crate::message::Delivery;
use crate::session_event::SessionEvent;
use crate::state::EnqueueOutcome;

impl Session {
    /// An outbound message for this client. Drops it when expired
    /// [MQTT-3.3.2-5]; sends QoS 0 at once; sends QoS 1/2 with a fresh packet
    /// identifier when the window allows [MQTT-3.3.4-9], else queues it
    /// (bounded, per policy) behind earlier ones so order is kept
    /// [MQTT-4.6.0-6]; drops (and counts) a PUBLISH larger than the client's
    /// Maximum Packet Size [MQTT-3.1.2-24] [MQTT-3.1.2-25]. After `close`,
    /// behaves like [`crate::SessionState::enqueue_offline`].
    pub fn handle_delivery(&mut self, now: Instant, delivery: Delivery) -> DeliveryOutcome {
        if delivery.message.is_expired(now) {
            self.state.dropped_mut().expired += 1;
            let wanted = self.wanted();
            self.state
                .record_dropped(&delivery, DropReason::Expired, wanted);
            return DeliveryOutcome::Dropped(DropReason::Expired);
        }
        if self.closed {
            let outcome = self.state.enqueue_offline(delivery, &self.config, now);
            return DeliveryOutcome::from(outcome);
        }
        if delivery.qos == QoS::AtMostOnce {
            return self.send(delivery, now);
        }
        if !self.state.pending.is_empty() {
            // Normally the queue only holds messages while the window is full;
            // make sure it is not waiting on a free slot before queueing behind it.
            self.fill_window(now);
        }
        if !self.state.pending.is_empty() || self.state.inflight.len() >= self.send_window() {
            let outcome = self.state.enqueue(delivery, &self.config);
            return DeliveryOutcome::from(outcome);
        }
        self.send(delivery, now)
    }

    /// Moves queued deliveries into the window while it has room (after an
    /// acknowledgement, or on connect). Expired ones are dropped.
    pub(super) fn fill_window(&mut self, now: Instant) {
        while !self.closed && self.state.inflight.len() < self.send_window() {
            let Some(delivery) = self.state.pending.pop_front() else {
                break;
            };
            if delivery.message.is_expired(now) {
                self.state.dropped_mut().expired += 1;
                let wanted = self.wanted();
                self.state
                    .record_dropped(&delivery, DropReason::Expired, wanted);
                continue;
            }
            // Drops are counted inside. `Queued` means no identifier was free
            // (only possible with 65,535 in flight): stop rather than spin.
            if self.send(delivery, now) == DeliveryOutcome::Queued {
                break;
            }
        }
    }

    /// Builds and queues the PUBLISH for `delivery`; for QoS 1/2 the caller
    /// checked the window.
    fn send(&mut self, delivery: Delivery, now: Instant) -> DeliveryOutcome {
        let plan = self.outbound_aliases.plan(&delivery.message.topic);
        // The identifier's value does not change the size; assign it only
        // once the packet is known to fit.
        let placeholder = (delivery.qos != QoS::AtMostOnce).then_some(PacketId::MIN);
        let mut publish = build_publish(self.version, &delivery, placeholder, false, plan, now);
        if !publish_fits(&self.encoder, &publish, self.peer.maximum_packet_size) {
            self.state.dropped_mut().too_large += 1;
            let wanted = self.wanted();
            self.state
                .record_dropped(&delivery, DropReason::TooLarge, wanted);
            return DeliveryOutcome::Dropped(DropReason::TooLarge);
        }
        let packet_id = if delivery.qos == QoS::AtMostOnce {
            None
        } else {
            let Some(id) = self.state.inflight.allocate_id() else {
                // All 65,535 identifiers in flight: only reachable with a
                // window that large. Keep the message for later.
                self.state.pending.push_front(delivery);
                return DeliveryOutcome::Queued;
            };
            Some(id)
        };
        self.outbound_aliases.commit(plan, &delivery.message.topic);
        publish.packet_id = packet_id;
        let seq = delivery.store_seq;
        let qos = delivery.qos;
        // Hooks hear of a QoS 1/2 delivery when the client acknowledges it;
        // the store of every step.
        let hooks = self.wanted().messages && qos == QoS::AtMostOnce;
        let event = (seq.is_some() || hooks).then(|| SessionEvent::Sent {
            seq,
            packet_id,
            qos,
            message: hooks.then(|| Arc::clone(&delivery.message)),
        });
        if let Some(id) = packet_id {
            let stage = if qos == QoS::ExactlyOnce {
                OutboundStage::AwaitingPubRec(delivery)
            } else {
                OutboundStage::AwaitingPubAck(delivery)
            };
            self.state.inflight.push(id, stage, seq);
        }
        if let Some(event) = event {
            self.state.record(event);
        }
        self.push(Packet::Publish(publish));
        DeliveryOutcome::Sent
    }
}

/// The PUBLISH for one delivery. DUP is 1 only on a resend [MQTT-3.3.1-1]
/// [MQTT-3.3.1-3] (never for QoS 0 [MQTT-3.3.1-2]); RETAIN is what the
/// router decided. For 5.0, the message properties are forwarded unaltered
/// [MQTT-3.3.2-4] [MQTT-3.3.2-15..20] except the Message Expiry Interval,
/// which becomes the time left [MQTT-3.3.2-6], and the per-hop Subscription
/// Identifiers and Topic Alias. 3.x gets no properties at all.
pub(super) fn build_publish(
    version: ProtocolVersion,
    delivery: &Delivery,
    packet_id: Option<PacketId>,
    dup: bool,
    plan: AliasPlan,
    now: Instant,
) -> Publish {
    let message = &delivery.message;
    let mut publish = Publish {
        dup: dup && delivery.qos != QoS::AtMostOnce,
        qos: delivery.qos,
        retain: delivery.retain,
        topic: message.topic.clone(),
        packet_id: if delivery.qos == QoS::AtMostOnce {
            None
        } else {
            packet_id
        },
        properties: PublishProperties::default(),
        payload: message.payload.clone(),
    };
    if version.is_v5() {
        publish.properties = message.properties.clone();
        publish.properties.message_expiry_interval = message.remaining_expiry_interval(now);
        publish
            .properties
            .subscription_identifiers
            .clone_from(&delivery.subscription_ids);
        match plan {
            AliasPlan::None => {}
            AliasPlan::Assign(alias) => publish.properties.topic_alias = Some(alias),
            AliasPlan::Reuse(alias) => {
                publish.properties.topic_alias = Some(alias);
                publish.topic = ByteString::new();
            }
        }
    }
    publish
}

/// True when `publish` encodes within the client's Maximum Packet Size.
/// Without a limit (3.x, or a 5.0 client that set none) nothing is measured:
/// the decoder already bounded what came in.
pub(super) fn publish_fits(encoder: &Encoder, publish: &Publish, maximum: u32) -> bool {
    if maximum >= PROTOCOL_MAX_PACKET_SIZE {
        return true;
    }
    u64::try_from(encoder.publish_len(publish)).is_ok_and(|len| len <= u64::from(maximum))
}

impl From<EnqueueOutcome> for DeliveryOutcome {
    fn from(outcome: EnqueueOutcome) -> Self {
        match outcome {
            EnqueueOutcome::Queued => Self::Queued,
            EnqueueOutcome::DroppedOldest => Self::QueuedDroppedOldest,
            EnqueueOutcome::DroppedNewest => Self::Dropped(DropReason::QueueFull),
            EnqueueOutcome::DroppedQos0 => Self::Dropped(DropReason::Qos0WhileOffline),
            EnqueueOutcome::Expired => Self::Dropped(DropReason::Expired),
        }
    }
}
