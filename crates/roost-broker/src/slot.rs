//! A session's slot in the registry: the rendezvous between publishers (who
//! push deliveries) and the connection driver that owns the live session.
//!
//! While a driver is attached, deliveries wait in the slot's outbox until the
//! driver drains it in one swap (doorbell + batch, as in rumqttd). While the
//! client is offline, deliveries go straight into the parked session's bounded
//! queue.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytestring::ByteString;
use parking_lot::Mutex;
use roost_codec::QoS;
use roost_hooks::DropCause;
use roost_session::{Delivery, EnqueueOutcome, Message, SessionConfig, SessionEvent, SessionState};
use roost_store::SessionOwner;
use tokio::sync::oneshot;

use crate::link::ControlSender;

/// What an old connection hands to the one taking its client id over.
#[derive(Debug)]
pub(crate) struct Handover {
    /// The persistent session.
    pub(crate) state: SessionState,
    /// The old connection's will, not yet published, with its delay in seconds.
    pub(crate) will: Option<(Message, u32)>,
}

/// The attached driver.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) connection_id: u64,
    pub(crate) control: ControlSender,
    /// Who is connected (peer address, authorized user name): what a ban
    /// added at run time is matched against. Shared with the driver.
    pub(crate) client: Arc<roost_hooks::ClientInfo>,
}

/// An offline session waiting for its client, its will delay or its expiry.
#[derive(Debug)]
pub(crate) struct Parked {
    pub(crate) state: SessionState,
    /// Will to publish at `will_at` unless the client comes back first.
    pub(crate) will: Option<(Message, Instant)>,
    /// When the session ends (None = never).
    pub(crate) expires_at: Option<Instant>,
    /// The owner the store recorded, for a session restored at start that
    /// no client has attached to since (then [`SlotInner::owner`] is `None`).
    pub(crate) restored_owner: Option<SessionOwner>,
}

/// Mutable part of a slot.
#[derive(Debug, Default)]
pub(crate) struct SlotInner {
    pub(crate) link: Option<Link>,
    pub(crate) outbox: Outbox,
    /// Boxed: a parked session is large (~540 B) and every live
    /// connection's slot would otherwise carry room for one.
    pub(crate) parked: Option<Box<Parked>>,
    /// Bumped on every attach and park; timers armed for an older generation are stale.
    pub(crate) generation: u64,
    /// The session is gone; deliveries are discarded.
    pub(crate) ended: bool,
    /// When the live connection attached (seconds since the Unix epoch; 0
    /// when none has), for the management API. Beside the flags, in what
    /// was padding: it costs a slot nothing.
    pub(crate) connected_at: u32,
    /// The live connection asked for Clean Start (management API).
    pub(crate) clean_start: bool,
    /// A takeover lost the previous connection's state (it did not hand it
    /// over in time): the router may hold subscriptions of this key that no
    /// session map lists, so ending or clean-starting this session searches
    /// the router for them (`Core::unsubscribe_session`).
    /// Never cleared: the old driver may still hand a state in later.
    pub(crate) state_lost: bool,
    /// Set by a connection taking this session over; the old driver sends its
    /// state through it when it ends.
    pub(crate) handover: Option<oneshot::Sender<Handover>>,
    /// The last connection to claim this session: its user name (as
    /// authorized) owns it, and another user may not take the client id
    /// over. For a session restored from the store, a reader built from the
    /// stored owner (`read_acl::Reader::restored`; `None` for a format-1
    /// store) until a client attaches. Its identity and the part of its
    /// grant that restricts reading are also who the checks at delivery ask
    /// about (`acl_wildcards = "per_message"`, [`crate::read_acl`]). One
    /// pointer (a user name kept here cost every slot 40 B).
    pub(crate) owner: Option<Arc<crate::read_acl::Reader>>,
    /// What the session store holds for this client id.
    pub(crate) store: SlotStore,
}

/// What a slot remembers about its rows in the session store (under the
/// slot's lock; all zero without a store).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotStore {
    /// The store holds a session record for this client id.
    pub(crate) session: bool,
    /// The store holds a will for this client id.
    pub(crate) will: bool,
    /// The next message sequence number (monotonic for the slot's life, so
    /// a seq is never reused while an older row might still be stored).
    pub(crate) next_seq: u64,
}

