//! What the broker does with each decoded packet once the session has
//! validated it: route publishes, update the router for (un)subscribes, run
//! re-authentication.

use std::sync::Arc;
use std::time::Instant;

use bytestring::ByteString;
use roost_codec::topic::parse_shared;
use roost_codec::{
    Auth, AuthProperties, Packet, ReasonCode, RetainHandling, Subscribe, Unsubscribe,
};
use roost_router::Subscription;
use roost_session::{Inbound, Session, Violation};

use crate::auth::{AuthExchange, AuthStep};
use crate::core::Core;
use crate::metrics::Metrics;
use crate::slot::SessionKey;

/// Whether the connection goes on.
pub(crate) enum Flow {
    Continue,
    Disconnect {
        publish_will: bool,
    },
    /// Close with DISCONNECT and this reason (e.g. failed re-authentication).
    Close(ReasonCode),
}

/// Feeds one packet to the session and carries out what it asks for.
pub(crate) fn handle_packet(
    core: &Arc<Core>,
    session: &mut Session,
    key: &SessionKey,
    packet: Packet,
    auth_method: &Option<ByteString>,
    exchange: &mut Option<Box<dyn AuthExchange>>,
    now: Instant,
) -> Result<Flow, Violation> {
    match session.handle_packet(now, packet)? {
        Inbound::Nothing => {}
        Inbound::Publish { message, packet_id } => {
            Metrics::inc(&core.metrics.messages_received);
            let qos = message.qos;
            let reached = core.publish(message, Some(key), now);
            if let Some(packet_id) = packet_id {
                let reason = if reached == 0 && session.version().is_v5() {
                    ReasonCode::NO_MATCHING_SUBSCRIBERS
                } else {
                    ReasonCode::SUCCESS
                };
                session.complete_publish(packet_id, qos, reason);
            }
        }
        Inbound::Subscribe(subscribe) => subscribe_all(core, session, key, &subscribe, now),
        Inbound::Unsubscribe(unsubscribe) => unsubscribe_all(core, session, key, &unsubscribe),
        Inbound::Disconnect { publish_will, .. } => return Ok(Flow::Disconnect { publish_will }),
        Inbound::Auth(auth) => {
            return Ok(reauthenticate(core, session, auth, auth_method, exchange));
        }
    }
    Ok(Flow::Continue)
}

/// Applies each filter of a SUBSCRIBE, answers SUBACK, then sends retained
/// messages per Retain Handling [MQTT-3.3.1-9..11].
fn subscribe_all(
    core: &Core,
    session: &mut Session,
    key: &SessionKey,
    subscribe: &Subscribe,
    now: Instant,
) {
    // Counts the session's existing subscriptions against max_subscriptions
    // (a replaced filter takes no new quota), not just this packet's filters.
    let refusals = session.validate_subscribe(subscribe);
    let max_qos = core.session_config.maximum_qos;
    let identifier = subscribe.properties.subscription_identifier;
    let mut results = Vec::with_capacity(subscribe.filters.len());
    let mut retained = Vec::new();
    {
        let mut router = core.router.write();
        for ((filter, options), refusal) in subscribe.filters.iter().zip(refusals) {
            if let Some(reason) = refusal {
                results.push(reason);
                continue;
            }
            let granted = options.qos.min(max_qos);
            let mut options = *options;
            options.qos = granted;
            let (group, bare_filter) = match parse_shared(filter) {
                Some(shared) => (Some(shared.group), shared.filter),
                None => (None, &**filter),
            };
            let existed = router.subscribe(
                key.clone(),
                bare_filter,
                group,
                Subscription {
                    options,
                    identifier,
                },
            );
            results.push(ReasonCode(granted as u8));
            // Shared subscriptions never get retained messages on subscribe [MQTT-4.8.2-*].
            let send_retained = group.is_none()
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                retained.push((bare_filter.to_string(), granted));
            }
        }
    }
    session.complete_subscribe(subscribe, &results);
    for (filter, qos) in retained {
        for delivery in core.retained_for(&filter, qos, identifier, now) {
            session.handle_delivery(now, delivery);
        }
    }
}

fn unsubscribe_all(
    core: &Core,
    session: &mut Session,
    key: &SessionKey,
    unsubscribe: &Unsubscribe,
) {
    let mut router = core.router.write();
    let results: Vec<ReasonCode> = unsubscribe
        .filters
        .iter()
        .map(|filter| {
            let (group, bare) = match parse_shared(filter) {
                Some(shared) => (Some(shared.group), shared.filter),
                None => (None, &**filter),
            };
            if router.unsubscribe(key, bare, group) {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            }
        })
        .collect();
    drop(router);
    session.complete_unsubscribe(unsubscribe, &results);
}

/// Re-authentication on a live connection (AUTH 0x19, then 0x18 rounds)
/// [MQTT-4.12.1-*]. The session has already checked the method matches the
/// one used at CONNECT [MQTT-4.12.0-5].
fn reauthenticate(
    core: &Core,
    session: &mut Session,
    auth: Auth,
    auth_method: &Option<ByteString>,
    exchange: &mut Option<Box<dyn AuthExchange>>,
) -> Flow {
    let Some(method) = auth_method.clone() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR);
    };
    if auth.reason_code == ReasonCode::REAUTHENTICATE {
        *exchange = core
            .enhanced_auth
            .as_ref()
            .and_then(|a| a.begin(&method, session.client_id()));
    }
    let Some(current) = exchange.as_mut() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR);
    };
    let step = current.step(auth.properties.authentication_data);
    let reply = |reason_code: ReasonCode, data| Auth {
        reason_code,
        properties: AuthProperties {
            authentication_method: Some(method.clone()),
            authentication_data: data,
            ..AuthProperties::default()
        },
    };
    match step {
        AuthStep::Continue(data) => {
            session.send_auth(reply(ReasonCode::CONTINUE_AUTHENTICATION, Some(data)))
        }
        AuthStep::Success(data) => {
            *exchange = None;
            session.send_auth(reply(ReasonCode::SUCCESS, data));
        }
        AuthStep::Fail(reason) => {
            *exchange = None;
            // Failed re-authentication: DISCONNECT and close [MQTT-4.12.1-2].
            return Flow::Close(reason);
        }
    }
    Flow::Continue
}
