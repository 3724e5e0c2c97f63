//! Reporting what happens to each outbound message to the hooks that want it
//! (`on_message_delivered`, `on_message_dropped`).
//!
//! The sans-IO session counts its drops but does not hand the messages back,
//! so the driver watches the places where a message can leave a session:
//! the outcome of `handle_delivery`, the acknowledgements that complete a
//! QoS 1/2 flow, and the calls that move queued messages into the inflight
//! window (an acknowledgement, a resume), where expired or oversized ones
//! are dropped. Every function here first checks one flag
//! (`Extensions::message_events`) and does nothing else without it: no
//! clone, no allocation.

use std::sync::Arc;
use std::time::Instant;

use roost_codec::{Packet, PacketId, QoS, ReasonCode};
use roost_hooks::DropCause;
use roost_session::{
    Delivery, DeliveryOutcome, DropCounters, DropReason, Message, OutboundStage, Session,
    SessionState,
};

use crate::core::Core;

/// The hook cause for a session's drop reason.
fn cause(reason: DropReason) -> DropCause {
    match reason {
        DropReason::Expired => DropCause::Expired,
        DropReason::TooLarge => DropCause::TooLarge,
        DropReason::QueueFull => DropCause::QueueFull,
        DropReason::Qos0WhileOffline => DropCause::Offline,
    }
}

/// The delivery a full queue evicts next (its front), when `d` would make it
/// overflow under the drop-oldest policy.
fn evicted_by_next(core: &Core, state: &SessionState) -> Option<Delivery> {
    (state.queued_len() >= core.session_config.max_queued_messages)
        .then(|| state.queued().next().cloned())
        .flatten()
}

/// `Session::handle_delivery`, reporting a QoS 0 PUBLISH queued for the
/// transport as delivered and any drop (the new message, or the queued one a
/// full queue evicted) as dropped.
pub(crate) fn deliver(core: &Core, session: &mut Session, delivery: Delivery, now: Instant) {
    if !core.ext.message_events {
        session.handle_delivery(now, delivery);
        return;
    }
    let evicted = evicted_by_next(core, session.state());
    let (message, qos) = (Arc::clone(&delivery.message), delivery.qos);
    let client_id = session.client_id().clone();
    match session.handle_delivery(now, delivery) {
        DeliveryOutcome::Sent if qos == QoS::AtMostOnce => {
            core.ext.delivered(&client_id, &message, qos);
        }
        DeliveryOutcome::Sent | DeliveryOutcome::Queued => {}
        DeliveryOutcome::QueuedDroppedOldest => {
            if let Some(old) = evicted {
                core.ext
                    .dropped(&client_id, &old.message, old.qos, DropCause::QueueFull);
            }
        }
        DeliveryOutcome::Dropped(reason) => {
            core.ext.dropped(&client_id, &message, qos, cause(reason));
        }
    }
}

/// An outbound message an acknowledgement may complete.
pub(crate) struct Acked {
    message: Arc<Message>,
    qos: QoS,
    reason: ReasonCode,
}

/// The message a PUBACK (QoS 1) or PUBREC (QoS 2) from the client completes,
/// looked up before the session forgets it.
pub(crate) fn acked(core: &Core, session: &Session, packet: &Packet) -> Option<Acked> {
    if !core.ext.message_events {
        return None;
    }
    let (ack, qos) = match packet {
        Packet::PubAck(a) => (a, QoS::AtLeastOnce),
        Packet::PubRec(a) => (a, QoS::ExactlyOnce),
        _ => return None,
    };
    let entry = session
        .state()
        .inflight
        .iter()
        .find(|e| e.packet_id == ack.packet_id)?;
    match (&entry.stage, qos) {
        (OutboundStage::AwaitingPubAck(d), QoS::AtLeastOnce)
        | (OutboundStage::AwaitingPubRec(d), QoS::ExactlyOnce) => Some(Acked {
            message: Arc::clone(&d.message),
            qos,
            reason: ack.reason_code,
        }),
        _ => None,
    }
}

