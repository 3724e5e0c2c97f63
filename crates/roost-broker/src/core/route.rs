//! Routing one message: the retained store, the router's targets, the
//! checks at delivery, the store's batch, and the push into each session.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use roost_codec::QoS;
use roost_router::{Select, Target};
use roost_session::{Delivery, Message, Session, SessionEvent};
use smallvec::SmallVec;

use super::Core;
use crate::metrics::Metrics;
use crate::read_acl::TopicKey;
use crate::slot::{PushRules, Pushed, SessionKey, SessionSlot};

/// A routed message waiting to be delivered (see [`Core::deliver`]).
pub(crate) struct Routed {
    message: Arc<Message>,
    targets: Vec<Target<SessionKey>>,
    /// Cluster mode: written to other nodes' inboxes once this completes.
    forwarded: Option<roost_cluster::Done<()>>,
    /// Cluster mode: other nodes have subscribers for it.
    remote: bool,
}

impl Routed {
    /// How many sessions it goes to here, plus one when other cluster nodes
    /// have subscribers for it (their sessions are not known here).
    pub(crate) fn reached(&self) -> usize {
        self.targets.len() + usize::from(self.remote)
    }

    /// What a QoS 1/2 publisher's acknowledgement waits on in cluster mode.
    pub(crate) fn take_forwarded(&mut self) -> Option<roost_cluster::Done<()>> {
        self.forwarded.take()
    }
}

/// The session here of a remote message's publisher (a subscription of
/// its with No Local does not get it), looked up once per run of that
/// publisher's messages: a batch from another node holds each publishing
/// connection's read together, and the lookup hashes the client id with
/// SipHash (client ids are the client's to choose) under a shard's lock.
#[derive(Default)]
pub(crate) struct Publishers {
    last: Option<(bytestring::ByteString, Option<SessionKey>)>,
}

impl Publishers {
    fn of(
        &mut self,
        core: &Core,
        publisher: Option<&bytestring::ByteString>,
    ) -> Option<SessionKey> {
        let id = publisher?;
        if let Some((last, key)) = &self.last
            && last == id
        {
            return key.clone();
        }
        let key = core.sessions.get(id).map(SessionKey);
        self.last = Some((id.clone(), key.clone()));
        key
    }
}

