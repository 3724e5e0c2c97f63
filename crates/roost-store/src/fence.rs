//! The claims of this broker in a cluster (docs/cluster.md, "Sessions
//! across nodes"): client id → the token of this node's latest claim of it
//! and the connection that holds it. One entry per client id serves three
//! readers, which each kept a map of their own before (RSS per connection
//! in cluster mode, docs/performance.md):
//!
//! - the store: a store shared by several brokers (the Redis store in
//!   cluster mode) writes a client's rows only under that client's token,
//!   and only while Redis still names that token as the owner (or as the
//!   owner handing over): a broker that lost a client id to another node,
//!   even one that was paused and does not know it yet, can never write
//!   over the new owner's state;
//! - the cluster's owner thread, which records each claim here in claim
//!   order and takes a client id off the node's session list only while
//!   the claim that ended is still the latest;
//! - the broker's cluster link: which connection holds the claim (the one
//!   a kick closes, the one whose end releases it).
//!
//! The key is the client id the session already holds (`ByteString`
//! clones share its bytes); the token is the 128 bits of its text (a uuid
//! as 32 lowercase hex digits, [`token_text`]).
//!
//! A session with nothing to write (Clean Start 1, expiry 0, no will: most
//! idle connections) needs no entry while its connection holds the claim:
//! the store never asks for its token. Such a claim goes *slim* when its
//! connection attaches ([`Fences::go_slim`]): the entry leaves the map and
//! the connection itself is the record — the broker's registry maps the
//! client id to the session's slot, whose live connection holds the
//! latest claim, and the token is spelled from that connection's id
//! (the broker's `ClusterLink::slim_token`). The entry comes back (held by
//! no connection, or by the ending one) when the connection ends, a kick
//! takes it or its session ends ([`Fences::disconnected`],
//! [`Fences::kicked`], [`Fences::ending`], each told by the broker, under
//! the slot's lock, whether the slot's live connection is a slim holder),
//! so the release, the node's session list and the claim order go on as
//! for any claim. "No entry" never hides a newer claim: a claim is
//! recorded here when Redis grants it, before any connection ties to it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytestring::ByteString;

/// Tokens by client id, with the connection holding each claim; shared by
/// the cluster (which records a claim once Redis granted it), the cluster
/// link (which ties it to its connection and clears it when the session
/// leaves this node) and the store (which reads the tokens when it writes).
#[derive(Debug, Default)]
pub struct Fences {
    claims: Mutex<HashMap<ByteString, Claim>>,
}

/// One client id's claim: 24 bytes (the token as two halves keeps the
/// entry 8-byte aligned; a `u128` field would pad it to 32).
#[derive(Debug, Clone, Copy)]
struct Claim {
    token: [u64; 2],
    /// The connection holding the claim (with [`FRESH`] set when it may go
    /// slim), or [`CLAIMING`] / [`CLAIMING_FRESH`] / [`NO_CONNECTION`].
    connection: u64,
}

/// Granted by Redis, not tied to its connection yet (the CONNECT is still
/// under way); an older claim of the id was still recorded here then.
const CLAIMING: u64 = u64::MAX;
/// No connection holds the claim any more (the session is parked, handed
/// over or ending; its rows are still written under the token).
const NO_CONNECTION: u64 = u64::MAX - 1;
/// As [`CLAIMING`], with no older claim of the id recorded here: nothing
/// an earlier session of the id gave the store can still be waiting for
/// this token, so the claim may go slim ([`Fences::go_slim`]).
const CLAIMING_FRESH: u64 = u64::MAX - 2;
/// Set on a holding connection's id when its claim was [`CLAIMING_FRESH`].
/// Connection ids count up from 1 and never reach it.
const FRESH: u64 = 1 << 62;

impl Claim {
    fn new(token: u128, connection: u64) -> Self {
        Self {
            token: split(token),
            connection,
        }
    }

    fn token(&self) -> u128 {
        (u128::from(self.token[0]) << 64) | u128::from(self.token[1])
    }

    /// The connection holding it (none while claiming or held by none).
    fn holder(&self) -> Option<u64> {
        (self.connection < CLAIMING_FRESH).then_some(self.connection & !FRESH)
    }

    /// A connection (not [`CLAIMING`] nor [`NO_CONNECTION`]) holds it.
    fn connected(&self) -> bool {
        self.holder().is_some()
    }
}

