//! What a node tells the others about itself (docs/management.md, "In a
//! cluster"): its `node:<id>` hash holds its version, connection and
//! session counts, start time, listener URLs and management API address,
//! written at join, again at every lease renewal (a third of the lease:
//! the counts are at most that old) and at once when the broker sets a
//! field ([`Cluster::announce`]). Any node's `GET /api/v1/nodes` reads them
//! (`members.rs`); the management API's fan-out finds the other nodes'
//! API there.
//!
//! The counts come from a probe the broker installs ([`Cluster::set_probe`]):
//! a few relaxed atomic loads, called on the lease thread. A renewal that
//! cannot write them is not a failed renewal (only logged): the lease is
//! what membership rests on, the announcement is for people.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::link::Link;
use crate::wire::unix_ms;
use crate::{Cluster, ClusterError, Shared};

/// The broker's live numbers for the node hash: `(field, value)` pairs
/// such as `("connections", "12")`.
pub type Probe = Box<dyn Fn() -> Vec<(&'static str, String)> + Send + Sync>;

/// The fields this node announces besides the probe's.
#[derive(Default)]
pub(crate) struct Announce {
    /// Set by the broker (`admin`: its management API's URL, ...).
    fixed: Mutex<Vec<(String, String)>>,
    probe: Mutex<Option<Probe>>,
}

impl Announce {
    /// Adds (or replaces) a field written with every announcement.
    pub(crate) fn fix(&self, field: &str, value: String) {
        let mut fixed = self.fixed.lock();
        fixed.retain(|(k, _)| k != field);
        fixed.push((field.to_string(), value));
    }

    /// Every field to write now: the fixed ones, the probe's, the listener
    /// addresses and when this was written (`announced`, Unix ms).
    fn fields(&self, shared: &Shared) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self.fixed.lock().clone();
        if let Some(probe) = self.probe.lock().as_ref() {
            fields.extend(probe().into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        fields.push(("addresses".into(), shared.options.addresses.join(" ")));
        fields.push(("announced".into(), unix_ms(SystemTime::now()).to_string()));
        fields
    }
}

/// Writes this node's hash (one `HSET`).
pub(crate) fn write(link: &mut Link, shared: &Shared) -> Result<(), ClusterError> {
    let fields = shared.announce.fields(shared);
    let key = shared.keys.node_info(&shared.options.node_id);
    link.run(|c| redis::cmd("HSET").arg(&key).arg(&fields).query::<()>(c))
}

impl Cluster {
    /// Installs what the lease thread asks for the live numbers at each
    /// renewal, and writes them once now. Blocking (one Redis round trip).
    pub fn set_probe(&self, probe: Probe) -> Result<(), ClusterError> {
        *self.shared.announce.probe.lock() = Some(probe);
        self.announce_now()
    }

    /// Adds (or replaces) a field of this node's hash, e.g. `admin` with
    /// the URL of its management API, and writes the hash now. Blocking.
    pub fn announce(&self, field: &str, value: &str) -> Result<(), ClusterError> {
        self.shared.announce.fix(field, value.to_string());
        self.announce_now()
    }

    /// The credential the nodes' management APIs accept from each other:
    /// the one in Redis, or `proposed` when there is none yet (then stored,
    /// for every node; `SET NX GET`, so two nodes starting at once agree).
    /// Blocking (one Redis round trip).
    pub fn admin_secret(&self, proposed: &str) -> Result<String, ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        let key = self.shared.keys.admin_secret();
        let before: Option<String> = link.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(proposed)
                .arg("NX")
                .arg("GET")
                .query(c)
        })?;
        Ok(before.unwrap_or_else(|| proposed.to_string()))
    }

    fn announce_now(&self) -> Result<(), ClusterError> {
        let mut guard = self.leave.lock();
        let link = guard.as_mut().ok_or(ClusterError::Stopped)?;
        write(link, &self.shared)
    }
}

/// After a renewal: the hash again (a failure is logged, not fatal).
pub(crate) fn after_renewal(link: &mut Link, shared: &Arc<Shared>) {
    if let Err(e) = write(link, shared) {
        tracing::debug!(error = %e, "cluster: this node's announcement was not written; next renewal");
    }
}
