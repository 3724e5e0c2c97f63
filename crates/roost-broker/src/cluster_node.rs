//! This node's part in the cluster (docs/cluster.md), a floor above the
//! core it acts on: joining and leaving, the claim a CONNECT makes, and
//! what the cluster's reader thread hands over ([`Inbound`]) — messages
//! from other nodes routed to this node's subscribers only, kicks that
//! close a connection, retained changes applied to the local copy. The
//! link Core itself calls is `cluster/`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytestring::ByteString;
use roost_cluster::{BanChange, Cluster, Kicked, OrphanWill, Receiver, Remote, RetainedUpdate};
use roost_codec::ReasonCode;

use crate::cluster::ClusterLink;
use crate::core::Core;
use crate::link::Control;

/// Joins the cluster when configured (blocking work off the runtime) and
/// installs the link in the core. Before the store's restore, so restored
/// subscriptions publish their routes.
/// `addresses`: the URLs of this node's listeners (the node list shows them).
pub(crate) async fn join(core: &Arc<Core>, addresses: Vec<String>) -> Result<(), String> {
    let Some(mut options) = crate::cluster::options(&core.config, addresses) else {
        return Ok(());
    };
    options.release_memory = core.ext.thread_memory_release;
    let node = options.node_id.clone();
    let receiver: Arc<dyn Receiver> = Arc::new(Inbound {
        core: Arc::downgrade(core),
        runtime: tokio::runtime::Handle::current(),
        durable: core.config.cluster.durable,
    });
    // The node's one map of claims: the shared store's fences.
    let fences = core
        .persist()
        .and_then(|p| p.fences().cloned())
        .unwrap_or_default();
    let claims = Arc::clone(&fences);
    let started = tokio::task::spawn_blocking(move || Cluster::start(options, receiver, claims))
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
    let wait = Duration::from_millis(core.config.cluster.lease_ms.min(HANDOVER_WAIT_MS));
    let link = Arc::new(ClusterLink::new(cluster, fences, wait));
    core.set_cluster(Arc::clone(&link));
    let probe = probe(core);
    // Now that wills can be forwarded: an earlier run's sessions.
    let adopted = tokio::task::spawn_blocking(move || {
        if let Err(e) = link.cluster().set_probe(probe) {
            tracing::warn!(error = %e, "cluster: this node's counts not announced yet; at the next lease renewal");
        }
        link.cluster().adopt_earlier_sessions()
    })
    .await
    .map_err(|e| format!("cluster start: {e}"))?;
    adopted.map_err(|e| format!("cluster (node {node}): {e}"))?;
    Ok(())
}

/// What this node announces to the others at each lease renewal
/// (`roost_cluster::Probe`; the management API's node list): its version,
/// connections and sessions. Relaxed loads and the registry's length.
fn probe(core: &Arc<Core>) -> roost_cluster::Probe {
    let core = Arc::downgrade(core);
    Box::new(move || {
        let Some(core) = core.upgrade() else {
            return Vec::new();
        };
        let connections = core
            .metrics
            .connections_current
            .load(std::sync::atomic::Ordering::Relaxed);
        vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("connections", connections.to_string()),
            ("sessions", core.sessions().len().to_string()),
        ]
    })
}

/// A CONNECT waits this long at most (or the lease, if shorter) for the node
/// that held its client id to hand the session over.
const HANDOVER_WAIT_MS: u64 = 5_000;

/// Leaves the cluster at shutdown (blocking work off the runtime).
pub(crate) async fn leave(core: &Arc<Core>) {
    if let Some(link) = core.cluster() {
        let link = Arc::clone(link);
        let _ = tokio::task::spawn_blocking(move || link.stop()).await;
    }
}