#[allow(clippy::cast_possible_truncation)] // the two halves, on purpose
fn split(token: u128) -> [u64; 2] {
    [(token >> 64) as u64, token as u64]
}

/// The text of a token, as Redis stores it and scripts compare it: 32
/// lowercase hex digits.
pub fn token_text(token: u128) -> String {
    format!("{token:032x}")
}

impl Fences {
    /// Redis granted `client_id` to this node under `token` (the newest
    /// claim): its rows are written under it from now on; no connection
    /// holds it yet ([`Self::connect`]).
    pub fn claimed(&self, client_id: &ByteString, token: u128) {
        let mut claims = self.lock();
        let state = if claims.contains_key(&**client_id) {
            CLAIMING
        } else {
            CLAIMING_FRESH
        };
        claims.insert(client_id.clone(), Claim::new(token, state));
    }

    /// `client_id`'s rows are written under `token` from now on, the claim
    /// held by no connection (tests, and stores outside a cluster).
    pub fn set(&self, client_id: &str, token: u128) {
        self.lock().insert(
            ByteString::from(client_id),
            Claim::new(token, NO_CONNECTION),
        );
    }

    /// Connection `connection_id` holds the claim `token` of `client_id`.
    /// False when a newer claim replaced it meanwhile (or none is here).
    pub fn connect(&self, client_id: &str, token: u128, connection_id: u64) -> bool {
        let mut claims = self.lock();
        match claims.get_mut(client_id) {
            Some(claim) if claim.token() == token => {
                let fresh = claim.connection == CLAIMING_FRESH
                    || (claim.connected() && claim.connection & FRESH != 0);
                claim.connection = if fresh && connection_id < FRESH {
                    connection_id | FRESH
                } else {
                    connection_id
                };
                true
            }
            _ => false,
        }
    }

    /// The claim `token` of `client_id`, held by connection `connection_id`
    /// ([`Self::connect`]), leaves the map: the connection now attached to
    /// the session, which has nothing to write (the caller knows; the
    /// slot's lock is held), is the claim's record from here (see the
    /// module comment). Only a claim granted while no older claim of the id
    /// was recorded here goes slim: an ended earlier session's last rows
    /// may still wait for a token of this id. True when it went.
    pub fn go_slim(&self, client_id: &str, token: u128, connection_id: u64) -> bool {
        let mut claims = self.lock();
        let slim = claims.get(client_id).is_some_and(|claim| {
            claim.token() == token
                && claim.connection & FRESH != 0
                && claim.holder() == Some(connection_id)
        });
        if slim {
            claims.remove(client_id);
        }
        slim
    }

    /// A kick for the claim `token` of `client_id` (`None`: a token that
    /// is none of this node's): the connection of this node holding it,
    /// which no longer does. `None`: a connection holds another claim of
    /// the id (the kick is not for it); `Some(None)`: no connection here
    /// holds the id. `slim`: the session's live connection, if it holds
    /// `token` slim (no entry; the caller checked under the slot's lock).
    pub fn kicked(
        &self,
        client_id: &ByteString,
        token: Option<u128>,
        slim: Option<u64>,
    ) -> Option<Option<u64>> {
        let mut claims = self.lock();
        match claims.get_mut(&**client_id) {
            Some(claim) if claim.connected() => {
                if Some(claim.token()) != token {
                    return None;
                }
                let connection = claim.holder();
                claim.connection = NO_CONNECTION;
                Some(connection)
            }
            Some(_) => Some(None),
            None => match (slim, token) {
                // The slim claim, held by no connection from here.
                (Some(connection), Some(token)) => {
                    claims.insert(client_id.clone(), Claim::new(token, NO_CONNECTION));
                    Some(Some(connection))
                }
                _ => Some(None),
            },
        }
    }

    /// Connection `connection_id` of `client_id` ended: the token of the
    /// claim it held, which no connection holds now (to release it in
    /// Redis). `None`: it held none (a newer claim, or a kick, took it).
    /// `slim`: the token this connection held slim, if it is still its
    /// session's live connection (the caller checked under the slot's
    /// lock); then with no entry here it holds the latest claim.
    pub fn disconnected(
        &self,
        client_id: &ByteString,
        connection_id: u64,
        slim: Option<u128>,
    ) -> Option<u128> {
        let mut claims = self.lock();
        let Some(claim) = claims.get_mut(&**client_id) else {
            let token = slim?;
            claims.insert(client_id.clone(), Claim::new(token, NO_CONNECTION));
            return Some(token);
        };
        if claim.holder() != Some(connection_id) {
            return None;
        }
        claim.connection = NO_CONNECTION;
        Some(claim.token())
    }

