//! Delivery-time authorization, for `[security] acl_wildcards =
//! "per_message"` (docs/auth.md, "Wildcard subscriptions"): may this
//! subscriber read this message's topic?
//!
//! A subscription authorized as a whole when it was made is tagged in the
//! router (the `cleared` tag of `Router::subscribe`, [`roost_router::Target::cleared`]) with the authorization
//! generation then in force; its messages are not checked while that
//! generation lasts. Every other delivery (a wildcard filter only allowed
//! per message, a subscription restored from the store, any subscription
//! after the rules were reloaded) is checked in `Core::route` and
//! `Core::retained_for` (`core/read_checks.rs`, with what this file keeps),
//! which every delivery path goes through (live and
//! offline sessions, shared groups, wills, delayed publishes, the embedding
//! API, retained messages on SUBSCRIBE).
//!
//! The routing path cannot wait, so only synchronous authorizers are asked:
//! the first Allow or Deny decides; an authorizer with an async form (HTTP)
//! is skipped, and when no synchronous one decides, the message is
//! delivered if the chain has such an authorizer (it decided on the filter
//! at SUBSCRIBE) and the default policy decides otherwise.
//!
//! Answers are cached per subscriber and topic ([`READ_CACHE_ENTRIES`]
//! at most, a full cache starts over), stamped with the authorization
//! generation so a reload starts them over.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, OnceLock};

use bytestring::ByteString;
use parking_lot::Mutex;
use roost_hooks::{ClientInfo, Grant};
use roost_store::SessionOwner;

/// Most answers one subscriber keeps; a full cache starts over.
pub(crate) const READ_CACHE_ENTRIES: usize = 256;

/// Who reads through a session's subscriptions, kept as the slot's owner:
/// the identity of the connection that last attached to it, as authorized,
/// with the part of its grant that restricts reading.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) client: Arc<ClientInfo>,
    pub(crate) superuser: bool,
    /// The credential's own subscribe ACL (e.g. JWT claims); `None` = no
    /// restriction from there.
    pub(crate) claims: Option<Box<[String]>>,
    /// Made by the first check: most sessions never need one, and every
    /// connection has a reader (64 B with it boxed, 112 B inline).
    cache: Mutex<Option<Box<ReadCache>>>,
}

/// Answers by topic hash ([`TopicKey`]), the topic kept to confirm a hit:
/// a route hashes its topic once for all its subscribers.
#[derive(Debug, Default)]
struct ReadCache {
    generation: u64,
    answers: HashMap<u64, (Box<str>, bool), BuildHasherDefault<HashIsKey>>,
}

/// The map's keys are already keyed SipHash values (`TopicKey`): used as
/// they are.
#[derive(Debug, Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A topic and its hash (SipHash-1-3, keys drawn once per process: topics
/// come from clients), computed once per routed message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicKey<'a> {
    pub(crate) topic: &'a str,
    hash: u64,
}

impl<'a> TopicKey<'a> {
    pub(crate) fn new(topic: &'a str) -> Self {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let hash = KEYS.get_or_init(RandomState::new).hash_one(topic);
        Self { topic, hash }
    }
}

impl Reader {
    pub(crate) fn new(client: Arc<ClientInfo>, grant: &Grant) -> Self {
        Self {
            client,
            superuser: grant.superuser,
            claims: grant.subscribe_acl.clone().map(Vec::into_boxed_slice),
            cache: Mutex::new(None),
        }
    }

    /// The reader of a session restored from the store, until its client
    /// reconnects: the stored user name and client id, no peer address
    /// (`ip:` rules see `0.0.0.0`) and no credential claims. `None` when the
    /// store recorded no owner (format 1): such a session's checked
    /// deliveries are withheld.
    pub(crate) fn restored(client_id: &ByteString, owner: &SessionOwner) -> Option<Self> {
        let username = match owner {
            SessionOwner::Unknown => return None,
            SessionOwner::Anonymous => None,
            SessionOwner::User(name) => Some(name.clone()),
        };
        let client = ClientInfo::new(
            client_id.clone(),
            username,
            ([0, 0, 0, 0], 0).into(),
            roost_codec::ProtocolVersion::V5,
            roost_hooks::ListenerKind::Tcp,
        );
        Some(Self::new(Arc::new(client), &Grant::default()))
    }

    pub(crate) fn cached(&self, generation: u64, topic: TopicKey<'_>) -> Option<bool> {
        let guard = self.cache.lock();
        let cache = guard.as_ref()?;
        if cache.generation != generation {
            return None;
        }
        match cache.answers.get(&topic.hash) {
            Some((cached, allowed)) if **cached == *topic.topic => Some(*allowed),
            _ => None,
        }
    }

    pub(crate) fn remember(&self, generation: u64, topic: TopicKey<'_>, allowed: bool) {
        let mut guard = self.cache.lock();
        let cache = guard.get_or_insert_default();
        if cache.generation != generation || cache.answers.len() >= READ_CACHE_ENTRIES {
            cache.answers.clear();
            cache.generation = generation;
        }
        // Another topic with the same hash is replaced.
        cache
            .answers
            .insert(topic.hash, (topic.topic.into(), allowed));
    }
}

/// The router tag of a subscription authorized as a whole under
/// `generation`; 0 (never current) once generations outgrow the tag.
pub(crate) fn cleared_tag(generation: u64) -> u32 {
    u32::try_from(generation)
        .ok()
        .and_then(|g| g.checked_add(1))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_without_a_cache_fits_64_bytes_with_its_reference_counts() {
        // Every connection has one (the slot's owner).
        let size = std::mem::size_of::<Reader>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 64, "Arc<Reader> is {size} bytes");
    }

    #[test]
    fn the_cache_confirms_the_topic_and_starts_over_on_a_new_generation() {
        let client = Arc::new(ClientInfo::new(
            "c".into(),
            None,
            ([127, 0, 0, 1], 1).into(),
            roost_codec::ProtocolVersion::V5,
            roost_hooks::ListenerKind::Tcp,
        ));
        let reader = Reader::new(client, &Grant::default());
        let a = TopicKey::new("a");
        assert_eq!(reader.cached(1, a), None);
        reader.remember(1, a, false);
        assert_eq!(reader.cached(1, a), Some(false));
        // Same hash slot, another topic: not a hit.
        let forged = TopicKey {
            topic: "b",
            hash: a.hash,
        };
        assert_eq!(reader.cached(1, forged), None);
        assert_eq!(reader.cached(2, a), None, "a reload starts over");
    }
}
