//! The persistent part of a session: what survives a disconnect while the
//! session has not expired, and moves between connections on takeover or resume.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytestring::ByteString;
use roost_codec::{PacketId, QoS, ReasonCode};

use crate::config::{QueueFullPolicy, SessionConfig};
use crate::inflight::Inflight;
use crate::message::Delivery;
use crate::session_event::{DropReason, SessionEvent, Wanted};

/// One granted subscription (options as granted, identifier); the router
/// stores the same type.
pub use roost_codec::Subscription;

pub use crate::subscriptions::Subscriptions;

/// Where an inbound QoS 2 message is in its flow (the receiver side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundQos2 {
    /// Handed to the broker; PUBREC not yet sent (`complete_publish` pending).
    Routing,
    /// PUBREC sent with this (success) reason; waiting for PUBREL.
    AwaitingPubRel(ReasonCode),
}

/// Messages dropped by this session, by cause. Every drop is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Message Expiry Interval ran out before delivery started.
    pub expired: u64,
    /// Larger than the client's Maximum Packet Size.
    pub too_large: u64,
    /// Queue full (either policy).
    pub queue_full: u64,
    /// QoS 0 while offline, with `queue_qos0_offline = false`.
    pub qos0_offline: u64,
}

impl DropCounters {
    /// Sum of all causes.
    pub fn total(&self) -> u64 {
        self.expired + self.too_large + self.queue_full + self.qos0_offline
    }
}

/// Result of queueing a delivery while the client is offline (or beyond its window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// Queued.
    Queued,
    /// The queue was full and the policy is `DropNewest`: this delivery was dropped.
    DroppedNewest,
    /// The queue was full and the policy is `DropOldest`: the oldest queued
    /// delivery was dropped and this one queued.
    DroppedOldest,
    /// QoS 0 while offline and `queue_qos0_offline` is false: dropped.
    DroppedQos0,
    /// Already expired: dropped.
    Expired,
}

/// Persistent part of a session. Moves between connections (takeover,
/// resume); survives disconnects until the Session Expiry Interval passes.
#[derive(Debug)]
pub struct SessionState {
    /// The client identifier (assigned by the server when the client sent none).
    pub client_id: ByteString,
    /// Granted subscriptions.
    pub subscriptions: Subscriptions,
    /// Outbound QoS 1/2 deliveries sent but not completed, in send order.
    pub inflight: Inflight,
    /// Deliveries waiting to be sent (offline, or beyond the inflight
    /// window), oldest first, bounded by `max_queued_messages`.
    pub(crate) pending: VecDeque<Delivery>,
    /// Inbound QoS 2 packet identifiers not yet released by PUBREL.
    pub(crate) inbound_qos2: BTreeMap<PacketId, InboundQos2>,
    /// Session Expiry Interval in seconds currently in force.
    pub(crate) session_expiry_interval: u32,
    /// Drop counters; allocated at the first drop, since most sessions never
    /// drop anything (8 bytes instead of 32 in every session).
    pub(crate) dropped: Option<Box<DropCounters>>,
    /// What happened to the session's messages, oldest first, for the
    /// store and the hooks (empty when neither asked; see [`SessionEvent`]).
    pub(crate) events: VecDeque<SessionEvent>,
}

impl SessionState {
    /// An empty session for `client_id`.
    pub fn new(client_id: ByteString) -> Self {
        Self {
            client_id,
            subscriptions: Subscriptions::new(),
            inflight: Inflight::default(),
            pending: VecDeque::new(),
            inbound_qos2: BTreeMap::new(),
            session_expiry_interval: 0,
            dropped: None,
            events: VecDeque::new(),
        }
    }

    /// Queues a delivery while no connection is attached. Applies the expiry
    /// check, the QoS 0 offline policy and the queue limit with its policy.
    pub fn enqueue_offline(
        &mut self,
        delivery: Delivery,
        config: &SessionConfig,
        now: Instant,
    ) -> EnqueueOutcome {
        let wanted = Wanted::of(config);
        if delivery.message.is_expired(now) {
            self.dropped_mut().expired += 1;
            self.record_dropped(&delivery, DropReason::Expired, wanted);
            return EnqueueOutcome::Expired;
        }
        if delivery.qos == QoS::AtMostOnce && !config.queue_qos0_offline {
            self.dropped_mut().qos0_offline += 1;
            self.record_dropped(&delivery, DropReason::Qos0WhileOffline, wanted);
            return EnqueueOutcome::DroppedQos0;
        }
        self.enqueue(delivery, config)
    }

