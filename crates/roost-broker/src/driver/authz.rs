//! Authorization of one client's PUBLISH topics and SUBSCRIBE filters, with
//! a small per-session cache of the chain's answers.
//!
//! The cache holds answers of synchronous authorizers only, keyed by the
//! action (kind, QoS, retain) and the topic, at most [`CACHE_ENTRIES`] of
//! them. Each entry set is stamped with the broker's authorization
//! generation; `BrokerHandle::reload_auth` bumps it, so the next check after
//! a reload asks the (new) rules again. Answers that involved an async
//! authorizer are not cached here: such authorizers keep their own cache
//! with its own expiry, and an unreachable service must not leave a stale
//! denial behind.

use std::collections::HashMap;

use parking_lot::Mutex;
use roost_codec::QoS;
use roost_codec::topic::{intersects, matches as topic_matches};
use roost_hooks::{Action, ClientInfo, Grant};

use crate::config::AclDefault;
use crate::core::Core;

/// Most answers one session keeps; a full cache starts over.
pub(crate) const CACHE_ENTRIES: usize = 64;

/// One session's cached answers (allocated on first use).
#[derive(Debug, Default)]
pub(crate) struct AuthzCache(Mutex<Option<Box<Entries>>>);

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    /// Answers per topic, per action (a topic is rarely used with more than
    /// one or two actions).
    answers: HashMap<Box<str>, Vec<(Action, bool)>>,
    len: usize,
}

impl AuthzCache {
    fn get(&self, generation: u64, action: Action, topic: &str) -> Option<bool> {
        let guard = self.0.lock();
        let entries = guard.as_ref()?;
        if entries.generation != generation {
            return None;
        }
        entries
            .answers
            .get(topic)?
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, allowed)| *allowed)
    }

    fn insert(&self, generation: u64, action: Action, topic: &str, allowed: bool) {
        let mut guard = self.0.lock();
        let entries = guard.get_or_insert_with(Box::default);
        if entries.generation != generation || entries.len >= CACHE_ENTRIES {
            entries.answers.clear();
            entries.len = 0;
            entries.generation = generation;
        }
        let per_topic = entries.answers.entry(topic.into()).or_default();
        if !per_topic.iter().any(|(a, _)| *a == action) {
            per_topic.push((action, allowed));
            entries.len += 1;
        }
    }
}

/// The authorization gate for one client's action (see docs/auth.md, "One
/// gate"): every message a client makes enter routing (PUBLISH, will, a
/// hook's rewritten topic) and every filter it subscribes with is decided
/// here, with the identity it connected with.
///
/// `$SYS` is never writable by clients; the credential's own ACL (e.g. JWT
/// claims) must allow it; then the authorizer chain (cached in `cache` when
/// given), then the default policy.
pub(crate) async fn gate(
    core: &Core,
    client: &ClientInfo,
    grant: &Grant,
    cache: Option<&AuthzCache>,
    action: Action,
    topic: &str,
) -> bool {
    if matches!(action, Action::Publish { .. }) && (topic == "$SYS" || topic.starts_with("$SYS/")) {
        return false;
    }
    if grant.superuser {
        return true;
    }
    let claim = match action {
        Action::Publish { .. } => grant.publish_acl.as_ref(),
        Action::Subscribe { .. } => grant.subscribe_acl.as_ref(),
    };
    if let Some(allowed) = claim
        && !allowed
            .iter()
            .any(|f| topic_matches(f, topic) || f == topic)
    {
        return false;
    }
    let default = core.config.security.acl_default == AclDefault::Allow;
    if core.ext.authorizers.is_empty() {
        return default;
    }
    let generation = core.ext.authz_generation();
    if let Some(allowed) = cache.and_then(|c| c.get(generation, action, topic)) {
        return allowed;
    }
    let (answer, cacheable) = core.ext.authorize(client, action, topic).await;
    let allowed = answer.unwrap_or(default);
    if cacheable && let Some(cache) = cache {
        cache.insert(generation, action, topic, allowed);
    }
    allowed
}

/// `acl_wildcards = "per_message"`: may this client hold the wildcard
/// `filter` that [`gate`] refused as a whole, each message it brings
/// being checked at delivery (`crate::read_acl`)? The credential's own ACL
/// must overlap the filter; the chain answers with
/// `Authorizer::authorize_per_message` (an ACL file: no deny rule covers the
/// filter, an allow rule overlaps it); then the default policy. Not cached:
/// it is asked once per such SUBSCRIBE.
pub(crate) async fn authorized_per_message(
    core: &Core,
    client: &ClientInfo,
    grant: &Grant,
    qos: QoS,
    filter: &str,
) -> bool {
    if grant.superuser {
        return true;
    }
    if let Some(allowed) = grant.subscribe_acl.as_ref()
        && !allowed.iter().any(|f| intersects(f, filter))
    {
        return false;
    }
    let default = core.config.security.acl_default == AclDefault::Allow;
    if core.ext.authorizers.is_empty() {
        return default;
    }
    let (answer, _) = core.ext.authorize_per_message(client, qos, filter).await;
    answer.unwrap_or(default)
}
