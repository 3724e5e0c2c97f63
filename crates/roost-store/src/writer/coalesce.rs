//! Drops the deltas of a group that a later delta of the same group makes
//! pointless, before the group is applied (one atomic batch, so only its
//! final state counts).
//!
//! A QoS 1 message to an online persistent session costs three deltas:
//! `MessageEnqueue(c, s)`, `OutboundStage(c, s)`, `MessageAck(c, s)`. When
//! the writer lags, all three often land in one group; then none of them
//! needs writing. Two rules, per message key `(client, seq)`:
//!
//! - A put overwritten later in the group is dropped: an `OutboundStage`
//!   followed by another `OutboundStage` or a `MessageAck` of the key, a
//!   `MessageEnqueue` followed by a `MessageAck` (or another enqueue) of
//!   the key. Always safe: the later delta sets or deletes the same row.
//! - A `MessageAck` whose key was *fresh* at its `MessageEnqueue` (no rows
//!   then) is dropped too, with everything of the key since that enqueue:
//!   the key ends the group as it began it, without rows. Fresh means: the
//!   key's last earlier delta in the group was a `MessageAck`, or a
//!   `SessionDelete` of the client came after it, or the group did not
//!   touch the key before. That last case rests on the broker's promise
//!   (roost-broker `SlotStore::next_seq`) that it never enqueues a seq
//!   while a row of that seq may still be stored: seqs grow for a slot's
//!   life and restart past the highest stored one after a restore.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bytestring::ByteString;

use crate::delta::Delta;

/// Live deltas of one message key, by index into the group.
#[derive(Default)]
struct Key {
    /// The key had no rows when the group's first live delta of it ran.
    fresh: bool,
    /// The live `MessageEnqueue`, if any.
    enqueue: Option<usize>,
    /// The live `OutboundStage`, if any.
    stage: Option<usize>,
}

