//! The message rows of a session a cluster node claims again after serving
//! it while cut off from Redis (`availability_over_consistency`,
//! `cluster/rejoin.rs`). While cut off, the session's writes were not sent
//! (a session made then held no claim) or were refused (a janitor had
//! orphaned it: another token), so the rows in Redis are what they were
//! before the cut, or nothing. Its record, subscriptions and will are
//! written whole by the usual paths; this makes its queued and in-flight
//! messages and its inbound QoS 2 ids in Redis what the session holds now,
//! so a client that resumes on another node gets what was queued for it
//! meanwhile — and not what it acknowledged meanwhile.
//!
//! The rows are compared with the session's own state, loaded from Redis
//! just before: a stored message the session no longer holds is removed
//! (it was acknowledged, dropped or expired while cut off), one it holds
//! that Redis lacks is written (with a sequence number given now if it
//! arrived unstored), and a sent message's stage is written as it is now.
//! A QoS 2 message past PUBREC that Redis never saw cannot be written (the
//! session keeps its packet id, not its message): on another node its
//! PUBREL is not resent; counted in the log.
//!
//! Messages still on their way to the session are not removed: the ones
//! numbered after the load began and the ones waiting in the slot's outbox
//! ([`Arriving`]). One numbered before, written, and still between its
//! routing and the session when the load ends (a push delayed past a Redis
//! round trip) would lose its row, not its delivery.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};
use roost_session::{InboundQos2, OutboundStage, Session, SessionState};
use roost_store::{CommitTicket, Delta, InflightStage, QueuedMessage, SessionSnapshot};

use super::Persist;
use crate::slot::{SessionSlot, SlotStore};

/// A live session's message rows, on its connection's task (which holds
/// the session): loaded, compared, written; returns once written.
pub(crate) async fn write_live(persist: &Persist, slot: &SessionSlot, session: &mut Session) {
    if session.session_expiry_interval() == 0 {
        return;
    }
    let from = slot.inner.lock().store.next_seq;
    let Some(stored) = load(persist, &slot.client_id).await else {
        return;
    };
    let arriving = {
        let mut inner = slot.inner.lock();
        number_unstored(&mut inner.store, stored.as_ref(), |next| {
            session.number_unstored(next)
        });
        Arriving::to(&inner, from)
    };
    let batch = message_rows(
        session.state(),
        stored.as_ref(),
        &arriving,
        Instant::now(),
        SystemTime::now(),
    );
    written(&slot.client_id, persist.submit(batch)).await;
}

/// The session's rows in the shared store (`Some(None)`: none); `None`
/// when they cannot be read (Redis went again: the next return writes).
pub(crate) async fn load(
    persist: &Persist,
    client_id: &ByteString,
) -> Option<Option<SessionSnapshot>> {
    match persist.load_session(client_id).await {
        Ok((stored, _will)) => Some(stored),
        Err(e) => {
            tracing::warn!(%client_id, error = %e, "stored session not read; its messages are not written again");
            None
        }
    }
}

/// Waits until `ticket`'s batch is written (logs a failure).
pub(crate) async fn written(client_id: &ByteString, ticket: Option<CommitTicket>) {
    if let Some(ticket) = ticket
        && let Err(e) = ticket.await
    {
        tracing::warn!(%client_id, error = %e, "session rows not written after its claim again");
    }
}

/// Messages on their way to the session, whose rows stay: numbered from
/// `from` on (after the load began), or waiting in its outbox.
pub(crate) struct Arriving {
    from: u64,
    outbox: Vec<u64>,
}

impl Arriving {
    /// What is on its way to `slot`'s session now, with `from` the slot's
    /// next sequence number read before the load.
    pub(crate) fn to(inner: &crate::slot::SlotInner, from: u64) -> Self {
        Self {
            from,
            outbox: inner.outbox.store_seqs().collect(),
        }
    }

    fn covers(&self, seq: u64) -> bool {
        seq >= self.from || self.outbox.contains(&seq)
    }
}

