//! The driver's side of the management API's requests (`crate::admin_subs`):
//! subscribe or unsubscribe the client as if it had sent SUBSCRIBE or
//! UNSUBSCRIBE (validation and quota, router, session, store, retained
//! messages per Retain Handling [MQTT-3.3.1-9..11]), but without SUBACK or
//! UNSUBACK: the client asked for nothing. Not authorized against the
//! client's ACL (the operator is the server), but its messages are still
//! checked at delivery when `acl_wildcards = "per_message"` (router tag 0).

use std::time::Instant;

use roost_codec::{SubscriptionOptions, Unsubscribe};
use roost_session::{Session, SubscriptionGrant};

use super::inbound::Inputs;
use crate::admin_subs::{Answer, LiveDetail, Op, SubscribeError, Subscribed, one_filter};

/// Answers every request waiting for connection `connection_id`.
pub(super) async fn answer(inputs: &Inputs<'_>, session: &mut Session, connection_id: u64) {
    for request in inputs.core.admin_requests.take(connection_id) {
        let answer = match request.op {
            Op::Subscribe { filter, options } => {
                Answer::Subscribed(subscribe(inputs, session, filter, options).await)
            }
            Op::Unsubscribe { filter } => {
                Answer::Unsubscribed(unsubscribe(inputs, session, filter).await)
            }
            Op::Detail => {
                let stats = session.stats();
                Answer::Detail(LiveDetail {
                    keep_alive: session.keep_alive(),
                    session_expiry_interval: session.session_expiry_interval(),
                    inflight: stats.inflight,
                    queued: stats.queued,
                })
            }
            Op::Persist => {
                let slot = &inputs.key.0;
                let persist = inputs.core.persist();
                crate::persist::on_connect(persist, slot, session, false, Vec::new()).await;
                if let Some(persist) = persist {
                    crate::persist::write_live(persist, slot, session).await;
                }
                Answer::Persisted
            }
        };
        // The caller may have given up: nothing to do then.
        let _ = request.reply.send(answer);
    }
}

async fn subscribe(
    inputs: &Inputs<'_>,
    session: &mut Session,
    filter: bytestring::ByteString,
    options: SubscriptionOptions,
) -> Result<Subscribed, SubscribeError> {
    let core = inputs.core;
    let request = one_filter(&filter, options);
    if let Some(reason) = session
        .validate_subscribe(&request)
        .into_iter()
        .next()
        .flatten()
    {
        return Err(SubscribeError::Refused(reason));
    }
    let grant = SubscriptionGrant::new(&filter, options, None, core.session_config.maximum_qos);
    let existed = core.subscribe(inputs.key, &filter, grant.subscription, 0);
    session.subscribe_for_client(filter.clone(), grant.subscription);
    crate::persist::on_subscribe(core.persist(), session, &request).await;
    let mut retained = 0;
    if grant.sends_retained(existed) {
        let now = Instant::now();
        let check = core.read_checks().then_some(&*inputs.key.0);
        for delivery in core.retained_for(grant.filter, grant.qos(), None, check, now) {
            session.handle_delivery(now, delivery);
            retained += 1;
        }
    }
    tracing::info!(client_id = %session.client_id(), %filter, "subscribed through the management API");
    Ok(Subscribed {
        qos: grant.qos() as u8,
        existed,
        retained,
    })
}

async fn unsubscribe(
    inputs: &Inputs<'_>,
    session: &mut Session,
    filter: bytestring::ByteString,
) -> bool {
    let core = inputs.core;
    let routed = core.unsubscribe(inputs.key, &filter);
    let held = session.unsubscribe_for_client(&filter);
    let request = Unsubscribe {
        packet_id: roost_codec::PacketId::MIN,
        filters: vec![filter.clone()],
        user_properties: Vec::new(),
    };
    crate::persist::on_unsubscribe(core.persist(), session, &request).await;
    tracing::info!(client_id = %session.client_id(), %filter, "unsubscribed through the management API");
    held || routed
}
