//! A session's events (sent, acknowledged, completed, dropped, inbound QoS
//! 2) as store deltas, and writing a live session's deltas after a turn.
//! The events themselves are read once, by `core/events.rs`, which also
//! tells the hooks; this file is the store's half.

use bytestring::ByteString;
use roost_codec::QoS;
use roost_session::{SessionEvent, SessionState};
use roost_store::{Delta, InflightStage};

use super::Persist;

/// The delta for one event of `client_id`'s session; `None` for what the
/// store does not keep (an event of an unstored message, recorded for the
/// hooks).
pub(crate) fn delta(client_id: &ByteString, event: SessionEvent) -> Option<Delta> {
    let client_id = client_id.clone();
    Some(match event {
        SessionEvent::Sent {
            seq: Some(seq),
            packet_id: Some(packet_id),
            ..
        } => Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage: InflightStage::Sent,
        },
        // A success PUBREC: only PUBREL is resent now.
        SessionEvent::Acknowledged {
            seq: Some(seq),
            packet_id,
            qos: QoS::ExactlyOnce,
            reason,
            ..
        } if !reason.is_error() => Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage: InflightStage::AwaitingPubComp,
        },
        // Done: QoS 0 written, PUBACK, an error PUBREC, PUBCOMP, dropped.
        SessionEvent::Sent { seq: Some(seq), .. }
        | SessionEvent::Acknowledged { seq: Some(seq), .. }
        | SessionEvent::Completed { seq }
        | SessionEvent::Dropped { seq: Some(seq), .. } => Delta::MessageAck { client_id, seq },
        SessionEvent::InboundPubRec {
            packet_id,
            reason_code,
        } => Delta::InboundQos2 {
            client_id,
            packet_id,
            reason_code,
        },
        SessionEvent::InboundReleased { packet_id } => Delta::InboundQos2Release {
            client_id,
            packet_id,
        },
        SessionEvent::Sent { seq: None, .. }
        | SessionEvent::Acknowledged { seq: None, .. }
        | SessionEvent::Dropped { seq: None, .. } => return None,
    })
}

/// Appends every pending event of a detached session state to `batch`
/// (shutdown, park). A parked state's events are read as they happen
/// (`Core::read_parked_events`), so this finds none unless a store event
/// was left behind; it writes those rather than lose them.
pub(crate) fn drain_state(state: &mut SessionState, batch: &mut Vec<Delta>) {
    while let Some(event) = state.poll_event() {
        batch.extend(delta(&state.client_id, event));
    }
}

/// Writes what a live session reported in one turn (called by the
/// connection's loop after each input, before it writes). In `sync` mode it
/// waits for the write: a PUBLISH sent with a packet id, a PUBREL after
/// PUBREC and a PUBCOMP after PUBREL must not reach the client before the
/// store knows, or a crash would make the broker resend a completed message
/// or reuse a packet id the client still holds. A batch of acks only
/// (`MessageAck`: PUBACK or PUBCOMP received, a message dropped) is not
/// waited for: nothing goes to the client because of it, and whatever the
/// connection sends later waits for a later ticket, which the writer
/// completes only once everything before it, this batch included, is
/// fsynced. Waiting would only hold the subscriber's next PUBLISH back by a
/// group commit. Costs one check when there is nothing to write.
pub(crate) async fn write_events(persist: Option<&Persist>, batch: Vec<Delta>) {
    let Some(persist) = persist else {
        return;
    };
    if batch.is_empty() {
        return;
    }
    let acks_only = batch.iter().all(|d| matches!(d, Delta::MessageAck { .. }));
    let ticket = persist.submit(batch);
    if !acks_only {
        persist.acknowledged(ticket).await;
    }
}
