//! Subscriptions the management API makes or removes for a client, and a
//! live connection's own counts (docs/management.md, "Subscriptions of a
//! client").
//!
//! A parked session is changed in place: its state under the slot's lock,
//! then the router and the store. A live session's subscriptions live in its
//! connection task, so the request waits here under the connection's id and
//! the driver is rung with [`Control::Admin`]; it applies it as if the client
//! had sent SUBSCRIBE or UNSUBSCRIBE (validation and quota, router, session,
//! store, retained messages per Retain Handling; no SUBACK: the client asked
//! for nothing) and answers on a oneshot (`driver/admin.rs`).
//!
//! ```text
//!  BrokerHandle::subscribe_client ─▶ Pending[connection id] ─▶ Control::Admin ─▶ driver
//!                                 ◀──────────────── oneshot answer ◀────────────┘
//! ```
//!
//! Bounded: at most [`MAX_PENDING`] requests per connection, and a caller
//! gives up after [`ANSWER_TIMEOUT`] and removes what it left behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytestring::ByteString;
use parking_lot::Mutex;
use roost_codec::{PacketId, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions};
use roost_session::SubscriptionGrant;
use roost_store::{Delta, SubscriptionRecord};
use tokio::sync::oneshot;

use crate::core::Core;
use crate::link::{Control, ControlSender};
use crate::slot::{SessionKey, SessionSlot};

/// Requests waiting for one connection's driver, at most.
pub(crate) const MAX_PENDING: usize = 8;
/// How long a caller waits for a driver's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the API asks of a connection's driver.
#[derive(Debug)]
pub(crate) enum Op {
    Subscribe {
        filter: ByteString,
        options: SubscriptionOptions,
    },
    Unsubscribe {
        filter: ByteString,
    },
    Detail,
    /// Cluster mode: write the session's record, subscriptions and will
    /// (its client id was claimed again, `cluster/rejoin.rs`).
    Persist,
}

/// The driver's answer.
#[derive(Debug)]
pub(crate) enum Answer {
    Subscribed(Result<Subscribed, SubscribeError>),
    Unsubscribed(bool),
    Detail(LiveDetail),
    Persisted,
}

/// One request and where its answer goes.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// What subscribing a client through the management API did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Subscribed {
    /// The QoS granted (at most the broker's Maximum QoS).
    pub qos: u8,
    /// The client already held this filter (replaced).
    pub existed: bool,
    /// Retained messages sent for it (Retain Handling).
    pub retained: usize,
}

/// Why a subscription change through the management API was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// No session with this client id.
    #[error("no session with this client id")]
    NotFound,
    /// Refused as a SUBSCRIBE entry would be (invalid filter, quota).
    #[error("refused: {}", .0.name())]
    Refused(ReasonCode),
    /// Too many requests wait for this connection already.
    #[error("too many management requests wait for this connection")]
    Busy,
    /// The connection did not answer (it closed meanwhile, or is stuck).
    #[error("the connection did not answer")]
    NoAnswer,
}

/// What only a live connection's task knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveDetail {
    pub(crate) keep_alive: u16,
    pub(crate) session_expiry_interval: u32,
    pub(crate) inflight: usize,
    pub(crate) queued: usize,
}

/// Requests waiting for drivers, by connection id.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_connection: Mutex<HashMap<u64, Vec<Request>>>,
    /// Connections with requests: lets a closing driver skip the lock.
    connections: AtomicUsize,
}

impl Pending {
    /// Queues `request` for connection `id`; gives it back when
    /// [`MAX_PENDING`] wait already.
    fn push(&self, id: u64, request: Request) -> Result<(), Request> {
        let mut map = self.by_connection.lock();
        let waiting = map.entry(id).or_default();
        if waiting.len() >= MAX_PENDING {
            return Err(request);
        }
        waiting.push(request);
        self.connections.store(map.len(), Ordering::Relaxed);
        Ok(())
    }

