//! This node's part in the cluster (docs/cluster.md), a floor above the
//! core it acts on: joining and leaving, the claim a CONNECT makes, and
//! what the cluster's reader thread hands over ([`Inbound`]) — messages
//! from other nodes routed to this node's subscribers only, kicks that
//! close a connection, retained changes applied to the local copy. The
//! link Core itself calls is `cluster/`.

use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime};

use bytestring::ByteString;
use roost_cluster::{BanChange, Cluster, Receiver, Remote, RetainedUpdate};
use roost_codec::ReasonCode;

use crate::cluster::ClusterLink;
use crate::core::Core;
use crate::link::Control;

/// Joins the cluster when configured (blocking work off the runtime) and
/// installs the link in the core. Before the store's restore, so restored
/// subscriptions publish their routes.
pub(crate) async fn join(core: &Arc<Core>) -> Result<(), String> {
    let Some(options) = crate::cluster::options(&core.config) else {
        return Ok(());
    };
    let node = options.node_id.clone();
    let receiver: Arc<dyn Receiver> = Arc::new(Inbound {
        core: Arc::downgrade(core),
    });
    let started = tokio::task::spawn_blocking(move || Cluster::start(options, receiver))
        .await
        .map_err(|e| format!("cluster start: {e}"))?;
    let cluster = started.map_err(|e| format!("cluster (node {node}): {e}"))?;
    // This node's configured bans join the cluster's list (the list in
    // Redis already reached this node's list while joining).
    if let Some(bans) = &core.builtins.bans {
        for ban in bans.list(SystemTime::now()) {
            cluster.ban(&ban.target.to_string(), Some(ban.expires_at));
        }
    }
    core.set_cluster(Arc::new(ClusterLink::new(cluster)));
    Ok(())
}

/// Leaves the cluster at shutdown (blocking work off the runtime).
pub(crate) async fn leave(core: &Arc<Core>) {
    if let Some(link) = core.cluster() {
        let link = Arc::clone(link);
        let _ = tokio::task::spawn_blocking(move || link.stop()).await;
    }
}

/// A CONNECT claims its client id in the cluster before it attaches
/// ([`ClusterLink::claim`]); nothing to do outside cluster mode.
pub(crate) async fn claim(
    core: &Core,
    client_id: &ByteString,
    connection_id: u64,
) -> Result<(), ReasonCode> {
    match core.cluster() {
        Some(link) => link.claim(client_id, connection_id).await,
        None => Ok(()),
    }
}

/// The cluster reader thread's way into the broker.
struct Inbound {
    core: Weak<Core>,
}

