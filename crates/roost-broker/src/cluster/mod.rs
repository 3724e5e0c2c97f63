//! Cluster mode's link (docs/cluster.md), on the shared-services floor:
//! the broker's side of `roost_cluster` as Core sees it. Core calls it
//! through one seam per event — a message routed ([`forward`]), a filter
//! gaining or losing its last local subscriber
//! ([`ClusterLink::route_present`]/`route_absent`), a CONNECT claiming its
//! client id ([`ClusterLink::claim`]), a connection ending
//! ([`ClusterLink::detached`]). Joining, leaving and what other nodes send
//! (which act on the core) are `cluster_node.rs`, a floor above.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytestring::ByteString;
use parking_lot::Mutex;
use roost_cluster::{Cluster, Forward, Kicked, Options};
use roost_codec::{QoS, ReasonCode};
use roost_session::Message;
use roost_store::{Fences, StoredMessage};

pub(crate) mod rejoin;

/// The cluster as this broker holds it.
pub(crate) struct ClusterLink {
    cluster: Cluster,
    /// Connections closed by a kick: their session is handed over to the
    /// node that took the client id instead of parking here.
    kicked: Mutex<HashMap<u64, Kicked>>,
    /// This node's claims, one entry per client id (`roost_store::Fences`):
    /// the token the shared session store writes its rows under (recorded
    /// by the cluster when Redis grants a claim, kept while the session is
    /// here, dropped once its last rows are written after it left) and the
    /// connection holding the claim (the one a kick closes, the one whose
    /// end releases it).
    fences: Arc<Fences>,
    /// The high half of every CONNECT's claim token, random per process;
    /// the low half is the connection id ([`Self::slim_token`]), so a
    /// connection holding a claim slim (no entry in `fences`) is its record.
    salt: u64,
    /// How long a CONNECT waits for the old node's handover at most.
    handover_wait: Duration,
    /// Bumped each time this node fences itself: acknowledgements waiting
    /// on Redis give up then (`StoreWaits::settle`).
    fences_seen: tokio::sync::watch::Sender<u64>,
    /// Connections closed because another node took their client id while
    /// Redis was away (`rejoin.rs`): their sessions are let go.
    lost: Mutex<std::collections::HashSet<u64>>,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("node_id", &self.cluster.node_id())
            .finish_non_exhaustive()
    }
}

/// The cluster options of a configuration, when cluster mode is on.
/// `addresses`: the URLs of this node's listeners (for the node list).
pub(crate) fn options(config: &crate::config::Config, addresses: Vec<String>) -> Option<Options> {
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
        forward_linger: Duration::from_micros(c.forward_linger_us),
        available_when_cut_off: c.availability_over_consistency,
        shared: roost_cluster::SharedPick {
            strategy: config
                .mqtt
                .shared_subscription_strategy
                .router_strategy(config.mqtt.shared_subscription_local_fallback),
            prefer_local: config.mqtt.shared_subscription_strategy
                == crate::config::SharedStrategyConfig::Local,
        },
        addresses,
        release_memory: None,
    })
}

/// What a CONNECT's claim found ([`ClusterLink::claim`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimOutcome {
    /// Another node held the client id.
    pub(crate) from_other_node: bool,
    /// A stored session may be there to load: Redis held one when the id
    /// was claimed, or another node held the id (it may hand one over).
    pub(crate) stored: bool,
}

/// What [`forward`] did: what a QoS 1/2 publisher's acknowledgement waits
/// on, whether other nodes deliver it, and the shared groups (`$share/g/f`)
/// assigned to another node, which this node must skip.
pub(crate) struct Forwarded {
    pub(crate) done: Option<roost_cluster::Done<()>>,
    pub(crate) remote: bool,
    pub(crate) elsewhere: Vec<Arc<str>>,
}

/// Whether `shared` (`$share/g/f`) is the group `group` at `filter`, without
/// building the string.
pub(crate) fn is_group(shared: &str, group: &str, filter: &str) -> bool {
    shared
        .strip_prefix("$share/")
        .and_then(|rest| rest.strip_prefix(group))
        .and_then(|rest| rest.strip_prefix('/'))
        == Some(filter)
}

