//! Adoption of a dead node's sessions (docs/cluster.md, "Adoption"): at
//! the inbox handoff (one lease after the death, `handoff.rs`), every
//! session of the dead node whose client has not come back anywhere is
//! taken by the janitor's node, as a parked session of its own: the
//! `ADOPT` script (only while the record is still the orphan the janitor
//! made) gives it a token of this node, the broker loads it from the store
//! and parks it ([`crate::Receiver::adopt`]), and from then on it is like
//! any session of this node whose client is away: its subscriptions are
//! this node's routes, what matches them (the replayed inbox first) is
//! queued by the broker's own matching and written to the session's rows
//! under this node's token, its queue has the same limits, and a client
//! reconnecting anywhere takes it over from this node (kick, flush, hand
//! over), which is how a concurrent reconnect either finds a message in
//! the rows it loads or receives it live, never neither.
//!
//! A clean session (expiry 0) has no record left by then: dropped.

use std::time::Duration;

use redis::{Script, Value};
use smallvec::SmallVec;

use crate::link::Link;
use crate::wire::text_of;
use crate::writer::Item;
use crate::{ClusterError, Shared, scripts};

/// How long adoption waits for the writer to publish the adopted
/// sessions' routes before the dead node's go down.
const ROUTES_WAIT: Duration = Duration::from_secs(10);

/// Adopts the sessions of `clients` still orphaned; returns how many.
pub(crate) fn adopt_sessions(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    clients: &[String],
) -> Result<usize, ClusterError> {
    let mut adopted = 0;
    for client_id in clients {
        if adopt_one(link, shared, client_id)? {
            adopted += 1;
        }
    }
    if adopted > 0 {
        // The adopted subscriptions' routes are queued (the broker
        // subscribed them): written before the dead node's routes go, so
        // no node ever sees neither.
        written(shared);
        shared
            .stats
            .adopted
            .fetch_add(adopted as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            node,
            sessions = adopted,
            "sessions of a dead node adopted (parked here until their clients come back)"
        );
    }
    Ok(adopted)
}

/// One session: claimed if still the orphan, then loaded and parked by the
/// broker.
fn adopt_one(link: &mut Link, shared: &Shared, client_id: &str) -> Result<bool, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let token = crate::token_text(uuid::Uuid::new_v4().as_u128());
    let reply: Value = link.run(|c| {
        let script = Script::new(scripts::ADOPT);
        let mut call = script.prepare_invoke();
        call.key(keys.owner_of(client_id));
        for row in keys.rows_of(client_id) {
            call.key(row);
        }
        call.arg(me).arg(&token).invoke(c)
    })?;
    if text_of(&reply).is_none() {
        // Resumed somewhere (the replay reaches it there), or gone.
        return Ok(false);
    }
    // On this node's list: if it dies too, its janitor adopts it again.
    link.run(|c| {
        redis::cmd("SADD")
            .arg(keys.sessions_of(me))
            .arg(client_id)
            .query::<()>(c)
    })?;
    if shared.receiver.adopt(client_id, &token) {
        return Ok(true);
    }
    // The broker could not park it (the store did not answer, or it
    // expired meanwhile): its record names this node, so a reconnecting
    // client still resumes it (the rows are what the dead node wrote), and
    // this node's janitor orphans it again if this node dies.
    tracing::warn!(
        client_id,
        "a dead node's session could not be adopted here; its client resumes what was stored"
    );
    Ok(false)
}

/// Waits (bounded) until the writer wrote everything queued so far (the
/// adopted sessions' routes; a replayed page's forwards, `handoff.rs`);
/// true when it did.
pub(crate) fn written(shared: &Shared) -> bool {
    let (done, ack) = crate::done::pair();
    let barrier = Item::Forward {
        to: SmallVec::new(),
        message: Box::new(roost_store::StoredMessage {
            topic: "".into(),
            payload: bytes::Bytes::new(),
            qos: roost_codec::QoS::AtMostOnce,
            retain: false,
            properties: roost_store::StoredProperties::default(),
            expires_at: None,
            publisher: None,
        }),
        ack: Some(ack),
        rerouted: false,
        only: Vec::new(),
    };
    if shared.writes.push_within(barrier, usize::MAX).is_err() {
        return false;
    }
    match done.wait(ROUTES_WAIT) {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "cluster writes not confirmed");
            false
        }
        None => {
            tracing::warn!(
                "cluster writes (adopted sessions' routes, replayed forwards) not written in time"
            );
            false
        }
    }
}
