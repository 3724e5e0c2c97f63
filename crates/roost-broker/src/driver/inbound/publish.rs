//! PUBLISH from the client: authorize it, offer it to `on_publish` (which
//! may rewrite, deny or disconnect), admit a retained one, route it, then
//! acknowledge it (after the store, with `durability = "sync"`).

use std::collections::VecDeque;
use std::time::Instant;

use roost_codec::{PacketId, ReasonCode};
use roost_hooks::{Action, DropCause, MessageView, PublishCtx, PublishDecision};
use roost_session::{Message, Session};

use super::{Flow, Inputs, StoreWaits};
use crate::config::DeniedPublish;
use crate::metrics::Metrics;

/// Authorizes, offers to `on_publish`, routes, and acknowledges one message.
/// The acknowledgement flow runs at the QoS the client used, whatever a
/// hook does to the routed copy.
pub(super) async fn publish(
    inputs: &Inputs<'_>,
    session: &mut Session,
    waits: &mut StoreWaits,
    mut message: Message,
    packet_id: Option<PacketId>,
    now: Instant,
) -> Flow {
    if let Some(counter) = inputs
        .core
        .metrics
        .messages_received_by_qos
        .get(message.qos as usize)
    {
        Metrics::inc(counter);
    }
    let flow_qos = message.qos;
    let action = Action::Publish {
        qos: message.qos,
        retain: message.retain,
    };
    if !inputs.authorized(action, &message.topic).await {
        tracing::info!(client_id = %inputs.client.client_id, topic = %message.topic, "publish not authorized");
        return refuse_unauthorized(inputs, session, &message, packet_id);
    }
    if let Some(refusal) = offer_to_hook(inputs, session, &mut message, packet_id, action).await {
        return refusal;
    }
    if let Some(packet_id) = packet_id
        && !admit_retained(inputs, session, &message)
    {
        session.complete_publish(packet_id, flow_qos, ReasonCode::QUOTA_EXCEEDED);
        return Flow::Continue;
    }
    route(
        inputs,
        session,
        waits,
        message,
        packet_id.map(|id| (id, flow_qos)),
        now,
    );
    Flow::Continue
}

/// Offers the message to `on_publish`, if a hook is registered, and applies
/// its decision: a rewrite (topic, payload, QoS, retain, user properties)
/// replaces the message; a denial or disconnect is the answer returned. A
/// rewrite goes through the same gate as the original: a hook cannot route
/// a client's message where (or how) the client may not publish.
async fn offer_to_hook(
    inputs: &Inputs<'_>,
    session: &mut Session,
    message: &mut Message,
    packet_id: Option<PacketId>,
    action: Action,
) -> Option<Flow> {
    let core = inputs.core;
    let hooks = core.ext.hooks.as_ref()?;
    let view = MessageView::new(
        message.topic.clone(),
        message.payload.clone(),
        message.qos,
        message.retain,
        message.properties.user_properties.clone(),
    );
    let mut ctx = PublishCtx::new(inputs.client, packet_id, view);
    match core.ext.decide_publish(hooks.on_publish(&mut ctx)).await {
        PublishDecision::Allow => {}
        PublishDecision::Deny {
            reason,
            reason_string,
        } => {
            let explained = reason_string.as_deref();
            return Some(refuse(
                inputs, session, message, packet_id, reason, explained,
            ));
        }
        PublishDecision::Disconnect(reason) => return Some(Flow::Close(reason, None)),
    }
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
    if (topic != message.topic || rewritten_action != action)
        && !inputs.authorized(rewritten_action, &topic).await
    {
        tracing::info!(client_id = %inputs.client.client_id, %topic, "rewritten publish not authorized");
        return Some(refuse_unauthorized(inputs, session, message, packet_id));
    }
    message.topic = topic;
    message.payload = rewritten.payload;
    message.qos = rewritten.qos;
    message.retain = rewritten.retain;
    message.properties.user_properties = rewritten.user_properties;
    None
}

/// Whether a retained message may be kept. A 5.0 QoS 1/2 publisher whose
/// retained message a limit refuses is told with 0x97 and the message is
/// not routed either (an error code means "not accepted"); others cannot
/// be told, so theirs is routed, not retained.
fn admit_retained(inputs: &Inputs<'_>, session: &Session, message: &Message) -> bool {
    !(message.retain && session.version().is_v5() && inputs.core.retained.admit(message).is_err())
}

/// Routes the message and acknowledges it (`ack`: its packet id and the QoS
/// of its flow). With a store, the message's enqueues and this client's
/// inbound QoS 2 id are written as one batch before anyone gets it; with
/// `durability = "sync"` the PUBACK / PUBREC waits for that batch.
fn route(
    inputs: &Inputs<'_>,
    session: &mut Session,
    waits: &mut StoreWaits,
    message: Message,
    ack: Option<(PacketId, roost_codec::QoS)>,
    now: Instant,
) {
    let core = inputs.core;
    let mut routed = core.route_staged(message, Some(inputs.key), now, Some(&mut waits.2));
    waits.1.extend(routed.take_forwarded());
    let reached = routed.reached();
    if let Some((packet_id, flow_qos)) = ack {
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
    let (ticket, congested) =
        core.deliver_from(routed, core.session_events(session), now, Some(inputs.key));
    if let Some(subscriber) = congested {
        // Back-pressure: stop handling and reading until it drains.
        inputs.credit.note(core, subscriber);
    }
    if reached > 0 {
        // A client subscribed to its own topic gets its copy in order with
        // everything else this connection sends (acks, PINGRESP).
        let mut own = VecDeque::new();
        let pause_at = core.config.limits.pause_at();
        inputs.key.0.drain_outbox(&mut own, pause_at, false);
        for delivery in own {
            session.handle_delivery(now, delivery);
        }
    }
    waits.hold(core, ticket);
}

/// Refuses a message the gate denies: the hooks hear it was dropped, the
/// client gets 0x87 (see [`refuse`]).
fn refuse_unauthorized(
    inputs: &Inputs<'_>,
    session: &mut Session,
    message: &Message,
    packet_id: Option<PacketId>,
) -> Flow {
    let client_id = &inputs.client.client_id;
    let cause = DropCause::NotAuthorized;
    inputs
        .core
        .ext
        .dropped(client_id, message, message.qos, cause);
    let reason = ReasonCode::NOT_AUTHORIZED;
    refuse(inputs, session, message, packet_id, reason, None)
}

/// Answers a refused PUBLISH: 5.0 gets the reason code (and the Reason
/// String, if any) in PUBACK/PUBREC; 3.x cannot carry one, so the message is
/// acknowledged and dropped (like Mosquitto) — or the connection is closed
/// when configured.
fn refuse(
    inputs: &Inputs<'_>,
    session: &mut Session,
    message: &Message,
    packet_id: Option<PacketId>,
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
