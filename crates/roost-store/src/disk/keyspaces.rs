//! The fjall keyspaces of the disk format, one per kind of row.

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use crate::disk::fjall_error;
use crate::error::StoreError;
use std::path::Path;

/// Which keyspace a row lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ks {
    Sessions,
    Subscriptions,
    Messages,
    Inflight,
    Inbound,
    Retained,
    Wills,
    Delayed,
}

impl Ks {
    /// Every data keyspace (not `meta`).
    pub(crate) const ALL: [Ks; 8] = [
        Ks::Sessions,
        Ks::Subscriptions,
        Ks::Messages,
        Ks::Inflight,
        Ks::Inbound,
        Ks::Retained,
        Ks::Wills,
        Ks::Delayed,
    ];

    /// The keyspace name on disk (part of the format).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Ks::Sessions => "sessions",
            Ks::Subscriptions => "subscriptions",
            Ks::Messages => "messages",
            Ks::Inflight => "inflight",
            Ks::Inbound => "inbound",
            Ks::Retained => "retained",
            Ks::Wills => "wills",
            Ks::Delayed => "delayed",
        }
    }
}

/// Open handles to every keyspace.
pub(crate) struct Keyspaces {
    pub(crate) meta: Keyspace,
    data: [Keyspace; 8],
}

impl Keyspaces {
    /// Opens (creating when missing) every keyspace.
    pub(crate) fn open(db: &Database, path: &Path) -> Result<Self, StoreError> {
        let open = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(|e| fjall_error(e, path, &format!("opening keyspace {name}")))
        };
        Ok(Keyspaces {
            meta: open(crate::disk::META_KEYSPACE)?,
            data: [
                open(Ks::Sessions.name())?,
                open(Ks::Subscriptions.name())?,
                open(Ks::Messages.name())?,
                open(Ks::Inflight.name())?,
                open(Ks::Inbound.name())?,
                open(Ks::Retained.name())?,
                open(Ks::Wills.name())?,
                open(Ks::Delayed.name())?,
            ],
        })
    }

    /// Every keyspace, `meta` included.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Keyspace> {
        std::iter::once(&self.meta).chain(self.data.iter())
    }

    /// The handle of `ks`.
    pub(crate) fn get(&self, ks: Ks) -> &Keyspace {
        &self.data[ks as usize]
    }
}
