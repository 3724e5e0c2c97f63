//! What the cluster hands the broker: the [`Receiver`] it calls back
//! (messages, kicks, wills, retained and ban changes, adoptions) and the
//! values it passes.

use std::time::SystemTime;

use roost_store::StoredMessage;

/// A retained message change from the cluster (any node, this one included).
#[derive(Debug)]
pub enum RetainedUpdate {
    /// The topic's retained message is now this one, stored at `stored_at`.
    Set {
        /// The message.
        message: Box<StoredMessage>,
        /// When its node stored it (`retain_ttl` counts from here).
        stored_at: SystemTime,
    },
    /// The topic has no retained message any more.
    Clear {
        /// The topic.
        topic: String,
    },
}

/// Where one batch's messages go, one at a time, as they are decoded.
pub type RemoteSink<'a> = dyn FnMut(Remote) + 'a;

/// One batch being decoded ([`Receiver::messages_each`]): it hands each
/// message to the sink it is called with.
pub type BatchSource<'a> = dyn FnMut(&mut RemoteSink<'_>) + 'a;

/// The broker's side: called on the cluster's reader thread (never on the
/// runtime), so it must not block for long.
pub trait Receiver: Send + Sync + 'static {
    /// Messages other nodes forwarded: route each to the local subscribers
    /// it names (never forward it again, but see [`Cluster::reroute`](crate::Cluster::reroute)).
    fn messages(&self, messages: Vec<Remote>);
    /// [`Receiver::messages`] for one batch as the reader decodes it:
    /// `batch` hands each message to the function it is given, as soon as
    /// it is read (routing it there moves it once, not into a vector and
    /// out). The default collects them for [`Receiver::messages`].
    fn messages_each(&self, batch: &mut BatchSource<'_>) {
        let mut all = Vec::new();
        batch(&mut |remote| all.push(remote));
        self.messages(all);
    }
    /// Another node took a client id: close its connection here if it
    /// still holds the kick's token, flush the session's rows, let the
    /// session go and answer [`Cluster::handed`](crate::Cluster::handed).
    fn kick(&self, kick: Kicked);
    /// A retained message changed somewhere in the cluster.
    fn retained(&self, update: RetainedUpdate);
    /// A janitor took the will of a session whose node died: publish it at
    /// `at` if the client has not come back by then
    /// ([`Cluster::still_orphan`](crate::Cluster::still_orphan)).
    fn will(&self, will: OrphanWill);
    /// This node fenced itself (its lease could not be renewed in time):
    /// close every connection and let every session go without writing.
    fn fenced(&self);
    /// A ban was added or lifted somewhere in the cluster (this node
    /// included), or is in the cluster's list when the node joins.
    fn ban(&self, change: BanChange);
    /// Returns once what the messages handed over so far wrote to the
    /// session store is written (durable mode: the inbox checkpoint passes
    /// a batch only after this). Called on the reader thread after each
    /// read; the default waits for nothing.
    fn settle(&self) {}
    /// `availability_over_consistency`: Redis answers again after this node
    /// served without it. Claim again every session it holds
    /// ([`Cluster::reclaim`](crate::Cluster::reclaim)). Called on the lease thread; the default
    /// does nothing.
    fn rejoined(&self) {}
    /// A janitor of this node adopted the session of a dead node's client
    /// that has not come back (`adopt.rs`): its record names this node and
    /// `token` now. Load it from the store and park it here, its rows
    /// written under `token`, until its client comes back (anywhere: a
    /// kick hands it over) or it expires. Called on a cluster thread,
    /// blocking. False when it could not be parked; the default parks
    /// nothing.
    fn adopt(&self, _client_id: &str, _token: &str) -> bool {
        false
    }
    /// Runs `work` (answering publishers' waits, which wakes their tasks)
    /// where waking the broker's tasks is cheapest: a tokio broker runs it
    /// on its runtime, so the writer thread wakes one task per batch
    /// instead of every waiting publisher from outside the runtime. The
    /// default runs it at once on the calling thread.
    fn in_runtime(&self, work: Box<dyn FnOnce() + Send>) {
        work();
    }
}

/// A kick from the node that took a client id.
#[derive(Debug, Clone)]
pub struct Kicked {
    /// The client id.
    pub client_id: String,
    /// The claim it was taken from (a connection of this node, if still here).
    pub token: String,
    /// The claim that took it.
    pub new_token: String,
    /// The node that took it (where the answer goes).
    pub to: String,
    /// The new connection resumes the session (Clean Start 0): a will with
    /// a delay is not published.
    pub resume: bool,
}

/// A dead node's client's will, taken by this node's janitor.
#[derive(Debug)]
pub struct OrphanWill {
    /// The client id.
    pub client_id: String,
    /// The claim the session was orphaned with.
    pub token: String,
    /// The will message.
    pub message: StoredMessage,
    /// When it is due (its delay, counted from the node's death).
    pub at: SystemTime,
    /// Taken out of Redis already (due at once): publish it without
    /// [`Cluster::still_orphan`](crate::Cluster::still_orphan), which would find it gone.
    pub taken: bool,
}

/// A change of the cluster's ban list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanChange {
    /// `client:<id>`, `user:<name>` or `ip:<cidr>`.
    pub target: String,
    /// `Some(end)`: banned until `end` (`None` inside: for ever); `None`:
    /// the ban is lifted.
    pub until: Option<Option<SystemTime>>,
}

/// A message from another node, with the part of its delivery this node
/// makes (docs/cluster.md, "Shared subscriptions").
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Remote {
    /// The message.
    pub message: StoredMessage,
    /// Deliver it to this node's non-shared subscribers.
    pub direct: bool,
    /// The shared groups (`$share/g/f`) this node delivers it to, one
    /// member each.
    pub groups: Vec<String>,
    /// Already sent on once because its first node had no member left of
    /// a group: never sent on again.
    pub rerouted: bool,
    /// Handed off from a dead node's inbox (docs/cluster.md, "Inbox
    /// handoff"): delivered only to the sessions of these client ids (the
    /// dead node's), so subscribers that got it the first time do not get
    /// it again; empty: to every subscriber `direct` and `groups` name.
    pub only: Vec<String>,
}
