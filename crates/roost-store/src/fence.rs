//! Fencing tokens of the sessions this broker owns in a cluster
//! (docs/cluster.md, "Sessions across nodes"): client id → the token its
//! claim holds. A store shared by several brokers (the Redis store in
//! cluster mode) writes a client's rows only under that client's token, and
//! only while Redis still names that token as the owner (or as the owner
//! handing over): a broker that lost a client id to another node, even one
//! that was paused and does not know it yet, can never write over the new
//! owner's state.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Tokens by client id; shared by the cluster link (which sets them at a
/// claim and clears them when the session leaves this node) and the store
/// (which reads them when it writes).
#[derive(Debug, Default)]
pub struct Fences {
    tokens: Mutex<HashMap<String, String>>,
}

impl Fences {
    /// `client_id`'s rows are written under `token` from now on.
    pub fn set(&self, client_id: &str, token: &str) {
        self.lock().insert(client_id.to_string(), token.to_string());
    }

    /// Forgets `client_id` if it still holds `token`: its rows are not
    /// written by this broker any more.
    pub fn remove_if(&self, client_id: &str, token: &str) {
        let mut tokens = self.lock();
        if tokens.get(client_id).is_some_and(|t| t == token) {
            tokens.remove(client_id);
        }
    }

    /// The token `client_id`'s rows are written under (`None`: this broker
    /// does not own it; its rows are not written).
    pub fn get(&self, client_id: &str) -> Option<String> {
        self.lock().get(client_id).cloned()
    }

    /// Client ids held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client id is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_removed_only_by_its_holder() {
        let f = Fences::default();
        f.set("c", "t1");
        f.set("c", "t2");
        f.remove_if("c", "t1");
        assert_eq!(f.get("c").as_deref(), Some("t2"));
        f.remove_if("c", "t2");
        assert!(f.get("c").is_none());
    }
}