/// Sends a routed message to the other nodes that need it (non-shared
/// subscribers there, shared groups assigned there), and a retained change
/// to the cluster's copy. `staged`: a connection's read in progress, whose
/// forwards are queued together at its end (`StoreWaits::settle`; the
/// acknowledgements wait on that flush's answer, not on `done`).
pub(crate) fn forward(
    link: &ClusterLink,
    message: &Arc<Message>,
    retained_changed: bool,
    now: Instant,
    staged: Option<&mut roost_cluster::Staged>,
) -> Forwarded {
    // The wall clock only places an expiry (`StoredMessage::from_message`):
    // not read for the messages that have none.
    let wall = if message.expires_at.is_some() {
        SystemTime::now()
    } else {
        SystemTime::UNIX_EPOCH
    };
    if message.retain && (retained_changed || message.payload.is_empty()) {
        link.cluster
            .retain(&StoredMessage::from_message(message, now, wall));
    }
    let wait = message.qos != QoS::AtMostOnce;
    let publisher_id = message.publisher.as_deref().unwrap_or("");
    let stored = || StoredMessage::from_message(message, now, wall);
    let (outcome, elsewhere) = match staged {
        Some(staged) => {
            link.cluster
                .forward_staged(staged, &message.topic, publisher_id, wait, stored)
        }
        None => link
            .cluster
            .forward(&message.topic, publisher_id, wait, stored),
    };
    let (done, remote) = match outcome {
        Forward::Local | Forward::Dropped => (None, false),
        Forward::Queued(done) => (done, true),
    };
    Forwarded {
        done,
        remote,
        elsewhere,
    }
}

impl ClusterLink {
    /// The link to a started cluster; `fences` are the shared store's.
    pub(crate) fn new(cluster: Cluster, fences: Arc<Fences>, handover_wait: Duration) -> Self {
        Self {
            cluster,
            kicked: Mutex::new(HashMap::new()),
            fences,
            salt: (uuid::Uuid::new_v4().as_u128() >> 64) as u64,
            handover_wait,
            fences_seen: tokio::sync::watch::Sender::new(0),
            lost: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// The token connection `connection_id` claims its client id with:
    /// unique in the cluster (a random half per process, then the id, which
    /// this process never reuses), and spelled again from the connection
    /// alone when its claim is held slim (`Fences::go_slim`).
    pub(crate) fn slim_token(&self, connection_id: u64) -> u128 {
        (u128::from(self.salt) << 64) | u128::from(connection_id)
    }

    /// Connection `connection_id` just attached to a fresh session of
    /// `client_id` with nothing to write (Clean Start 1, expiry 0, no will;
    /// the caller holds the slot's lock): its claim leaves the map of
    /// claims, the connection is its record (RSS per idle connection,
    /// docs/performance.md). A no-op unless it holds this node's fresh claim.
    pub(crate) fn attached_slim(&self, client_id: &str, connection_id: u64) {
        self.fences
            .go_slim(client_id, self.slim_token(connection_id), connection_id);
    }

    /// The connection of `slot` that holds a slim claim, if any: its live
    /// connection (the session not ended). Under the slot's lock.
    fn slim_holder(inner: &crate::slot::SlotInner) -> Option<u64> {
        if inner.ended {
            return None;
        }
        inner.link.as_ref().map(|l| l.connection_id)
    }

    /// This node just fenced itself (before its connections are closed).
    pub(crate) fn note_fenced(&self) {
        self.fences_seen.send_modify(|n| *n += 1);
    }

    /// Changes when this node fences itself.
    pub(crate) fn fence_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.fences_seen.subscribe()
    }

    /// Queues the forwards a read staged (see [`forward`]); the answer
    /// completes once they are written.
    pub(crate) fn flush(
        &self,
        staged: &mut roost_cluster::Staged,
    ) -> Option<roost_cluster::Done<()>> {
        self.cluster.flush(staged)
    }

    /// The cluster itself (for what other nodes send).
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Leaves the cluster (blocking).
    pub(crate) fn stop(&self) {
        self.cluster.stop();
    }

    /// True while this node is fenced (it holds no session).
    pub(crate) fn fenced(&self) -> bool {
        self.cluster.fenced()
    }

    /// Claims `client_id` for connection `connection_id` of this node: a
    /// connection of the same id on another node is told to close (0x8E)
    /// and hand the session over; this waits for that (at most
    /// `handover_wait`: a paused or cut-off node's later writes are fenced
    /// off), then settles the claim: from here only this connection's
    /// token writes the session's rows. `Err`: Redis is unreachable,
    /// CONNACK 0x88 (3.1.1: return code 3).
    pub(crate) async fn claim(
        &self,
        client_id: &ByteString,
        connection_id: u64,
        resume: bool,
    ) -> Result<ClaimOutcome, ReasonCode> {
        let unavailable = |e: roost_cluster::ClusterError| {
            tracing::info!(%client_id, error = %e, "CONNECT refused: the cluster is unavailable");
            ReasonCode::SERVER_UNAVAILABLE
        };
        let mine = self.slim_token(connection_id);
        let claimed = match self.cluster.claim_as(client_id, mine, resume) {
            Ok((token, done)) => done.await.map(|claimed| (token, claimed)),
            Err(e) => Err(e),
        };
        let (token, claimed) = match claimed {
            Ok(claimed) => claimed,
            // `availability_over_consistency`: a local-only session (no
            // token: its rows are not written, no takeover protection).
            Err(e) if self.cluster.available_when_cut_off() => {
                tracing::info!(%client_id, error = %e, "CONNECT accepted without a cluster claim (availability_over_consistency)");
                return Ok(ClaimOutcome {
                    from_other_node: false,
                    stored: true,
                });
            }
            Err(e) => return Err(unavailable(e)),
        };
        // The cluster recorded the claim before answering; from here this
        // connection holds it (unless a newer claim replaced it meanwhile:
        // that one's connection takes this one's session over).
        self.fences.connect(client_id, token, connection_id);
        let token = roost_cluster::token_text(token);
        let settled_by_claim = claimed.settled();
        let outcome = ClaimOutcome {
            from_other_node: claimed.previous_node.is_some(),
            stored: claimed.stored || claimed.previous_node.is_some(),
        };
        if let Some(handover) = claimed.handover {
            match tokio::time::timeout(self.handover_wait, handover).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::info!(%client_id, error = %e, "no handover answer"),
                Err(_) => tracing::warn!(
                    %client_id,
                    from = ?claimed.previous_node,
                    "the old node did not hand the session over in time; its later writes are fenced off"
                ),
            }
        }
        // Nobody else held it (the usual CONNECT): the claim settled itself
        // in the same script, one round trip for the CONNECT.
        if settled_by_claim {
            return Ok(outcome);
        }
        let settled = match self.cluster.settle(client_id, &token) {
            Ok(done) => done.await,
            Err(e) => Err(e),
        };
        let settled = match settled {
            Ok(settled) => settled,
            Err(e) if self.cluster.available_when_cut_off() => {
                tracing::info!(%client_id, error = %e, "CONNECT accepted with its claim not settled (availability_over_consistency)");
                true
            }
            Err(e) => return Err(unavailable(e)),
        };
        if !settled {
            tracing::info!(%client_id, "a newer claim took the client id during this CONNECT");
        }
        Ok(outcome)
    }

