//! Turns a batch of deltas into one fjall write batch. Deletes of a whole
//! client range must also catch rows written earlier in the same batch, so
//! the batch is first built as an overlay (last write per key wins), then
//! committed at once.
//!
//! Rows per message: a message's enqueue, its `OutboundStage` and its ack
//! would be a `messages` put, an `inflight` put and two deletes. When the
//! stage comes in the same batch as the enqueue (the writer groups what
//! arrived while it was busy, and a subscriber's PUBLISH follows its
//! enqueue closely), it is folded into the `messages` row: the value is the
//! `QueuedMessage` followed by the `InflightRecord`. An ack deletes the
//! `inflight` row only when one is stored ([`InflightKeys`]) or pending. So
//! a message sent at once costs one put and one delete.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;

use fjall::{Database, Slice};

use crate::codec::encode;
use crate::delta::Delta;
use crate::disk::fjall_error;
use crate::disk::inflight::InflightKeys;
use crate::disk::keys;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;
use crate::record::{InflightRecord, RetainedRecordRef};

/// Pending writes. Keys and values
/// are fjall [`Slice`]s from the start: the message rows (the hot path) are
/// built in one reused buffer and copied once, into the slice the memtable
/// keeps, instead of into a vector first and then into a slice.
pub(crate) struct Overlay<'a> {
    ks: &'a Keyspaces,
    path: &'a Path,
    /// The standalone inflight rows stored before this batch.
    stored_inflight: &'a InflightKeys,
    writes: BTreeMap<(Ks, Slice), Write>,
    /// `messages` rows this batch puts for an enqueue, with the length of
    /// their `QueuedMessage` part (a folded stage follows it).
    enqueued: HashMap<Slice, usize>,
    /// Where keys and values are built before they are copied into a slice.
    scratch: Vec<u8>,
}

/// One pending write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    Put(Slice),
    Delete,
    /// A weak tombstone (fjall `remove_weak`): deletes the one version
    /// below it, and a flush or compaction that meets both drops both, so a
    /// message acknowledged before its memtable is flushed costs no disk
    /// table write at all. Only for keys written once per life: `messages`
    /// rows, which the broker never enqueues again while one is stored
    /// (roost-broker `SlotStore::next_seq`, the promise `coalesce.rs` relies
    /// on too). Inflight rows are overwritten (QoS 2: sent, then PUBREC) and
    /// get a regular delete.
    DeleteWeak,
}

/// What a committed batch did to the `inflight` keyspace, for
/// [`InflightKeys::update`]: each key written, `true` = put.
pub(crate) type InflightChanges = Vec<(Vec<u8>, bool)>;

impl<'a> Overlay<'a> {
    pub(crate) fn new(
        ks: &'a Keyspaces,
        path: &'a Path,
        stored_inflight: &'a InflightKeys,
    ) -> Self {
        Self {
            ks,
            path,
            stored_inflight,
            writes: BTreeMap::new(),
            enqueued: HashMap::new(),
            scratch: Vec::with_capacity(1024),
        }
    }

    /// The key of message `seq` of `client_id`, built in the scratch buffer.
    fn message_key(&mut self, client_id: &str, seq: u64) -> Result<Slice, StoreError> {
        self.scratch.clear();
        keys::extend_client(&mut self.scratch, client_id)?;
        self.scratch.extend_from_slice(&seq.to_be_bytes());
        Ok(Slice::from(&self.scratch[..]))
    }