impl Receiver for Inbound {
    fn messages(&self, messages: Vec<Remote>) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        for remote in messages {
            let message = remote.message.to_message(now, wall);
            let missing = core.route_remote(message, remote.direct, &remote.groups, now);
            // A group whose last member here left after the sender chose
            // this node: sent on once to another node with members.
            if !missing.is_empty() {
                match (remote.rerouted, core.cluster()) {
                    (false, Some(link)) => link.reroute(&remote.message, &missing),
                    _ => tracing::debug!(
                        groups = ?missing,
                        "shared group has no member here after a re-route; message dropped"
                    ),
                }
            }
        }
    }

    fn kick(&self, client_id: &str, token: &str) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let Some(link) = core.cluster() else { return };
        // None: a newer connection of this node holds the id, not for it.
        let Some(connection_id) = link.kicked_connection(client_id, token) else {
            return;
        };
        let Some(slot) = core.sessions().get(client_id) else {
            return;
        };
        let control = {
            let inner = slot.inner.lock();
            inner
                .link
                .as_ref()
                .filter(|l| Some(l.connection_id) == connection_id)
                .map(|l| l.control.clone())
        };
        match control {
            Some(control) => {
                if let Some(id) = connection_id {
                    link.mark_kicked(id);
                }
                tracing::info!(
                    client_id,
                    "client id taken over on another node; closing with 0x8E"
                );
                let _ = control.try_send(Control::Close(ReasonCode::SESSION_TAKEN_OVER));
            }
            // Parked here: the client now lives on another node, which
            // started a new session; this copy would only collect messages.
            None => core.end_parked(&slot),
        }
    }

    fn ban(&self, change: BanChange) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let Some(bans) = &core.builtins.bans else {
            tracing::debug!(target = %change.target, "cluster ban ignored: [auth.banned] is not configured here");
            return;
        };
        let target = match roost_auth::BanTarget::parse(&change.target) {
            Ok(target) => target,
            Err(e) => {
                tracing::warn!(target = %change.target, error = %e, "cluster ban skipped");
                return;
            }
        };
        match change.until {
            Some(until) => {
                bans.add(roost_auth::Ban::new(target, until));
                // As a local ban does: its live connections here close.
                crate::clients::close_banned(&core, bans, SystemTime::now());
            }
            None => {
                bans.remove(&target);
            }
        }
    }

    fn retained(&self, update: RetainedUpdate) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        match update {
            RetainedUpdate::Set { message, stored_at } => {
                let message = Arc::new(message.to_message(now, wall));
                core.retained.apply_remote(message, stored_at, now);
            }
            RetainedUpdate::Clear { topic } => {
                core.retained.delete(&topic);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use roost_codec::{Publish, PublishProperties, QoS, Subscription, SubscriptionOptions};
    use roost_session::Message;

    use crate::core::Core;
    use crate::slot::{Link, SessionKey, SessionSlot};

    fn core() -> Arc<Core> {
        Core::new(
            crate::config::Config::default(),
            crate::extensions::Extensions::default(),
            crate::builtin_auth::Builtins::default(),
            None,
        )
    }

    /// A live session of `client_id` subscribed to `filter`.
    fn subscriber(
        core: &Core,
        client_id: &str,
        filter: &str,
        no_local: bool,
    ) -> (Arc<SessionSlot>, crate::link::ControlReceiver) {
        let slot = core.sessions().get_or_create(&client_id.into());
        let (control, receiver) = crate::link::channel();
        let client = roost_hooks::ClientInfo::new(
            client_id.into(),
            None,
            std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            roost_codec::ProtocolVersion::V5,
            roost_hooks::ListenerKind::Tcp,
        );
        slot.inner.lock().link = Some(Link {
            connection_id: 1,
            control,
            client: Arc::new(client),
        });
        let sub = Subscription {
            options: SubscriptionOptions {
                qos: QoS::AtMostOnce,
                no_local,
                ..SubscriptionOptions::default()
            },
            identifier: None,
        };
        core.subscribe(&SessionKey(Arc::clone(&slot)), filter, sub, 0);
        (slot, receiver)
    }

    #[tokio::test]
    async fn v5_cluster_a_forwarded_message_honours_no_local_by_its_origin_client_id() {
        let core = core();
        let (me, _c1) = subscriber(&core, "origin", "nl/#", true);
        let (other, _c2) = subscriber(&core, "other", "nl/#", true);
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "nl/t".into(),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: bytes::Bytes::from_static(b"x"),
        };
        // As the inbox reader hands it over: published on another node by
        // the client "origin", whose session here subscribed with No Local.
        let message = Message::from_publish(publish, Some("origin".into()), Instant::now());
        core.route_remote(message, true, &[], Instant::now());
        assert!(!me.has_outbox(), "No Local holds for the origin client id");
        assert!(other.has_outbox(), "other subscribers get it");
    }

    #[tokio::test]
    async fn cluster_a_forwarded_message_reaches_only_its_tagged_groups_and_direct_when_flagged() {
        let core = core();
        let (member, _c1) = subscriber(&core, "member", "$share/g/sh/#", false);
        let (plain, _c2) = subscriber(&core, "plain", "sh/#", false);
        let message = || {
            let publish = Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "sh/t".into(),
                packet_id: None,
                properties: PublishProperties::default(),
                payload: bytes::Bytes::from_static(b"x"),
            };
            Message::from_publish(publish, Some("elsewhere".into()), Instant::now())
        };
        // Tagged for group g (and h, which has no member here), not for
        // the non-shared subscribers.
        let tagged = ["$share/g/sh/#".to_string(), "$share/h/sh/#".to_string()];
        let missing = core.route_remote(message(), false, &tagged, Instant::now());
        assert!(member.has_outbox(), "the tagged group's member gets it");
        assert!(
            !plain.has_outbox(),
            "no direct flag: not the plain subscriber"
        );
        assert_eq!(
            missing,
            ["$share/h/sh/#"],
            "h has no member here: re-routed"
        );
        // Direct only: the plain subscriber, not the group.
        let (other, _c3) = subscriber(&core, "member2", "$share/k/sh/#", false);
        let missing = core.route_remote(message(), true, &[], Instant::now());
        assert!(missing.is_empty());
        assert!(plain.has_outbox());
        assert!(!other.has_outbox(), "untagged group k is another node's");
    }
}