    /// Another node claimed `client_id` with a kick for `token`: the
    /// connection of this node that held that claim, forgotten here, and
    /// its control line. `None`: a newer connection of this node holds the
    /// id (the kick is not for it); `Some(None)`: no connection here holds
    /// it. `slot`: the id's session here, if any (its live connection may
    /// hold the claim slim).
    pub(crate) fn kicked_connection(
        &self,
        client_id: &ByteString,
        token: &str,
        slot: Option<&crate::slot::SessionSlot>,
    ) -> Option<Option<(u64, Option<crate::link::ControlSender>)>> {
        // A token that is not compact is none of this node's claims.
        let token = roost_cluster::compact_token(token);
        let Some(slot) = slot else {
            let kicked = self.fences.kicked(client_id, token, None)?;
            return Some(kicked.map(|id| (id, None)));
        };
        // Under the slot's lock: its connection cannot end (and look for
        // its claim) or be replaced between the check and the map. The
        // fences' lock is a leaf, as in `rejoin.rs`.
        let inner = slot.inner.lock();
        let slim = Self::slim_holder(&inner).filter(|&id| Some(self.slim_token(id)) == token);
        let kicked = self.fences.kicked(client_id, token, slim)?;
        Some(kicked.map(|id| {
            let control = inner
                .link
                .as_ref()
                .filter(|l| l.connection_id == id)
                .map(|l| l.control.clone());
            (id, control)
        }))
    }

    /// Connection `connection_id` is being closed by `kick`: its session is
    /// handed over when it detaches ([`Self::detached`] returns the kick).
    pub(crate) fn mark_kicked(&self, connection_id: u64, kick: Kicked) {
        self.kicked.lock().insert(connection_id, kick);
    }

    /// Tells the node that took a client id that this node has nothing (more)
    /// to hand over.
    pub(crate) fn handed(&self, kick: &Kicked) {
        self.cluster.handed(kick);
    }

