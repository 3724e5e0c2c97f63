//! Forwards staged per read of a connection: a publisher's messages of one
//! read are encoded as they are routed, into one buffer, which goes to the
//! writer's queue in one push (one lock, one wake-up, one allocation freed
//! on the writer's thread), and its QoS 1/2 acknowledgements wait on one
//! answer — the writer writes its batches in queue order and answers each
//! batch after it is written, so the staged item's answer means every
//! message in it is in its inboxes. Per message this saves the queue's
//! lock (a cache line three threads share), a boxed copy of the message
//! freed on another thread, an answer cell and its wake-up (the profile of
//! a cross-node run, docs/performance.md).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use roost_store::StoredMessage;

use crate::batch::{self, Names, RemoteOut};
use crate::writer::Item;
use crate::{Cluster, Done, Forward, Shared, done};

/// The forwards of one read, encoded, not yet queued; [`Cluster::flush`]
/// queues them (dropped unflushed, they are queued then, unanswered).
#[derive(Default)]
pub struct Staged {
    /// Each message's `Remote` per destination, back to back.
    bytes: Vec<u8>,
    /// (destination node, where its encoding ends in `bytes`).
    entries: Vec<(u16, usize)>,
    /// Some staged forward is QoS 1/2: the flush gives a `Done`.
    wait: bool,
    /// The cluster the messages are for (set with the first).
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("entries", &self.entries.len())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// [`Cluster::forward`], staged in `staged` instead of queued: the
    /// outcome is decided now (a full buffer drops it now, counting what is
    /// staged), the `Done` of every QoS 1/2 message of the read comes from
    /// [`Cluster::flush`] (`Forward::Queued(None)` here).
    pub fn forward_staged(
        &self,
        staged: &mut Staged,
        topic: &str,
        publisher_id: &str,
        wait: bool,
        message: impl FnOnce() -> StoredMessage,
    ) -> (Forward, Vec<Arc<str>>) {
        // No route cached: nothing goes elsewhere (the local-only case: no
        // lock taken, no plan built).
        if !self.shared.routes.any() {
            return (Forward::Local, Vec::new());
        }
        let plan = self.shared.routes.plan(topic, publisher_id);
        if plan.to.is_empty() {
            return (Forward::Local, plan.elsewhere);
        }
        if self.shared.options.available_when_cut_off && !self.healthy() {
            // Cut off, serving anyway: as `forward`.
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return (Forward::Local, Vec::new());
        }
        let cap = self.shared.writes.cap();
        let limit = if wait { cap.saturating_mul(2) } else { cap };
        if self.shared.writes.queued() + staged.entries.len() >= limit {
            let n = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped_so_far = n,
                    "cluster forward buffer full; message dropped"
                );
            }
            // Not sent: this node delivers its own groups after all.
            return (Forward::Dropped, Vec::new());
        }
        let message = message();
        let (bytes_at, entries_at) = (staged.bytes.len(), staged.entries.len());
        for dest in &plan.to {
            let out = RemoteOut {
                message: &message,
                direct: dest.direct,
                groups: Names(&dest.groups),
                rerouted: false,
                only: &[],
            };
            if let Err(e) = batch::append(&mut staged.bytes, &out) {
                tracing::warn!(error = %e, "cluster message not encodable; not forwarded");
                staged.bytes.truncate(bytes_at);
                staged.entries.truncate(entries_at);
                self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return (Forward::Dropped, Vec::new());
            }
            staged.entries.push((dest.node, staged.bytes.len()));
        }
        staged.wait |= wait;
        if staged.shared.is_none() {
            staged.shared = Some(Arc::clone(&self.shared));
        }
        (Forward::Queued(None), plan.elsewhere)
    }

    /// Queues what `staged` holds, in one push; the answer completes once
    /// all of it is written (`None`: nothing staged waits).
    pub fn flush(&self, staged: &mut Staged) -> Option<Done<()>> {
        staged.flush()
    }
}

impl Staged {
    fn flush(&mut self) -> Option<Done<()>> {
        let shared = self.shared.as_ref()?;
        if self.entries.is_empty() {
            return None;
        }
        let (done, ack) = if std::mem::take(&mut self.wait) {
            let (done, ack) = done::pair();
            (Some(done), Some(ack))
        } else {
            (None, None)
        };
        let item = Item::Encoded {
            bytes: std::mem::take(&mut self.bytes),
            entries: std::mem::take(&mut self.entries),
            ack,
        };
        // Admitted message by message against the cap when staged.
        // Stopped: dropped (a waiting publisher is answered `Stopped`).
        if shared.writes.push_admitted(item).is_err() {
            tracing::debug!("cluster stopped; staged forwards not written");
        }
        done
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        drop(self.flush());
    }
}
