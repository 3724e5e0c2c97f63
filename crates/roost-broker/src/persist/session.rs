//! Session lifecycle deltas: connect, subscribe / unsubscribe, park, end.

use std::time::{Instant, SystemTime};

use bytestring::ByteString;
use roost_codec::{Subscribe, Unsubscribe};
use roost_session::{Message, Session, SessionState, Subscriptions};
use roost_store::{
    Delta, SessionOwner, SessionRecord, StoredMessage, SubscriptionRecord, WillRecord,
};

use super::Persist;
use super::events;
use crate::slot::SessionSlot;
use crate::slot::SlotStore;

/// The record and whole subscription set of a session.
fn upsert(
    client_id: &ByteString,
    expiry_interval: u32,
    disconnected_at: Option<SystemTime>,
    owner: SessionOwner,
    subscriptions: &Subscriptions,
) -> Delta {
    Delta::SessionUpsert {
        client_id: client_id.clone(),
        record: SessionRecord {
            expiry_interval,
            disconnected_at,
            owner,
        },
        subscriptions: subscriptions
            .iter()
            .map(|(filter, sub)| (filter.clone(), SubscriptionRecord::from(sub)))
            .collect(),
    }
}

/// A will as stored: `fire_at` is `None` while its connection lives.
fn will_set(
    client_id: &ByteString,
    message: &Message,
    delay_interval: u32,
    fire_at: Option<SystemTime>,
    now: Instant,
    wall: SystemTime,
) -> Delta {
    Delta::WillSet {
        client_id: client_id.clone(),
        will: WillRecord {
            message: StoredMessage::from_message(message, now, wall),
            delay_interval,
            fire_at,
        },
    }
}

/// CONNECT accepted: the session's record (persistent), the end of a stored
/// session the client replaced (clean start, or expiry now 0), and the will.
pub(crate) async fn on_connect(
    persist: Option<&Persist>,
    slot: &SessionSlot,
    session: &Session,
    clean_start: bool,
    events: Vec<Delta>,
) {
    let Some(persist) = persist else {
        return;
    };
    let now = Instant::now();
    let wall = SystemTime::now();
    let client_id = session.client_id().clone();
    let persistent = session.session_expiry_interval() > 0;
    let will = session.will().map(|w| {
        let message = Message::from_will(w.clone(), Some(client_id.clone()), now);
        (message, session.will_delay())
    });
    let (before, owner) = {
        let mut inner = slot.inner.lock();
        let before = inner.store;
        inner.store.session = persistent;
        inner.store.will = will.is_some();
        (before, inner.stored_owner())
    };
    let mut batch = Vec::new();
    if before.session && (clean_start || !persistent) {
        batch.push(Delta::SessionDelete {
            client_id: client_id.clone(),
        });
    }
    if persistent {
        batch.push(upsert(
            &client_id,
            session.session_expiry_interval(),
            None,
            owner,
            session.subscriptions(),
        ));
    }
    match &will {
        Some((message, delay)) => {
            batch.push(will_set(&client_id, message, *delay, None, now, wall))
        }
        None if before.will || before.session => batch.push(Delta::WillDelete {
            client_id: client_id.clone(),
        }),
        None => {}
    }
    // What the session reported (a resumed one's drops), read by the caller.
    batch.extend(events);
    // sync: CONNACK / SUBACK / UNSUBACK once the change is stored.
    persist.acknowledged(persist.submit(batch)).await;
}

/// After SUBSCRIBE was answered: every filter the session now holds.
pub(crate) async fn on_subscribe(
    persist: Option<&Persist>,
    session: &Session,
    subscribe: &Subscribe,
) {
    let Some(persist) = persist else {
        return;
    };
    if session.session_expiry_interval() == 0 {
        return;
    }
    let client_id = session.client_id();
    let batch = subscribe
        .filters
        .iter()
        .filter_map(|(filter, _)| {
            let (stored, sub) = session.subscriptions().get_key_value(&**filter)?;
            Some(Delta::SubAdd {
                client_id: client_id.clone(),
                filter: stored.clone(),
                subscription: SubscriptionRecord::from(sub),
            })
        })
        .collect();
    // sync: CONNACK / SUBACK / UNSUBACK once the change is stored.
    persist.acknowledged(persist.submit(batch)).await;
}

/// After UNSUBSCRIBE was answered: every filter the session no longer holds.
pub(crate) async fn on_unsubscribe(
    persist: Option<&Persist>,
    session: &Session,
    unsubscribe: &Unsubscribe,
) {
    let Some(persist) = persist else {
        return;
    };
    if session.session_expiry_interval() == 0 {
        return;
    }
    let client_id = session.client_id();
    let batch = unsubscribe
        .filters
        .iter()
        .filter(|filter| !session.subscriptions().contains_key(&***filter))
        .map(|filter| Delta::SubDelete {
            client_id: client_id.clone(),
            filter: ByteString::from(&**filter),
        })
        .collect();
    // sync: CONNACK / SUBACK / UNSUBACK once the change is stored.
    persist.acknowledged(persist.submit(batch)).await;
}

/// The connection closed and the session is kept: the disconnect time
/// (offline time counts against expiry after a restart), what the session
/// reported last, and the will with its fire time (or its deletion).
/// Called under the slot's lock; the caller submits the batch after it.
pub(crate) fn on_park(
    store: &mut SlotStore,
    owner: SessionOwner,
    state: &mut SessionState,
    will: Option<&(Message, Instant)>,
    now: Instant,
) -> Vec<Delta> {
    let wall = SystemTime::now();
    let client_id = state.client_id.clone();
    let mut batch = vec![upsert(
        &client_id,
        state.session_expiry_interval(),
        Some(wall),
        owner,
        &state.subscriptions,
    )];
    store.session = true;
    events::drain_state(state, &mut batch);
    match will {
        Some((message, at)) => {
            let delay =
                u32::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX);
            let fire_at = roost_store::convert::instant_to_wall(*at, now, wall);
            batch.push(will_set(&client_id, message, delay, fire_at, now, wall));
            store.will = true;
        }
        None if store.will => {
            batch.push(Delta::WillDelete { client_id });
            store.will = false;
        }
        None => {}
    }
    batch
}

/// The session ended for good: its rows and any will left go.
pub(crate) fn on_session_end(persist: Option<&Persist>, slot: &SessionSlot) {
    let Some(persist) = persist else {
        return;
    };
    let before = std::mem::take(&mut slot.inner.lock().store);
    let client_id = slot.client_id.clone();
    let mut batch = Vec::new();
    if before.session {
        batch.push(Delta::SessionDelete {
            client_id: client_id.clone(),
        });
    }
    if before.will {
        batch.push(Delta::WillDelete { client_id });
    }
    drop(persist.submit(batch));
}
