//! The stored state as ordered maps: applies deltas (the memory backend) and
//! turns rows read from a backend into a [`Snapshot`] (every backend).

use std::collections::BTreeMap;

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};

use crate::delta::Delta;
use crate::record::{
    DelayedRecord, InflightRecord, QueuedMessage, RetainedRecord, SessionRecord,
    SubscriptionRecord, WillRecord,
};
use crate::snapshot::{SessionSnapshot, Snapshot, SnapshotMessage};

/// Every stored row, keyed the way the disk backend keys them.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreState {
    pub(crate) sessions: BTreeMap<ByteString, SessionRecord>,
    pub(crate) subscriptions: BTreeMap<(ByteString, ByteString), SubscriptionRecord>,
    pub(crate) messages: BTreeMap<(ByteString, u64), QueuedMessage>,
    pub(crate) inflight: BTreeMap<(ByteString, u64), InflightRecord>,
    pub(crate) inbound: BTreeMap<(ByteString, PacketId), ReasonCode>,
    pub(crate) retained: BTreeMap<ByteString, RetainedRecord>,
    pub(crate) wills: BTreeMap<ByteString, WillRecord>,
    pub(crate) delayed: BTreeMap<u64, DelayedRecord>,
}

/// Removes every key of `map` whose first part is `client_id`.
fn remove_client<K: Ord + Clone + MinKey, V>(
    map: &mut BTreeMap<(ByteString, K), V>,
    client_id: &ByteString,
) {
    let doomed: Vec<(ByteString, K)> = map
        .range((client_id.clone(), min_key::<K>())..)
        .map(|(k, _)| k)
        .take_while(|(c, _)| c == client_id)
        .cloned()
        .collect();
    for key in doomed {
        map.remove(&key);
    }
}

/// The smallest second key part, to start a range at a client.
fn min_key<K: MinKey>() -> K {
    K::min_key()
}

/// Types with a least value, for range starts.
pub(crate) trait MinKey {
    /// The least value.
    fn min_key() -> Self;
}

impl MinKey for u64 {
    fn min_key() -> Self {
        0
    }
}

impl MinKey for PacketId {
    fn min_key() -> Self {
        PacketId::MIN
    }
}

impl MinKey for ByteString {
    fn min_key() -> Self {
        ByteString::new()
    }
}

impl StoreState {
    /// Applies one delta (semantics documented on [`Delta`]).
    pub(crate) fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::SessionUpsert {
                client_id,
                record,
                subscriptions,
            } => {
                self.sessions.insert(client_id.clone(), record.clone());
                remove_client(&mut self.subscriptions, client_id);
                for (filter, sub) in subscriptions {
                    self.subscriptions
                        .insert((client_id.clone(), filter.clone()), *sub);
                }
            }
            Delta::SessionDelete { client_id } => {
                self.sessions.remove(client_id);
                remove_client(&mut self.subscriptions, client_id);
                remove_client(&mut self.messages, client_id);
                remove_client(&mut self.inflight, client_id);
                remove_client(&mut self.inbound, client_id);
            }
            Delta::SubAdd {
                client_id,
                filter,
                subscription,
            } => {
                self.subscriptions
                    .insert((client_id.clone(), filter.clone()), *subscription);
            }
            Delta::SubDelete { client_id, filter } => {
                self.subscriptions
                    .remove(&(client_id.clone(), filter.clone()));
            }
            Delta::MessageEnqueue {
                client_id,
                seq,
                message,
            } => {
                let key = (client_id.clone(), *seq);
                self.inflight.remove(&key);
                self.messages.insert(key, message.clone());
            }
            Delta::MessageAck { client_id, seq } => {
                let key = (client_id.clone(), *seq);
                self.messages.remove(&key);
                self.inflight.remove(&key);
            }
            Delta::OutboundStage {
                client_id,
                seq,
                packet_id,
                stage,
            } => {
                self.inflight.insert(
                    (client_id.clone(), *seq),
                    InflightRecord {
                        packet_id: *packet_id,
                        stage: *stage,
                    },
                );
            }
            Delta::InboundQos2 {
                client_id,
                packet_id,
                reason_code,
            } => {
                self.inbound
                    .insert((client_id.clone(), *packet_id), *reason_code);
            }
            Delta::InboundQos2Release {
                client_id,
                packet_id,
            } => {
                self.inbound.remove(&(client_id.clone(), *packet_id));
            }
            Delta::RetainSet {
                topic,
                message,
                stored_at,
            } => {
                // Kept as stored (to the millisecond), as every backend does.
                let stored_at = crate::time::whole_millis(*stored_at);
                self.retained.insert(
                    topic.clone(),
                    RetainedRecord {
                        message: message.clone(),
                        stored_at,
                    },
                );
            }
            Delta::RetainDelete { topic } => {
                self.retained.remove(topic);
            }
            Delta::WillSet { client_id, will } => {
                self.wills.insert(client_id.clone(), will.clone());
            }
            Delta::WillDelete { client_id } => {
                self.wills.remove(client_id);
            }
            Delta::DelayedPut { id, delayed } => {
                self.delayed.insert(*id, delayed.clone());
            }
            Delta::DelayedDelete { id } => {
                self.delayed.remove(id);
            }
        }
    }

    /// Groups the rows per session. Rows of clients without a session
    /// record, and inflight states without their message, are counted as
    /// orphans and left out.
    pub(crate) fn into_snapshot(self) -> Snapshot {
        let StoreState {
            sessions,
            subscriptions,
            messages,
            mut inflight,
            inbound,
            retained,
            wills,
            delayed,
        } = self;
        let mut out: BTreeMap<ByteString, SessionSnapshot> = sessions
            .into_iter()
            .map(|(client_id, record)| {
                let snap = SessionSnapshot {
                    client_id: client_id.clone(),
                    record,
                    subscriptions: Vec::new(),
                    messages: Vec::new(),
                    inbound_qos2: Vec::new(),
                };
                (client_id, snap)
            })
            .collect();
        let mut orphans = 0u64;
        for ((client_id, filter), sub) in subscriptions {
            match out.get_mut(&client_id) {
                Some(s) => s.subscriptions.push((filter, sub)),
                None => orphans += 1,
            }
        }
        for ((client_id, seq), message) in messages {
            let state = inflight.remove(&(client_id.clone(), seq));
            match out.get_mut(&client_id) {
                Some(s) => s.messages.push(SnapshotMessage {
                    seq,
                    message,
                    inflight: state,
                }),
                None => orphans += 1 + u64::from(state.is_some()),
            }
        }
        // Whatever inflight state is left has no message.
        orphans += inflight.len() as u64;
        for ((client_id, packet_id), reason) in inbound {
            match out.get_mut(&client_id) {
                Some(s) => s.inbound_qos2.push((packet_id, reason)),
                None => orphans += 1,
            }
        }
        Snapshot {
            sessions: out.into_values().collect(),
            retained: retained.into_iter().collect(),
            wills: wills.into_iter().collect(),
            delayed: delayed.into_iter().collect(),
            orphans,
        }
    }
}