/// A CONNECT claims its client id in the cluster before it attaches
/// ([`ClusterLink::claim`]: the old node, if any, hands the session over);
/// then a session to resume (Clean Start 0) that this node does not hold is
/// loaded from the shared store and parked here, so that attaching resumes
/// it as a single broker resumes a parked session (Session Present 1) —
/// unless the claim found none stored and no other node held the id.
/// Nothing to do outside cluster mode.
pub(crate) async fn claim(
    core: &Core,
    client_id: &ByteString,
    connection_id: u64,
    clean_start: bool,
) -> Result<(), ReasonCode> {
    let Some(link) = core.cluster() else {
        return Ok(());
    };
    let claimed = link.claim(client_id, connection_id, !clean_start).await?;
    let from_other_node = claimed.from_other_node;
    // Nothing stored in the cluster for it (a new persistent session): no
    // load, which would cost a round trip and a blocking thread.
    if clean_start || !claimed.stored || core.sessions().get(client_id).is_some() {
        return Ok(());
    }
    let Some(persist) = core.persist() else {
        return Ok(());
    };
    match persist.load_session(client_id).await {
        Ok((Some(snapshot), _will)) => {
            // The will stored with it was the old connection's: the node
            // that held it published or dropped it (or a janitor took it).
            let (now, wall) = (Instant::now(), SystemTime::now());
            let expires_at = crate::restore::expires_at(&snapshot, now, wall);
            if expires_at.is_some_and(|at| at <= now) {
                return Ok(());
            }
            tracing::debug!(
                %client_id,
                from_other_node,
                messages = snapshot.messages.len(),
                subscriptions = snapshot.subscriptions.len(),
                "session loaded from the cluster's store"
            );
            crate::restore::restore_session(core, &snapshot, None, expires_at, now, wall);
            Ok(())
        }
        Ok((None, _)) => Ok(()),
        // `availability_over_consistency`, Redis away: a local-only session,
        // started afresh (claimed again, and written, once Redis returns).
        Err(e) if link.cluster().available_when_cut_off() => {
            tracing::info!(%client_id, error = %e, "stored session not loaded (Redis away); starting afresh (availability_over_consistency)");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(%client_id, error = %e, "CONNECT refused: the session could not be loaded");
            Err(ReasonCode::SERVER_UNAVAILABLE)
        }
    }
}

/// The cluster threads' way into the broker.
struct Inbound {
    core: Weak<Core>,
    /// Timers of delayed orphan wills and handover answers run here.
    runtime: tokio::runtime::Handle,
    /// Durable mode: [`Receiver::settle`] waits for the store.
    durable: bool,
}

impl Inbound {
    /// Routes forwarded messages to this node's subscribers.
    fn route_all(&self, messages: impl Iterator<Item = Remote>) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let mut routing = Routing::new();
        for remote in messages {
            routing.route(&core, remote);
        }
    }
}

/// What routing one batch from another node keeps from message to message.
struct Routing {
    now: Instant,
    wall: SystemTime,
    publishers: crate::core::Publishers,
}

impl Routing {
    fn new() -> Self {
        Routing {
            now: Instant::now(),
            wall: SystemTime::now(),
            publishers: crate::core::Publishers::default(),
        }
    }

    fn route(&mut self, core: &Core, remote: Remote) {
        let Remote {
            message: stored,
            direct,
            groups,
            rerouted,
            only,
        } = remote;
        // Moved out of the batch, unless a re-route may need it.
        let (message, kept) = if groups.is_empty() {
            (stored.into_message(self.now, self.wall), None)
        } else {
            (stored.to_message(self.now, self.wall), Some(stored))
        };
        let (missing, _ticket) = core.route_remote(
            message,
            direct,
            &groups,
            &only,
            self.now,
            &mut self.publishers,
        );
        // A group whose last member here left after the sender chose
        // this node: sent on once to another node with members.
        if !missing.is_empty() {
            match (rerouted, core.cluster(), kept) {
                (false, Some(link), Some(stored)) => link.reroute(&stored, &missing),
                _ => tracing::debug!(
                    groups = ?missing,
                    "shared group has no member here after a re-route; message dropped"
                ),
            }
        }
    }
}

impl Receiver for Inbound {
    fn messages(&self, messages: Vec<Remote>) {
        self.route_all(messages.into_iter());
    }

    fn messages_each(&self, batch: &mut roost_cluster::BatchSource<'_>) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let mut routing = Routing::new();
        batch(&mut |remote| routing.route(&core, remote));
    }