impl SlotInner {
    /// Who owns the session, as the store records it: the last claimant's
    /// user name, or what a restored session was stored with.
    pub(crate) fn stored_owner(&self) -> SessionOwner {
        match &self.owner {
            Some(owner) => SessionOwner::of(owner.client.username.as_deref()),
            None => self
                .parked
                .as_ref()
                .and_then(|p| p.restored_owner.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether `username` may attach to the session this slot holds: it
    /// belongs to the same identity, or nobody holds it. `None` when the
    /// session has no known owner (restored from a format-1 store): it is
    /// attached by nobody, the claimant starts clean instead.
    pub(crate) fn may_attach(&self, username: Option<&str>) -> Option<bool> {
        if self.link.is_none() && self.parked.is_none() {
            return Some(true);
        }
        match self.stored_owner() {
            SessionOwner::Unknown => None,
            SessionOwner::Anonymous => Some(username.is_none()),
            SessionOwner::User(name) => Some(username == Some(&*name)),
        }
    }
}

/// One client id's session slot.
#[derive(Debug)]
pub(crate) struct SessionSlot {
    pub(crate) client_id: ByteString,
    pub(crate) inner: Mutex<SlotInner>,
    /// Messages dropped for this session (outbox full, queue full, expired).
    pub(crate) dropped: AtomicU64,
}

/// How a push treats a delivery ([`SessionSlot::push`]).
#[derive(Clone, Copy)]
pub(crate) struct PushRules<'a> {
    /// The outbox's bound (QoS 1/2 are kept up to twice it).
    pub(crate) max_outbox: usize,
    /// The outbox length at which the publisher is told to pause (0 =
    /// never; `credit.rs`).
    pub(crate) high_water: usize,
    /// A parked session's queue rules.
    pub(crate) config: &'a SessionConfig,
    pub(crate) now: Instant,
}

/// Result of pushing a delivery into a slot.
#[derive(Debug)]
pub(crate) enum Pushed {
    /// Handed to the live connection.
    Online,
    /// Handed to the live connection, whose outbox is now at its high-water
    /// mark: the publisher should pause reading (`credit.rs`).
    OnlineCongested,
    /// Stored in the offline queue.
    Queued,
    /// Stored in the offline queue, which was full: its oldest delivery was
    /// dropped to make room (counted; the session recorded the drop as an
    /// event).
    QueuedDroppedOldest,
    /// Dropped by the offline session (counted; recorded as an event).
    Dropped,
    /// Refused by the slot (counted): its session ended, or its outbox is
    /// full. The delivery comes back, with why, for the hooks.
    Refused(DropCause, Delivery),
}

impl SessionSlot {
    pub(crate) fn new(client_id: ByteString) -> Arc<Self> {
        Arc::new(Self {
            client_id,
            inner: Mutex::new(SlotInner::default()),
            dropped: AtomicU64::new(0),
        })
    }

    /// Pushes a delivery without blocking. A full outbox drops QoS 0 first; QoS
    /// 1/2 are kept up to twice the limit, then dropped too (counted), so a stuck
    /// consumer can never grow memory without bound. A parked session's
    /// events (its drops, for the store and the hooks) are moved to
    /// `events` (see [`enqueue_parked`]).
    pub(crate) fn push(
        &self,
        delivery: Delivery,
        rules: &PushRules<'_>,
        events: &mut Vec<SessionEvent>,
    ) -> Pushed {
        let mut inner = self.inner.lock();
        self.push_locked(&mut inner, delivery, rules, events)
    }

    /// [`SessionSlot::push`], unless the session is stored and `delivery`
    /// is to be stored with it (`store_it`: not a QoS 0 message offline
    /// sessions do not keep): then it gets the slot's next sequence number,
    /// under the same lock, and comes back to be pushed once its enqueue is
    /// submitted (`persist/publish.rs`). One lock per delivery to a session
    /// that is not stored, the usual case: a cluster node always runs the
    /// shared store, and every message a node receives from another one is
    /// routed on the cluster's reader thread, away from its subscribers'
    /// drivers, so each lock moves the slot's cache line.
    pub(crate) fn push_unless_stored(
        &self,
        mut delivery: Delivery,
        store_it: bool,
        rules: &PushRules<'_>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<Pushed, Delivery> {
        let mut inner = self.inner.lock();
        if store_it && inner.store.session && !inner.ended {
            delivery.store_seq = Some(inner.store.next_seq);
            inner.store.next_seq += 1;
            return Err(delivery);
        }
        Ok(self.push_locked(&mut inner, delivery, rules, events))
    }

    fn push_locked(
        &self,
        inner: &mut SlotInner,
        delivery: Delivery,
        rules: &PushRules<'_>,
        events: &mut Vec<SessionEvent>,
    ) -> Pushed {
        let PushRules {
            max_outbox,
            high_water,
            config,
            now,
        } = *rules;
        if inner.ended {
            return Pushed::Refused(DropCause::SessionEnded, delivery);
        }
        if let Some(parked) = inner.parked.as_mut() {
            let pushed = enqueue_parked(&mut parked.state, delivery, config, now, events);
            if !matches!(pushed, Pushed::Queued) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return pushed;
        }
        let len = inner.outbox.len();
        let limit = if delivery.qos == QoS::AtMostOnce {
            max_outbox
        } else {
            max_outbox.saturating_mul(2)
        };
        if len >= limit {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Pushed::Refused(DropCause::QueueFull, delivery);
        }
        inner.outbox.push(delivery);
        if len == 0
            && let Some(link) = &inner.link
        {
            // The driver drains the whole outbox per ring: only the first
            // delivery of a batch rings (it wakes a hibernating connection).
            link.control.ring();
        }
        // Back-pressure (issue 21, `credit.rs`): one comparison per push.
        if inner.outbox.congested(len + 1, high_water) {
            return Pushed::OnlineCongested;
        }
        Pushed::Online
    }

    /// A paused publisher's check (`driver/backpressure.rs`): true while
    /// this outbox is still at its high-water mark and its subscriber is
    /// not marked slow, with `waker` registered to be woken by the next
    /// drain; false when the publisher may go on.
    pub(crate) fn wait_for_room(&self, waker: &std::task::Waker, high_water: usize) -> bool {
        let mut inner = self.inner.lock();
        if inner.ended || inner.link.is_none() {
            return false;
        }
        let len = inner.outbox.len();
        inner.outbox.wait_for_room(len, high_water, waker)
    }

    /// A publisher waited its whole bound for this outbox: true when its
    /// subscriber is slow (its client is behind) and now holds nobody back
    /// until it catches up; false when its driver has not run yet.
    pub(crate) fn give_up(&self) -> bool {
        self.inner.lock().outbox.give_up()
    }

    /// The driver leaves deliveries in the outbox because its client is
    /// behind (`credit.rs`; its next drain clears this).
    pub(crate) fn output_full(&self) {
        self.inner.lock().outbox.output_full();
    }

    /// Deliveries are waiting for the driver.
    pub(crate) fn has_outbox(&self) -> bool {
        !self.inner.lock().outbox.is_empty()
    }

    /// Whether nothing waits for the driver; if so, the outbox's memory
    /// goes back (a hibernating connection asks, and needs none).
    pub(crate) fn release_idle_outbox(&self) -> bool {
        let mut inner = self.inner.lock();
        if !inner.outbox.is_empty() {
            return false;
        }
        inner.outbox = Outbox::default();
        true
    }

    /// Moves the whole outbox into `into` (empty) under a short lock, and
    /// wakes the publishers paused on it (`credit.rs`), outside the lock.
    /// `idle`: the driver has written all it had (the subscriber keeps up).
    pub(crate) fn drain_outbox(
        &self,
        into: &mut VecDeque<Delivery>,
        high_water: usize,
        idle: bool,
    ) {
        let paused = self.inner.lock().outbox.swap(into, high_water, idle);
        for waker in paused {
            waker.wake();
        }
    }
}

/// Queues a delivery in an offline session: what [`SessionSlot::push`] does
/// for a parked session, and what a detaching connection does with the
/// deliveries its outbox still held. The events the session recorded (its
/// drops, when a store or the hooks asked) are moved to `events` at once,
/// for the caller to read (`Core::read_parked_events`): a parked session's
/// event queue is empty between calls, so it cannot grow while the client
/// is away.
pub(crate) fn enqueue_parked(
    state: &mut SessionState,
    delivery: Delivery,
    config: &SessionConfig,
    now: Instant,
    events: &mut Vec<SessionEvent>,
) -> Pushed {
    let pushed = match state.enqueue_offline(delivery, config, now) {
        EnqueueOutcome::Queued => Pushed::Queued,
        EnqueueOutcome::DroppedOldest => Pushed::QueuedDroppedOldest,
        EnqueueOutcome::Expired | EnqueueOutcome::DroppedQos0 | EnqueueOutcome::DroppedNewest => {
            Pushed::Dropped
        }
    };
    events.extend(std::iter::from_fn(|| state.poll_event()));
    pushed
}

/// Deliveries waiting for the attached driver. Boxed, and made by the first
/// delivery: an empty `VecDeque` is 32 bytes in every slot, most of them
/// idle clients' (the box is 8, and takes the slot down a size class).
#[derive(Debug, Default)]
pub(crate) struct Outbox(Option<Box<Queue>>);

/// The outbox's contents: the deliveries, and the publishers paused until
/// they drain (`credit.rs`).
#[derive(Debug, Default)]
struct Queue {
    deliveries: VecDeque<Delivery>,
    waiting: crate::credit::Waiting,
}

impl Outbox {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.deliveries.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&mut self, delivery: Delivery) {
        self.0
            .get_or_insert_default()
            .deliveries
            .push_back(delivery);
    }

    /// The store sequence numbers of the deliveries waiting here.
    pub(crate) fn store_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.0
            .iter()
            .flat_map(|queue| queue.deliveries.iter().filter_map(|d| d.store_seq))
    }