    /// `value` encoded in the scratch buffer, appended to `prefix`.
    fn encoded<T: serde::Serialize>(
        &mut self,
        prefix: &[u8],
        value: &T,
    ) -> Result<Slice, StoreError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(prefix);
        let buf = postcard::to_extend(value, buf)
            .map_err(|e| StoreError::Invalid(format!("encoding a record: {e}")))?;
        let slice = Slice::from(&buf[..]);
        self.scratch = buf;
        Ok(slice)
    }

    /// Removes the standalone inflight row of `key`: a delete when one is
    /// stored, else only the pending put (if any) is dropped, so no
    /// tombstone is written for a row that never was.
    fn del_inflight(&mut self, key: Slice) -> Result<(), StoreError> {
        if self.stored_inflight.contains(&key) {
            self.del(Ks::Inflight, key)
        } else {
            self.writes.remove(&(Ks::Inflight, key));
            Ok(())
        }
    }

    /// Sets the inflight state of the message `key`: folded into its
    /// `messages` row when this batch enqueued it, else a standalone row.
    fn stage(&mut self, key: Slice, record: &InflightRecord) -> Result<(), StoreError> {
        if let Some(&body) = self.enqueued.get(&key)
            && let Some(Write::Put(row)) = self.writes.get(&(Ks::Messages, key.clone()))
            && let Some(message) = row.get(..body)
        {
            let message = message.to_vec();
            let folded = self.encoded(&message, record)?;
            // The enqueue already dropped any standalone row of the key.
            return self.put(Ks::Messages, key, folded);
        }
        let value = self.encoded(&[], record)?;
        self.put(Ks::Inflight, key, value)
    }

    fn put(
        &mut self,
        ks: Ks,
        key: impl Into<Slice>,
        value: impl Into<Slice>,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.into(), value.into());
        keys::check_len(&key)?;
        if u32::try_from(value.len()).is_err() {
            return Err(StoreError::Invalid(format!(
                "record of {} bytes (at most 4 GiB)",
                value.len()
            )));
        }
        self.writes.insert((ks, key), Write::Put(value));
        Ok(())
    }

    fn del(&mut self, ks: Ks, key: impl Into<Slice>) -> Result<(), StoreError> {
        let key = key.into();
        keys::check_len(&key)?;
        self.writes.insert((ks, key), Write::Delete);
        Ok(())
    }

    /// Deletes a message row (see [`Write::DeleteWeak`]).
    fn del_message(&mut self, key: Slice) -> Result<(), StoreError> {
        keys::check_len(&key)?;
        self.writes.insert((Ks::Messages, key), Write::DeleteWeak);
        Ok(())
    }

    /// Deletes every key starting with `prefix`, stored or pending.
    fn del_prefix(&mut self, ks: Ks, prefix: &[u8]) -> Result<(), StoreError> {
        for guard in self.ks.get(ks).prefix(prefix) {
            let key = guard
                .key()
                .map_err(|e| fjall_error(e, self.path, "scanning a client's rows"))?;
            self.writes.insert((ks, key), Write::Delete);
        }
        let start = (ks, Slice::from(prefix));
        let pending: Vec<(Ks, Slice)> = self
            .writes
            .range((Bound::Included(start), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|(k, key)| *k == ks && key.starts_with(prefix))
            .cloned()
            .collect();
        for k in pending {
            self.writes.insert(k, Write::Delete);
        }
        if ks == Ks::Messages {
            self.enqueued.retain(|key, _| !key.starts_with(prefix));
        }
        Ok(())
    }

    /// Adds one delta.
    pub(crate) fn add(&mut self, delta: &Delta) -> Result<(), StoreError> {
        match delta {
            Delta::SessionUpsert {
                client_id,
                record,
                subscriptions,
            } => {
                let prefix = keys::client(client_id)?;
                self.put(Ks::Sessions, prefix.clone(), encode(record)?)?;
                self.del_prefix(Ks::Subscriptions, &prefix)?;
                for (filter, sub) in subscriptions {
                    let key = keys::client_with(client_id, filter.as_bytes())?;
                    self.put(Ks::Subscriptions, key, encode(sub)?)?;
                }
            }
            Delta::SessionDelete { client_id } => {
                let prefix = keys::client(client_id)?;
                self.del(Ks::Sessions, prefix.clone())?;
                for ks in [Ks::Subscriptions, Ks::Messages, Ks::Inflight, Ks::Inbound] {
                    self.del_prefix(ks, &prefix)?;
                }
            }
            Delta::SubAdd {
                client_id,
                filter,
                subscription,
            } => {
                let key = keys::client_with(client_id, filter.as_bytes())?;
                self.put(Ks::Subscriptions, key, encode(subscription)?)?;
            }
            Delta::SubDelete { client_id, filter } => {
                self.del(
                    Ks::Subscriptions,
                    keys::client_with(client_id, filter.as_bytes())?,
                )?;
            }
            Delta::MessageEnqueue {
                client_id,
                seq,
                message,
            } => {
                let key = self.message_key(client_id, *seq)?;
                let row = self.encoded(&[], message)?;
                self.enqueued.insert(key.clone(), row.len());
                self.put(Ks::Messages, key.clone(), row)?;
                // A new message is not in flight (`Delta::MessageEnqueue`).
                self.del_inflight(key)?;
            }
            Delta::MessageAck { client_id, seq } => {
                let key = self.message_key(client_id, *seq)?;
                self.enqueued.remove(&key);
                self.del_message(key.clone())?;
                self.del_inflight(key)?;
            }
            Delta::OutboundStage {
                client_id,
                seq,
                packet_id,
                stage,
            } => {
                let key = self.message_key(client_id, *seq)?;
                let record = InflightRecord {
                    packet_id: *packet_id,
                    stage: *stage,
                };
                self.stage(key, &record)?;
            }
            Delta::InboundQos2 {
                client_id,
                packet_id,
                reason_code,
            } => {
                let key = keys::client_with(client_id, &packet_id.get().to_be_bytes())?;
                self.put(Ks::Inbound, key, vec![reason_code.0])?;
            }
            Delta::InboundQos2Release {
                client_id,
                packet_id,
            } => {
                let key = keys::client_with(client_id, &packet_id.get().to_be_bytes())?;
                self.del(Ks::Inbound, key)?;
            }
            Delta::RetainSet {
                topic,
                message,
                stored_at,
            } => {
                let record = RetainedRecordRef {
                    message,
                    stored_at: *stored_at,
                };
                self.put(Ks::Retained, keys::topic(topic)?, encode(&record)?)?;
            }
            Delta::RetainDelete { topic } => {
                self.del(Ks::Retained, keys::topic(topic)?)?;
            }
            Delta::WillSet { client_id, will } => {
                self.put(Ks::Wills, keys::client(client_id)?, encode(will)?)?;
            }
            Delta::WillDelete { client_id } => {
                self.del(Ks::Wills, keys::client(client_id)?)?;
            }
            Delta::DelayedPut { id, delayed } => {
                self.put(Ks::Delayed, id.to_be_bytes().to_vec(), encode(delayed)?)?;
            }
            Delta::DelayedDelete { id } => {
                self.del(Ks::Delayed, id.to_be_bytes().to_vec())?;
            }
        }
        Ok(())
    }

    /// Writes everything as one atomic fjall batch (flushed to the OS, not
    /// fsynced). Returns what it did to the `inflight` keyspace.
    pub(crate) fn commit(self, db: &Database) -> Result<InflightChanges, StoreError> {
        let mut inflight = Vec::new();
        if self.writes.is_empty() {
            return Ok(inflight);
        }
        let mut batch = db.batch();
        for ((ks, key), value) in self.writes {
            if ks == Ks::Inflight {
                inflight.push((key.to_vec(), matches!(value, Write::Put(_))));
            }
            let keyspace = self.ks.get(ks);
            match value {
                Write::Put(v) => batch.insert(keyspace, key, v),
                Write::Delete => batch.remove(keyspace, key),
                Write::DeleteWeak => batch.remove_weak(keyspace, key),
            }
        }
        batch
            .commit()
            .map_err(|e| fjall_error(e, self.path, "committing a batch"))?;
        Ok(inflight)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use bytes::Bytes;
    use roost_codec::{PacketId, QoS};

    use super::*;
    use crate::disk::DiskStore;
    use crate::record::{InflightStage, QueuedMessage, StoredMessage, StoredProperties};
    use crate::store::Store;

    fn enqueue(seq: u64) -> Delta {
        Delta::MessageEnqueue {
            client_id: "c".into(),
            seq,
            message: QueuedMessage {
                message: StoredMessage {
                    topic: "t".into(),
                    payload: Bytes::from_static(b"payload"),
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    properties: StoredProperties::default(),
                    expires_at: None,
                    publisher: None,
                },
                qos: QoS::AtLeastOnce,
                retain: false,
                subscription_ids: Vec::new(),
            },
        }
    }

    fn stage(seq: u64, stage: InflightStage) -> Delta {
        Delta::OutboundStage {
            client_id: "c".into(),
            seq,
            packet_id: PacketId::new(7).unwrap(),
            stage,
        }
    }

    fn ack(seq: u64) -> Delta {
        Delta::MessageAck {
            client_id: "c".into(),
            seq,
        }
    }

    /// The rows one batch would write: (keyspace, is a put).
    fn rows(store: &DiskStore, batch: &[Delta]) -> Vec<(Ks, bool)> {
        let inflight = store.apply_lock.lock().unwrap();
        let mut overlay = Overlay::new(&store.keyspaces, &store.path, &inflight);
        for d in batch {
            overlay.add(d).unwrap();
        }
        overlay
            .writes
            .iter()
            .map(|((ks, _), v)| (*ks, matches!(v, Write::Put(_))))
            .collect()
    }

    #[test]
    fn a_message_sent_in_its_enqueue_batch_is_one_put_and_its_ack_one_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        store
            .apply(&[Delta::SessionUpsert {
                client_id: "c".into(),
                record: crate::SessionRecord {
                    expiry_interval: 60,
                    disconnected_at: None,
                    owner: crate::SessionOwner::Anonymous,
                },
                subscriptions: Vec::new(),
            }])
            .unwrap();
        let sent = [enqueue(1), stage(1, InflightStage::Sent)];
        assert_eq!(rows(&store, &sent), vec![(Ks::Messages, true)]);
        store.apply(&sent).unwrap();
        assert_eq!(store.apply_lock.lock().unwrap().len(), 0);
        // The folded stage is restored with its message.
        let restored = store.restore().unwrap();
        assert_eq!(
            restored.sessions[0].messages[0].inflight,
            Some(InflightRecord {
                packet_id: PacketId::new(7).unwrap(),
                stage: InflightStage::Sent,
            })
        );
        // No standalone inflight row is stored, so none is deleted.
        assert_eq!(rows(&store, &[ack(1)]), vec![(Ks::Messages, false)]);
    }

    #[test]
    fn a_later_stage_is_a_standalone_row_that_the_ack_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        store
            .apply(&[enqueue(1), stage(1, InflightStage::Sent)])
            .unwrap();
        let pubrec = [stage(1, InflightStage::AwaitingPubComp)];
        assert_eq!(rows(&store, &pubrec), vec![(Ks::Inflight, true)]);
        store.apply(&pubrec).unwrap();
        assert_eq!(store.apply_lock.lock().unwrap().len(), 1);
        assert_eq!(
            rows(&store, &[ack(1)]),
            vec![(Ks::Messages, false), (Ks::Inflight, false)]
        );
        store.apply(&[ack(1)]).unwrap();
        assert_eq!(store.apply_lock.lock().unwrap().len(), 0);
        // Reopened, the index is read back from the keyspace.
        store.apply(&[enqueue(2)]).unwrap();
        store.apply(&[stage(2, InflightStage::Sent)]).unwrap();
        drop(store);
        let store = DiskStore::open(dir.path()).unwrap();
        assert_eq!(store.apply_lock.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_enqueue_acked_in_its_own_batch_writes_nothing_to_inflight() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path()).unwrap();
        let batch = [enqueue(1), stage(1, InflightStage::Sent), ack(1)];
        assert_eq!(rows(&store, &batch), vec![(Ks::Messages, false)]);
    }
}