    /// Appends to the pending queue, applying the limit and policy.
    pub(crate) fn enqueue(&mut self, delivery: Delivery, config: &SessionConfig) -> EnqueueOutcome {
        if self.pending.len() < config.max_queued_messages {
            self.pending.push_back(delivery);
            return EnqueueOutcome::Queued;
        }
        self.dropped_mut().queue_full += 1;
        let wanted = Wanted::of(config);
        match config.queue_full_policy {
            QueueFullPolicy::DropNewest => {
                self.record_dropped(&delivery, DropReason::QueueFull, wanted);
                EnqueueOutcome::DroppedNewest
            }
            QueueFullPolicy::DropOldest => {
                let Some(oldest) = self.pending.pop_front() else {
                    // A zero-length queue holds nothing to make room with.
                    self.record_dropped(&delivery, DropReason::QueueFull, wanted);
                    return EnqueueOutcome::DroppedNewest;
                };
                self.record_dropped(&oldest, DropReason::QueueFull, wanted);
                self.pending.push_back(delivery);
                EnqueueOutcome::DroppedOldest
            }
        }
    }

    /// Records an event (callers check that somebody wants it).
    pub(crate) fn record(&mut self, event: SessionEvent) {
        self.events.push_back(event);
    }

    /// Records that a delivery was dropped, when it is stored or hooks want
    /// to hear of it.
    pub(crate) fn record_dropped(
        &mut self,
        delivery: &Delivery,
        reason: DropReason,
        wanted: Wanted,
    ) {
        if delivery.store_seq.is_some() || wanted.messages {
            self.events.push_back(SessionEvent::Dropped {
                seq: delivery.store_seq,
                qos: delivery.qos,
                reason,
                message: wanted.message(delivery),
            });
        }
    }

    /// The oldest event not yet taken (see [`SessionEvent`]). The broker
    /// drains them after each input (a parked session's after each call)
    /// and hands them to the store and the hooks.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The Session Expiry Interval in seconds (`u32::MAX` = never expires).
    pub fn session_expiry_interval(&self) -> u32 {
        self.session_expiry_interval
    }

    /// Sets the Session Expiry Interval (e.g. when restoring from a store).
    pub fn set_session_expiry_interval(&mut self, seconds: u32) {
        self.session_expiry_interval = seconds;
    }

    /// Total messages dropped by this session.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped.as_deref().map_or(0, DropCounters::total)
    }

    /// Drop counters by cause.
    pub fn drop_counters(&self) -> DropCounters {
        self.dropped.as_deref().copied().unwrap_or_default()
    }

    /// The drop counters, to count one more drop.
    pub(crate) fn dropped_mut(&mut self) -> &mut DropCounters {
        self.dropped.get_or_insert_default()
    }

    /// Deliveries waiting to be sent.
    pub fn queued_len(&self) -> usize {
        self.pending.len()
    }

    /// Queued deliveries, oldest first.
    pub fn queued(&self) -> impl Iterator<Item = &Delivery> {
        self.pending.iter()
    }

    /// Outbound QoS 1/2 deliveries in flight.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Appends a restored queued delivery (from a session store), bypassing
    /// the queue limit: it was admitted under it before.
    pub fn restore_queued(&mut self, delivery: Delivery) {
        self.pending.push_back(delivery);
    }

    /// Inbound QoS 2 packet identifiers awaiting PUBREL (or PUBREC), ascending.
    pub fn inbound_qos2(&self) -> impl Iterator<Item = (PacketId, InboundQos2)> + '_ {
        self.inbound_qos2.iter().map(|(id, stage)| (*id, *stage))
    }

    /// Restores an inbound QoS 2 identifier (from a session store).
    pub fn restore_inbound_qos2(&mut self, id: PacketId, stage: InboundQos2) {
        self.inbound_qos2.insert(id, stage);
    }

    /// Gives every QoS 1/2 delivery the session still owes (queued, or in
    /// flight and not yet past PUBREC) that has no store sequence number one
    /// from `next`, in delivery order (in flight first). For a session that
    /// starts being stored with messages already held: a cluster node
    /// claiming again a session it served while cut off from Redis.
    pub fn number_unstored(&mut self, mut next: impl FnMut() -> u64) {
        self.inflight.number_unstored(&mut next);
        for d in &mut self.pending {
            if d.store_seq.is_none() && d.qos != QoS::AtMostOnce {
                d.store_seq = Some(next());
            }
        }
    }

    /// Drains every delivery the client has not acknowledged and every queued
    /// QoS > 0 delivery, in order (inflight first). Used to re-dispatch
    /// shared-subscription messages when a session ends.
    pub fn take_undelivered(&mut self) -> Vec<Delivery> {
        let mut out: Vec<Delivery> = self.inflight.drain_unacknowledged().collect();
        out.extend(self.pending.drain(..).filter(|d| d.qos != QoS::AtMostOnce));
        out
    }
}
