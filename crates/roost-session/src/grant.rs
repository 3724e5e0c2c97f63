//! What the server grants for one accepted SUBSCRIBE entry: the QoS capped at
//! the server's Maximum QoS, the share name split off the filter, the SUBACK
//! code, and whether retained messages go out now (Retain Handling; never
//! for a shared subscription). Pure: the broker applies it to the router.

use roost_codec::topic::parse_shared;
use roost_codec::{QoS, ReasonCode, RetainHandling, Subscription, SubscriptionOptions};

/// The grant for one SUBSCRIBE entry that passed validation and authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionGrant<'a> {
    /// The share name of `$share/{group}/{filter}`; `None` when not shared.
    pub group: Option<&'a str>,
    /// The filter the router matches: without `$share/{group}/`.
    pub filter: &'a str,
    /// Options as granted (`qos` capped at the server's maximum) and the
    /// SUBSCRIBE's Subscription Identifier.
    pub subscription: Subscription,
}

impl<'a> SubscriptionGrant<'a> {
    /// Grants `requested` on `filter` (as the client sent it, `$share/` form
    /// included) with at most `maximum_qos`: the server may grant a lower
    /// QoS than requested, and the SUBACK shows the QoS granted
    /// [MQTT-3.8.4-7].
    pub fn new(
        filter: &'a str,
        requested: SubscriptionOptions,
        identifier: Option<u32>,
        maximum_qos: QoS,
    ) -> Self {
        let (group, filter) = match parse_shared(filter) {
            Some(shared) => (Some(shared.group), shared.filter),
            None => (None, filter),
        };
        let mut options = requested;
        options.qos = requested.qos.min(maximum_qos);
        Self {
            group,
            filter,
            subscription: Subscription {
                options,
                identifier,
            },
        }
    }

    /// The granted QoS.
    pub fn qos(&self) -> QoS {
        self.subscription.options.qos
    }

    /// The SUBACK code for this entry: the granted QoS (0x00..=0x02)
    /// [MQTT-3.8.4-7].
    pub fn reason_code(&self) -> ReasonCode {
        ReasonCode(self.qos() as u8)
    }

    /// Whether the retained messages matching the filter are sent now, given
    /// whether the subscription `existed` before: Retain Handling 0 always,
    /// 1 only for a new subscription, 2 never [MQTT-3.3.1-9] [MQTT-3.3.1-10]
    /// [MQTT-3.3.1-11]; a shared subscription never gets them on subscribe.
    pub fn sends_retained(&self, existed: bool) -> bool {
        self.group.is_none()
            && match self.subscription.options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(qos: QoS, retain_handling: RetainHandling) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            retain_handling,
            ..SubscriptionOptions::default()
        }
    }

    #[test]
    fn v5_mqtt_3_8_4_7_granted_qos_is_the_requested_one_capped_at_the_server_maximum() {
        let send = RetainHandling::SendAtSubscribe;
        for (asked, max, want) in [
            (QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtLeastOnce),
            (QoS::ExactlyOnce, QoS::AtMostOnce, QoS::AtMostOnce),
            (QoS::AtMostOnce, QoS::ExactlyOnce, QoS::AtMostOnce),
            (QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce),
        ] {
            let grant = SubscriptionGrant::new("a/b", requested(asked, send), Some(7), max);
            assert_eq!(grant.qos(), want, "{asked:?} under {max:?}");
            assert_eq!(grant.reason_code(), ReasonCode(want as u8));
            assert_eq!(grant.subscription.identifier, Some(7));
        }
    }

    #[test]
    fn a_shared_filter_is_split_into_group_and_filter() {
        let options = requested(QoS::AtLeastOnce, RetainHandling::SendAtSubscribe);
        let grant = SubscriptionGrant::new("$share/g/a/+", options, None, QoS::ExactlyOnce);
        assert_eq!((grant.group, grant.filter), (Some("g"), "a/+"));
        let grant = SubscriptionGrant::new("a/+", options, None, QoS::ExactlyOnce);
        assert_eq!((grant.group, grant.filter), (None, "a/+"));
    }

    #[test]
    fn v5_mqtt_3_3_1_9_retain_handling_0_sends_retained_at_every_subscribe() {
        let options = requested(QoS::AtMostOnce, RetainHandling::SendAtSubscribe);
        let grant = SubscriptionGrant::new("a", options, None, QoS::ExactlyOnce);
        assert!(grant.sends_retained(false));
        assert!(grant.sends_retained(true));
    }

    #[test]
    fn v5_mqtt_3_3_1_10_retain_handling_1_sends_retained_only_for_a_new_subscription() {
        let options = requested(QoS::AtMostOnce, RetainHandling::SendIfNew);
        let grant = SubscriptionGrant::new("a", options, None, QoS::ExactlyOnce);
        assert!(grant.sends_retained(false));
        assert!(!grant.sends_retained(true));
    }

    #[test]
    fn v5_mqtt_3_3_1_11_retain_handling_2_never_sends_retained() {
        let options = requested(QoS::AtMostOnce, RetainHandling::DoNotSend);
        let grant = SubscriptionGrant::new("a", options, None, QoS::ExactlyOnce);
        assert!(!grant.sends_retained(false));
        assert!(!grant.sends_retained(true));
    }

    #[test]
    fn a_shared_subscription_gets_no_retained_messages_on_subscribe() {
        for rh in [RetainHandling::SendAtSubscribe, RetainHandling::SendIfNew] {
            let options = requested(QoS::AtMostOnce, rh);
            let grant = SubscriptionGrant::new("$share/g/a", options, None, QoS::ExactlyOnce);
            assert!(!grant.sends_retained(false), "{rh:?}");
        }
    }
}