/// Removes from `deltas` what a later delta of the same group undoes or
/// overwrites, keeping the order of the rest. Applying the result gives
/// the same store state as applying the original (given the broker's
/// seq promise above). Returns how many deltas were dropped.
pub(crate) fn coalesce(deltas: &mut Vec<Delta>) -> usize {
    // Sized for the group up front (a group is thousands of deltas: growing
    // from empty rehashed several times), with a fast non-keyed hash: the
    // keys come from the broker, not from a peer that could pick collisions.
    let mut keys: HashMap<(ByteString, u64), Key, rustc_hash::FxBuildHasher> =
        HashMap::with_capacity_and_hasher(deltas.len(), rustc_hash::FxBuildHasher);
    let mut drop = vec![false; deltas.len()];
    let mut dropped = 0;
    let mut kill = |i: Option<usize>, drop: &mut Vec<bool>| {
        if let Some(i) = i {
            drop[i] = true;
            dropped += 1;
        }
    };
    for (i, delta) in deltas.iter().enumerate() {
        match delta {
            Delta::MessageEnqueue { client_id, seq, .. } => {
                match keys.entry((client_id.clone(), *seq)) {
                    Entry::Vacant(v) => {
                        v.insert(Key {
                            fresh: true,
                            enqueue: Some(i),
                            stage: None,
                        });
                    }
                    Entry::Occupied(mut o) => {
                        let key = o.get_mut();
                        kill(key.enqueue.replace(i), &mut drop);
                    }
                }
            }
            Delta::OutboundStage { client_id, seq, .. } => {
                let key = keys.entry((client_id.clone(), *seq)).or_default();
                kill(key.stage.replace(i), &mut drop);
            }
            Delta::MessageAck { client_id, seq } => {
                // After the ack the key has no rows: forgetting it makes a
                // later enqueue of it fresh, which it is.
                if let Some(key) = keys.remove(&(client_id.clone(), *seq)) {
                    kill(key.enqueue, &mut drop);
                    kill(key.stage, &mut drop);
                    if key.fresh {
                        kill(Some(i), &mut drop);
                    }
                }
            }
            Delta::SessionDelete { client_id } => {
                // Every row of the client is gone: its keys are fresh again.
                keys.retain(|(c, _), _| c != client_id);
            }
            _ => {}
        }
    }
    if dropped > 0 {
        let mut flags = drop.into_iter();
        deltas.retain(|_| !flags.next().unwrap_or(false));
    }
    dropped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{HashMap, HashSet};

    use bytes::Bytes;
    use proptest::prelude::*;
    use roost_codec::{PacketId, QoS};

    use super::*;
    use crate::memory::MemoryStore;
    use crate::record::{
        InflightStage, QueuedMessage, SessionRecord, StoredMessage, StoredProperties,
    };
    use crate::store::Store;

    fn msg(n: u64) -> QueuedMessage {
        QueuedMessage {
            message: StoredMessage {
                topic: "t".into(),
                payload: Bytes::from(n.to_be_bytes().to_vec()),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: StoredProperties::default(),
                expires_at: None,
                publisher: None,
            },
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
        }
    }

    fn enqueue(c: &str, seq: u64) -> Delta {
        Delta::MessageEnqueue {
            client_id: c.into(),
            seq,
            message: msg(seq),
        }
    }

    fn stage(c: &str, seq: u64, pid: u16, stage: InflightStage) -> Delta {
        Delta::OutboundStage {
            client_id: c.into(),
            seq,
            packet_id: PacketId::new(pid).unwrap(),
            stage,
        }
    }

    fn ack(c: &str, seq: u64) -> Delta {
        Delta::MessageAck {
            client_id: c.into(),
            seq,
        }
    }

    fn session(c: &str) -> Delta {
        Delta::SessionUpsert {
            client_id: c.into(),
            record: SessionRecord {
                expiry_interval: 60,
                disconnected_at: None,
                owner: crate::SessionOwner::Anonymous,
            },
            subscriptions: Vec::new(),
        }
    }

    fn coalesced(mut group: Vec<Delta>) -> (Vec<Delta>, usize) {
        let n = coalesce(&mut group);
        (group, n)
    }

    #[test]
    fn a_message_enqueued_sent_and_acked_in_one_group_writes_nothing() {
        let group = vec![
            session("a"),
            enqueue("a", 0),
            stage("a", 0, 1, InflightStage::Sent),
            ack("a", 0),
        ];
        assert_eq!(coalesced(group), (vec![session("a")], 3));
    }

    #[test]
    fn only_the_last_stage_of_a_message_is_written() {
        let group = vec![
            stage("a", 3, 1, InflightStage::Sent),
            stage("a", 3, 1, InflightStage::AwaitingPubComp),
        ];
        assert_eq!(
            coalesced(group),
            (vec![stage("a", 3, 1, InflightStage::AwaitingPubComp)], 1)
        );
    }

    #[test]
    fn the_ack_of_a_message_stored_before_the_group_is_kept() {
        // seq 3 was enqueued by an earlier group: its rows must be deleted.
        let group = vec![stage("a", 3, 1, InflightStage::Sent), ack("a", 3)];
        assert_eq!(coalesced(group), (vec![ack("a", 3)], 1));
    }

    #[test]
    fn the_ack_is_kept_when_the_key_had_a_stage_before_its_enqueue() {
        // Not something the broker does; the inflight row must still go.
        let group = vec![
            stage("a", 5, 1, InflightStage::Sent),
            enqueue("a", 5),
            ack("a", 5),
        ];
        assert_eq!(coalesced(group), (vec![ack("a", 5)], 2));
    }

    #[test]
    fn other_clients_and_seqs_are_untouched() {
        let group = vec![
            enqueue("a", 0),
            enqueue("b", 0),
            ack("a", 1),
            stage("b", 0, 1, InflightStage::Sent),
        ];
        assert_eq!(coalesced(group.clone()), (group, 0));
    }

    #[test]
    fn a_session_delete_makes_a_reused_seq_fresh() {
        let group = vec![
            stage("a", 0, 1, InflightStage::Sent),
            Delta::SessionDelete {
                client_id: "a".into(),
            },
            enqueue("a", 0),
            ack("a", 0),
        ];
        let (out, n) = coalesced(group);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            vec![
                stage("a", 0, 1, InflightStage::Sent),
                Delta::SessionDelete {
                    client_id: "a".into()
                },
            ]
        );
    }

    /// One step of a client's traffic, seqs drawn relative to its next seq.
    #[derive(Clone, Debug)]
    enum Op {
        Enqueue,
        Stage(u64, bool),
        Ack(u64),
        Delete,
        Upsert,
    }

    fn op() -> impl Strategy<Value = (usize, Op)> {
        let op = prop_oneof![
            3 => Just(Op::Enqueue),
            3 => (0u64..12, any::<bool>()).prop_map(|(s, p)| Op::Stage(s, p)),
            3 => (0u64..12).prop_map(Op::Ack),
            1 => Just(Op::Delete),
            1 => Just(Op::Upsert),
        ];
        (0usize..3, op)
    }

    /// Builds a stored state (`before`) and a group, keeping the broker's
    /// promise: an enqueued seq has no rows. Seqs go up per client and may
    /// restart at 0 after a session delete (a new slot), as in the broker.
    fn build(prefill: &[(usize, Op)], group: &[(usize, Op)]) -> (Vec<Delta>, Vec<Delta>) {
        const CLIENTS: [&str; 3] = ["a", "b", "c"];
        let mut next: HashMap<usize, u64> = HashMap::new();
        let emit = |ops: &[(usize, Op)], next: &mut HashMap<usize, u64>| {
            let mut out = Vec::new();
            for (c, op) in ops {
                let client = CLIENTS[*c];
                let n = next.entry(*c).or_insert(0);
                out.push(match op {
                    Op::Enqueue => {
                        *n += 1;
                        enqueue(client, *n - 1)
                    }
                    Op::Stage(s, pubcomp) => {
                        let st = if *pubcomp {
                            InflightStage::AwaitingPubComp
                        } else {
                            InflightStage::Sent
                        };
                        // Only what was enqueued is sent (else a far seq,
                        // never enqueued, so no promise is broken).
                        let seq = if *n > 0 { s % *n } else { 1_000 + s };
                        stage(client, seq, 7, st)
                    }
                    // Acks may also name a seq never enqueued (or the next).
                    Op::Ack(s) => ack(client, s % (*n + 2)),
                    Op::Delete => {
                        *n = 0;
                        Delta::SessionDelete {
                            client_id: client.into(),
                        }
                    }
                    Op::Upsert => session(client),
                });
            }
            out
        };
        let before = emit(prefill, &mut next);
        let group = emit(group, &mut next);
        (before, group)
    }

    /// The broker's promise: no enqueue finds a row of its seq.
    fn keeps_promise(before: &[Delta], group: &[Delta]) -> bool {
        let mut rows: HashSet<(ByteString, u64)> = HashSet::new();
        for d in before.iter().chain(group) {
            match d {
                Delta::MessageEnqueue { client_id, seq, .. } => {
                    let fresh = rows.insert((client_id.clone(), *seq));
                    if !fresh {
                        return false;
                    }
                }
                Delta::OutboundStage { client_id, seq, .. } => {
                    rows.insert((client_id.clone(), *seq));
                }
                Delta::MessageAck { client_id, seq } => {
                    rows.remove(&(client_id.clone(), *seq));
                }
                Delta::SessionDelete { client_id } => rows.retain(|(c, _)| c != client_id),
                _ => {}
            }
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn a_coalesced_group_leaves_the_store_as_the_original_does(
            prefill in proptest::collection::vec(op(), 0..30),
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let (before, group) = build(&prefill, &ops);
            prop_assert!(keeps_promise(&before, &group));
            let original = MemoryStore::new();
            let reduced = MemoryStore::new();
            original.apply(&before).unwrap();
            reduced.apply(&before).unwrap();
            let mut smaller = group.clone();
            let n = coalesce(&mut smaller);
            prop_assert_eq!(smaller.len() + n, group.len());
            original.apply(&group).unwrap();
            reduced.apply(&smaller).unwrap();
            prop_assert_eq!(original.restore().unwrap(), reduced.restore().unwrap());
        }
    }
}
