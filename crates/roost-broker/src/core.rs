//! The broker's shared state and the operations every connection uses:
//! routing a message, the retained store, and the session lifecycle (attach,
//! park, expire, will).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use roost_codec::topic::parse_shared;
use roost_codec::{QoS, ReasonCode};
use roost_router::{Router, SharedStrategy, Target};
use roost_session::{Delivery, EnqueueOutcome, Message, Session, SessionConfig, SessionState};
use smallvec::SmallVec;
use tokio::sync::watch;

use crate::config::{Config, SharedStrategyConfig};
use crate::driver::hibernate::Dormitory;
use crate::extensions::Extensions;
use crate::metrics::Metrics;
use crate::read_acl::TopicKey;
use crate::retained::RetainedStore;
use crate::slot::{Control, Handover, Parked, Pushed, SessionKey, SessionSlot};
use roost_hooks::DropCause;

/// Everything connections share.
pub(crate) struct Core {
    pub(crate) config: Config,
    pub(crate) session_config: Arc<SessionConfig>,
    pub(crate) sessions: crate::registry::Registry,
    pub(crate) router: RwLock<Router<SessionKey>>,
    pub(crate) retained: RetainedStore,
    pub(crate) metrics: Metrics,
    pub(crate) ext: Extensions,
    pub(crate) builtins: crate::builtin_auth::Builtins,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) next_connection_id: AtomicU64,
    /// The session store (`None`: nothing outlives the process).
    pub(crate) persist: Option<crate::persist::Persist>,
    /// Where idle connections hibernate (`None`: they never do).
    dormitory: Option<Arc<Dormitory>>,
}

/// A routed message waiting to be delivered (see [`Core::deliver`]).
pub(crate) struct Routed {
    message: Arc<Message>,
    targets: Vec<Target<SessionKey>>,
}

