//! The broker's retained messages: one [`RetainedStore`] owns the topic index
//! (`roost_router::RetainedIndex`) and the policies around it — `retain_ttl`,
//! Message Expiry, the count and payload limits — and keeps its figures
//! (count, payload bytes, expired, refused) for `stats()`.
//!
//! Every change goes through two methods: [`RetainedStore::set`] and
//! [`RetainedStore::remove`]. Persistence hooks in there, so a retained
//! message cannot change without the store hearing of it.
//!
//! A message past its Message Expiry or its TTL is never handed out; it is
//! removed when a lookup meets it and by a periodic sweep that scans a
//! bounded number of entries per tick (`sweep.rs`).

mod list;
mod sweep;
mod system;
mod view;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use bytestring::ByteString;
use parking_lot::{Mutex, RwLock};
use roost_codec::{PublishProperties, QoS};
use roost_router::RetainedIndex;
use roost_session::Message;

use crate::config::MqttConfig;
use crate::metrics::Stats;

pub(crate) use system::SystemValues;
pub use view::{RetainedError, RetainedMessage, RetainedPage};

/// One stored retained message.
#[derive(Clone)]
struct Entry {
    message: Arc<Message>,
    /// Wall-clock time it was stored (shown by the API, kept by persistence).
    stored_at: SystemTime,
    /// When it stops being delivered: the earlier of its Message Expiry and
    /// the TTL. `None` = kept until replaced or deleted.
    dies_at: Option<Instant>,
}

impl Entry {
    fn is_dead(&self, now: Instant) -> bool {
        self.dies_at.is_some_and(|at| now >= at)
    }
}

/// The limits from `[mqtt]`.
#[derive(Debug, Clone, Copy)]
struct Policy {
    enabled: bool,
    ttl: Option<Duration>,
    max_messages: usize,
    max_payload: usize,
}

/// Why a retained message leaves the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// An empty retained PUBLISH [MQTT-3.3.1-6] or the API deleted it.
    Deleted,
    /// Its Message Expiry or TTL ran out.
    Expired,
}

/// The index and the figures that change with it, under one lock.
#[derive(Default)]
struct Inner {
    index: RetainedIndex<Entry>,
    /// Payload bytes of every stored message.
    bytes: u64,
    /// Entries with a deadline; the sweep has nothing to do while it is 0.
    mortal: usize,
}

/// The retained messages of one broker and their policies.
pub(crate) struct RetainedStore {
    inner: RwLock<Inner>,
    policy: Policy,
    /// Messages removed because their expiry or TTL ran out.
    expired: AtomicU64,
    /// Retained messages not stored because of a limit.
    refused: AtomicU64,
    /// Where the next sweep tick resumes (`None` = from the first topic).
    sweep_cursor: Mutex<Option<String>>,
    /// Told of every set and removal (the session store), once installed.
    changes: std::sync::OnceLock<ChangeSink>,
    /// Changes made under the index lock, in that lock's order, waiting to
    /// be told to `changes` once the lock is released: telling may block
    /// (a full store writer queue), and must not block retained lookups.
    pending: Mutex<VecDeque<OwnedChange>>,
    /// Held while telling: one teller at a time keeps the changes in order.
    telling: Mutex<()>,
}

/// A [`RetainedChange`] waiting in [`RetainedStore::pending`].
#[derive(Debug)]
enum OwnedChange {
    Set(Arc<Message>, SystemTime),
    Removed(Box<str>),
}

/// A change of the retained messages, as [`RetainedStore::set`] and
/// [`RetainedStore::remove`] make it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RetainedChange<'a> {
    /// The topic's retained message is now this one, stored at `stored_at`
    /// (kept by persistence: `retain_ttl` counts from it after a restart).
    Set {
        /// The message.
        message: &'a Arc<Message>,
        /// When it was stored (wall clock).
        stored_at: SystemTime,
    },
    /// The topic has no retained message any more.
    Removed(&'a str),
}