    /// The requests waiting for connection `id` (its driver answers them;
    /// a closing one drops them, which tells their callers at once).
    pub(crate) fn take(&self, id: u64) -> Vec<Request> {
        if self.connections.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut map = self.by_connection.lock();
        let taken = map.remove(&id).unwrap_or_default();
        self.connections.store(map.len(), Ordering::Relaxed);
        taken
    }

    /// Removes the requests of `id` whose caller gave up.
    fn prune(&self, id: u64) {
        let mut map = self.by_connection.lock();
        if let Some(waiting) = map.get_mut(&id) {
            waiting.retain(|r| !r.reply.is_closed());
            if waiting.is_empty() {
                map.remove(&id);
            }
        }
        self.connections.store(map.len(), Ordering::Relaxed);
    }
}

/// Now, in seconds since the Unix epoch (0 before 1970; saturates in 2106).
pub(crate) fn unix_now_s() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// A SUBSCRIBE of one entry, as the client would have sent it (for the
/// session's validation and the store's delta).
pub(crate) fn one_filter(filter: &ByteString, options: SubscriptionOptions) -> Subscribe {
    Subscribe {
        packet_id: PacketId::MIN,
        filters: vec![(filter.clone(), options)],
        properties: SubscribeProperties::default(),
    }
}

/// Where a session is.
enum Target {
    Gone,
    Live(u64, ControlSender),
    Parked,
}

fn target(slot: &SessionSlot) -> Target {
    let inner = slot.inner.lock();
    match (&inner.link, &inner.parked) {
        _ if inner.ended => Target::Gone,
        (Some(link), _) => Target::Live(link.connection_id, link.control.clone()),
        (None, Some(_)) => Target::Parked,
        (None, None) => Target::Gone,
    }
}

/// Asks the live connection `id` and waits for its answer.
async fn ask(
    core: &Core,
    id: u64,
    control: &ControlSender,
    op: Op,
) -> Result<Answer, SubscribeError> {
    let (reply, answer) = oneshot::channel();
    if core.admin_requests.push(id, Request { op, reply }).is_err() {
        return Err(SubscribeError::Busy);
    }
    if control.try_send(Control::Admin).is_err() {
        drop(answer);
        core.admin_requests.prune(id);
        return Err(SubscribeError::NoAnswer);
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        _ => {
            // The receiver is dropped by now: prune finds it closed.
            core.admin_requests.prune(id);
            Err(SubscribeError::NoAnswer)
        }
    }
}

/// Has live connection `id` write its session's record, subscriptions and
/// will to the store; false when it did not answer.
pub(crate) async fn persist_live(core: &Core, id: u64, control: &ControlSender) -> bool {
    matches!(
        ask(core, id, control, Op::Persist).await,
        Ok(Answer::Persisted)
    )
}

/// Subscribes `client_id` to `filter` as if it had sent SUBSCRIBE.
pub(crate) async fn subscribe(
    core: &Arc<Core>,
    client_id: &str,
    filter: &str,
    options: SubscriptionOptions,
) -> Result<Subscribed, SubscribeError> {
    let slot = core
        .sessions()
        .get(client_id)
        .ok_or(SubscribeError::NotFound)?;
    let filter = ByteString::from(filter);
    match target(&slot) {
        Target::Gone => Err(SubscribeError::NotFound),
        Target::Live(id, control) => {
            match ask(core, id, &control, Op::Subscribe { filter, options }).await? {
                Answer::Subscribed(result) => result,
                _ => Err(SubscribeError::NoAnswer),
            }
        }
        Target::Parked => subscribe_parked(core, &slot, &filter, options).await,
    }
}

/// Unsubscribes `client_id` from `filter`; whether it held it.
pub(crate) async fn unsubscribe(
    core: &Arc<Core>,
    client_id: &str,
    filter: &str,
) -> Result<bool, SubscribeError> {
    let slot = core
        .sessions()
        .get(client_id)
        .ok_or(SubscribeError::NotFound)?;
    let filter = ByteString::from(filter);
    match target(&slot) {
        Target::Gone => Err(SubscribeError::NotFound),
        Target::Live(id, control) => {
            match ask(core, id, &control, Op::Unsubscribe { filter }).await? {
                Answer::Unsubscribed(existed) => Ok(existed),
                _ => Err(SubscribeError::NoAnswer),
            }
        }
        Target::Parked => unsubscribe_parked(core, &slot, &filter).await,
    }
}

