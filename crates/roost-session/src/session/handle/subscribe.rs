//! SUBSCRIBE: the one check that is a protocol error rather than a per-filter
//! refusal (No Local on a shared subscription [MQTT-3.8.3-4]); everything else
//! is answered per filter in SUBACK, see `validate_subscribe`.

use bytestring::ByteString;
use roost_codec::{ReasonCode, Subscribe, Subscription};

use super::super::{Inbound, Session};
use crate::config::SessionConfig;
use crate::state::SessionState;
use crate::subscribe_check::validate_with_existing;
use crate::violation::Violation;

impl Session {
    pub(super) fn handle_subscribe(&mut self, subscribe: Subscribe) -> Result<Inbound, Violation> {
        if self.version.is_v5()
            && subscribe
                .filters
                .iter()
                .any(|(filter, options)| options.no_local && filter.starts_with("$share/"))
        {
            return Err(Violation::SharedSubscriptionNoLocal);
        }
        Ok(Inbound::Subscribe(subscribe))
    }

    /// [`crate::validate_subscribe`] counting this session's existing
    /// subscriptions against `max_subscriptions` (a filter already subscribed
    /// is a replacement and takes no new quota).
    pub fn validate_subscribe(&self, subscribe: &Subscribe) -> Vec<Option<ReasonCode>> {
        let subs = &self.state.subscriptions;
        validate_with_existing(subscribe, &self.config, subs.len(), |f| {
            subs.contains_key(f)
        })
    }

    /// Records a subscription the server makes for the client (the
    /// management API), as a granted SUBSCRIBE entry would, but sends
    /// nothing: the client asked for nothing, so no SUBACK. Returns the
    /// subscription it replaced.
    pub fn subscribe_for_client(
        &mut self,
        filter: ByteString,
        subscription: Subscription,
    ) -> Option<Subscription> {
        self.state.subscriptions.insert(filter, subscription)
    }

    /// Removes a subscription for the client (the management API), sending
    /// nothing (no UNSUBACK); whether it existed.
    pub fn unsubscribe_for_client(&mut self, filter: &str) -> bool {
        self.state.subscriptions.remove(filter).is_some()
    }
}

impl SessionState {
    /// [`Session::validate_subscribe`] for a session parked offline.
    pub fn validate_subscribe(
        &self,
        subscribe: &Subscribe,
        config: &SessionConfig,
    ) -> Vec<Option<ReasonCode>> {
        let subs = &self.subscriptions;
        validate_with_existing(subscribe, config, subs.len(), |f| subs.contains_key(f))
    }
}
