//! # roost-store
//!
//! Persistence for Roost: sessions, subscriptions, queued and inflight
//! messages, inbound QoS 2 ids, retained messages, pending wills and delayed
//! publications survive a restart.
//!
//! The broker describes every change as an ordered [`Delta`]; a [`Store`]
//! applies batches of them atomically and gives everything back as a
//! [`Snapshot`] on restore. The [`Writer`] sits in front of a store and
//! commits batches in groups, fsyncing as the [`Durability`] policy says.
//!
//! ```text
//!  broker events ─▶ Vec<Delta> ─▶ Writer::submit ─▶ CommitTicket (wait / .await)
//!                                     │ group commit
//!                                     ▼
//!                     Store::apply(batch) ─▶ memory | disk (fjall) | redis
//!  startup:           Store::restore() ─▶ Snapshot ─▶ SessionSnapshot::to_session_state
//! ```
//!
//! Backends are cargo features: `memory` (default, always built), `disk`
//! (fjall under a data directory, versioned format, see [`FORMAT_VERSION`]),
//! `redis` (redis:// and rediss://, one hash tag per client id).
//!
//! ```
//! use std::time::SystemTime;
//! use roost_store::{Delta, MemoryStore, SessionOwner, SessionRecord, Store};
//!
//! let store = MemoryStore::new();
//! store.apply(&[Delta::SessionUpsert {
//!     client_id: "sensor-1".into(),
//!     record: SessionRecord {
//!         expiry_interval: 3600,
//!         disconnected_at: Some(SystemTime::now()),
//!         owner: SessionOwner::User("alice".into()),
//!     },
//!     subscriptions: Vec::new(),
//! }])?;
//! let snapshot = store.restore()?;
//! assert_eq!(snapshot.sessions[0].client_id, "sensor-1");
//! # Ok::<(), roost_store::StoreError>(())
//! ```

#![warn(missing_docs)]

#[cfg(any(feature = "disk", feature = "redis"))]
mod codec;
pub mod convert;
mod delta;
mod error;
mod faulty;
mod fence;
pub mod latency;
mod memory;
#[cfg(any(feature = "disk", feature = "redis"))]
mod migrate;
mod record;
mod snapshot;
mod state;
mod store;
mod time;
mod wire;
pub mod writer;

#[cfg(feature = "disk")]
pub mod disk;
#[cfg(feature = "redis")]
pub mod redis;

pub use convert::RestoredSession;
pub use delta::Delta;
pub use error::StoreError;
pub use faulty::FaultyStore;
pub use fence::{Fences, token_text};
pub use latency::{LatencyHistogram, LatencySnapshot};
pub use memory::MemoryStore;
pub use record::{
    DelayedRecord, InflightRecord, InflightStage, QueuedMessage, RetainedRecord, SessionOwner,
    SessionRecord, StoredMessage, StoredProperties, SubscriptionRecord, WillRecord,
};
pub use snapshot::{SessionSnapshot, Snapshot, SnapshotMessage};
pub use store::{LoadedSession, Store};
pub use writer::{CommitTicket, Durability, TrySubmitError, Writer, WriterConfig, WriterStats};

/// Version of the stored format (record encodings and key layout) this build
/// reads and writes. Stored in the store itself (disk: `meta` keyspace;
/// Redis: `<prefix>{meta}:format`); a store with another version is refused
/// with [`StoreError::UnsupportedFormat`] rather than misread. A store of
/// an older version this build can read ([`OLDEST_READABLE_FORMAT`]) is
/// migrated in place when opened (`migrate.rs`).
///
/// Version 2 added [`SessionRecord::owner`] and stores a retained message
/// as a [`RetainedRecord`] (with its store time).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest stored format this build migrates on open.
pub const OLDEST_READABLE_FORMAT: u32 = 1;