    /// The token of the session of `client_id` that ended here, attached
    /// to `connection` as it ended (if it was): `None` when none is held,
    /// or another connection holds (or a CONNECT is claiming) a newer one —
    /// the ended session is not that claim's, whose entry stays. `slim`:
    /// the token `connection` holds slim (no entry): recorded again, held
    /// by it, so the rest of the claim's end goes as for any claim.
    pub fn ending(
        &self,
        client_id: &ByteString,
        connection: Option<u64>,
        slim: Option<u128>,
    ) -> Option<u128> {
        let mut claims = self.lock();
        let Some(claim) = claims.get(&**client_id) else {
            let (connection, token) = (connection?, slim?);
            claims.insert(client_id.clone(), Claim::new(token, connection));
            return Some(token);
        };
        let its_own = match claim.connection {
            NO_CONNECTION => true,
            CLAIMING | CLAIMING_FRESH => false,
            _ => claim.holder() == connection,
        };
        its_own.then(|| claim.token())
    }

    /// The claim `token` of `client_id` (granted, [`Self::claimed`]) is held
    /// by no connection: a parked session's. False when a newer claim
    /// replaced it meanwhile.
    pub fn park(&self, client_id: &str, token: u128) -> bool {
        self.connect(client_id, token, NO_CONNECTION)
    }

    /// Forgets `client_id` if it still holds `token`: its rows are not
    /// written by this broker any more.
    pub fn remove_if(&self, client_id: &str, token: u128) {
        let mut claims = self.lock();
        if claims.get(client_id).is_some_and(|c| c.token() == token) {
            claims.remove(client_id);
        }
    }

    /// The token `client_id`'s rows are written under (`None`: this broker
    /// does not own it; its rows are not written).
    pub fn get(&self, client_id: &str) -> Option<u128> {
        self.lock().get(client_id).map(Claim::token)
    }

    /// True while `token` is this node's latest claim of `client_id`.
    pub fn holds(&self, client_id: &str, token: u128) -> bool {
        self.get(client_id) == Some(token)
    }

    /// Client ids held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client id is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ByteString, Claim>> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;
    const T2: u128 = u128::MAX - 7;

    #[test]
    fn a_token_is_removed_only_by_its_holder() {
        let f = Fences::default();
        f.set("c", T1);
        f.set("c", T2);
        f.remove_if("c", T1);
        assert_eq!(f.get("c"), Some(T2));
        f.remove_if("c", T2);
        assert!(f.get("c").is_none());
    }

    #[test]
    fn a_claim_entry_is_small() {
        // The point of the layout: one entry per connection of the node.
        assert_eq!(std::mem::size_of::<Claim>(), 24);
        assert_eq!(std::mem::size_of::<(ByteString, Claim)>(), 56);
    }

    #[test]
    fn token_halves_round_trip_and_spell_32_hex_digits() {
        for t in [0, 1, T1, T2, u128::MAX] {
            assert_eq!(Claim::new(t, 0).token(), t);
        }
        assert_eq!(token_text(T1), "0123456789abcdef0123456789abcdef");
        assert_eq!(token_text(1).len(), 32);
    }