impl Routed {
    /// How many sessions it goes to.
    pub(crate) fn reached(&self) -> usize {
        self.targets.len()
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(
        config: Config,
        ext: Extensions,
        builtins: crate::builtin_auth::Builtins,
        persist: Option<crate::persist::Persist>,
    ) -> Arc<Self> {
        let strategy = match config.mqtt.shared_subscription_strategy {
            SharedStrategyConfig::Random => SharedStrategy::Random,
            SharedStrategyConfig::RoundRobin => SharedStrategy::RoundRobin,
            SharedStrategyConfig::Sticky => SharedStrategy::Sticky,
            SharedStrategyConfig::HashClientid => SharedStrategy::HashClientId,
            SharedStrategyConfig::HashTopic => SharedStrategy::HashTopic,
        };
        let mut session_config = config.session_config();
        session_config.store_events = persist.is_some();
        let session_config = Arc::new(session_config);
        let retained = RetainedStore::new(&config.mqtt);
        let dormitory = (config.limits.hibernate_after_ms > 0)
            .then(|| match Dormitory::new() {
                Ok(dormitory) => Some(dormitory),
                Err(e) => {
                    tracing::warn!(error = %e, "hibernation unavailable: cannot create its epoll set");
                    None
                }
            })
            .flatten();
        Arc::new(Self {
            config,
            session_config,
            sessions: crate::registry::Registry::default(),
            router: RwLock::new(Router::new(strategy)),
            retained,
            metrics: Metrics::default(),
            ext,
            builtins,
            shutdown: watch::channel(false).0,
            next_connection_id: AtomicU64::new(1),
            persist,
            dormitory,
        })
    }

    /// The dormitory, while it takes hibernating connections.
    pub(crate) fn dormitory(&self) -> Option<&Arc<Dormitory>> {
        self.dormitory.as_ref().filter(|d| d.is_running())
    }

    /// Starts watching hibernating connections (a task that ends with the runtime).
    pub(crate) fn start_dormitory(self: &Arc<Self>) {
        if let Some(dormitory) = &self.dormitory {
            tokio::spawn(Arc::clone(dormitory).watch(Arc::clone(self)));
        }
    }

    /// Routes one application message: updates the retained store when RETAIN
    /// is set, then pushes one delivery to every matching session (one per
    /// shared group). Returns how many sessions it reached.
    pub(crate) fn publish(
        &self,
        message: Message,
        publisher: Option<&SessionKey>,
        now: Instant,
    ) -> usize {
        let routed = self.route(message, publisher, now);
        let reached = routed.reached();
        drop(self.deliver(routed, Vec::new(), now));
        reached
    }

    /// First half of [`Core::publish`]: the retained store, and who gets it.
    pub(crate) fn route(
        &self,
        message: Message,
        publisher: Option<&SessionKey>,
        now: Instant,
    ) -> Routed {
        let message = Arc::new(message);
        if message.retain {
            self.retained.on_publish(&message, now);
        }
        let mut targets: Vec<Target<SessionKey>> = Vec::new();
        let publisher_id = message.publisher.as_deref().unwrap_or("");
        {
            let router = self.router.read();
            router.route_with(
                &message.topic,
                publisher,
                publisher_id,
                &|k: &SessionKey| k.0.is_online(),
                &mut targets,
            );
        }
        if targets.is_empty() {
            Metrics::inc(&self.metrics.messages_no_subscribers);
        } else if self.read_checks() {
            self.withhold_unreadable(&message, &mut targets);
        }
        Routed { message, targets }
    }

    /// `acl_wildcards = "per_message"`: drops (and counts) the targets whose
    /// subscriptions were not authorized as a whole under the rules in
    /// force and whose subscriber may not read this topic. Every delivery
    /// of a routed message passes here (live, offline, shared, will,
    /// delayed, embedding API), before the store records it.
    fn withhold_unreadable(&self, message: &Message, targets: &mut Vec<Target<SessionKey>>) {
        let generation = self.ext.authz_generation();
        let current = crate::read_acl::cleared_tag(generation);
        let mut topic = None;
        targets.retain(|target| {
            if current != 0 && target.cleared == current {
                return true;
            }
            let topic = *topic.get_or_insert_with(|| TopicKey::new(&message.topic));
            let qos = message.qos.min(target.qos);
            if self.may_read(&target.key.0, topic, generation, qos) {
                return true;
            }
            self.withhold(&target.key.0, message, qos);
            false
        });
    }

    /// Second half of [`Core::publish`]: with a store, writes one batch (the
    /// retained change, every stored delivery's enqueue, then `extra`, e.g.
    /// the publisher's inbound QoS 2 id) before pushing the deliveries, and
    /// returns its ticket.
    pub(crate) fn deliver(
        &self,
        routed: Routed,
        extra: Vec<roost_store::Delta>,
        now: Instant,
    ) -> Option<roost_store::Ticket> {
        self.deliver_from(routed, extra, now, None)
    }

    /// [`Core::deliver`] for a publishing connection, which pauses when a
    /// delivery fills an outbox to its high-water mark (back-pressure,
    /// `driver/backpressure.rs`).
    pub(crate) fn deliver_from(
        &self,
        routed: Routed,
        extra: Vec<roost_store::Delta>,
        now: Instant,
        publisher: Option<(&crate::driver::backpressure::Credit, &SessionKey)>,
    ) -> Option<roost_store::Ticket> {
        let Routed { message, targets } = routed;
        let delivery_for = |target: &Target<SessionKey>| Delivery {
            qos: message.qos.min(target.qos),
            retain: target.retain_as_published && message.retain,
            subscription_ids: target.subscription_ids.clone(),
            message: Arc::clone(&message),
            store_seq: None,
        };
        let push = |slot: &Arc<SessionSlot>, delivery: Delivery| {
            // Back-pressure (issue 21): a full outbox pauses its publisher.
            if self.push(slot, delivery, now)
                && let Some((credit, own)) = publisher
            {
                credit.note(self, slot, own);
            }
        };
        let Some(persist) = &self.persist else {
            for target in &targets {
                push(&target.key.0, delivery_for(target));
            }
            return None;
        };
        let wall = std::time::SystemTime::now();
        let mut batch = Vec::with_capacity(targets.len() + extra.len() + 1);
        let keep_qos0 = self.session_config.queue_qos0_offline;
        let deliveries: Vec<(&Arc<SessionSlot>, Delivery)> = targets
            .iter()
            .map(|target| {
                let mut delivery = delivery_for(target);
                persist.stamp(
                    &target.key.0,
                    &mut delivery,
                    &mut batch,
                    keep_qos0,
                    now,
                    wall,
                );
                (&target.key.0, delivery)
            })
            .collect();
        batch.extend(extra);
        let ticket = persist.submit_publish(batch, message.retain);
        for (slot, delivery) in deliveries {
            push(slot, delivery);
        }
        ticket
    }

    /// Pushes one delivery into a session, counting the outcome (and
    /// reporting a drop to the hooks that want it). True when the session's
    /// outbox reached its high-water mark (`credit.rs`).
    pub(crate) fn push(&self, slot: &SessionSlot, delivery: Delivery, now: Instant) -> bool {
        let events = self.ext.message_events;
        let watched = events.then(|| (Arc::clone(&delivery.message), delivery.qos));
        match slot.push(
            delivery,
            self.config.mqtt.max_outbox,
            self.config.limits.pause_at(),
            &self.session_config,
            now,
            events,
        ) {
            Pushed::Online | Pushed::Queued => Metrics::inc(&self.metrics.messages_delivered),
            Pushed::OnlineCongested => {
                Metrics::inc(&self.metrics.messages_delivered);
                return true;
            }
            Pushed::QueuedDroppedOldest(evicted) => {
                Metrics::inc(&self.metrics.messages_delivered);
                Metrics::inc(&self.metrics.messages_dropped);
                if let Some(d) = evicted {
                    self.ext
                        .dropped(&slot.client_id, &d.message, d.qos, DropCause::QueueFull);
                }
            }
            Pushed::Dropped(cause) => {
                Metrics::inc(&self.metrics.messages_dropped);
                if let Some((message, qos)) = watched {
                    self.ext.dropped(&slot.client_id, &message, qos, cause);
                }
            }
        }
        false
    }

    /// Adds the deliveries a live session dropped since `seen` (its queue
    /// full, expired while queued, too large for the client) to the broker's
    /// and the slot's drop counters, so every drop shows in `stats()`.
    pub(crate) fn sync_session_drops(&self, slot: &SessionSlot, seen: &mut u64, session: &Session) {
        let total = session.stats().dropped.total();
        if total > *seen {
            let new = total - *seen;
            self.metrics
                .messages_dropped
                .fetch_add(new, Ordering::Relaxed);
            slot.dropped.fetch_add(new, Ordering::Relaxed);
        }
        *seen = total;
    }

    /// Retained messages matching `filter`, as deliveries at most `qos`; expired
    /// ones are skipped (and removed). `check`: the subscribing session, when
    /// its subscription was not authorized as a whole (`per_message`): each
    /// message it may not read is withheld (and counted).
    pub(crate) fn retained_for(
        &self,
        filter: &str,
        qos: QoS,
        sub_id: Option<u32>,
        check: Option<&SessionSlot>,
        now: Instant,
    ) -> Vec<Delivery> {
        self.retained
            .matching(filter, now)
            .into_iter()
            .filter(|message| {
                let Some(slot) = check else { return true };
                let granted = message.qos.min(qos);
                let generation = self.ext.authz_generation();
                let topic = TopicKey::new(&message.topic);
                let readable = self.may_read(slot, topic, generation, granted);
                if !readable {
                    self.withhold(slot, message, granted);
                }
                readable
            })
            .map(|message| {
                let granted = message.qos.min(qos);
                let mut delivery = Delivery::new(message, granted, true);
                delivery.subscription_ids = sub_id.into_iter().collect::<SmallVec<[u32; 2]>>();
                delivery
            })
            .collect()
    }

    /// Ends a session for good: removes its subscriptions and its registry
    /// entry. Messages still queued or in flight for it are discarded and
    /// counted: once a session ends, a shared-subscription message it held must
    /// not go to another member [MQTT-4.8.2-5].
    pub(crate) fn end_session(
        &self,
        slot: &Arc<SessionSlot>,
        state: &mut SessionState,
        _now: Instant,
    ) {
        let (outbox, state_lost) = {
            let mut inner = slot.inner.lock();
            inner.ended = true;
            inner.parked = None;
            (inner.outbox.take(), inner.state_lost)
        };
        self.report_ended(&slot.client_id, outbox.iter());
        let removed_subs = self.unsubscribe_session(slot, state, state_lost);
        self.sessions.remove(slot);
        self.discard_undelivered(state);
        crate::persist::on_session_end(self, slot);
        self.ext.notify(|h| h.on_session_expired(&slot.client_id));
        tracing::debug!(client_id = %slot.client_id, removed_subs, "session ended");
    }

    /// Removes an ending session's subscriptions from the router; returns
    /// how many it held. The session's own map is the one list of its
    /// filters (the router keeps no index per subscriber), so they are passed
    /// in. `state_lost` (the slot's [`crate::slot::SlotInner::state_lost`]):
    /// a takeover lost an earlier state, whose subscriptions are still in the
    /// router but in no map, so the whole trie is searched for the key.
    pub(crate) fn unsubscribe_session(
        &self,
        slot: &Arc<SessionSlot>,
        state: &SessionState,
        state_lost: bool,
    ) -> usize {
        let key = SessionKey(Arc::clone(slot));
        let mut router = self.router.write();
        if state_lost {
            return router.purge(&key);
        }
        let filters = state
            .subscriptions
            .keys()
            .map(|filter| match parse_shared(filter) {
                Some(shared) => (shared.filter, Some(shared.group)),
                None => (&**filter, None),
            });
        router.remove_all(&key, filters)
    }

    /// Reports deliveries discarded because their session ended.
    pub(crate) fn report_ended<'a>(
        &self,
        client_id: &str,
        deliveries: impl Iterator<Item = &'a Delivery>,
    ) {
        if self.ext.message_events {
            for d in deliveries {
                self.ext
                    .dropped(client_id, &d.message, d.qos, DropCause::SessionEnded);
            }
        }
    }