    /// Durable mode: blocks the reader until the queue rows of what it
    /// handed over are in Redis, so its checkpoint never passes a message
    /// a crash would lose. A failed write is logged; the reader goes on (the
    /// store writer retries what it can, as for a local publisher).
    ///
    /// One barrier (everything the store was given before it, by any thread,
    /// is written once it completes) rather than each message's ticket:
    /// the reader and a handoff replay may hand messages over at once.
    fn settle(&self) {
        if !self.durable {
            return;
        }
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let Some(barrier) = core.persist().and_then(crate::persist::Persist::barrier) else {
            return;
        };
        if let Err(e) = barrier.wait() {
            tracing::error!(error = %e, "durable cluster mode: forwarded messages' queue rows were not written");
        }
    }

    /// Loads the adopted session from the shared store and parks it here,
    /// as a CONNECT that resumes a session this node does not hold would
    /// (`claim`), with its expiry timer armed; from then on the broker's
    /// own routing queues what matches its subscriptions.
    fn adopt(&self, client_id: &str, token: &str) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let (Some(link), Some(persist)) = (core.cluster(), core.persist()) else {
            return false;
        };
        let id = ByteString::from(client_id);
        if core.sessions().get(client_id).is_some() {
            // Held here already (its client came back to this node).
            return false;
        }
        let snapshot = match self.runtime.block_on(persist.load_session(client_id)) {
            Ok((Some(snapshot), _will)) => snapshot,
            Ok((None, _)) => return false,
            Err(e) => {
                tracing::warn!(client_id, error = %e, "an adopted session could not be loaded");
                return false;
            }
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let expires_at = crate::restore::expires_at(&snapshot, now, wall);
        if expires_at.is_some_and(|at| at <= now) {
            return false;
        }
        link.adopted(&id, token);
        let _enter = self.runtime.enter();
        // The will went to the janitor when the node died (`Receiver::will`).
        let (slot, generation) =
            crate::restore::restore_session(&core, &snapshot, None, expires_at, now, wall);
        core.arm_timer(&slot, generation);
        tracing::debug!(
            client_id,
            messages = snapshot.messages.len(),
            "a dead node's session adopted and parked here"
        );
        true
    }