    /// Whether `len` deliveries waiting should pause their publisher.
    fn congested(&self, len: usize, high_water: usize) -> bool {
        self.0
            .as_ref()
            .is_some_and(|queue| queue.waiting.congested(len, high_water))
    }

    fn wait_for_room(&mut self, len: usize, high_water: usize, waker: &std::task::Waker) -> bool {
        match &mut self.0 {
            Some(queue) if queue.waiting.congested(len, high_water) => {
                queue.waiting.register(waker);
                true
            }
            _ => false,
        }
    }

    fn give_up(&mut self) -> bool {
        self.0.as_mut().is_none_or(|queue| queue.waiting.give_up())
    }

    fn output_full(&mut self) {
        if let Some(queue) = &mut self.0 {
            queue.waiting.output_full();
        }
    }

    /// Swaps the waiting deliveries with `into`, which the driver passes
    /// empty: the two buffers take turns, no allocation per batch. Returns
    /// the paused publishers to wake.
    fn swap(
        &mut self,
        into: &mut VecDeque<Delivery>,
        high_water: usize,
        idle: bool,
    ) -> Vec<std::task::Waker> {
        match &mut self.0 {
            Some(queue) => {
                std::mem::swap(&mut queue.deliveries, into);
                queue.waiting.drained(into.len(), high_water, idle)
            }
            None => {
                debug_assert!(into.is_empty(), "the driver passes an empty batch");
                Vec::new()
            }
        }
    }