    /// A retained message set (or cleared: empty payload) through the API,
    /// not routed: written to the cluster's retained store, which every
    /// node (this one too) applies.
    pub(crate) fn retain(&self, message: &Message) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        self.cluster
            .retain(&StoredMessage::from_message(message, now, wall));
    }

    /// A ban added (`until` Some) or lifted, for every node of the cluster.
    pub(crate) fn ban(&self, target: &str, until: Option<Option<SystemTime>>) {
        self.cluster.ban(target, until);
    }

    /// A message received for shared groups with no member here any more:
    /// sent on once to another node with members.
    pub(crate) fn reroute(&self, message: &StoredMessage, groups: &[String]) {
        self.cluster.reroute(message, groups);
    }

    /// This node now has a non-shared subscriber for `filter`, or a member
    /// of the group `filter` = `$share/g/f`.
    pub(crate) fn route_present(&self, filter: &str) {
        self.cluster.route_present(filter);
    }

    /// This node now has `members` members of share group `group` at
    /// `filter` (0: none left): other nodes weigh its share by it.
    pub(crate) fn group_members(&self, group: &str, filter: &str, members: usize) {
        self.cluster.group_members(group, filter, members);
    }

    /// This node has no subscriber for `filter` any more.
    pub(crate) fn route_absent(&self, filter: &str) {
        self.cluster.route_absent(filter);
    }

    /// This node's janitor adopted a dead node's session under `token`
    /// (`roost_cluster`'s `adopt.rs`): its rows are written under it from
    /// now on. No connection holds it: a kick finds it parked.
    pub(crate) fn adopted(&self, client_id: &ByteString, token: &str) {
        match roost_cluster::compact_token(token) {
            Some(token) => {
                self.fences.claimed(client_id, token);
                self.fences.park(client_id, token);
            }
            // The janitor's tokens are compact, as every claim's: without
            // one the session's rows are not written (the safe side).
            None => {
                tracing::warn!(%client_id, "adopted session with a malformed token; its rows are not written")
            }
        }
    }

    /// Connection `connection_id` of `client_id` ended: releases its claim
    /// if it still holds it. `Some`: a kick closed it (its session is
    /// handed over, not parked).
    pub(crate) fn detached(
        &self,
        slot: &crate::slot::SessionSlot,
        connection_id: u64,
    ) -> Option<Kicked> {
        let client_id = &slot.client_id;
        let released = {
            // Under the slot's lock (see `kicked_connection`): still the
            // session's live connection, it may hold its claim slim.
            let inner = slot.inner.lock();
            let slim = (Self::slim_holder(&inner) == Some(connection_id))
                .then(|| self.slim_token(connection_id));
            self.fences.disconnected(client_id, connection_id, slim)
        };
        if let Some(token) = released {
            self.cluster.release(client_id, token);
        }
        self.kicked.lock().remove(&connection_id)
    }

    /// The session of `client_id` ended on this node (or left it): off the
    /// node's session list; its token is dropped once what the store was
    /// given for it so far is written (those rows are still this node's).
    /// `connection`: the connection still attached to the ending session,
    /// if any.
    ///
    /// A newer CONNECT of the same client id on this node may have claimed
    /// it already (its claim completed, its connection not attached yet:
    /// it attaches to a fresh session once it sees this one ended). The
    /// token and the list entry are then that claim's, not this session's:
    /// both stay, or the live session would be off the janitor's list and
    /// its rows (its will) refused.
    pub(crate) fn session_ended(
        &self,
        client_id: &ByteString,
        connection: Option<u64>,
        persist: Option<&crate::persist::Persist>,
    ) {
        // The connection still attached (its session ended under it) may
        // hold the claim slim; the slot is ended, so no other attaches.
        let slim = connection.map(|id| self.slim_token(id));
        let Some(token) = self.fences.ending(client_id, connection, slim) else {
            tracing::debug!(%client_id, "session ended while a newer claim holds its client id (or none is held); the claim stays");
            return;
        };
        // Fenced: the session stays on this node's list in Redis, for the
        // janitor that publishes its will and starts its expiry.
        let ended = if self.fenced() {
            None
        } else {
            self.cluster.session_ended(client_id, token)
        };
        let barrier = persist.and_then(crate::persist::Persist::barrier);
        let fences = Arc::clone(&self.fences);
        let client_id = client_id.clone();
        // The entry goes once the rows are written and the owner thread
        // checked it: removed before, the check found no claim and left the
        // id on the node's session list for good (and a newer claim of the
        // id granted meanwhile could go slim, hiding from that check).
        let forget = async move {
            if let Some(barrier) = barrier {
                let _ = barrier.await;
            }
            if let Some(ended) = ended {
                let _ = ended.await;
            }
            fences.remove_if(&client_id, token);
        };
        // Off the runtime (unit tests) the token stays; harmless.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(forget));
        }
    }
}
