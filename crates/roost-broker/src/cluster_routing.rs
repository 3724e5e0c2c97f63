//! Messages from other nodes routed on the runtime instead of on the
//! cluster's reader thread (docs/performance.md, "x-cpu").
//!
//! Routing a forwarded batch pushes each message into its subscribers'
//! outboxes and rings the drivers whose outbox was empty. Rung from the
//! reader thread, every ring is a wake-up from outside the runtime: the
//! task goes to the runtime's shared queue and a parked worker is woken
//! (a `futex` call) — once per subscriber per batch, and the reader touches
//! the slots from a core of its own. Rung from a task on a worker, the woken
//! drivers go to that worker's own run queue. So the reader hands each
//! decoded batch to one routing task, over a bounded channel (one wake-up
//! per batch at most), and goes on reading.
//!
//! Order is kept: one task routes the batches in the order the reader read
//! them. What the reader does besides handing batches over and that must
//! come after the messages before it (a kick, durable mode's checkpoint)
//! waits for the task to have routed them first ([`Routing::routed`]).

use std::sync::Weak;
use std::sync::mpsc as std_mpsc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use roost_cluster::Remote;
use tokio::sync::mpsc;

use crate::core::Core;
use crate::slot::SessionKey;

/// Batches handed over and not yet routed, at most: the reader waits when
/// the task is this far behind (each batch holds up to 1024 messages, the
/// writer's take per round trip).
const DEPTH: usize = 8;

/// What the reader hands the routing task.
enum Job {
    /// A decoded batch (its buffer comes back through `spare`).
    Batch(Vec<Remote>),
    /// Answered once every batch before it is routed.
    Mark(std_mpsc::SyncSender<()>),
}

/// The reader's end of the routing task.
pub(crate) struct Routing {
    jobs: mpsc::Sender<Job>,
    /// Emptied batch buffers the task gives back (their room is kept), at
    /// most `DEPTH + 1`.
    spare: std::sync::Arc<Mutex<Vec<Vec<Remote>>>>,
}

impl Routing {
    /// Starts the routing task on `runtime`; it ends when this is dropped.
    pub(crate) fn start(core: Weak<Core>, runtime: &tokio::runtime::Handle) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(DEPTH);
        let spare = std::sync::Arc::new(Mutex::new(Vec::with_capacity(DEPTH + 1)));
        let returned = std::sync::Arc::clone(&spare);
        runtime.spawn(async move {
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Batch(mut batch) => {
                        if let Some(core) = core.upgrade() {
                            route_all(&core, batch.drain(..));
                        }
                        batch.clear();
                        let mut spare = returned.lock();
                        if spare.len() <= DEPTH {
                            spare.push(batch);
                        }
                    }
                    Job::Mark(answer) => {
                        let _ = answer.send(());
                    }
                }
            }
        });
        Self { jobs, spare }
    }

    /// Hands the messages of `batch` to the task (the reader thread keeps
    /// a buffer with room for its next batch). Waits while the task is
    /// `DEPTH` batches behind. `Err`: the task is gone (the runtime is
    /// shutting down); the messages are given back.
    pub(crate) fn hand_over(&self, batch: &mut Vec<Remote>) -> Result<(), Vec<Remote>> {
        let next = self.spare.lock().pop().unwrap_or_default();
        let full = std::mem::replace(batch, next);
        match self.jobs.blocking_send(Job::Batch(full)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(Job::Batch(full))) => Err(full),
            Err(_) => Ok(()),
        }
    }

    /// Returns once every batch handed over so far is routed (at once if
    /// the task is gone).
    pub(crate) fn routed(&self) {
        let (answer, done) = std_mpsc::sync_channel(1);
        if self.jobs.blocking_send(Job::Mark(answer)).is_ok() {
            let _ = done.recv();
        }
    }
}

/// Routes forwarded messages to this node's subscribers. A run of messages
/// from one publisher (a read's messages are staged together) looks its
/// session up once (No Local).
pub(crate) fn route_all(core: &Core, messages: impl Iterator<Item = Remote>) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut publisher: Option<(String, Option<SessionKey>)> = None;
    for remote in messages {
        let Remote {
            message: stored,
            direct,
            groups,
            rerouted,
            only,
        } = remote;
        let id = stored.publisher.as_deref();
        let key = match (&publisher, id) {
            (Some((last, key)), Some(id)) if last == id => key.clone(),
            (_, Some(id)) => {
                let key = core.sessions().get(id).map(SessionKey);
                publisher = Some((id.to_string(), key.clone()));
                key
            }
            (_, None) => None,
        };
        // Moved out of the batch, unless a re-route may need it.
        let (message, kept) = if groups.is_empty() {
            (stored.into_message(now, wall), None)
        } else {
            (stored.to_message(now, wall), Some(stored))
        };
        let (missing, _ticket) =
            core.route_remote_from(message, key.as_ref(), direct, &groups, &only, now);
        // A group whose last member here left after the sender chose this
        // node: sent on once to another node with members.
        if !missing.is_empty() {
            match (rerouted, core.cluster(), kept) {
                (false, Some(link), Some(stored)) => link.reroute(&stored, &missing),
                _ => tracing::debug!(
                    groups = ?missing,
                    "shared group has no member here after a re-route; message dropped"
                ),
            }
        }
    }
}