/// A message the session holds, by store sequence number: queued, or sent
/// with a packet id and stage, and its delivery when it still has it.
struct Held<'a> {
    delivery: Option<&'a roost_session::Delivery>,
    sent: Option<(PacketId, InflightStage)>,
}

/// Gives the deliveries the session holds without a store sequence number
/// one each (`number` calls the session's `number_unstored` with the
/// counter), from the slot's sequence and past every stored one. Under the
/// slot's lock: a message routed to the session meanwhile takes its number
/// from the same sequence.
pub(crate) fn number_unstored(
    store: &mut SlotStore,
    stored: Option<&SessionSnapshot>,
    number: impl FnOnce(&mut dyn FnMut() -> u64),
) {
    let mut next = store
        .next_seq
        .max(stored.map_or(0, SessionSnapshot::next_seq));
    number(&mut || {
        next += 1;
        next - 1
    });
    store.next_seq = next;
}

/// The deltas that make `stored` (the session's rows in Redis; `None`:
/// no session there) what `state` holds now, its deliveries numbered
/// ([`number_unstored`]); the rows of `arriving` messages stay.
pub(crate) fn message_rows(
    state: &SessionState,
    stored: Option<&SessionSnapshot>,
    arriving: &Arriving,
    now: Instant,
    wall: SystemTime,
) -> Vec<Delta> {
    let client_id = state.client_id.clone();
    let held = held(state);
    let mut batch = Vec::new();
    let empty = Vec::new();
    let stored_messages = stored.map_or(&empty, |s| &s.messages);
    for m in stored_messages {
        if !held.contains_key(&m.seq) && !arriving.covers(m.seq) {
            batch.push(Delta::MessageAck {
                client_id: client_id.clone(),
                seq: m.seq,
            });
        }
    }
    let mut unwritable = 0usize;
    for (&seq, now_held) in &held {
        let before = stored_messages.iter().find(|m| m.seq == seq);
        let sent_before = before.and_then(|m| m.inflight.as_ref().map(|i| (i.packet_id, i.stage)));
        let enqueue = match (before, now_held.delivery) {
            (None, Some(_)) => true,
            // Stored as sent but queued again (a resend the session gave up):
            // a fresh enqueue clears its stage.
            (Some(_), Some(_)) => sent_before.is_some() && now_held.sent.is_none(),
            (None, None) => {
                unwritable += 1;
                continue;
            }
            (Some(_), None) => false,
        };
        if let (true, Some(delivery)) = (enqueue, now_held.delivery) {
            batch.push(Delta::MessageEnqueue {
                client_id: client_id.clone(),
                seq,
                message: QueuedMessage::from_delivery(delivery, now, wall),
            });
        }
        if let Some((packet_id, stage)) = now_held.sent
            && (enqueue || sent_before != Some((packet_id, stage)))
        {
            batch.push(Delta::OutboundStage {
                client_id: client_id.clone(),
                seq,
                packet_id,
                stage,
            });
        }
    }
    if unwritable > 0 {
        tracing::warn!(%client_id, unwritable, "QoS 2 messages past PUBREC while cut off from Redis not written (their PUBREL is not resent on another node)");
    }
    inbound_rows(&client_id, state, stored, &mut batch);
    batch
}

/// Every message `state` holds under a store sequence number.
fn held(state: &SessionState) -> BTreeMap<u64, Held<'_>> {
    let mut held = BTreeMap::new();
    for entry in state.inflight.iter() {
        let Some(seq) = entry.store_seq else { continue };
        let (delivery, stage) = match &entry.stage {
            OutboundStage::AwaitingPubAck(d) | OutboundStage::AwaitingPubRec(d) => {
                (Some(d), InflightStage::Sent)
            }
            OutboundStage::AwaitingPubComp => (None, InflightStage::AwaitingPubComp),
        };
        held.insert(
            seq,
            Held {
                delivery,
                sent: Some((entry.packet_id, stage)),
            },
        );
    }
    for delivery in state.queued() {
        if let Some(seq) = delivery.store_seq {
            held.insert(
                seq,
                Held {
                    delivery: Some(delivery),
                    sent: None,
                },
            );
        }
    }
    held
}

