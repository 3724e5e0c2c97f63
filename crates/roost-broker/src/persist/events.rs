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

/// Whether the connection may send what `event` came with before its delta
/// is stored, in `sync` mode. Yes for:
///
/// - an event the store does not keep (no store sequence number);
/// - an ack (QoS 0 written, PUBACK, an error PUBREC, PUBCOMP, a message
///   dropped): nothing goes to the client because of it;
/// - a QoS 1 PUBLISH sent. Lost in a crash, the message is sent again after
///   the restart as a new PUBLISH (if its enqueue was stored; if not, its
///   publisher got no PUBACK and sends it again): a duplicate, which QoS 1
///   permits. Its packet id may then go to another message: a client keeps
///   no state for a QoS 1 id it acknowledged [MQTT-4.3.2-5] (3.1.1:
///   [MQTT-4.3.2-2]), and the ids of QoS 2 messages in flight are never
///   reused, because their `Sent` was stored before their PUBLISH left.
///
/// Not for a QoS 2 PUBLISH, a success PUBREC (PUBREL follows) or an
/// inbound QoS 2 state: lost, the broker would resend a message the client
/// completed (a duplicate QoS 2 forbids) or reuse a packet id the client
/// still holds (a loss).
pub(crate) fn may_send_before_stored(event: &SessionEvent) -> bool {
    match event {
        SessionEvent::Sent { seq: None, .. }
        | SessionEvent::Acknowledged { seq: None, .. }
        | SessionEvent::Dropped { seq: None, .. } => true,
        SessionEvent::Sent {
            packet_id: None, ..
        } => true,
        SessionEvent::Sent { qos, .. } => *qos == QoS::AtLeastOnce,
        SessionEvent::Acknowledged {
            qos: QoS::ExactlyOnce,
            reason,
            ..
        } => reason.is_error(),
        SessionEvent::Acknowledged { .. }
        | SessionEvent::Completed { .. }
        | SessionEvent::Dropped { .. } => true,
        SessionEvent::InboundPubRec { .. } | SessionEvent::InboundReleased { .. } => false,
    }
}

/// Writes what a live session reported in one turn (called by the
/// connection's loop after each input, before it writes). In `sync` mode,
/// when `wait` (an event of the turn fails [`may_send_before_stored`]: a
/// QoS 2 PUBLISH, a PUBREL after PUBREC, a PUBCOMP after PUBREL), it waits
/// for the write before the turn's packets go out. A turn of acks and QoS 1
/// PUBLISHes only is written but not waited for: whatever the connection
/// sends later that must wait waits for a later ticket, which the writer
/// completes only once everything before it, this batch included, is
/// fsynced. Waiting held each QoS 1 message back by a second group commit
/// on its way to the subscriber, after the one its enqueue took (which the
/// publisher's PUBACK waits for). Costs one check when there is nothing to
/// write.
pub(crate) async fn write_events(persist: Option<&Persist>, batch: Vec<Delta>, wait: bool) {
    let Some(persist) = persist else {
        return;
    };
    if batch.is_empty() {
        return;
    }
    let ticket = persist.submit(batch);
    if wait {
        persist.acknowledged(ticket).await;
    }
}
