//! Cluster mode: a session leaving this node (docs/cluster.md, "Sessions
//! across nodes"). Another node took its client id (a kick): the session's
//! final rows are written to the shared store — still allowed, the owner
//! record names this node's token as the one handing over — then it ends
//! here without deleting them, and the new node is told it may load it.
//! Or this node fenced itself: its sessions end here without any write
//! (their rows in Redis are the truth; a janitor adopts them).

use std::sync::Arc;
use std::time::Instant;

use roost_cluster::Kicked;
use roost_session::{Message, SessionState};

use super::Core;
use crate::slot::{SessionSlot, SlotStore};

impl Core {
    /// Hands the session of `slot` to the node that took its client id:
    /// `will` is published first when the new connection does not resume
    /// the session or the will has no delay (`publish_will`), the rows are
    /// flushed, the session ends here, then the new node hears it may load.
    /// The slot must be marked ended by the caller (under its lock).
    pub(crate) fn hand_over(
        self: &Arc<Self>,
        slot: &Arc<SessionSlot>,
        mut state: SessionState,
        will: Option<Message>,
        kick: Kicked,
    ) {
        let now = Instant::now();
        if let Some(will) = will {
            self.publish_will(will, now);
        }
        let backlog = slot.inner.lock().outbox.take();
        self.requeue_offline(slot, &mut state, backlog, now);
        let ticket = self.persist().and_then(|persist| {
            let batch = if state.session_expiry_interval() > 0 {
                let mut inner = slot.inner.lock();
                let owner = inner.stored_owner();
                crate::persist::on_park(&mut inner.store, owner, &mut state, None, now)
            } else {
                Vec::new()
            };
            drop(persist.submit(batch));
            // Everything this node queued for the session so far.
            persist.barrier()
        });
        // Its rows now belong to the new node: ending it here deletes none.
        {
            let mut inner = slot.inner.lock();
            inner.store = SlotStore {
                next_seq: inner.store.next_seq,
                ..SlotStore::default()
            };
        }
        // Handed over, not dropped.
        drop(state.take_undelivered());
        self.end_session(slot, &mut state, now);
        let Some(cluster) = self.cluster().map(Arc::clone) else {
            return;
        };
        let client_id = slot.client_id.clone();
        let answer = async move {
            if let Some(ticket) = ticket
                && let Err(e) = ticket.await
            {
                tracing::warn!(%client_id, error = %e, "session rows not flushed before the handover");
            }
            tracing::debug!(%client_id, to = %kick.to, "session handed over");
            cluster.handed(&kick);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(answer)),
            Err(_) => tracing::warn!("handover outside the runtime; the new node stops waiting"),
        }
    }

    /// This node fenced itself: the session of `slot` ends here with no
    /// write and no will (a janitor publishes it, once, from Redis). The
    /// slot must be marked ended by the caller.
    pub(crate) fn let_go(&self, slot: &Arc<SessionSlot>, mut state: SessionState) {
        slot.inner.lock().store = SlotStore::default();
        drop(state.take_undelivered());
        self.end_session(slot, &mut state, Instant::now());
    }
}
