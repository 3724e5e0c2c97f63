//! A session's store events (sent, PUBREC received, completed, dropped,
//! inbound QoS 2) as deltas.

use bytestring::ByteString;
use roost_session::{Session, SessionState, StoreEvent};
use roost_store::{Delta, InflightStage};

use super::Persist;

/// The delta for one event of `client_id`'s session.
pub(crate) fn delta(client_id: &ByteString, event: StoreEvent) -> Delta {
    let client_id = client_id.clone();
    match event {
        StoreEvent::Sent { seq, packet_id } => Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage: InflightStage::Sent,
        },
        StoreEvent::PubRecReceived { seq, packet_id } => Delta::OutboundStage {
            client_id,
            seq,
            packet_id,
            stage: InflightStage::AwaitingPubComp,
        },
        StoreEvent::Completed { seq } | StoreEvent::Dropped { seq } => {
            Delta::MessageAck { client_id, seq }
        }
        StoreEvent::InboundPubRec {
            packet_id,
            reason_code,
        } => Delta::InboundQos2 {
            client_id,
            packet_id,
            reason_code,
        },
        StoreEvent::InboundReleased { packet_id } => Delta::InboundQos2Release {
            client_id,
            packet_id,
        },
    }
}

/// Appends every pending event of a live session to `batch`.
pub(crate) fn drain_session(session: &mut Session, batch: &mut Vec<Delta>) {
    while let Some(event) = session.poll_store_event() {
        batch.push(delta(session.client_id(), event));
    }
}

/// Appends every pending event of a detached session state to `batch`.
pub(crate) fn drain_state(state: &mut SessionState, batch: &mut Vec<Delta>) {
    while let Some(event) = state.poll_store_event() {
        batch.push(delta(&state.client_id, event));
    }
}

/// Writes what a live session reported since the last call (called by the
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
/// group commit. Costs one check without a store.
pub(crate) async fn flush_events(persist: Option<&Persist>, session: &mut Session) {
    let Some(persist) = persist else {
        return;
    };
    // Most turns have nothing to write: allocate only when there is, with
    // room for a few deltas so a typical turn does not regrow the vector.
    let Some(first) = session.poll_store_event() else {
        return;
    };
    let mut batch = Vec::with_capacity(8);
    batch.push(delta(session.client_id(), first));
    drain_session(session, &mut batch);
    let acks_only = batch.iter().all(|d| matches!(d, Delta::MessageAck { .. }));
    let ticket = persist.submit(batch);
    if !acks_only {
        persist.acknowledged(ticket).await;
    }
}

/// What a live session reported so far, for the batch of the message it is
/// publishing (its inbound QoS 2 id goes with the message's enqueues).
/// Empty (no allocation) without a store.
pub(crate) fn session_events(persist: Option<&Persist>, session: &mut Session) -> Vec<Delta> {
    let mut batch = Vec::new();
    if persist.is_some() {
        drain_session(session, &mut batch);
    }
    batch
}