    #[test]
    fn the_connection_holding_a_claim_is_the_one_a_kick_closes() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        // Still claiming: no connection here holds it.
        assert_eq!(f.kicked(&id, Some(T1), None), Some(None));
        assert!(f.connect("c", T1, 7));
        // A kick for another token is not for this connection.
        assert_eq!(f.kicked(&id, Some(T2), None), None);
        assert_eq!(f.kicked(&id, None, None), None);
        assert_eq!(f.kicked(&id, Some(T1), None), Some(Some(7)));
        // Once kicked, its end releases nothing; the token stays for the
        // session's last rows.
        assert_eq!(f.disconnected(&id, 7, None), None);
        assert_eq!(f.get("c"), Some(T1));
        assert_eq!(f.ending(&id, None, None), Some(T1));
    }

    #[test]
    fn a_connection_end_releases_only_its_own_claim() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        assert!(f.connect("c", T1, 1));
        // A newer claim of the id on this node: the old connection's end
        // releases nothing, and the ended session is not the new claim's.
        f.claimed(&id, T2);
        assert!(!f.connect("c", T1, 1), "an older claim ties no connection");
        assert_eq!(f.disconnected(&id, 1, None), None);
        assert_eq!(f.ending(&id, Some(1), None), None, "claiming");
        assert!(f.connect("c", T2, 2));
        assert_eq!(f.ending(&id, Some(1), None), None, "connection 2 holds it");
        assert_eq!(f.ending(&id, None, None), None, "connection 2 holds it");
        // A session ending with its connection still attached is its own.
        assert_eq!(f.ending(&id, Some(2), None), Some(T2));
        assert_eq!(f.disconnected(&id, 2, None), Some(T2));
        assert_eq!(f.disconnected(&id, 2, None), None, "once");
        assert_eq!(f.ending(&id, None, None), Some(T2));
        // A parked claim: no connection holds it.
        f.claimed(&id, T1);
        assert!(f.park("c", T1));
        assert!(!f.park("c", T2));
        assert_eq!(f.kicked(&id, Some(T1), None), Some(None));
        assert_eq!(f.ending(&id, None, None), Some(T1));
        assert!(f.holds("c", T1));
        assert!(!f.holds("c", T2));
    }

    #[test]
    fn a_fresh_claim_goes_slim_at_attach_and_comes_back_at_its_end() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        assert!(f.connect("c", T1, 7));
        assert!(!f.go_slim("c", T2, 7), "another token");
        assert!(!f.go_slim("c", T1, 8), "another connection");
        assert!(f.go_slim("c", T1, 7));
        assert!(f.is_empty(), "a slim claim has no entry");
        assert_eq!(f.get("c"), None, "the store writes nothing for it");
        // Its connection ends while still the session's: the entry is back,
        // held by none, and the claim is released once.
        assert_eq!(f.disconnected(&id, 7, Some(T1)), Some(T1));
        assert_eq!(f.disconnected(&id, 7, Some(T1)), None);
        assert_eq!(f.ending(&id, None, None), Some(T1));
        assert!(f.holds("c", T1), "the owner thread's Ended sees it");
        f.remove_if("c", T1);
        assert!(f.is_empty());
    }

    #[test]
    fn a_claim_granted_over_an_older_one_of_the_node_stays_in_the_map() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.set("c", T1); // an ended session's last rows still to write
        f.claimed(&id, T2);
        assert!(f.connect("c", T2, 3));
        assert!(!f.go_slim("c", T2, 3));
        assert_eq!(f.get("c"), Some(T2));
    }

    #[test]
    fn a_kick_finds_a_slim_claim_through_its_connection() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        assert!(f.connect("c", T1, 7));
        assert!(f.go_slim("c", T1, 7));
        // Not a slim holder of that token (the caller found none).
        assert_eq!(f.kicked(&id, Some(T2), None), Some(None));
        assert!(f.is_empty());
        assert_eq!(f.kicked(&id, Some(T1), Some(7)), Some(Some(7)));
        // Kicked: its end releases nothing; the token stays for the
        // session's last rows.
        assert_eq!(f.disconnected(&id, 7, None), None);
        assert_eq!(f.get("c"), Some(T1));
    }

    #[test]
    fn a_newer_claim_granted_meanwhile_wins_over_a_slim_holder() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        assert!(f.connect("c", T1, 1));
        assert!(f.go_slim("c", T1, 1));
        // A second CONNECT of the id here: granted, not attached yet.
        f.claimed(&id, T2);
        assert_eq!(f.disconnected(&id, 1, Some(T1)), None, "T2 is the latest");
        assert_eq!(f.ending(&id, Some(1), Some(T1)), None, "claiming");
        assert_eq!(f.kicked(&id, Some(T1), Some(1)), Some(None));
        assert_eq!(f.get("c"), Some(T2));
        assert!(!f.holds("c", T1));
    }

    #[test]
    fn a_session_ending_under_its_slim_connection_is_recorded_again() {
        let f = Fences::default();
        let id = ByteString::from("c");
        f.claimed(&id, T1);
        assert!(f.connect("c", T1, 4));
        assert!(f.go_slim("c", T1, 4));
        assert_eq!(f.ending(&id, None, Some(T1)), None, "no connection: none");
        assert_eq!(f.ending(&id, Some(4), Some(T1)), Some(T1));
        // Held by that connection until it ends (which releases it).
        assert_eq!(f.disconnected(&id, 4, None), Some(T1));
    }
}