/// Reports an acknowledged message: a success code means delivered, an
/// error code means the client refused it.
pub(crate) fn report_acked(core: &Core, client_id: &str, acked: Acked) {
    if acked.reason.is_error() {
        let cause = DropCause::Rejected(acked.reason);
        core.ext
            .dropped(client_id, &acked.message, acked.qos, cause);
    } else {
        core.ext.delivered(client_id, &acked.message, acked.qos);
    }
}

/// What a session held before a call that may move queued messages into
/// the inflight window (dropping expired or oversized ones on the way).
pub(crate) struct Held {
    queued: Vec<(Arc<Message>, QoS)>,
    inflight: Vec<(PacketId, Arc<Message>, QoS)>,
    drops: DropCounters,
}

impl Held {
    /// Takes the snapshot when message events are wanted and the call can
    /// drop something (a queue to move, or messages in flight to resend).
    pub(crate) fn before(core: &Core, state: &SessionState, resend: bool) -> Option<Self> {
        if !core.ext.message_events || (state.queued_len() == 0 && !resend) {
            return None;
        }
        let inflight = if resend {
            state
                .inflight
                .iter()
                .filter_map(|e| match &e.stage {
                    OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => {
                        Some((e.packet_id, Arc::clone(&d.message), d.qos))
                    }
                    OutboundStage::AwaitingPubComp => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(Self {
            queued: state
                .queued()
                .map(|d| (Arc::clone(&d.message), d.qos))
                .collect(),
            inflight,
            drops: state.drop_counters(),
        })
    }

    /// Compares with the state after the call. The queue only loses its
    /// front: each message taken from it either went out (QoS 1/2: it is in
    /// flight now; QoS 0: written), or was dropped as expired (checked at the
    /// same `now` the session used) or too large. A message in flight before
    /// that is gone now (and was not acknowledged) no longer fit the client.
    pub(crate) fn report(self, core: &Core, state: &SessionState, now: Instant) {
        let client_id = &state.client_id;
        let in_flight = |m: &Arc<Message>| {
            state.inflight.iter().any(|e| match &e.stage {
                OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => {
                    Arc::ptr_eq(&d.message, m)
                }
                OutboundStage::AwaitingPubComp => false,
            })
        };
        let mut too_large = 0u64;
        for (id, message, qos) in &self.inflight {
            if !state.inflight.iter().any(|e| e.packet_id == *id) {
                too_large += 1;
                core.ext
                    .dropped(client_id, message, *qos, DropCause::TooLarge);
            }
        }
        let taken = self.queued.len().saturating_sub(state.queued_len());
        let mut qos0_sent: Vec<&(Arc<Message>, QoS)> = Vec::new();
        for entry @ (message, qos) in &self.queued[..taken] {
            if message.is_expired(now) {
                core.ext
                    .dropped(client_id, message, *qos, DropCause::Expired);
            } else if *qos == QoS::AtMostOnce {
                qos0_sent.push(entry);
            } else if !in_flight(message) {
                too_large += 1;
                core.ext
                    .dropped(client_id, message, *qos, DropCause::TooLarge);
            }
        }
        // QoS 0 leaves no trace once written; the session's too-large counter
        // says how many of them did not fit. Size decides which: the largest.
        let counted = state
            .drop_counters()
            .too_large
            .saturating_sub(self.drops.too_large);
        let oversized = usize::try_from(counted.saturating_sub(too_large)).unwrap_or(usize::MAX);
        let mut by_size: Vec<usize> = (0..qos0_sent.len()).collect();
        by_size.sort_by_key(|&i| {
            let (m, _) = qos0_sent[i];
            std::cmp::Reverse(m.payload.len() + m.topic.len())
        });
        by_size.truncate(oversized);
        for (i, (message, qos)) in qos0_sent.into_iter().enumerate() {
            if by_size.contains(&i) {
                core.ext
                    .dropped(client_id, message, *qos, DropCause::TooLarge);
            } else {
                core.ext.delivered(client_id, message, *qos);
            }
        }
    }
}