impl Core {
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
        self.route_staged(message, publisher, now, None)
    }

    /// [`Core::route`] for a connection's read in progress: in cluster mode
    /// its forwards are staged in `staged` and queued together at the end
    /// of the read (`StoreWaits::settle`).
    pub(crate) fn route_staged(
        &self,
        message: Message,
        publisher: Option<&SessionKey>,
        now: Instant,
        staged: Option<&mut roost_cluster::Staged>,
    ) -> Routed {
        let message = Arc::new(message);
        let retained = message.retain && self.retained.on_publish(&message, now);
        let Some(cluster) = self.cluster() else {
            return self.route_local(message, publisher, None, true);
        };
        let sent = crate::cluster::forward(cluster, &message, retained, now, staged);
        let mut routed = if sent.elsewhere.is_empty() {
            self.route_local(message, publisher, None, true)
        } else {
            // Groups another node delivers are skipped here.
            let elsewhere = &sent.elsewhere;
            let here = |group: &str, filter: &str| {
                !elsewhere
                    .iter()
                    .any(|s| crate::cluster::is_group(s, group, filter))
            };
            let select = Select {
                direct: true,
                group: &here,
            };
            self.route_local(message, publisher, Some(&select), true)
        };
        routed.forwarded = sent.done;
        routed.remote = sent.remote;
        routed
    }

    /// A message another cluster node forwarded: to the part of this node's
    /// subscribers it names — the non-shared ones when `direct`, one member
    /// of each of `groups` (`$share/g/f`) — never forwarded again (the
    /// retained copy is kept by the retained log). The publisher's client
    /// id finds its session here, if any, for No Local (through `publishers`,
    /// kept for a batch). Returns the groups
    /// that have no member here any more (the member left after the sender
    /// chose this node). `only` (an inbox handoff): the non-shared
    /// subscribers are only those of these client ids. Also returns the
    /// store's ticket for the queue rows it wrote (durable mode waits on it).
    pub(crate) fn route_remote(
        &self,
        message: Message,
        direct: bool,
        groups: &[String],
        only: &[String],
        now: Instant,
        publishers: &mut Publishers,
    ) -> (Vec<String>, Option<roost_store::CommitTicket>) {
        let publisher = publishers.of(self, message.publisher.as_ref());
        let found: SmallVec<[Cell<bool>; 4]> = groups.iter().map(|_| Cell::new(false)).collect();
        let wanted = |group: &str, filter: &str| {
            let at = groups
                .iter()
                .position(|s| crate::cluster::is_group(s, group, filter));
            if let Some(hit) = at.and_then(|at| found.get(at)) {
                hit.set(true);
            }
            at.is_some()
        };
        let select = Select {
            direct,
            group: &wanted,
        };
        let mut routed =
            self.route_local(Arc::new(message), publisher.as_ref(), Some(&select), true);
        if !only.is_empty() {
            routed
                .targets
                .retain(|t| t.shared || only.iter().any(|id| id.as_str() == &*t.key.0.client_id));
        }
        let ticket = self.deliver(routed, Vec::new(), now);
        // A group matched in the trie has a member (empty groups are
        // removed), so it was delivered here.
        let missing = groups
            .iter()
            .zip(&found)
            .filter(|(_, hit)| !hit.get())
            .map(|(g, _)| g.clone())
            .collect();
        (missing, ticket)
    }

    /// A value of the broker's own about this node (the `$SYS/broker/...`
    /// tree): kept as the topic's retained value in `sys_values` (not the
    /// retained store: see `retained/system.rs`) and routed to this node's
    /// subscribers only, never forwarded to other cluster nodes (each node
    /// has its own values), and not counted in `messages_no_subscribers`
    /// (nobody watching `$SYS` is the usual case, not a client's message
    /// going nowhere).
    pub(crate) fn publish_local(&self, message: Message, now: Instant) -> usize {
        let message = Arc::new(message);
        if message.retain {
            self.sys_values.set(Arc::clone(&message));
        }
        let routed = self.route_local(message, None, None, false);
        let reached = routed.reached();
        drop(self.deliver(routed, Vec::new(), now));
        reached
    }

    /// The local half of [`Core::route`]: this node's subscribers, or the
    /// part of them `select` names (cluster mode); `count_unmatched`: a
    /// message nobody gets counts in `messages_no_subscribers`.
    fn route_local(
        &self,
        message: Arc<Message>,
        publisher: Option<&SessionKey>,
        select: Option<&Select<'_>>,
        count_unmatched: bool,
    ) -> Routed {
        let mut targets: Vec<Target<SessionKey>> = Vec::new();
        let publisher_id = message.publisher.as_deref().unwrap_or("");
        {
            let router = self.router.read();
            let online = |k: &SessionKey| k.0.is_online();
            match select {
                None => router.route_with(
                    &message.topic,
                    publisher,
                    publisher_id,
                    &online,
                    &mut targets,
                ),
                Some(select) => router.route_select(
                    &message.topic,
                    publisher,
                    publisher_id,
                    &online,
                    select,
                    &mut targets,
                ),
            }
        }
        if targets.is_empty() {
            if count_unmatched {
                Metrics::inc(&self.metrics.messages_no_subscribers);
            }
        } else if self.read_checks() {
            self.withhold_unreadable(&message, &mut targets);
        }
        Routed {
            message,
            targets,
            forwarded: None,
            remote: false,
        }
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
    ) -> Option<roost_store::CommitTicket> {
        self.deliver_from(routed, extra, now, None).0
    }

    /// [`Core::deliver`] for a publishing connection (`publisher`, its own
    /// key), which pauses when a delivery fills an outbox to its high-water
    /// mark (back-pressure, `driver/backpressure.rs`): also returns the first
    /// such subscriber other than the publisher itself.
    pub(crate) fn deliver_from(
        &self,
        routed: Routed,
        extra: Vec<roost_store::Delta>,
        now: Instant,
        publisher: Option<&SessionKey>,
    ) -> (Option<roost_store::CommitTicket>, Option<Arc<SessionSlot>>) {
        let Routed {
            message, targets, ..
        } = routed;
        let delivery_for = |target: &Target<SessionKey>| Delivery {
            qos: message.qos.min(target.qos),
            retain: target.retain_as_published && message.retain,
            subscription_ids: target.subscription_ids.clone(),
            message: Arc::clone(&message),
            store_seq: None,
        };
        let mut congested: Option<Arc<SessionSlot>> = None;
        let mut note = |slot: &Arc<SessionSlot>, full: bool| {
            // Back-pressure (issue 21): a full outbox pauses its publisher
            // (not for its own outbox, which it drains itself).
            if full
                && congested.is_none()
                && publisher.is_some_and(|own| !Arc::ptr_eq(slot, &own.0))
            {
                congested = Some(Arc::clone(slot));
            }
        };
        let Some(persist) = &self.persist else {
            for target in &targets {
                let slot = &target.key.0;
                note(slot, self.push(slot, delivery_for(target), now));
            }
            return (None, congested);
        };
        // A delivery to a session that is not stored (clean sessions, the
        // usual case in cluster mode, whose shared store is always on) is
        // pushed at once, under the one lock that found it not stored: no
        // allocation, no wall clock read. One to a stored session is
        // numbered under that lock and pushed after its enqueue is
        // submitted, so a subscriber's acknowledgement can never reach the
        // store before it.
        let keep_qos0 = self.session_config.queue_qos0_offline;
        let mut wall = None;
        let mut batch = Vec::new();
        let mut stored: SmallVec<[(&Arc<SessionSlot>, Delivery); 2]> = SmallVec::new();
        for target in &targets {
            let slot = &target.key.0;
            let delivery = delivery_for(target);
            let store_it = crate::persist::Persist::stores(delivery.qos, keep_qos0);
            match self.push_unless_stored(slot, delivery, store_it, now) {
                Ok(full) => note(slot, full),
                Err(delivery) => {
                    crate::persist::Persist::enqueue(slot, &delivery, &mut batch, now, &mut wall);
                    stored.push((slot, delivery));
                }
            }
        }
        batch.extend(extra);
        let ticket = persist.submit_publish(batch, message.retain);
        for (slot, delivery) in stored {
            note(slot, self.push(slot, delivery, now));
        }
        (ticket, congested)
    }

    /// Pushes one delivery into a session, counting the outcome (and
    /// reporting a drop to the hooks that want it, and to the store). True
    /// when the session's outbox reached its high-water mark (`credit.rs`).
    pub(crate) fn push(&self, slot: &SessionSlot, delivery: Delivery, now: Instant) -> bool {
        // Filled only by a parked session that dropped something.
        let mut events = Vec::new();
        let pushed = slot.push(delivery, &self.push_rules(now), &mut events);
        self.pushed(slot, pushed, events)
    }

    /// This broker's limits for a push at `now`.
    fn push_rules(&self, now: Instant) -> PushRules<'_> {
        PushRules {
            max_outbox: self.config.mqtt.max_outbox,
            high_water: self.config.limits.pause_at(),
            config: &self.session_config,
            now,
        }
    }

    /// [`Core::push`], unless the session is stored and the delivery is to
    /// be stored with it (`store_it`): then it comes back numbered
    /// ([`SessionSlot::push_unless_stored`]).
    fn push_unless_stored(
        &self,
        slot: &SessionSlot,
        delivery: Delivery,
        store_it: bool,
        now: Instant,
    ) -> Result<bool, Delivery> {
        let mut events = Vec::new();
        let pushed =
            slot.push_unless_stored(delivery, store_it, &self.push_rules(now), &mut events)?;
        Ok(self.pushed(slot, pushed, events))
    }

    /// Counts a push's outcome; true when the outbox reached its high-water
    /// mark.
    fn pushed(&self, slot: &SessionSlot, pushed: Pushed, events: Vec<SessionEvent>) -> bool {
        if !events.is_empty() {
            self.read_parked_events(&slot.client_id, events);
        }
        match pushed {
            Pushed::Online | Pushed::Queued => Metrics::inc(&self.metrics.messages_delivered),
            Pushed::OnlineCongested => {
                Metrics::inc(&self.metrics.messages_delivered);
                return true;
            }
            Pushed::QueuedDroppedOldest => {
                Metrics::inc(&self.metrics.messages_delivered);
                Metrics::inc(&self.metrics.messages_dropped);
            }
            Pushed::Dropped => Metrics::inc(&self.metrics.messages_dropped),
            Pushed::Refused(cause, d) => {
                Metrics::inc(&self.metrics.messages_dropped);
                self.ext.dropped(&slot.client_id, &d.message, d.qos, cause);
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

    /// Retained messages matching `filter` (the broker's `$SYS` values
    /// included), as deliveries at most `qos`; expired ones are skipped (and
    /// removed). `check`: the subscribing session, when
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
        let mut messages = self.retained.matching(filter, now);
        messages.extend(self.sys_values.matching(filter));
        messages
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
}