/// Receives every [`RetainedChange`].
pub(crate) type ChangeSink = Box<dyn Fn(RetainedChange<'_>) + Send + Sync>;

impl std::fmt::Debug for RetainedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetainedStore")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RetainedStore {
    /// An empty store with the limits of `[mqtt]`.
    pub(crate) fn new(mqtt: &MqttConfig) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            policy: Policy {
                enabled: mqtt.retain_available,
                ttl: (mqtt.retain_ttl > 0).then(|| Duration::from_secs(mqtt.retain_ttl)),
                max_messages: mqtt.max_retained_messages,
                max_payload: mqtt.max_retained_payload,
            },
            expired: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            sweep_cursor: Mutex::new(None),
            changes: std::sync::OnceLock::new(),
            pending: Mutex::new(VecDeque::new()),
            telling: Mutex::new(()),
        }
    }

    /// Records a change for the receiver (if any); called under the index lock.
    fn note_change(&self, change: impl FnOnce() -> OwnedChange) {
        if self.changes.get().is_some() {
            self.pending.lock().push_back(change());
        }
    }

    /// Tells the receiver every pending change, oldest first. Called with
    /// the index lock released, after every operation that changes it.
    fn tell_changes(&self) {
        let Some(sink) = self.changes.get() else {
            return;
        };
        let _one_teller = self.telling.lock();
        loop {
            let Some(change) = self.pending.lock().pop_front() else {
                return;
            };
            match &change {
                OwnedChange::Set(message, stored_at) => sink(RetainedChange::Set {
                    message,
                    stored_at: *stored_at,
                }),
                OwnedChange::Removed(topic) => sink(RetainedChange::Removed(topic)),
            }
        }
    }

    /// Installs the receiver of every later change (the session store);
    /// messages put in before (a restore) are not reported. Once only.
    pub(crate) fn on_change(&self, sink: ChangeSink) {
        if self.changes.set(sink).is_err() {
            tracing::warn!("retained change receiver installed twice; keeping the first");
        }
    }

    /// Applies a PUBLISH with RETAIN set: an empty payload removes the topic's
    /// retained message [MQTT-3.3.1-6] and is not stored [MQTT-3.3.1-7];
    /// anything else replaces it [MQTT-3.3.1-5] unless a limit refuses it
    /// (counted; the message is still routed by the caller). Returns whether
    /// the store changed.
    pub(crate) fn on_publish(&self, message: &Arc<Message>, now: Instant) -> bool {
        if message.payload.is_empty() {
            let removed = self
                .remove(&mut self.inner.write(), &message.topic, Removal::Deleted)
                .is_some();
            self.tell_changes();
            return removed;
        }
        self.store(Arc::clone(message), now).is_ok()
    }

    /// Whether a limit would refuse to retain `message`; a refusal is counted.
    /// Lets a 5.0 publisher be told (0x97) before the message is routed.
    pub(crate) fn admit(&self, message: &Message) -> Result<(), RetainedError> {
        if message.payload.is_empty() {
            return Ok(());
        }
        let result = self.check(&self.inner.read(), &message.topic, message.payload.len());
        if let Err(e) = &result {
            self.note_refusal(&message.topic, e);
        }
        result
    }

    /// Counts a refusal and logs it: every one at `debug`, and at `warn` the
    /// 1st, 2nd, 4th, 8th... so a full store shows in the logs without
    /// flooding them.
    fn note_refusal(&self, topic: &str, error: &RetainedError) {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::warn!(%topic, %error, refused_so_far = total, "retained message not stored");
        } else {
            tracing::debug!(%topic, %error, "retained message not stored");
        }
    }

    /// Cluster mode: a retained message set on a node of the cluster (this
    /// one included: every node applies the cluster's retained log in
    /// order), stored there at `stored_at`, from which its TTL counts. The
    /// limits apply as to a local one.
    pub(crate) fn apply_remote(&self, message: Arc<Message>, stored_at: SystemTime, now: Instant) {
        let age = SystemTime::now()
            .duration_since(stored_at)
            .unwrap_or_default();
        let entry = self.entry(message, stored_at, age, now);
        let _ = self.insert(entry);
    }

    /// Stores `message` as its topic's retained message if the limits allow.
    fn store(&self, message: Arc<Message>, now: Instant) -> Result<(), RetainedError> {
        let entry = self.entry(message, SystemTime::now(), Duration::ZERO, now);
        self.insert(entry)
    }

    /// The entry of `message` stored at `stored_at`, `age` ago: its TTL
    /// (if any) has `age` less to run.
    fn entry(
        &self,
        message: Arc<Message>,
        stored_at: SystemTime,
        age: Duration,
        now: Instant,
    ) -> Entry {
        let ttl_end = self
            .policy
            .ttl
            .and_then(|ttl| now.checked_add(ttl.saturating_sub(age)));
        let dies_at = match (message.expires_at, ttl_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Entry {
            message,
            stored_at,
            dies_at,
        }
    }

    /// Puts a retained message read back from the session store, with the
    /// time it was first stored (`now` and `wall` read together): its TTL
    /// counts from then, as its Message Expiry does (already on `message`),
    /// so a restart gives it no extra life. Returns false, storing nothing,
    /// when either ran out while the broker was down: the caller deletes it
    /// from the store. Not reported as a change (the store has it).
    pub(crate) fn restore(
        &self,
        message: Arc<Message>,
        stored_at: SystemTime,
        now: Instant,
        wall: SystemTime,
    ) -> bool {
        // A store time ahead of the clock (it was set back) counts as now.
        let age = wall.duration_since(stored_at).unwrap_or_default();
        let entry = self.entry(message, stored_at, age, now);
        if entry.is_dead(now) {
            return false;
        }
        // A limit lowered since may refuse it (counted and logged); it is
        // then only not served, and stays in the store.
        let _ = self.insert(entry);
        true
    }

    /// Inserts `entry` unless a limit refuses it.
    fn insert(&self, entry: Entry) -> Result<(), RetainedError> {
        let mut inner = self.inner.write();
        if let Err(e) = self.check(&inner, &entry.message.topic, entry.message.payload.len()) {
            drop(inner);
            self.note_refusal(&entry.message.topic, &e);
            return Err(e);
        }
        self.set(&mut inner, entry);
        drop(inner);
        self.tell_changes();
        Ok(())
    }

    /// The limits: payload size, and the count for a topic not yet stored.
    fn check(&self, inner: &Inner, topic: &str, size: usize) -> Result<(), RetainedError> {
        let p = &self.policy;
        if p.max_payload > 0 && size > p.max_payload {
            return Err(RetainedError::PayloadTooLarge {
                size,
                limit: p.max_payload,
            });
        }
        if p.max_messages > 0
            && inner.index.len() >= p.max_messages
            && inner.index.get(topic).is_none()
        {
            return Err(RetainedError::StoreFull {
                limit: p.max_messages,
            });
        }
        Ok(())
    }

    /// THE place a retained message is set (or replaced).
    fn set(&self, inner: &mut Inner, entry: Entry) {
        self.note_change(|| OwnedChange::Set(Arc::clone(&entry.message), entry.stored_at));
        let size = entry.message.payload.len() as u64;
        let mortal = entry.dies_at.is_some();
        let topic = entry.message.topic.clone();
        let previous = inner.index.insert(&topic, entry);
        if let Some(previous) = previous {
            inner.forget(&previous);
        }
        inner.bytes += size;
        inner.mortal += usize::from(mortal);
    }

    /// THE place a retained message is removed.
    fn remove(&self, inner: &mut Inner, topic: &str, why: Removal) -> Option<Arc<Message>> {
        let removed = inner.index.remove(topic)?;
        inner.forget(&removed);
        self.note_change(|| OwnedChange::Removed(topic.into()));
        if why == Removal::Expired {
            self.expired.fetch_add(1, Ordering::Relaxed);
        }
        Some(removed.message)
    }

    /// Removes those of `topics` that are (still) dead at `now`: a topic may
    /// have been given a fresh message since it was seen dead. Returns how
    /// many it removed.
    fn purge(&self, topics: &[impl AsRef<str>], now: Instant) -> usize {
        if topics.is_empty() {
            return 0;
        }
        let mut removed = 0;
        {
            let mut inner = self.inner.write();
            for topic in topics {
                let topic = topic.as_ref();
                if inner.index.get(topic).is_some_and(|e| e.is_dead(now)) {
                    self.remove(&mut inner, topic, Removal::Expired);
                    removed += 1;
                }
            }
        }
        self.tell_changes();
        removed
    }

    /// The live retained messages matching `filter` (for a new subscription);
    /// dead ones met on the way are removed.
    pub(crate) fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let mut found: Vec<Entry> = Vec::new();
        self.inner.read().index.matches(filter, &mut found);
        let mut dead: Vec<ByteString> = Vec::new();
        let live = found
            .into_iter()
            .filter_map(|e| {
                if e.is_dead(now) {
                    dead.push(e.message.topic.clone());
                    None
                } else {
                    Some(e.message)
                }
            })
            .collect();
        self.purge(&dead, now);
        live
    }

    /// The live retained message of `topic`.
    pub(crate) fn get(&self, topic: &str, now: Instant) -> Option<RetainedMessage> {
        let entry = self.inner.read().index.get(topic).cloned()?;
        if entry.is_dead(now) {
            self.purge(&[topic], now);
            return None;
        }
        Some(RetainedMessage::new(&entry, now))
    }

    /// Stores a retained message given by the application (not routed). An
    /// empty payload deletes, as a retained PUBLISH would [MQTT-3.3.1-6].
    /// Returns what was stored (`None`: deleted), for the cluster's copy.
    pub(crate) fn set_from_api(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        mut properties: PublishProperties,
        now: Instant,
    ) -> Result<Option<Arc<Message>>, RetainedError> {
        if !self.policy.enabled {
            return Err(RetainedError::Unavailable);
        }
        roost_codec::topic::validate_topic_name(topic)
            .map_err(|e| RetainedError::InvalidTopic(e.to_string()))?;
        if payload.is_empty() {
            self.delete(topic);
            return Ok(None);
        }
        // Per-hop properties have no meaning on a stored message.
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        let expires_at = properties
            .message_expiry_interval
            .and_then(|secs| now.checked_add(Duration::from_secs(u64::from(secs))));
        let message = Message {
            topic: ByteString::from(topic),
            payload,
            qos,
            retain: true,
            properties,
            expires_at,
            publisher: None,
        };
        let message = Arc::new(message);
        self.store(Arc::clone(&message), now)?;
        Ok(Some(message))
    }

    /// Deletes the retained message of `topic`; false when there was none.
    pub(crate) fn delete(&self, topic: &str) -> bool {
        let removed = self
            .remove(&mut self.inner.write(), topic, Removal::Deleted)
            .is_some();
        self.tell_changes();
        removed
    }

    /// Retained messages stored (dead ones count until they are purged).
    pub(crate) fn len(&self) -> usize {
        self.inner.read().index.len()
    }

    /// Copies the store's figures into `stats`.
    pub(crate) fn fill_stats(&self, stats: &mut Stats) {
        {
            let inner = self.inner.read();
            stats.retained_messages = inner.index.len() as u64;
            stats.retained_bytes = inner.bytes;
        }
        stats.retained_expired = self.expired.load(Ordering::Relaxed);
        stats.retained_refused = self.refused.load(Ordering::Relaxed);
    }
}

impl Inner {
    /// Takes a removed or replaced entry out of the figures.
    fn forget(&mut self, entry: &Entry) {
        self.bytes = self
            .bytes
            .saturating_sub(entry.message.payload.len() as u64);
        if entry.dies_at.is_some() {
            self.mortal = self.mortal.saturating_sub(1);
        }
    }
}
