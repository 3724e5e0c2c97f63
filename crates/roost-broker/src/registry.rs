//! The session registry: every session slot, found by client identifier.
//!
//! A slot already holds its client id, so the table stores the slot alone
//! and looks it up by the id inside: 8 bytes a bucket instead of 40 (a
//! `ByteString` key beside the `Arc`), about 50 bytes less per client at the
//! table's usual load.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::slot::SessionSlot;

/// A slot as the table's key: equal and hashed as its client id.
struct ByClientId(Arc<SessionSlot>);

impl Borrow<str> for ByClientId {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

impl PartialEq for ByClientId {
    fn eq(&self, other: &Self) -> bool {
        *self.0.client_id == *other.0.client_id
    }
}

impl Eq for ByClientId {}

impl Hash for ByClientId {
    // As `str` hashes: `Borrow<str>` lookups must find what this inserted.
    fn hash<H: Hasher>(&self, state: &mut H) {
        <str as Hash>::hash(&self.0.client_id, state);
    }
}

/// Every session slot by client id (sharded; lookups lock one shard).
#[derive(Default)]
pub(crate) struct Registry {
    slots: DashMap<ByClientId, ()>,
}

impl Registry {
    /// The slot of `client_id`, created empty if there is none.
    pub(crate) fn get_or_create(&self, client_id: &ByteString) -> Arc<SessionSlot> {
        if let Some(slot) = self.get(client_id) {
            return slot;
        }
        match self
            .slots
            .entry(ByClientId(SessionSlot::new(client_id.clone())))
        {
            // Created by another connection since the lookup above.
            Entry::Occupied(entry) => Arc::clone(&entry.key().0),
            Entry::Vacant(entry) => Arc::clone(&entry.insert(()).key().0),
        }
    }

    pub(crate) fn get(&self, client_id: &str) -> Option<Arc<SessionSlot>> {
        self.slots
            .get(client_id)
            .map(|entry| Arc::clone(&entry.key().0))
    }

    /// Adds a slot (a session restored from the store), replacing any of
    /// the same client id.
    pub(crate) fn insert(&self, slot: Arc<SessionSlot>) {
        self.slots.remove(&*slot.client_id);
        self.slots.insert(ByClientId(slot), ());
    }

    /// Removes `slot` if it is still the one registered for its client id (a
    /// new session of the same id may have replaced it).
    pub(crate) fn remove(&self, slot: &Arc<SessionSlot>) {
        self.slots
            .remove_if(&*slot.client_id, |key, ()| Arc::ptr_eq(&key.0, slot));
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Calls `f` with every slot. Holds a shard's read lock around each call:
    /// `f` must not touch the registry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<SessionSlot>)) {
        for entry in &self.slots {
            f(&entry.key().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_found_by_its_client_id_and_created_once() {
        let registry = Registry::default();
        let id = ByteString::from("client-1");
        let slot = registry.get_or_create(&id);
        assert!(Arc::ptr_eq(&slot, &registry.get_or_create(&id)));
        assert!(
            registry
                .get("client-1")
                .is_some_and(|found| Arc::ptr_eq(&found, &slot))
        );
        assert!(registry.get("client-2").is_none());
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn only_the_registered_slot_is_removed() {
        let registry = Registry::default();
        let id = ByteString::from("c");
        let old = registry.get_or_create(&id);
        registry.remove(&old);
        let new = registry.get_or_create(&id);
        assert!(!Arc::ptr_eq(&old, &new));
        registry.remove(&old); // stale: the new slot stays
        assert!(
            registry
                .get("c")
                .is_some_and(|found| Arc::ptr_eq(&found, &new))
        );
        registry.remove(&new);
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn insert_replaces_a_slot_of_the_same_client_id() {
        let registry = Registry::default();
        let first = registry.get_or_create(&ByteString::from("r"));
        let restored = SessionSlot::new(ByteString::from("r"));
        registry.insert(Arc::clone(&restored));
        assert!(
            registry
                .get("r")
                .is_some_and(|found| Arc::ptr_eq(&found, &restored))
        );
        assert!(!Arc::ptr_eq(&first, &restored));
        let mut seen = Vec::new();
        registry.for_each(|slot| seen.push(slot.client_id.clone()));
        assert_eq!(seen, ["r"]);
    }
}
