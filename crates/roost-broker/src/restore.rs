//! Startup: rebuilds sessions, retained messages, wills and delayed
//! publications from the store's snapshot, in the order docs/persistence.md
//! gives, before any connection is accepted.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytestring::ByteString;
use roost_session::Message;
use roost_store::convert::wall_to_instant;
use roost_store::{Delta, SessionSnapshot, Snapshot, WillRecord};

use crate::core::Core;
use crate::slot::SlotStore;
use crate::slot::{Parked, SessionKey, SessionSlot};

/// What is left to do once the writer runs (it writes as it goes).
#[derive(Debug)]
pub(crate) struct Restored {
    /// Parked sessions whose will / expiry timer must be armed (with its generation).
    timers: Vec<(Arc<SessionSlot>, u64)>,
    /// Wills of clients without a session: due at restart.
    wills: Vec<Message>,
    /// Delayed publications: (id, message, when).
    delayed: Vec<(u64, Message, Instant)>,
    /// Sessions that expired while the broker was down: deleted from the store.
    expired: Vec<ByteString>,
    /// Retained messages whose Message Expiry or `retain_ttl` ran out while
    /// the broker was down: deleted from the store.
    retained_expired: Vec<ByteString>,
}

/// Loads `snapshot` into `core`: sessions parked with their subscriptions in
/// the router and their expiry counting the time spent offline, retained
/// messages into the retained index. Writes nothing.
pub(crate) fn restore(core: &Core, snapshot: Snapshot) -> Restored {
    let now = Instant::now();
    let wall = SystemTime::now();
    let Snapshot {
        sessions,
        retained,
        wills,
        delayed,
        orphans,
    } = snapshot;
    let mut wills: std::collections::BTreeMap<ByteString, WillRecord> = wills.into_iter().collect();
    let mut timers = Vec::with_capacity(sessions.len());
    let mut expired = Vec::new();
    let (mut messages, session_count) = (0usize, sessions.len());
    for snap in sessions {
        let expires_at = expires_at(&snap, now, wall);
        if expires_at.is_some_and(|at| at <= now) {
            // Its will (if any) is due too: it stays in `wills`.
            expired.push(snap.client_id.clone());
            continue;
        }
        let will = wills.remove(&snap.client_id);
        messages += snap.messages.len();
        timers.push(restore_session(core, &snap, will, expires_at, now, wall));
    }
    let retained_count = retained.len();
    // Cluster mode: the cluster's copy (loaded when it joined) is the one
    // kept; this node's may miss changes made while it was down.
    let retained = if core.cluster().is_some() {
        Vec::new()
    } else {
        retained
    };
    let mut retained_expired = Vec::new();
    for (topic, record) in retained {
        // Both clocks count from the original store: the Message Expiry from
        // the wall-clock `expires_at`, the TTL from `stored_at`.
        let message = Arc::new(record.message.to_message(now, wall));
        if !core.retained.restore(message, record.stored_at, now, wall) {
            retained_expired.push(topic);
        }
    }
    // A will whose client has no session: its connection was alive at the
    // crash (or the will was due); it goes out now [MQTT-3.1.2-8].
    let wills: Vec<Message> = wills
        .into_values()
        .map(|w| w.message.to_message(now, wall))
        .collect();
    let delayed = delayed
        .into_iter()
        .map(|(id, d)| {
            let at = wall_to_instant(d.publish_at, now, wall).unwrap_or(now);
            (id, d.message.to_message(now, wall), at)
        })
        .collect();
    tracing::info!(
        sessions = session_count,
        expired = expired.len(),
        messages,
        retained = retained_count,
        retained_expired = retained_expired.len(),
        orphans,
        "restored from the store"
    );
    Restored {
        timers,
        wills,
        delayed,
        expired,
        retained_expired,
    }
}

/// When a stored session ends: its expiry counts from the disconnect, or
/// from the restart when the crash ended the connection. `None` = never.
pub(crate) fn expires_at(
    snap: &SessionSnapshot,
    now: Instant,
    wall: SystemTime,
) -> Option<Instant> {
    let expiry = snap.record.expiry_interval;
    let offline = snap
        .record
        .disconnected_at
        .and_then(|at| wall.duration_since(at).ok())
        .unwrap_or_default();
    (expiry != u32::MAX)
        .then(|| now + Duration::from_secs(u64::from(expiry)).saturating_sub(offline))
}

/// Parks one stored session and puts its subscriptions in the router.
pub(crate) fn restore_session(
    core: &Core,
    snap: &SessionSnapshot,
    will: Option<WillRecord>,
    expires_at: Option<Instant>,
    now: Instant,
    wall: SystemTime,
) -> (Arc<SessionSlot>, u64) {
    let restored = snap.to_session_state(now, wall);
    let expiry = restored.state.session_expiry_interval();
    let will = will.map(|w| {
        let at = match w.fire_at {
            Some(at) => wall_to_instant(at, now, wall).unwrap_or(now),
            None => now + Duration::from_secs(u64::from(w.delay_interval.min(expiry))),
        };
        let at = expires_at.map_or(at, |e| e.min(at));
        (w.message.to_message(now, wall), at)
    });
    let slot = SessionSlot::new(snap.client_id.clone());
    let key = SessionKey(Arc::clone(&slot));
    for (filter, sub) in &restored.state.subscriptions {
        // Cleared tag 0: authorized under rules that may have changed
        // since, so under per_message its messages are checked.
        core.subscribe(&key, filter, *sub, 0);
    }
    let generation = {
        let mut inner = slot.inner.lock();
        inner.store = SlotStore {
            session: true,
            will: will.is_some(),
            next_seq: restored.next_seq,
        };
        inner.generation += 1;
        // `into`: the slot may keep its parked session boxed.
        #[allow(clippy::useless_conversion)]
        let parked = Parked {
            state: restored.state,
            will,
            expires_at,
            // Checked on every attach: only this identity resumes it.
            restored_owner: Some(snap.record.owner.clone()),
        }
        .into();
        inner.parked = Some(parked);
        // Who the restored subscriptions' deliveries are checked for until
        // the client comes back (acl_wildcards = "per_message").
        inner.owner =
            crate::read_acl::Reader::restored(&snap.client_id, &snap.record.owner).map(Arc::new);
        inner.generation
    };
    core.sessions().insert(Arc::clone(&slot));
    (slot, generation)
}

impl Restored {
    /// Arms the restored sessions' timers, publishes the wills that are due
    /// and schedules delayed publications. Runs once the writer does, so
    /// what they route is stored.
    pub(crate) fn start(self, core: &Arc<Core>) {
        if let Some(persist) = core.persist() {
            let gone = self
                .expired
                .into_iter()
                .map(|client_id| Delta::SessionDelete { client_id })
                .chain(
                    self.retained_expired
                        .into_iter()
                        .map(|topic| Delta::RetainDelete { topic }),
                )
                .collect();
            drop(persist.submit(gone));
        }
        for (slot, generation) in &self.timers {
            core.arm_timer(slot, *generation);
        }
        let now = Instant::now();
        for will in self.wills {
            core.publish_will(will, now);
        }
        for (id, message, at) in self.delayed {
            let core = Arc::clone(core);
            tokio::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                let routed = core.route(message, None, Instant::now());
                drop(core.deliver(routed, vec![Delta::DelayedDelete { id }], Instant::now()));
            });
        }
    }
}
