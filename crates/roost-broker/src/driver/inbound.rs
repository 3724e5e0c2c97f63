//! What the broker does with each decoded packet once the session has
//! validated it: authorize and route publishes, update the router for
//! (un)subscribes, run re-authentication — with the embedder's authorizers
//! and hooks consulted on the way. With none registered, no hook code runs.

use std::sync::Arc;
use std::time::Instant;

use roost_codec::topic::parse_shared;
use roost_codec::{Auth, AuthProperties, Packet, QoS, ReasonCode, Subscribe, Unsubscribe};
use roost_hooks::{
    Action, AuthExchange, AuthStep, ClientInfo, Decision, Grant, MessageView, PublishCtx,
    PublishDecision, SubscribeCtx,
};
use roost_session::{Inbound, Message, Session, SubscriptionGrant, Violation};
use smallvec::SmallVec;

use super::authz::{AuthzCache, authorized, authorized_per_message};
use super::events::{self, deliver};
use crate::config::{DeniedPublish, DeniedSubscribe};
use crate::core::Core;
use crate::metrics::Metrics;
use crate::slot::SessionKey;

/// Whether the connection goes on.
pub(crate) enum Flow {
    Continue,
    Disconnect {
        publish_will: bool,
    },
    /// Close with DISCONNECT, this reason and an optional Reason String (e.g.
    /// failed re-authentication, a hook's denial).
    Close(ReasonCode, Option<Box<str>>),
}

/// Publishes whose PUBACK / PUBREC is queued in the session but may only go
/// out once their batch is stored (`durability = "sync"`). The driver handles
/// every packet of a read before it waits on them, so a client with many
/// messages in flight gets them group-committed together instead of one
/// fsync per message; nothing is written to the client before the wait ends.
#[derive(Default)]
pub(crate) struct StoreWaits(Vec<roost_store::CommitTicket>);

impl StoreWaits {
    /// Keeps a publish's ticket when acknowledgements wait for the store.
    fn hold(&mut self, core: &Core, ticket: Option<roost_store::CommitTicket>) {
        if let (Some(persist), Some(ticket)) = (core.persist(), ticket)
            && persist.acks_wait()
        {
            self.0.push(ticket);
        }
    }

    /// Waits until every held batch is stored (tickets complete in order, so
    /// after the first wait the rest are mostly done already).
    pub(crate) async fn settle(&mut self, core: &Core) {
        if let Some(persist) = core.persist() {
            for ticket in self.0.drain(..) {
                persist.acknowledged(Some(ticket)).await;
            }
        }
    }
}

/// What handling one packet needs from its connection.
pub(crate) struct Inputs<'a> {
    pub(crate) core: &'a Arc<Core>,
    pub(crate) key: &'a SessionKey,
    pub(crate) client: &'a Arc<ClientInfo>,
    pub(crate) grant: &'a Grant,
    /// This session's cached authorization answers.
    pub(crate) authz: AuthzCache,
    /// Back-pressure: whether this connection is paused, and on whom.
    pub(crate) credit: super::backpressure::Credit,
}

