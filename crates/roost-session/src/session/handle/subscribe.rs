//! SUBSCRIBE: the one check that is a protocol error rather than a per-filter
//! refusal (No Local on a shared subscription [MQTT-3.8.3-4]); everything else
//! is answered per filter in SUBACK, see `validate_subscribe`.

use roost_codec::{ReasonCode, Subscribe};

use super::super::{Inbound, Session};
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
}
