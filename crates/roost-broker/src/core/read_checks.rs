//! The checks at delivery for `acl_wildcards = "per_message"` (what is
//! checked and why: `crate::read_acl`, docs/auth.md).

use std::sync::Arc;

use roost_codec::QoS;
use roost_codec::topic::matches as topic_matches;
use roost_hooks::{ClientInfo, DropCause};
use roost_session::Message;

use super::Core;
use crate::config::{AclDefault, AclWildcards};
use crate::metrics::Metrics;
use crate::read_acl::{Reader, TopicKey, cleared_tag};
use crate::slot::SessionSlot;

impl Core {
    /// Whether messages are checked at delivery at all (`per_message`).
    pub(crate) fn read_checks(&self) -> bool {
        self.config.security.acl_wildcards == AclWildcards::PerMessage
    }

    /// The tag for a subscription authorized as a whole now, or 0 when its
    /// messages must be checked at delivery.
    pub(crate) fn current_cleared_tag(&self) -> u32 {
        cleared_tag(self.ext.authz_generation())
    }

    /// May the session in `slot` receive a message on `topic` (at `qos`)?
    /// Only asked for deliveries whose subscriptions were not authorized as
    /// a whole under the rules in force.
    /// `generation`: the authorization generation, read once per message.
    pub(crate) fn may_read(
        &self,
        slot: &SessionSlot,
        topic: TopicKey<'_>,
        generation: u64,
        qos: QoS,
    ) -> bool {
        // The hit path (the usual one) takes two short locks and no
        // reference count; a miss asks the rules without the slot's lock.
        let reader = {
            let inner = slot.inner.lock();
            let Some(reader) = &inner.owner else {
                // Restored from the store and not attached since: nobody to
                // ask about. The message is withheld rather than delivered
                // unchecked, unless there are no rules to apply at all.
                return self.ext.authorizers.is_empty() && self.default_allows();
            };
            if reader.superuser {
                return true;
            }
            if let Some(allowed) = reader.cached(generation, topic) {
                return allowed;
            }
            Arc::clone(reader)
        };
        let allowed = self.reader_allows(&reader, topic.topic, qos);
        reader.remember(generation, topic, allowed);
        allowed
    }

    /// The credential's own read ACL (JWT claims), then the chain, then the
    /// default policy.
    fn reader_allows(&self, reader: &Reader, topic: &str, qos: QoS) -> bool {
        if let Some(claims) = &reader.claims
            && !claims.iter().any(|f| topic_matches(f, topic))
        {
            return false;
        }
        if self.ext.authorizers.is_empty() {
            return self.default_allows();
        }
        self.chain_allows_read(&reader.client, topic, qos)
    }

    fn default_allows(&self) -> bool {
        self.config.security.acl_default == AclDefault::Allow
    }

    fn chain_allows_read(&self, client: &ClientInfo, topic: &str, qos: QoS) -> bool {
        match self.ext.authorize_read(client, qos, topic) {
            Some(allowed) => allowed,
            None => self.default_allows(),
        }
    }

    /// Counts (and reports to the hooks) a delivery withheld by [`Core::may_read`].
    pub(crate) fn withhold(&self, slot: &SessionSlot, message: &Message, qos: QoS) {
        Metrics::inc(&self.metrics.deliveries_not_authorized);
        Metrics::inc(&self.metrics.messages_dropped);
        slot.dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(client_id = %slot.client_id, topic = %message.topic, "delivery not authorized");
        self.ext
            .dropped(&slot.client_id, message, qos, DropCause::NotAuthorized);
    }
}