    fn kick(&self, kick: Kicked) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let Some(link) = core.cluster() else { return };
        let id = ByteString::from(kick.client_id.as_str());
        let client_id = kick.client_id.clone();
        let client_id = client_id.as_str();
        let slot = core.sessions().get(client_id);
        // None: a newer connection of this node holds the id, not for it.
        let Some(kicked) = link.kicked_connection(&id, &kick.token, slot.as_deref()) else {
            link.handed(&kick);
            return;
        };
        let Some(slot) = slot else {
            link.handed(&kick);
            return;
        };
        match kicked {
            Some((connection_id, Some(control))) => {
                link.mark_kicked(connection_id, kick);
                tracing::info!(
                    client_id,
                    "client id taken over on another node; closing with 0x8E"
                );
                // Its detach hands the session over (`Core::hand_over`).
                let _ = control.try_send(Control::Close(ReasonCode::SESSION_TAKEN_OVER));
            }
            // Parked here: flushed and handed over now.
            Some((_, None)) | None => {
                let parked = {
                    let mut inner = slot.inner.lock();
                    if inner.link.is_some() || inner.ended {
                        None
                    } else {
                        let parked = inner.parked.take();
                        if parked.is_some() {
                            inner.ended = true;
                        }
                        parked
                    }
                };
                match parked {
                    Some(parked) => {
                        let parked = *parked;
                        // A will still waiting for its delay: the client came
                        // back (cancelled) unless it starts clean.
                        let will = parked
                            .will
                            .filter(|_| !kick.resume)
                            .map(|(message, _)| message);
                        let _enter = self.runtime.enter();
                        core.hand_over(&slot, parked.state, will, kick);
                    }
                    None => link.handed(&kick),
                }
            }
        }
    }

    fn will(&self, will: OrphanWill) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let message = will.message.to_message(now, wall);
        if will.taken {
            tracing::info!(client_id = %will.client_id, "publishing the will of a client of a dead node");
            core.publish_will(message, now);
            return;
        }
        let wait = will.at.duration_since(wall).unwrap_or_default();
        // Delayed: out only if the client has not come back by then, and
        // only by the first janitor that takes it (one whose job was taken
        // over after its death may have scheduled it too).
        self.runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(link) = core.cluster() else { return };
            let still = match link.cluster().still_orphan(&will.client_id, &will.token) {
                Ok(done) => done.await.unwrap_or(false),
                Err(_) => false,
            };
            if still {
                tracing::info!(client_id = %will.client_id, "publishing the will of a client of a dead node");
                core.publish_will(message, Instant::now());
            }
        });
    }

    /// The writer's answers to waiting publishers: woken from a worker,
    /// each goes to that worker's run queue (from the writer thread, each
    /// would be a wake-up from outside the runtime).
    fn in_runtime(&self, work: Box<dyn FnOnce() + Send>) {
        self.runtime.spawn(async move { work() });
    }

    fn rejoined(&self) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        self.runtime.spawn(crate::cluster::rejoin::rejoin(core));
    }

    fn fenced(&self) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let _enter = self.runtime.enter();
        // Connections waiting for Redis to take their acknowledged messages
        // stop waiting (they close without those acknowledgements).
        if let Some(link) = core.cluster() {
            link.note_fenced();
        }
        // Collected first: no registry lock is held while closing.
        let mut slots = Vec::new();
        core.sessions()
            .for_each(|slot| slots.push(Arc::clone(slot)));
        let (mut closed, mut let_go) = (0usize, 0usize);
        for slot in slots {
            let (control, parked) = {
                let mut inner = slot.inner.lock();
                match &inner.link {
                    Some(link) => (Some(link.control.clone()), None),
                    None if !inner.ended => {
                        let parked = inner.parked.take();
                        if parked.is_some() {
                            inner.ended = true;
                        }
                        (None, parked)
                    }
                    None => (None, None),
                }
            };
            if let Some(control) = control {
                // Its detach lets the session go (`Core::let_go`).
                let _ = control.try_send(Control::Close(ReasonCode::USE_ANOTHER_SERVER));
                closed += 1;
            }
            if let Some(parked) = parked {
                core.let_go(&slot, parked.state);
                let_go += 1;
            }
        }
        tracing::warn!(
            closed,
            parked = let_go,
            "fenced: every connection closed, every session let go"
        );
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
        core.route_remote(
            message,
            true,
            &[],
            &[],
            Instant::now(),
            &mut Default::default(),
        );
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
        let (missing, _) = core.route_remote(
            message(),
            false,
            &tagged,
            &[],
            Instant::now(),
            &mut Default::default(),
        );
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
        let (missing, _) = core.route_remote(
            message(),
            true,
            &[],
            &[],
            Instant::now(),
            &mut Default::default(),
        );
        assert!(missing.is_empty());
        assert!(plain.has_outbox());
        assert!(!other.has_outbox(), "untagged group k is another node's");
    }

    #[tokio::test]
    async fn cluster_a_handed_off_message_reaches_only_the_dead_nodes_clients() {
        let core = core();
        let (adopted, _c1) = subscriber(&core, "was-on-dead-node", "ho/#", false);
        let (bystander, _c2) = subscriber(&core, "got-it-already", "ho/#", false);
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "ho/t".into(),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: bytes::Bytes::from_static(b"x"),
        };
        let message = Message::from_publish(publish, Some("p".into()), Instant::now());
        let only = ["was-on-dead-node".to_string()];
        let (missing, _) = core.route_remote(
            message,
            true,
            &[],
            &only,
            Instant::now(),
            &mut Default::default(),
        );
        assert!(missing.is_empty());
        assert!(adopted.has_outbox(), "the dead node's client gets it");
        assert!(
            !bystander.has_outbox(),
            "a subscriber that got it the first time does not get it again"
        );
    }
}