/// The live connection's own counts; `None` when it is not connected or
/// does not answer within [`ANSWER_TIMEOUT`].
pub(crate) async fn live_detail(core: &Arc<Core>, client_id: &str) -> Option<LiveDetail> {
    let slot = core.sessions().get(client_id)?;
    let Target::Live(id, control) = target(&slot) else {
        return None;
    };
    match ask(core, id, &control, Op::Detail).await {
        Ok(Answer::Detail(detail)) => Some(detail),
        _ => None,
    }
}

/// A parked session: its state under the slot's lock, then the router (not
/// under the slot's lock: delivery takes the slot's inside the router's),
/// the store, and the retained messages into its offline queue.
async fn subscribe_parked(
    core: &Arc<Core>,
    slot: &Arc<SessionSlot>,
    filter: &ByteString,
    options: SubscriptionOptions,
) -> Result<Subscribed, SubscribeError> {
    let request = one_filter(filter, options);
    let grant = SubscriptionGrant::new(filter, options, None, core.session_config.maximum_qos);
    let stored = {
        let mut inner = slot.inner.lock();
        let stored = inner.store.session;
        if inner.ended {
            return Err(SubscribeError::NotFound);
        }
        let Some(parked) = inner.parked.as_mut() else {
            return Err(SubscribeError::NotFound);
        };
        let refusal = parked
            .state
            .validate_subscribe(&request, &core.session_config)
            .into_iter()
            .next()
            .flatten();
        if let Some(reason) = refusal {
            return Err(SubscribeError::Refused(reason));
        }
        parked
            .state
            .subscriptions
            .insert(filter.clone(), grant.subscription);
        stored && parked.state.session_expiry_interval() > 0
    };
    let key = SessionKey(Arc::clone(slot));
    let existed = core.subscribe(&key, filter, grant.subscription, 0);
    if slot.inner.lock().ended {
        // It expired meanwhile: take back what it can no longer hold.
        core.unsubscribe(&key, filter);
        return Err(SubscribeError::NotFound);
    }
    if stored && let Some(persist) = core.persist() {
        let delta = Delta::SubAdd {
            client_id: slot.client_id.clone(),
            filter: filter.clone(),
            subscription: SubscriptionRecord::from(&grant.subscription),
        };
        persist.acknowledged(persist.submit(vec![delta])).await;
    }
    let mut retained = 0;
    if grant.sends_retained(existed) {
        let now = Instant::now();
        let check = core.read_checks().then_some(&**slot);
        for delivery in core.retained_for(grant.filter, grant.qos(), None, check, now) {
            core.push(slot, delivery, now);
            retained += 1;
        }
    }
    Ok(Subscribed {
        qos: grant.qos() as u8,
        existed,
        retained,
    })
}

async fn unsubscribe_parked(
    core: &Arc<Core>,
    slot: &Arc<SessionSlot>,
    filter: &ByteString,
) -> Result<bool, SubscribeError> {
    let (held, stored) = {
        let mut inner = slot.inner.lock();
        let stored = inner.store.session;
        if inner.ended {
            return Err(SubscribeError::NotFound);
        }
        let Some(parked) = inner.parked.as_mut() else {
            return Err(SubscribeError::NotFound);
        };
        let held = parked.state.subscriptions.remove(&**filter).is_some();
        (held, stored && parked.state.session_expiry_interval() > 0)
    };
    let routed = core.unsubscribe(&SessionKey(Arc::clone(slot)), filter);
    if held
        && stored
        && let Some(persist) = core.persist()
    {
        let delta = Delta::SubDelete {
            client_id: slot.client_id.clone(),
            filter: filter.clone(),
        };
        persist.acknowledged(persist.submit(vec![delta])).await;
    }
    Ok(held || routed)
}