    /// Counts the messages an ending session leaves behind as dropped.
    pub(crate) fn discard_undelivered(&self, state: &mut SessionState) {
        if self.ext.message_events {
            // QoS 0 still queued is discarded silently by take_undelivered.
            let qos0 = state.queued().filter(|d| d.qos == QoS::AtMostOnce);
            self.report_ended(&state.client_id, qos0);
        }
        let undelivered = state.take_undelivered();
        self.report_ended(&state.client_id, undelivered.iter());
        let left = undelivered.len() as u64;
        if left > 0 {
            self.metrics
                .messages_dropped
                .fetch_add(left, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Detaches a connection from its session. If another connection took the
    /// session over meanwhile, the state and will are handed to it. Otherwise
    /// the session is parked (or ended when its expiry interval is 0) and the
    /// will-delay / expiry timer is armed.
    pub(crate) fn detach(
        self: &Arc<Self>,
        slot: &Arc<SessionSlot>,
        connection_id: u64,
        mut state: SessionState,
        will: Option<(Message, u32)>,
        now: Instant,
    ) {
        let expiry = state.session_expiry_interval();
        let expires_at = (expiry != u32::MAX).then(|| now + Duration::from_secs(u64::from(expiry)));
        let mut inner = slot.inner.lock();
        let mine = inner
            .link
            .as_ref()
            .is_some_and(|l| l.connection_id == connection_id);
        if !mine {
            if let Some(tx) = inner.handover.take() {
                drop(inner);
                let _ = tx.send(Handover { state, will });
            }
            return;
        }
        inner.link = None;
        if expiry == 0 {
            // Mark the slot dead under this same lock so a concurrent CONNECT
            // cannot attach to a session that is about to be removed.
            inner.ended = true;
            drop(inner);
            if let Some((will, _)) = will {
                self.publish_will(will, now);
            }
            self.end_session(slot, &mut state, now);
            return;
        }
        let backlog = inner.outbox.take();
        for d in backlog {
            if crate::driver::enqueue_offline(self, &mut state, d, now) != EnqueueOutcome::Queued {
                Metrics::inc(&self.metrics.messages_dropped);
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let will = will.take_will(expires_at, now);
        let stored = self.persist.is_some().then(|| {
            let owner = inner.stored_owner();
            crate::persist::on_park(&mut inner.store, owner, &mut state, will.as_ref(), now)
        });
        inner.generation += 1;
        inner.parked = Some(Box::new(Parked {
            state,
            will,
            expires_at,
            restored_owner: None,
        }));
        let generation = inner.generation;
        drop(inner);
        if let (Some(persist), Some(batch)) = (&self.persist, stored) {
            drop(persist.submit(batch));
        }
        self.arm_timer(slot, generation);
    }

    /// One task per parked session sleeps until its next deadline (will or
    /// expiry); a newer generation (client came back) makes it stale.
    pub(crate) fn arm_timer(self: &Arc<Self>, slot: &Arc<SessionSlot>, generation: u64) {
        let next = {
            let inner = slot.inner.lock();
            let Some(parked) = inner.parked.as_ref() else {
                return;
            };
            match (parked.will.as_ref().map(|w| w.1), parked.expires_at) {
                (Some(w), Some(e)) => Some(w.min(e)),
                (Some(w), None) => Some(w),
                (None, e) => e,
            }
        };
        let Some(deadline) = next else { return };
        let core = Arc::clone(self);
        let slot = Arc::clone(slot);
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
            core.on_parked_deadline(&slot, generation);
        });
    }

    fn on_parked_deadline(self: &Arc<Self>, slot: &Arc<SessionSlot>, generation: u64) {
        let now = Instant::now();
        let (will, expired_state) = {
            let mut inner = slot.inner.lock();
            if inner.generation != generation || inner.ended {
                return;
            }
            let Some(parked) = inner.parked.as_mut() else {
                return;
            };
            let will = match parked.will.take() {
                Some((message, at)) if at <= now => Some(message),
                other => {
                    parked.will = other;
                    None
                }
            };
            let expired = parked.expires_at.is_some_and(|e| e <= now);
            let state = if expired {
                inner.parked.take().map(|p| p.state)
            } else {
                None
            };
            if state.is_some() {
                inner.ended = true;
            }
            (will, state)
        };
        if let Some(will) = will {
            self.publish_will(will, now);
        }
        if let Some(mut state) = expired_state {
            Metrics::inc(&self.metrics.sessions_expired);
            self.end_session(slot, &mut state, now);
        } else {
            self.arm_timer(slot, generation);
        }
    }

    pub(crate) fn publish_will(&self, will: Message, now: Instant) {
        Metrics::inc(&self.metrics.wills_published);
        tracing::debug!(topic = %will.topic, "publishing will message");
        // The stored will goes in the same batch as what it routes.
        let stored = match (&self.persist, &will.publisher) {
            (Some(_), Some(client_id)) => vec![roost_store::Delta::WillDelete {
                client_id: client_id.clone(),
            }],
            _ => Vec::new(),
        };
        let routed = self.route(will, None, now);
        drop(self.deliver(routed, stored, now));
    }

    /// True once shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Begins a graceful shutdown: sets the flag (listeners, the retained
    /// sweep and new connections watch it), then tells every live connection
    /// to close with DISCONNECT 0x8B. In that order: a driver checks the flag
    /// after its link is in its slot, so one that saw it unset is reached here.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Collected first: no registry or slot lock is held while sending.
        let mut live = Vec::new();
        self.sessions.for_each(|slot| {
            if let Some(link) = &slot.inner.lock().link {
                live.push(link.control.clone());
            }
        });
        for control in live {
            // A driver already told to close (takeover, ban) ends anyway.
            let _ = control.try_send(Control::Close(ReasonCode::SERVER_SHUTTING_DOWN));
        }
    }
}

impl SessionSlot {
    /// A live connection owns this session.
    pub(crate) fn is_online(&self) -> bool {
        self.inner.lock().link.is_some()
    }
}

/// Turns a will and its delay into a will with its fire time.
trait TakeWill {
    fn take_will(self, expires_at: Option<Instant>, now: Instant) -> Option<(Message, Instant)>;
}

impl TakeWill for Option<(Message, u32)> {
    fn take_will(self, expires_at: Option<Instant>, now: Instant) -> Option<(Message, Instant)> {
        self.map(|(message, delay)| {
            let at = now + Duration::from_secs(u64::from(delay));
            // The will goes out at the earlier of its delay and the session's end [MQTT-3.1.3-9].
            (message, expires_at.map_or(at, |e| e.min(at)))
        })
    }
}
