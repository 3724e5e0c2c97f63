//! What the broker does with each decoded packet once the session has
//! validated it: authorize and route publishes, update the router for
//! (un)subscribes, run re-authentication — with the embedder's authorizers
//! and hooks consulted on the way. With none registered, no hook code runs.
//!
//! One dispatcher ([`handle_packet`]) and one file per packet that needs
//! the broker (as in `roost-session`'s `session/handle/`): `publish.rs`,
//! `subscribe.rs`, `unsubscribe.rs`, `auth.rs`. Acknowledgements, pings and
//! DISCONNECT are the session's alone.

mod auth;
mod publish;
mod subscribe;
mod unsubscribe;

use std::sync::Arc;
use std::time::Instant;

use roost_codec::{Packet, ReasonCode};
use roost_hooks::{AuthExchange, ClientInfo, Decision, Grant};
use roost_session::{Inbound, Session, Violation};

use super::authz::AuthzCache;
use crate::core::Core;
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
/// In cluster mode the same holds for a QoS 1/2 message forwarded to other
/// nodes: its PUBACK / PUBREC waits until it is in their inboxes. The
/// read's forwards are staged (the third part) and queued together when
/// the read ends, with one answer for all of them.
#[derive(Default)]
pub(crate) struct StoreWaits(
    Vec<roost_store::CommitTicket>,
    Vec<roost_cluster::Done<()>>,
    roost_cluster::Staged,
);

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
    /// after the first wait the rest are mostly done already), and every
    /// held forward is written. False when this cluster node fenced itself
    /// meanwhile (or was fenced): Redis is away, the wait could last until
    /// it returns, and the acknowledgements must not go out (nothing says
    /// their messages are written): the connection closes without them,
    /// the clients send those messages again.
    pub(crate) async fn settle(&mut self, core: &Core) -> bool {
        if let Some(link) = core.cluster()
            && let Some(done) = link.flush(&mut self.2)
        {
            self.1.push(done);
        }
        if self.0.is_empty() && self.1.is_empty() {
            return true;
        }
        let Some(link) = core.cluster() else {
            self.wait_all(core).await;
            return true;
        };
        let mut fences = link.fence_watch();
        if link.fenced() {
            return false;
        }
        tokio::select! {
            () = self.wait_all(core) => true,
            Ok(()) = fences.changed() => false,
        }
    }

    async fn wait_all(&mut self, core: &Core) {
        if let Some(persist) = core.persist() {
            for ticket in self.0.drain(..) {
                persist.acknowledged(Some(ticket)).await;
            }
        }
        for forwarded in self.1.drain(..) {
            if let Err(e) = forwarded.await {
                tracing::warn!(error = %e, "cluster forward not written; acknowledging anyway");
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

impl Inputs<'_> {
    /// [`super::authz::gate`] for a packet of this connected client, with
    /// its session's cache.
    pub(crate) async fn authorized(&self, action: roost_hooks::Action, topic: &str) -> bool {
        super::authz::gate(
            self.core,
            self.client,
            self.grant,
            Some(&self.authz),
            action,
            topic,
        )
        .await
    }
}

/// Feeds one packet to the session and carries out what it asks for:
/// the hooks see the packets the session handles alone first, the session
/// validates it (recording message events), then the packet's own
/// handler runs.
pub(crate) async fn handle_packet(
    inputs: &Inputs<'_>,
    session: &mut Session,
    exchange: &mut Option<Box<dyn AuthExchange>>,
    waits: &mut StoreWaits,
    packet: Packet,
    now: Instant,
) -> Result<Flow, Violation> {
    if let Some(close) = offer_to_hooks(inputs, &packet).await {
        return Ok(close);
    }
    // What the packet did to outbound messages (delivered, dropped) the
    // session records as events, read after the turn (`core/events.rs`).
    let inbound = session.handle_packet(now, packet)?;
    Ok(match inbound {
        Inbound::Nothing => Flow::Continue,
        Inbound::Publish { message, packet_id } => {
            publish::publish(inputs, session, waits, message, packet_id, now).await
        }
        Inbound::Subscribe(subscribe) => {
            subscribe::subscribe_all(inputs, session, &subscribe, now).await
        }
        Inbound::Unsubscribe(unsubscribe) => {
            unsubscribe::unsubscribe_all(inputs, session, &unsubscribe).await;
            Flow::Continue
        }
        Inbound::Disconnect { publish_will, .. } => Flow::Disconnect { publish_will },
        Inbound::Auth(auth) => auth::reauthenticate(inputs, session, auth, exchange).await,
    })
}

/// Acknowledgements, pings and AUTH are handled inside the session: they
/// are offered to their hooks first, whose denial closes the connection.
async fn offer_to_hooks(inputs: &Inputs<'_>, packet: &Packet) -> Option<Flow> {
    let core = inputs.core;
    let hooks = core.ext.hooks.as_ref()?;
    let client = inputs.client.as_ref();
    let hook = match packet {
        Packet::PubAck(a) => hooks.on_puback(client, a.packet_id, a.reason_code),
        Packet::PubRec(a) => hooks.on_pubrec(client, a.packet_id, a.reason_code),
        Packet::PubRel(a) => hooks.on_pubrel(client, a.packet_id, a.reason_code),
        Packet::PubComp(a) => hooks.on_pubcomp(client, a.packet_id, a.reason_code),
        Packet::PingReq => hooks.on_ping(client),
        Packet::Auth(a) => hooks.on_auth(client, a.reason_code),
        _ => return None,
    };
    match core.ext.decide(hook).await {
        Decision::Deny {
            reason,
            reason_string,
        } => Some(Flow::Close(reason, reason_string.map(Into::into))),
        _ => None,
    }
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