    /// Every waiting delivery, and the queue's memory with them (paused
    /// publishers are woken: nobody will drain this outbox).
    pub(crate) fn take(&mut self) -> VecDeque<Delivery> {
        self.0.take().map_or_else(VecDeque::new, |mut queue| {
            queue.waiting.wake_all();
            queue.deliveries
        })
    }
}

/// The router's key for a session: the slot, compared by identity.
#[derive(Debug, Clone)]
pub(crate) struct SessionKey(pub(crate) Arc<SessionSlot>);

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SessionKey {}

impl Hash for SessionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Instant;

    use roost_codec::{Publish, PublishProperties, QoS};
    use roost_session::{Delivery, Message, SessionConfig};

    use super::{Link, PushRules, Pushed, SessionSlot};
    use crate::link as control;

    fn delivery(topic: &str) -> Delivery {
        let publish = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: bytes::Bytes::from_static(b"x"),
        };
        let message = Message::from_publish(publish, None, Instant::now());
        Delivery::new(Arc::new(message), QoS::AtMostOnce, false)
    }

    fn attached() -> (Arc<SessionSlot>, control::ControlReceiver) {
        let slot = SessionSlot::new("outbox".into());
        let (control, receiver) = control::channel();
        let client = roost_hooks::ClientInfo::new(
            "outbox".into(),
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
        (slot, receiver)
    }

    #[test]
    fn the_outbox_hands_deliveries_over_in_order_and_gives_its_memory_back_when_idle() {
        let (slot, _receiver) = attached();
        let config = SessionConfig::default();
        let rules = PushRules {
            max_outbox: 10,
            high_water: 0,
            config: &config,
            now: Instant::now(),
        };
        for topic in ["a", "b", "c"] {
            let pushed = slot.push(delivery(topic), &rules, &mut Vec::new());
            assert!(matches!(pushed, Pushed::Online), "{pushed:?}");
        }
        assert!(!slot.release_idle_outbox(), "deliveries are waiting");
        let mut batch = VecDeque::new();
        slot.drain_outbox(&mut batch, 0, false);
        let topics: Vec<_> = batch.iter().map(|d| d.message.topic.to_string()).collect();
        assert_eq!(topics, ["a", "b", "c"]);
        assert!(!slot.has_outbox());
        assert!(slot.release_idle_outbox());
        assert!(slot.inner.lock().outbox.0.is_none(), "the queue was freed");
        // And it comes back with the next delivery.
        slot.push(delivery("d"), &rules, &mut Vec::new());
        batch.clear();
        slot.drain_outbox(&mut batch, 0, false);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_slot_fits_the_160_byte_size_class_with_its_reference_counts() {
        // Every client, idle ones included, keeps one.
        let size = std::mem::size_of::<SessionSlot>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 160, "Arc<SessionSlot> is {size} bytes");
    }
}