/// Feeds one packet to the session and carries out what it asks for.
pub(crate) async fn handle_packet(
    inputs: &Inputs<'_>,
    session: &mut Session,
    exchange: &mut Option<Box<dyn AuthExchange>>,
    waits: &mut StoreWaits,
    packet: Packet,
    now: Instant,
) -> Result<Flow, Violation> {
    let core = inputs.core;
    if let Some(hooks) = &core.ext.hooks {
        // Acknowledgements and pings are handled inside the session; offer
        // them to the hooks first.
        let client = inputs.client.as_ref();
        let hook = match &packet {
            Packet::PubAck(a) => Some(hooks.on_puback(client, a.packet_id, a.reason_code)),
            Packet::PubRec(a) => Some(hooks.on_pubrec(client, a.packet_id, a.reason_code)),
            Packet::PubRel(a) => Some(hooks.on_pubrel(client, a.packet_id, a.reason_code)),
            Packet::PubComp(a) => Some(hooks.on_pubcomp(client, a.packet_id, a.reason_code)),
            Packet::PingReq => Some(hooks.on_ping(client)),
            Packet::Auth(a) => Some(hooks.on_auth(client, a.reason_code)),
            _ => None,
        };
        if let Some(hook) = hook
            && let Decision::Deny {
                reason,
                reason_string,
            } = core.ext.decide(hook).await
        {
            return Ok(Flow::Close(reason, reason_string.map(Into::into)));
        }
    }
    // A PUBACK / PUBREC completes an outbound message and may move queued
    // ones into the window: note what the session holds first (only when a
    // hook wants message events).
    let acked = events::acked(core, session, &packet);
    let held = if acked.is_some() || matches!(packet, Packet::PubComp(_)) {
        events::Held::before(core, session.state(), false)
    } else {
        None
    };
    let inbound = session.handle_packet(now, packet)?;
    if let Some(acked) = acked {
        events::report_acked(core, &inputs.client.client_id, acked);
    }
    if let Some(held) = held {
        held.report(core, session.state(), now);
    }
    match inbound {
        Inbound::Nothing => {}
        Inbound::Publish { message, packet_id } => {
            return Ok(publish(inputs, session, waits, message, packet_id, now).await);
        }
        Inbound::Subscribe(subscribe) => {
            return Ok(subscribe_all(inputs, session, &subscribe, now).await);
        }
        Inbound::Unsubscribe(unsubscribe) => unsubscribe_all(inputs, session, &unsubscribe).await,
        Inbound::Disconnect { publish_will, .. } => return Ok(Flow::Disconnect { publish_will }),
        Inbound::Auth(auth) => {
            return Ok(reauthenticate(inputs, session, auth, exchange).await);
        }
    }
    Ok(Flow::Continue)
}