/// Inbound QoS 2 ids: the ones awaiting PUBREL now that Redis lacks, and
/// the release of the ones Redis holds that were released meanwhile.
fn inbound_rows(
    client_id: &ByteString,
    state: &SessionState,
    stored: Option<&SessionSnapshot>,
    batch: &mut Vec<Delta>,
) {
    let stored_ids: BTreeMap<PacketId, ReasonCode> = stored
        .map(|s| s.inbound_qos2.iter().copied().collect())
        .unwrap_or_default();
    let mut now_ids = BTreeMap::new();
    for (packet_id, stage) in state.inbound_qos2() {
        if let InboundQos2::AwaitingPubRel(reason_code) = stage {
            now_ids.insert(packet_id, reason_code);
        }
    }
    for (&packet_id, &reason_code) in &now_ids {
        if stored_ids.get(&packet_id) != Some(&reason_code) {
            batch.push(Delta::InboundQos2 {
                client_id: client_id.clone(),
                packet_id,
                reason_code,
            });
        }
    }
    for packet_id in stored_ids.keys() {
        if !now_ids.contains_key(packet_id) {
            batch.push(Delta::InboundQos2Release {
                client_id: client_id.clone(),
                packet_id: *packet_id,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use bytes::Bytes;
    use roost_codec::{PublishProperties, QoS};
    use roost_session::{Delivery, InflightEntry, Message};
    use roost_store::{InflightRecord, SnapshotMessage};

    use super::*;

    fn delivery(payload: &'static str, seq: Option<u64>) -> Delivery {
        let message = Message {
            topic: ByteString::from_static("t"),
            payload: Bytes::from_static(payload.as_bytes()),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: PublishProperties::default(),
            expires_at: None,
            publisher: None,
        };
        let mut d = Delivery::new(Arc::new(message), QoS::ExactlyOnce, false);
        d.store_seq = seq;
        d
    }

    fn stored_row(seq: u64, inflight: Option<(u16, InflightStage)>) -> SnapshotMessage {
        SnapshotMessage {
            seq,
            message: QueuedMessage::from_delivery(
                &delivery("old", Some(seq)),
                Instant::now(),
                SystemTime::now(),
            ),
            inflight: inflight.map(|(id, stage)| InflightRecord {
                packet_id: PacketId::new(id).unwrap(),
                stage,
            }),
        }
    }

    fn snapshot(messages: Vec<SnapshotMessage>, inbound: Vec<u16>) -> SessionSnapshot {
        SessionSnapshot {
            client_id: ByteString::from_static("c"),
            record: roost_store::SessionRecord {
                expiry_interval: 60,
                disconnected_at: None,
                owner: roost_store::SessionOwner::default(),
            },
            subscriptions: Vec::new(),
            messages,
            inbound_qos2: inbound
                .into_iter()
                .map(|id| (PacketId::new(id).unwrap(), ReasonCode::SUCCESS))
                .collect(),
        }
    }

    fn rows(
        store: &mut SlotStore,
        state: &mut SessionState,
        stored: Option<&SessionSnapshot>,
    ) -> Vec<Delta> {
        let arriving = Arriving {
            from: u64::MAX,
            outbox: Vec::new(),
        };
        number_unstored(store, stored, |next| state.number_unstored(next));
        message_rows(state, stored, &arriving, Instant::now(), SystemTime::now())
    }

    #[test]
    fn messages_acknowledged_while_cut_off_are_removed_and_new_ones_written_past_the_stored_seqs() {
        // Redis: seq 4 (sent), 5 (queued), inbound id 7. Now: 5 still
        // queued, a delivery unstored, 4 acknowledged, 7 released.
        let stored = snapshot(
            vec![
                stored_row(4, Some((1, InflightStage::Sent))),
                stored_row(5, None),
            ],
            vec![7],
        );
        let mut state = SessionState::new(ByteString::from_static("c"));
        state.restore_queued(delivery("five", Some(5)));
        state.restore_queued(delivery("new", None));
        let mut store = SlotStore {
            session: true,
            will: false,
            next_seq: 2,
        };
        let batch = rows(&mut store, &mut state, Some(&stored));
        assert_eq!(store.next_seq, 7, "numbered past the stored seqs");
        assert!(
            matches!(batch[0], Delta::MessageAck { seq: 4, .. }),
            "{batch:?}"
        );
        assert!(
            matches!(&batch[1], Delta::MessageEnqueue { seq: 6, message, .. } if &message.message.payload[..] == b"new"),
            "{batch:?}"
        );
        assert!(
            matches!(batch[2], Delta::InboundQos2Release { packet_id, .. } if packet_id.get() == 7),
            "{batch:?}"
        );
        assert_eq!(batch.len(), 3, "seq 5 is stored as it is: {batch:?}");
        assert_eq!(state.queued().last().unwrap().store_seq, Some(6));
    }

    #[test]
    fn rows_of_messages_on_their_way_to_the_session_stay() {
        let stored = snapshot(
            vec![
                stored_row(3, None),
                stored_row(8, None),
                stored_row(9, None),
            ],
            vec![],
        );
        let state = SessionState::new(ByteString::from_static("c"));
        let arriving = Arriving {
            from: 9,
            outbox: vec![8],
        };
        let batch = message_rows(
            &state,
            Some(&stored),
            &arriving,
            Instant::now(),
            SystemTime::now(),
        );
        assert_eq!(batch.len(), 1, "only seq 3 goes: {batch:?}");
        assert!(
            matches!(batch[0], Delta::MessageAck { seq: 3, .. }),
            "{batch:?}"
        );
    }

    #[test]
    fn a_session_redis_never_saw_has_its_inflight_queued_and_inbound_state_written() {
        let mut state = SessionState::new(ByteString::from_static("c"));
        state.inflight.push_restored(InflightEntry {
            packet_id: PacketId::new(3).unwrap(),
            stage: OutboundStage::AwaitingPubRec(delivery("sent", None)),
            store_seq: None,
        });
        state.restore_queued(delivery("queued", None));
        state.restore_inbound_qos2(
            PacketId::new(9).unwrap(),
            InboundQos2::AwaitingPubRel(ReasonCode::SUCCESS),
        );
        let mut store = SlotStore::default();
        let batch = rows(&mut store, &mut state, None);
        assert!(
            matches!(batch[0], Delta::MessageEnqueue { seq: 0, .. }),
            "{batch:?}"
        );
        assert!(
            matches!(batch[1], Delta::OutboundStage { seq: 0, packet_id, stage: InflightStage::Sent, .. } if packet_id.get() == 3),
            "{batch:?}"
        );
        assert!(
            matches!(batch[2], Delta::MessageEnqueue { seq: 1, .. }),
            "{batch:?}"
        );
        assert!(
            matches!(batch[3], Delta::InboundQos2 { packet_id, .. } if packet_id.get() == 9),
            "{batch:?}"
        );
        assert_eq!(batch.len(), 4);
        assert_eq!(store.next_seq, 2);
    }

    #[test]
    fn a_stage_that_moved_on_while_cut_off_is_written_and_a_qos0_delivery_stays_unstored() {
        let stored = snapshot(vec![stored_row(0, Some((5, InflightStage::Sent)))], vec![]);
        let mut state = SessionState::new(ByteString::from_static("c"));
        state.inflight.push_restored(InflightEntry {
            packet_id: PacketId::new(5).unwrap(),
            stage: OutboundStage::AwaitingPubComp,
            store_seq: Some(0),
        });
        let mut qos0 = delivery("qos0", None);
        qos0.qos = QoS::AtMostOnce;
        state.restore_queued(qos0);
        let mut store = SlotStore::default();
        let batch = rows(&mut store, &mut state, Some(&stored));
        assert_eq!(batch.len(), 1, "{batch:?}");
        assert!(
            matches!(
                batch[0],
                Delta::OutboundStage {
                    seq: 0,
                    stage: InflightStage::AwaitingPubComp,
                    ..
                }
            ),
            "{batch:?}"
        );
        assert_eq!(state.queued().next().unwrap().store_seq, None);
    }
}
