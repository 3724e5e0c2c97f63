//! Cluster mode's glue (docs/cluster.md), on the shared-services floor:
//! the broker's side of `roost_cluster`. Core calls it through one seam per
//! event — a message routed ([`forward`]), a filter gaining or losing its
//! last local subscriber ([`ClusterLink::route_present`]/`route_absent`), a
//! CONNECT claiming its client id ([`claim`]), a connection ending
//! ([`ClusterLink::detached`]) — and the cluster's reader thread calls back
//! through [`Inbound`]: messages from other nodes are routed to this node's
//! subscribers only, kicks close a connection, retained changes update the
//! local copy.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytestring::ByteString;
use parking_lot::Mutex;
use roost_cluster::{Cluster, Forward, Options, Receiver, RetainedUpdate};
use roost_codec::{QoS, ReasonCode};
use roost_session::Message;
use roost_store::StoredMessage;

use crate::core::Core;
use crate::link::Control;

/// The cluster as this broker holds it.
pub(crate) struct ClusterLink {
    cluster: Cluster,
    /// Client id → the connection of this node that holds its claim.
    owned: Mutex<HashMap<ByteString, Owned>>,
    /// Connections closed by a kick: their session ends instead of parking
    /// here (it is not migrated; the new node starts a new one).
    kicked: Mutex<HashSet<u64>>,
}

struct Owned {
    token: String,
    connection_id: u64,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("node_id", &self.cluster.node_id())
            .finish_non_exhaustive()
    }
}

/// The cluster options of a configuration, when cluster mode is on.
pub(crate) fn options(config: &crate::config::Config) -> Option<Options> {
    let c = &config.cluster;
    c.enabled.then(|| Options {
        node_id: c.effective_node_id(&config.store.data_dir),
        redis_url: c.redis.url.clone(),
        key_prefix: c.key_prefix.clone(),
        lease: Duration::from_millis(c.lease_ms),
        timeout: Duration::from_millis(c.redis.timeout_ms),
        inbox_maxlen: c.inbox_maxlen,
        log_maxlen: 1_000_000,
        forward_buffer: c.forward_buffer,
    })
}

/// Joins the cluster when configured (blocking work off the runtime) and
/// installs the link in the core. Before the store's restore, so restored
/// subscriptions publish their routes.
pub(crate) async fn join(core: &Arc<Core>) -> Result<(), String> {
    let Some(options) = options(&core.config) else {
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
    core.set_cluster(Arc::new(ClusterLink {
        cluster,
        owned: Mutex::new(HashMap::new()),
        kicked: Mutex::new(HashSet::new()),
    }));
    Ok(())
}

/// Leaves the cluster at shutdown (blocking work off the runtime).
pub(crate) async fn leave(core: &Arc<Core>) {
    if let Some(link) = core.cluster() {
        let link = Arc::clone(link);
        let _ = tokio::task::spawn_blocking(move || link.cluster.stop()).await;
    }
}

/// Sends a routed message to the other nodes with subscribers for it, and
/// a retained change to the cluster's copy. Returns what a QoS 1/2
/// publisher's acknowledgement waits on.
pub(crate) fn forward(
    link: &ClusterLink,
    message: &Arc<Message>,
    retained_changed: bool,
    now: Instant,
) -> (Option<roost_cluster::Done<()>>, bool) {
    let wall = SystemTime::now();
    if message.retain && (retained_changed || message.payload.is_empty()) {
        link.cluster
            .retain(&StoredMessage::from_message(message, now, wall));
    }
    let wait = message.qos != QoS::AtMostOnce;
    match link.cluster.forward(&message.topic, wait, || {
        StoredMessage::from_message(message, now, wall)
    }) {
        Forward::Local => (None, false),
        Forward::Queued(done) => (done, true),
        Forward::Dropped => (None, false),
    }
}

/// A CONNECT claims its client id in the cluster before it attaches: a
/// connection of the same id on another node is told to close (0x8E).
/// `Err`: Redis is unreachable, CONNACK 0x88 (3.1.1: return code 3).
pub(crate) async fn claim(
    core: &Core,
    client_id: &ByteString,
    connection_id: u64,
) -> Result<(), ReasonCode> {
    let Some(link) = core.cluster() else {
        return Ok(());
    };
    let unavailable = |e: roost_cluster::ClusterError| {
        tracing::info!(%client_id, error = %e, "CONNECT refused: the cluster is unavailable");
        ReasonCode::SERVER_UNAVAILABLE
    };
    let (token, done) = link.cluster.claim(client_id).map_err(unavailable)?;
    done.await.map_err(unavailable)?;
    link.owned.lock().insert(
        client_id.clone(),
        Owned {
            token,
            connection_id,
        },
    );
    Ok(())
}

impl ClusterLink {
    /// This node now has a subscriber for `filter` (bare filter of a shared one).
    pub(crate) fn route_present(&self, filter: &str) {
        self.cluster.route_present(filter);
    }

    /// This node has no subscriber for `filter` any more.
    pub(crate) fn route_absent(&self, filter: &str) {
        self.cluster.route_absent(filter);
    }

    /// Connection `connection_id` of `client_id` ended: releases its claim
    /// if it still holds it. True when a kick closed it (its session must
    /// end here, not park).
    pub(crate) fn detached(&self, client_id: &ByteString, connection_id: u64) -> bool {
        let mut owned = self.owned.lock();
        if owned
            .get(client_id)
            .is_some_and(|o| o.connection_id == connection_id)
            && let Some(o) = owned.remove(client_id)
        {
            self.cluster.release(client_id, &o.token);
        }
        drop(owned);
        self.kicked.lock().remove(&connection_id)
    }
}

/// The cluster reader thread's way into the broker.
struct Inbound {
    core: Weak<Core>,
}

impl Receiver for Inbound {
    fn messages(&self, messages: Vec<StoredMessage>) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        for stored in messages {
            core.route_remote(stored.to_message(now, wall), now);
        }
    }

    fn kick(&self, client_id: &str, token: &str) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let Some(link) = core.cluster() else { return };
        let connection_id = {
            let mut owned = link.owned.lock();
            match owned.get(client_id) {
                Some(o) if o.token == token => owned.remove(client_id).map(|o| o.connection_id),
                // A newer connection of this node holds the id: not for it.
                Some(_) => return,
                None => None,
            }
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
                    link.kicked.lock().insert(id);
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
        core.route_remote(message, Instant::now());
        assert!(!me.has_outbox(), "No Local holds for the origin client id");
        assert!(other.has_outbox(), "other subscribers get it");
    }
}
