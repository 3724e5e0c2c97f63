//! Read-only walks of the router for the management API: every
//! subscription, every routed filter. Each takes the router's read lock for
//! one whole-trie walk (time grows with all subscriptions), never on the
//! message path.

use roost_router::Subscription;

use super::Core;
use crate::slot::SessionSlot;

impl Core {
    /// Calls `visit(filter, share group, slot, subscription)` for every
    /// subscription, in trie order, under the router's read lock: `visit`
    /// must not take the router or a slot lock.
    pub(crate) fn for_each_subscription(
        &self,
        mut visit: impl FnMut(&str, Option<&str>, &SessionSlot, &Subscription),
    ) {
        self.router
            .read()
            .for_each_subscription(|filter, group, key, sub| visit(filter, group, &key.0, sub));
    }

    /// The subscriptions of one slot (a whole-trie walk).
    pub(crate) fn subscriptions_of(
        &self,
        slot: &std::sync::Arc<SessionSlot>,
    ) -> Vec<(String, Option<String>, Subscription)> {
        let key = crate::slot::SessionKey(std::sync::Arc::clone(slot));
        self.router.read().subscriptions_of(&key)
    }
}
