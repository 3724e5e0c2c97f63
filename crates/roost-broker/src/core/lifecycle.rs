//! A session's life after its connection: park, will, expiry, end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roost_codec::QoS;
use roost_codec::topic::parse_shared;
use roost_hooks::DropCause;
use roost_session::{Delivery, Message, SessionState};

use super::Core;
use crate::metrics::Metrics;
use crate::slot::{Handover, Parked, Pushed, SessionKey, SessionSlot};

impl Core {
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
        let (outbox, state_lost, connection) = {
            let mut inner = slot.inner.lock();
            inner.ended = true;
            inner.parked = None;
            let connection = inner.link.as_ref().map(|l| l.connection_id);
            (inner.outbox.take(), inner.state_lost, connection)
        };
        self.report_ended(&slot.client_id, outbox.iter());
        let removed_subs = self.unsubscribe_session(slot, state, state_lost);
        self.sessions.remove(slot);
        self.discard_undelivered(state);
        crate::persist::on_session_end(self.persist(), slot);
        if let Some(cluster) = self.cluster() {
            cluster.session_ended(&slot.client_id, connection, self.persist());
        }
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
        let Some(cluster) = self.cluster() else {
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
            return router.remove_all(&key, filters);
        };
        // Cluster mode: the same, then each filter left without subscribers
        // leaves the cluster's route table.
        let held: Vec<(String, Option<String>)> = if state_lost {
            router
                .subscriptions_of(&key)
                .into_iter()
                .map(|(filter, group, _)| (filter, group))
                .collect()
        } else {
            state
                .subscriptions
                .keys()
                .map(|filter| match parse_shared(filter) {
                    Some(shared) => (shared.filter.to_string(), Some(shared.group.to_string())),
                    None => (filter.to_string(), None),
                })
                .collect()
        };
        let removed = router.remove_all(&key, held.iter().map(|(f, g)| (f.as_str(), g.as_deref())));
        for (filter, group) in &held {
            match group {
                Some(group) => {
                    cluster.group_members(group, filter, router.member_count(filter, group));
                }
                None if !router.has_members(filter, None) => cluster.route_absent(filter),
                None => {}
            }
        }
        removed
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
        // Cluster mode: the claim goes. A connection closed because its
        // client id was taken on another node hands its session over; one
        // closed because this node fenced itself lets it go.
        let kicked = self.cluster().and_then(|c| c.detached(slot, connection_id));
        // Or another node took the client id while Redis was away
        // (`availability_over_consistency`, `cluster/rejoin.rs`): let go too.
        let fenced = self
            .cluster()
            .is_some_and(|c| c.fenced() || c.take_lost(connection_id));
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
        if kicked.is_some() || fenced {
            // Under this same lock, as below: no CONNECT attaches to it.
            inner.ended = true;
            drop(inner);
            match kicked {
                Some(kick) if !fenced => {
                    let will = will
                        .filter(|(_, delay)| !kick.resume || *delay == 0)
                        .map(|(message, _)| message);
                    self.hand_over(slot, state, will, kick);
                }
                _ => self.let_go(slot, state),
            }
            return;
        }
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
        self.requeue_offline(slot, &mut state, backlog, now);
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

    /// Queues what a detaching connection's outbox still held in its parked
    /// session; what does not fit is dropped, counted and reported (it was
    /// counted as delivered when it reached the outbox).
    pub(super) fn requeue_offline(
        &self,
        slot: &SessionSlot,
        state: &mut SessionState,
        backlog: std::collections::VecDeque<Delivery>,
        now: Instant,
    ) {
        let mut events = Vec::new();
        for delivery in backlog {
            let pushed = crate::slot::enqueue_parked(
                state,
                delivery,
                &self.session_config,
                now,
                &mut events,
            );
            if matches!(pushed, Pushed::Queued) {
                continue;
            }
            Metrics::inc(&self.metrics.messages_dropped);
            slot.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if !events.is_empty() {
            self.read_parked_events(&slot.client_id, events);
        }
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
