//! `availability_over_consistency` after Redis returns (docs/cluster.md,
//! "Failure modes"): the node served while cut off, its new sessions
//! local-only (no claim: not fenced, not on the janitor's list, not
//! written to Redis) and its older ones perhaps adopted by a janitor that
//! saw its lease lapse. Each session it holds is claimed again
//! (`roost_cluster::Cluster::reclaim`, a compare-and-set):
//!
//! - owned again: its token is the store's fence from now on, and its
//!   record, subscriptions, will and message rows are written (a live
//!   connection's by its driver, `Op::Persist`; a parked session's here,
//!   under its lock), the messages as it holds them now, queued or
//!   acknowledged while cut off (`persist/reclaim.rs`);
//! - another node took the client id meanwhile: the connection here is
//!   closed as taken over (DISCONNECT 0x8E) and its session let go without
//!   writes (the other node's rows are the truth); a parked one is let go;
//! - a newer CONNECT of this node claimed it since: nothing to do.
//!
//! One at a time, in registry order: an outage is rare, and a reclaim is
//! one script and one `SADD` on the owner thread, which CONNECTs share.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytestring::ByteString;
use roost_cluster::Reclaimed;
use roost_codec::ReasonCode;

use super::ClusterLink;
use crate::core::Core;
use crate::link::{Control, ControlSender};
use crate::slot::SessionSlot;

/// Where a session is now.
enum Held {
    Live(u64, ControlSender),
    Parked,
}

fn held(slot: &SessionSlot) -> Option<Held> {
    let inner = slot.inner.lock();
    match (&inner.link, &inner.parked) {
        _ if inner.ended => None,
        (Some(link), _) => Some(Held::Live(link.connection_id, link.control.clone())),
        (None, Some(_)) => Some(Held::Parked),
        (None, None) => None,
    }
}

/// Claims every session of this node again (see the module comment);
/// returns how many are owned again, how many gave way.
pub(crate) async fn rejoin(core: Arc<Core>) -> (usize, usize) {
    let Some(link) = core.cluster().map(Arc::clone) else {
        return (0, 0);
    };
    let mut slots = Vec::new();
    core.sessions()
        .for_each(|slot| slots.push(Arc::clone(slot)));
    let (mut owned, mut lost) = (0, 0);
    for slot in slots {
        let Some(held) = held(&slot) else { continue };
        let client_id = &slot.client_id;
        let old = link.fences.get(client_id);
        let connected = matches!(held, Held::Live(..));
        let answer = match link.cluster.reclaim(client_id, old, connected) {
            Ok((token, done)) => done.await.map(|r| (token, r)),
            Err(e) => Err(e),
        };
        let (token, reclaimed) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                // Redis went again: the next return starts over.
                tracing::warn!(%client_id, error = %e, "session not claimed again after Redis returned");
                break;
            }
        };
        match (reclaimed, held) {
            (Reclaimed::Newer, _) => {}
            (Reclaimed::Owned, Held::Live(connection_id, control)) => {
                if link.reclaimed(client_id, token, Some(connection_id), &slot) {
                    if !crate::admin_subs::persist_live(&core, connection_id, &control).await {
                        tracing::info!(%client_id, "reclaimed session's rows not written (its connection closed meanwhile)");
                    }
                    owned += 1;
                }
            }
            (Reclaimed::Owned, Held::Parked) => {
                if link.reclaimed(client_id, token, None, &slot) {
                    write_parked(&core, &slot).await;
                    owned += 1;
                }
            }
            (Reclaimed::Taken, Held::Live(connection_id, control)) => {
                link.lost.lock().insert(connection_id);
                tracing::info!(%client_id, "client id taken on another node while Redis was away; closing with 0x8E");
                let _ = control.try_send(Control::Close(ReasonCode::SESSION_TAKEN_OVER));
                lost += 1;
            }
            (Reclaimed::Taken, Held::Parked) => {
                let parked = {
                    let mut inner = slot.inner.lock();
                    if inner.link.is_some() || inner.ended {
                        None
                    } else {
                        let parked = inner.parked.take();
                        inner.ended = parked.is_some();
                        parked
                    }
                };
                if let Some(parked) = parked {
                    core.let_go(&slot, parked.state);
                    lost += 1;
                }
            }
        }
    }
    tracing::info!(
        owned,
        lost,
        "sessions served while Redis was away claimed again"
    );
    (owned, lost)
}

/// A parked session owned again: its record, subscriptions, what it
/// reported and its will, as when it was parked, and its message rows made
/// what it holds (`persist/reclaim.rs`); returns once written.
async fn write_parked(core: &Core, slot: &SessionSlot) {
    let Some(persist) = core.persist() else {
        return;
    };
    let from = slot.inner.lock().store.next_seq;
    let stored = crate::persist::load_for_reclaim(persist, &slot.client_id).await;
    let batch = {
        let mut guard = slot.inner.lock();
        let inner = &mut *guard;
        let owner = inner.stored_owner();
        let arriving = crate::persist::Arriving::to(inner, from);
        let Some(parked) = inner.parked.as_mut() else {
            return;
        };
        let now = Instant::now();
        let mut batch = crate::persist::on_park(
            &mut inner.store,
            owner,
            &mut parked.state,
            parked.will.as_ref(),
            now,
        );
        if let Some(stored) = &stored {
            crate::persist::number_unstored(&mut inner.store, stored.as_ref(), |next| {
                parked.state.number_unstored(next)
            });
            batch.extend(crate::persist::message_rows(
                &parked.state,
                stored.as_ref(),
                &arriving,
                now,
                SystemTime::now(),
            ));
        }
        batch
    };
    crate::persist::written(&slot.client_id, persist.submit(batch)).await;
}

impl ClusterLink {
    /// `client_id` is owned again under `token` (compact; the cluster
    /// recorded it in the fences before answering): the claim of
    /// `connection` (a live one) or of the parked session. False when the
    /// session moved meanwhile (its connection ended, or a new one
    /// attached): then the claim is released and forgotten.
    fn reclaimed(
        &self,
        client_id: &ByteString,
        token: u128,
        connection: Option<u64>,
        slot: &SessionSlot,
    ) -> bool {
        // Under the slot's lock: its connection cannot end (and look for
        // its claim) between the check and the tie. The fences' lock is a
        // leaf (taken for one map operation, nothing locked under it), so
        // it nests under the slot's without a lock-order cycle.
        let inner = slot.inner.lock();
        let still = !inner.ended && inner.link.as_ref().map(|l| l.connection_id) == connection;
        if !still {
            drop(inner);
            self.fences.remove_if(client_id, token);
            self.cluster.release(client_id, token);
            return false;
        }
        // A parked session holds no connection's claim: its token is the
        // fence only (a CONNECT resuming it claims anew).
        match connection {
            Some(connection_id) => self.fences.connect(client_id, token, connection_id),
            None => self.fences.park(client_id, token),
        }
    }

    /// Whether connection `connection_id` was closed because another node
    /// took its client id while Redis was away (its session is let go, not
    /// parked); forgets it.
    pub(crate) fn take_lost(&self, connection_id: u64) -> bool {
        let mut lost = self.lost.lock();
        !lost.is_empty() && lost.remove(&connection_id)
    }
}