/// Authorizes, offers to `on_publish`, routes, and acknowledges one message.
async fn publish(
    inputs: &Inputs<'_>,
    session: &mut Session,
    waits: &mut StoreWaits,
    mut message: Message,
    packet_id: Option<roost_codec::PacketId>,
    now: Instant,
) -> Flow {
    let core = inputs.core;
    Metrics::inc(&core.metrics.messages_received);
    // The acknowledgement flow runs at the QoS the client used, whatever a
    // hook does to the routed copy.
    let flow_qos = message.qos;
    let action = Action::Publish {
        qos: message.qos,
        retain: message.retain,
    };
    if !authorized(inputs, action, &message.topic).await {
        tracing::info!(client_id = %inputs.client.client_id, topic = %message.topic, "publish not authorized");
        let cause = roost_hooks::DropCause::NotAuthorized;
        core.ext
            .dropped(&inputs.client.client_id, &message, message.qos, cause);
        return refuse_publish(
            inputs,
            session,
            &message,
            packet_id,
            ReasonCode::NOT_AUTHORIZED,
            None,
        );
    }
    if let Some(hooks) = &core.ext.hooks {
        let view = MessageView::new(
            message.topic.clone(),
            message.payload.clone(),
            message.qos,
            message.retain,
            message.properties.user_properties.clone(),
        );
        let mut ctx = PublishCtx::new(inputs.client, packet_id, view);
        match core.ext.decide_publish(hooks.on_publish(&mut ctx)).await {
            PublishDecision::Allow => {
                let rewritten = ctx.message;
                let topic = if rewritten.topic == message.topic
                    || roost_codec::topic::validate_topic_name(&rewritten.topic).is_ok()
                {
                    rewritten.topic
                } else {
                    tracing::warn!(topic = %rewritten.topic, "on_publish rewrote the topic to an invalid name; keeping the original");
                    message.topic.clone()
                };
                let rewritten_action = Action::Publish {
                    qos: rewritten.qos,
                    retain: rewritten.retain,
                };
                // A rewrite goes through the same gate as the original: a
                // hook cannot route a client's message where (or how) the
                // client may not publish.
                if (topic != message.topic || rewritten_action != action)
                    && !authorized(inputs, rewritten_action, &topic).await
                {
                    tracing::info!(client_id = %inputs.client.client_id, %topic, "rewritten publish not authorized");
                    let cause = roost_hooks::DropCause::NotAuthorized;
                    core.ext
                        .dropped(&inputs.client.client_id, &message, message.qos, cause);
                    let reason = ReasonCode::NOT_AUTHORIZED;
                    return refuse_publish(inputs, session, &message, packet_id, reason, None);
                }
                message.topic = topic;
                message.payload = rewritten.payload;
                message.qos = rewritten.qos;
                message.retain = rewritten.retain;
                message.properties.user_properties = rewritten.user_properties;
            }
            PublishDecision::Deny {
                reason,
                reason_string,
            } => {
                let explained = reason_string.as_deref();
                return refuse_publish(inputs, session, &message, packet_id, reason, explained);
            }
            PublishDecision::Disconnect(reason) => return Flow::Close(reason, None),
        }
    }
    // A retained message a limit refuses: a 5.0 QoS 1/2 publisher is told
    // with 0x97 and the message is not routed either (an error code means
    // "not accepted"); others cannot be told, so it is routed, not retained.
    if let Some(packet_id) = packet_id
        && message.retain
        && session.version().is_v5()
        && core.retained.admit(&message).is_err()
    {
        session.complete_publish(packet_id, flow_qos, ReasonCode::QUOTA_EXCEEDED);
        return Flow::Continue;
    }
    let routed = core.route(message, Some(inputs.key), now);
    let reached = routed.reached();
    if let Some(packet_id) = packet_id {
        let reason = if reached == 0
            && session.version().is_v5()
            && core.config.mqtt.no_matching_subscribers
        {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        session.complete_publish(packet_id, flow_qos, reason);
    }
    // With a store, the message's enqueues and this client's inbound QoS 2
    // id are written as one batch before anyone gets it.
    let (ticket, congested) = core.deliver_from(
        routed,
        crate::persist::session_events(core.persist(), session),
        now,
        Some(inputs.key),
    );
    if let Some(subscriber) = congested {
        // Back-pressure: stop handling and reading until it drains.
        inputs.credit.note(core, subscriber);
    }
    if reached > 0 {
        // A client subscribed to its own topic gets its copy in order with
        // everything else this connection sends (acks, PINGRESP).
        let mut own = std::collections::VecDeque::new();
        inputs
            .key
            .0
            .drain_outbox(&mut own, core.config.limits.pause_at(), false);
        for delivery in own {
            deliver(core, session, delivery, now);
        }
    }
    // durability = "sync": PUBACK / PUBREC go out once the batch is fsynced.
    waits.hold(core, ticket);
    Flow::Continue
}

/// Answers a refused PUBLISH: 5.0 gets the reason code (and the Reason
/// String, if any) in PUBACK/PUBREC; 3.x cannot carry one, so the message is
/// acknowledged and dropped (like Mosquitto) — or the connection is closed
/// when configured.
fn refuse_publish(
    inputs: &Inputs<'_>,
    session: &mut Session,
    message: &Message,
    packet_id: Option<roost_codec::PacketId>,
    reason: ReasonCode,
    reason_string: Option<&str>,
) -> Flow {
    Metrics::inc(&inputs.core.metrics.messages_dropped);
    if inputs.core.config.security.denied_publish == DeniedPublish::Disconnect {
        return Flow::Close(reason, reason_string.map(Into::into));
    }
    if let Some(packet_id) = packet_id {
        let code = if session.version().is_v5() {
            reason
        } else {
            ReasonCode::SUCCESS
        };
        session.complete_publish_explained(packet_id, message.qos, code, reason_string);
    }
    Flow::Continue
}

/// Applies each filter of a SUBSCRIBE, answers SUBACK, then sends retained
/// messages per Retain Handling [MQTT-3.3.1-9..11].
async fn subscribe_all(
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
    // Per filter: the router tag saying it was authorized as a whole (its
    // messages are not checked at delivery while these rules last), or 0.
    let mut cleared: SmallVec<[u32; 4]> = SmallVec::from_elem(0, subscribe.filters.len());
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
        let allowed = if authorized(inputs, Action::Subscribe { qos: options.qos }, bare).await {
            *cleared = tag;
            true
        } else {
            // acl_wildcards = "per_message": a wildcard filter not allowed
            // as a whole may still be held, each message checked at delivery.
            core.read_checks()
                && bare.contains(['+', '#'])
                && authorized_per_message(inputs, options.qos, bare).await
        };
        if !allowed {
            tracing::info!(client_id = %inputs.client.client_id, %filter, "subscription not authorized");
            *refusal = Some(match core.config.security.denied_subscribe {
                DeniedSubscribe::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
                DeniedSubscribe::Unspecified => ReasonCode::UNSPECIFIED_ERROR,
                DeniedSubscribe::Disconnect => {
                    return Flow::Close(ReasonCode::NOT_AUTHORIZED, None);
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
    let max_qos = core.session_config.maximum_qos;
    let identifier = subscribe.properties.subscription_identifier;
    // Most SUBSCRIBEs carry one filter: the per-filter lists stay on the stack.
    let mut results: SmallVec<[ReasonCode; 4]> = SmallVec::with_capacity(subscribe.filters.len());
    let mut retained: SmallVec<[(&str, QoS, bool); 4]> = SmallVec::new();
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
    session.complete_subscribe_explained(subscribe, &results, explanation.text());
    crate::persist::on_subscribe(core.persist(), session, subscribe).await;
    for (filter, qos, check) in retained {
        let check = check.then_some(&*inputs.key.0);
        for delivery in core.retained_for(filter, qos, identifier, check, now) {
            deliver(core, session, delivery, now);
        }
    }
    Flow::Continue
}

async fn unsubscribe_all(inputs: &Inputs<'_>, session: &mut Session, unsubscribe: &Unsubscribe) {
    let core = inputs.core;
    let mut refusals: Vec<Option<ReasonCode>> = vec![None; unsubscribe.filters.len()];
    let mut explanation = Explanation::default();
    if let Some(hooks) = &core.ext.hooks {
        for (filter, refusal) in unsubscribe.filters.iter().zip(refusals.iter_mut()) {
            if let Decision::Deny {
                reason,
                reason_string,
            } = core
                .ext
                .decide(hooks.on_unsubscribe(inputs.client, filter))
                .await
            {
                *refusal = Some(reason);
                explanation.add(reason_string);
            }
        }
    }
    let results: Vec<ReasonCode> = unsubscribe
        .filters
        .iter()
        .zip(refusals)
        .map(|(filter, refusal)| {
            if let Some(reason) = refusal {
                return reason;
            }
            if core.unsubscribe(inputs.key, filter) {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            }
        })
        .collect();
    session.complete_unsubscribe_explained(unsubscribe, &results, explanation.text());
    crate::persist::on_unsubscribe(core.persist(), session, unsubscribe).await;
}

/// Re-authentication on a live connection (AUTH 0x19, then 0x18 rounds)
/// [MQTT-4.12.1-*]. The session has already checked the method matches the
/// one used at CONNECT [MQTT-4.12.0-5].
async fn reauthenticate(
    inputs: &Inputs<'_>,
    session: &mut Session,
    auth: Auth,
    exchange: &mut Option<Box<dyn AuthExchange>>,
) -> Flow {
    let Some(method) = session.auth_method().cloned() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR, None);
    };
    if auth.reason_code == ReasonCode::REAUTHENTICATE {
        *exchange = inputs
            .core
            .ext
            .enhanced
            .as_ref()
            .and_then(|a| a.begin(&method, inputs.client));
    }
    let Some(current) = exchange.as_mut() else {
        return Flow::Close(ReasonCode::PROTOCOL_ERROR, None);
    };
    let step = current.step(auth.properties.authentication_data).await;
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
            session.send_auth(reply(ReasonCode::CONTINUE_AUTHENTICATION, Some(data)));
        }
        AuthStep::Success { data, grant } => {
            *exchange = None;
            // Authorization keeps using the identity of the first
            // authentication: re-authenticating as someone else ends the
            // connection instead of leaving it half-switched.
            if let Some(name) = &grant.username
                && inputs.client.username.as_deref() != Some(name.as_str())
            {
                tracing::warn!(client_id = %inputs.client.client_id, "re-authentication as another user; closing");
                return Flow::Close(ReasonCode::NOT_AUTHORIZED, None);
            }
            session.send_auth(reply(ReasonCode::SUCCESS, data));
        }
        AuthStep::Fail(reason) => {
            *exchange = None;
            // Failed re-authentication: DISCONNECT and close [MQTT-4.12.1-2].
            return Flow::Close(reason, None);
        }
    }
    Flow::Continue
}

/// The Reason String of a SUBACK / UNSUBACK: one per packet, so the hooks'
/// reasons for refusing its filters are joined (each distinct one once).
#[derive(Default)]
struct Explanation(Option<String>);

impl Explanation {
    fn add(&mut self, reason_string: Option<String>) {
        let Some(reason) = reason_string.filter(|r| !r.is_empty()) else {
            return;
        };
        match &mut self.0 {
            None => self.0 = Some(reason),
            Some(text) if text.split("; ").any(|r| r == reason) => {}
            Some(text) => {
                text.push_str("; ");
                text.push_str(&reason);
            }
        }
    }

    fn text(&self) -> Option<&str> {
        self.0.as_deref()
    }
}
