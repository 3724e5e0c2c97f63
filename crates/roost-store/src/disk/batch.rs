//! Turns a batch of deltas into one fjall write batch. Deletes of a whole
//! client range must also catch rows written earlier in the same batch, so
//! the batch is first built as an overlay (last write per key wins), then
//! committed at once.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use fjall::Database;

use crate::codec::{encode, encode_with_capacity, message_size_hint};
use crate::delta::Delta;
use crate::disk::fjall_error;
use crate::disk::keys;
use crate::disk::keyspaces::{Keyspaces, Ks};
use crate::error::StoreError;
use crate::record::{InflightRecord, RetainedRecordRef};

/// Pending writes: `Some(value)` = put, `None` = delete.
pub(crate) struct Overlay<'a> {
    ks: &'a Keyspaces,
    path: &'a Path,
    writes: BTreeMap<(Ks, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(ks: &'a Keyspaces, path: &'a Path) -> Self {
        Self {
            ks,
            path,
            writes: BTreeMap::new(),
        }
    }

    fn put(&mut self, ks: Ks, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        keys::check_len(&key)?;
        if u32::try_from(value.len()).is_err() {
            return Err(StoreError::Invalid(format!(
                "record of {} bytes (at most 4 GiB)",
                value.len()
            )));
        }
        self.writes.insert((ks, key), Some(value));
        Ok(())
    }

    fn del(&mut self, ks: Ks, key: Vec<u8>) -> Result<(), StoreError> {
        keys::check_len(&key)?;
        self.writes.insert((ks, key), None);
        Ok(())
    }

    /// Deletes every key starting with `prefix`, stored or pending.
    fn del_prefix(&mut self, ks: Ks, prefix: &[u8]) -> Result<(), StoreError> {
        for guard in self.ks.get(ks).prefix(prefix) {
            let key = guard
                .key()
                .map_err(|e| fjall_error(e, self.path, "scanning a client's rows"))?;
            self.writes.insert((ks, key.to_vec()), None);
        }
        let start = (ks, prefix.to_vec());
        let pending: Vec<(Ks, Vec<u8>)> = self
            .writes
            .range((Bound::Included(start), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|(k, key)| *k == ks && key.starts_with(prefix))
            .cloned()
            .collect();
        for k in pending {
            self.writes.insert(k, None);
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
                let key = keys::client_with(client_id, &seq.to_be_bytes())?;
                let hint = message_size_hint(&message.message) + 4 * message.subscription_ids.len();
                self.put(Ks::Messages, key, encode_with_capacity(message, hint)?)?;
            }
            Delta::MessageAck { client_id, seq } => {
                let key = keys::client_with(client_id, &seq.to_be_bytes())?;
                self.del(Ks::Messages, key.clone())?;
                self.del(Ks::Inflight, key)?;
            }
            Delta::OutboundStage {
                client_id,
                seq,
                packet_id,
                stage,
            } => {
                let key = keys::client_with(client_id, &seq.to_be_bytes())?;
                let record = InflightRecord {
                    packet_id: *packet_id,
                    stage: *stage,
                };
                self.put(Ks::Inflight, key, encode(&record)?)?;
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

    /// Writes everything as one atomic fjall batch (flushed to the OS, not fsynced).
    pub(crate) fn commit(self, db: &Database) -> Result<(), StoreError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let mut batch = db.batch();
        for ((ks, key), value) in self.writes {
            let keyspace = self.ks.get(ks);
            match value {
                Some(v) => batch.insert(keyspace, key, v),
                None => batch.remove(keyspace, key),
            }
        }
        batch
            .commit()
            .map_err(|e| fjall_error(e, self.path, "committing a batch"))
    }
}
