//! SUBSCRIBE from the client: each filter is validated, authorized and
//! offered to `on_subscribe`, the accepted ones go into the router, SUBACK
//! answers, and retained messages follow per Retain Handling
//! [MQTT-3.3.1-9..11].

use std::time::Instant;

use roost_codec::topic::parse_shared;
use roost_codec::{QoS, ReasonCode, Subscribe};
use roost_hooks::{Action, Decision, SubscribeCtx};
use roost_session::{Session, SubscriptionGrant};
use smallvec::SmallVec;

use super::super::authz::authorized_per_message;
use super::{Explanation, Flow, Inputs};
use crate::config::DeniedSubscribe;

/// Per filter of a SUBSCRIBE: the reason it is refused, if it is.
type Refusals = Vec<Option<ReasonCode>>;
/// Per filter: the router tag saying it was authorized as a whole (its
/// messages are not checked at delivery while these rules last), or 0.
/// Most SUBSCRIBEs carry one filter: the per-filter lists stay on the stack.
type Cleared = SmallVec<[u32; 4]>;
/// Retained messages to send: the bare filter, its granted QoS, and
/// whether each message is checked against the reader's rules.
type RetainedToSend<'s> = SmallVec<[(&'s str, QoS, bool); 4]>;

/// Applies each filter of a SUBSCRIBE, answers SUBACK, then sends retained
/// messages per Retain Handling [MQTT-3.3.1-9..11].
pub(super) async fn subscribe_all(
    inputs: &Inputs<'_>,
    session: &mut Session,
    subscribe: &Subscribe,
    now: Instant,
) -> Flow {
    let core = inputs.core;
    // Counts the session's existing subscriptions against max_subscriptions
    // (a replaced filter takes no new quota), not just this packet's filters.
    let mut refusals = session.validate_subscribe(subscribe);
    let mut explanation = Explanation::default();
    let mut cleared = Cleared::from_elem(0, subscribe.filters.len());
    if let Some(close) = authorize_filters(
        inputs,
        subscribe,
        &mut refusals,
        &mut cleared,
        &mut explanation,
    )
    .await
    {
        return close;
    }
    let (results, retained) = subscribe_router(inputs, subscribe, refusals, cleared);
    session.complete_subscribe_explained(subscribe, &results, explanation.text());
    crate::persist::on_subscribe(core.persist(), session, subscribe).await;
    let identifier = subscribe.properties.subscription_identifier;
    for (filter, qos, check) in retained {
        let check = check.then_some(&*inputs.key.0);
        for delivery in core.retained_for(filter, qos, identifier, check, now) {
            session.handle_delivery(now, delivery);
        }
    }
    Flow::Continue
}

/// Authorizes each filter not refused already, then offers it to
/// `on_subscribe`. A filter allowed as a whole is `cleared` with the
/// current rules' tag; with `acl_wildcards = "per_message"` a wildcard
/// filter not allowed as a whole may still be held, each message checked
/// at delivery. `Some` when a refusal closes the connection
/// (`denied_subscribe = "disconnect"`).
async fn authorize_filters(
    inputs: &Inputs<'_>,
    subscribe: &Subscribe,
    refusals: &mut Refusals,
    cleared: &mut Cleared,
    explanation: &mut Explanation,
) -> Option<Flow> {
    let core = inputs.core;
    for (((filter, options), refusal), cleared) in subscribe
        .filters
        .iter()
        .zip(refusals.iter_mut())
        .zip(cleared.iter_mut())
    {
        if refusal.is_some() {
            continue;
        }
        let bare = parse_shared(filter).map_or(&**filter, |s| s.filter);
        // Read before asking: a reload meanwhile makes the tag stale.
        let tag = core.current_cleared_tag();
        let allowed = if inputs
            .authorized(Action::Subscribe { qos: options.qos }, bare)
            .await
        {
            *cleared = tag;
            true
        } else {
            core.read_checks()
                && bare.contains(['+', '#'])
                && authorized_per_message(
                    inputs.core,
                    inputs.client,
                    inputs.grant,
                    options.qos,
                    bare,
                )
                .await
        };
        if !allowed {
            tracing::info!(client_id = %inputs.client.client_id, %filter, "subscription not authorized");
            *refusal = Some(match core.config.security.denied_subscribe {
                DeniedSubscribe::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
                DeniedSubscribe::Unspecified => ReasonCode::UNSPECIFIED_ERROR,
                DeniedSubscribe::Disconnect => {
                    return Some(Flow::Close(ReasonCode::NOT_AUTHORIZED, None));
                }
            });
            continue;
        }
        if let Some(hooks) = &core.ext.hooks {
            let ctx = SubscribeCtx::new(inputs.client, filter, *options);
            if let Decision::Deny {
                reason,
                reason_string,
            } = core.ext.decide(hooks.on_subscribe(&ctx)).await
            {
                *refusal = Some(reason);
                explanation.add(reason_string);
            }
        }
    }
    None
}

/// Puts the accepted filters into the router, each as the session grants
/// it (`SubscriptionGrant`: at most the broker's Maximum QoS, retained
/// messages per Retain Handling, none for shared subscriptions
/// [MQTT-4.8.2-*]). Returns the SUBACK's reason codes and the retained
/// messages to send.
fn subscribe_router<'s>(
    inputs: &Inputs<'_>,
    subscribe: &'s Subscribe,
    refusals: Refusals,
    cleared: Cleared,
) -> (SmallVec<[ReasonCode; 4]>, RetainedToSend<'s>) {
    let core = inputs.core;
    let max_qos = core.session_config.maximum_qos;
    let identifier = subscribe.properties.subscription_identifier;
    let mut results: SmallVec<[ReasonCode; 4]> = SmallVec::with_capacity(subscribe.filters.len());
    let mut retained = RetainedToSend::new();
    let current_tag = core.current_cleared_tag();
    for (((filter, options), refusal), cleared) in
        subscribe.filters.iter().zip(refusals).zip(cleared)
    {
        if let Some(reason) = refusal {
            results.push(reason);
            continue;
        }
        let grant = SubscriptionGrant::new(filter, *options, identifier, max_qos);
        let existed = core.subscribe(inputs.key, filter, grant.subscription, cleared);
        results.push(grant.reason_code());
        if grant.sends_retained(existed) {
            let check = core.read_checks() && (cleared == 0 || cleared != current_tag);
            retained.push((grant.filter, grant.qos(), check));
        }
    }
    (results, retained)
}
