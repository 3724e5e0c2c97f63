//! A deliberately simple, independent model of the store semantics (one
//! struct per client), for comparing against the real backends.

use std::collections::BTreeMap;

use bytestring::ByteString;
use roost_codec::{PacketId, ReasonCode};
use roost_store::{
    DelayedRecord, Delta, InflightRecord, QueuedMessage, RetainedRecord, SessionRecord,
    SessionSnapshot, Snapshot, SnapshotMessage, SubscriptionRecord, WillRecord,
};

#[derive(Clone, Debug, Default)]
struct Client {
    record: Option<SessionRecord>,
    subs: BTreeMap<ByteString, SubscriptionRecord>,
    messages: BTreeMap<u64, QueuedMessage>,
    inflight: BTreeMap<u64, InflightRecord>,
    inbound: BTreeMap<PacketId, ReasonCode>,
}

/// The model store.
#[derive(Clone, Debug, Default)]
pub struct Model {
    clients: BTreeMap<ByteString, Client>,
    retained: BTreeMap<ByteString, RetainedRecord>,
    wills: BTreeMap<ByteString, WillRecord>,
    delayed: BTreeMap<u64, DelayedRecord>,
}

impl Model {
    fn client(&mut self, id: &ByteString) -> &mut Client {
        self.clients.entry(id.clone()).or_default()
    }

    /// Applies one delta.
    pub fn apply(&mut self, delta: &Delta) {
        match delta.clone() {
            Delta::SessionUpsert {
                client_id,
                record,
                subscriptions,
            } => {
                let c = self.client(&client_id);
                c.record = Some(record);
                c.subs = subscriptions.into_iter().collect();
            }
            Delta::SessionDelete { client_id } => {
                let c = self.client(&client_id);
                let kept_nothing = Client::default();
                *c = kept_nothing;
            }
            Delta::SubAdd {
                client_id,
                filter,
                subscription,
            } => {
                self.client(&client_id).subs.insert(filter, subscription);
            }
            Delta::SubDelete { client_id, filter } => {
                self.client(&client_id).subs.remove(&filter);
            }
            Delta::MessageEnqueue {
                client_id,
                seq,
                message,
            } => {
                let c = self.client(&client_id);
                c.inflight.remove(&seq);
                c.messages.insert(seq, message);
            }
            Delta::MessageAck { client_id, seq } => {
                let c = self.client(&client_id);
                c.messages.remove(&seq);
                c.inflight.remove(&seq);
            }
            Delta::OutboundStage {
                client_id,
                seq,
                packet_id,
                stage,
            } => {
                self.client(&client_id)
                    .inflight
                    .insert(seq, InflightRecord { packet_id, stage });
            }
            Delta::InboundQos2 {
                client_id,
                packet_id,
                reason_code,
            } => {
                self.client(&client_id)
                    .inbound
                    .insert(packet_id, reason_code);
            }
            Delta::InboundQos2Release {
                client_id,
                packet_id,
            } => {
                self.client(&client_id).inbound.remove(&packet_id);
            }
            Delta::RetainSet {
                topic,
                message,
                stored_at,
            } => {
                self.retained
                    .insert(topic, RetainedRecord { message, stored_at });
            }
            Delta::RetainDelete { topic } => {
                self.retained.remove(&topic);
            }
            Delta::WillSet { client_id, will } => {
                self.wills.insert(client_id, will);
            }
            Delta::WillDelete { client_id } => {
                self.wills.remove(&client_id);
            }
            Delta::DelayedPut { id, delayed } => {
                self.delayed.insert(id, delayed);
            }
            Delta::DelayedDelete { id } => {
                self.delayed.remove(&id);
            }
            other => panic!("model does not know {other:?}"),
        }
    }

    /// What a store holding the same deltas restores to.
    pub fn snapshot(&self) -> Snapshot {
        let mut sessions = Vec::new();
        let mut orphans = 0u64;
        for (id, c) in &self.clients {
            let Some(record) = &c.record else {
                orphans +=
                    (c.subs.len() + c.messages.len() + c.inflight.len() + c.inbound.len()) as u64;
                continue;
            };
            orphans += c
                .inflight
                .keys()
                .filter(|seq| !c.messages.contains_key(seq))
                .count() as u64;
            sessions.push(SessionSnapshot {
                client_id: id.clone(),
                record: record.clone(),
                subscriptions: c.subs.clone().into_iter().collect(),
                messages: c
                    .messages
                    .iter()
                    .map(|(seq, m)| SnapshotMessage {
                        seq: *seq,
                        message: m.clone(),
                        inflight: c.inflight.get(seq).copied(),
                    })
                    .collect(),
                inbound_qos2: c.inbound.clone().into_iter().collect(),
            });
        }
        Snapshot {
            sessions,
            retained: self.retained.clone().into_iter().collect(),
            wills: self.wills.clone().into_iter().collect(),
            delayed: self.delayed.clone().into_iter().collect(),
            orphans,
        }
    }
}
