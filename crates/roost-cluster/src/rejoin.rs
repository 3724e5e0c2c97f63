//! `availability_over_consistency` after Redis returns (docs/cluster.md,
//! "Failure modes"): the sessions the node served while cut off are
//! claimed again, one compare-and-set each (`scripts::RECLAIM`), so they
//! are fenced, listed for the janitor and resumable elsewhere again. The
//! broker asks for each of its sessions once it hears
//! [`crate::Receiver::rejoined`]; a client id another node took meanwhile
//! is the other node's (the broker closes its connection here as a
//! takeover), one a newer CONNECT of this node claimed since is left alone.

use std::time::Duration;

use bytestring::ByteString;
use redis::Script;

use crate::done::{self, Completer, Done};
use crate::link::Link;
use crate::owner::Request;
use crate::{Cluster, ClusterError, Shared, scripts, token_text};

/// How a released (parked) record is kept, as `owner.rs` keeps it.
const KEEP_RELEASED: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a reclaim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaimed {
    /// This node owns the client id again under the new token: write the
    /// session's rows under it.
    Owned,
    /// Another node holds (or last held) the client id: this node's session
    /// gives way (its connection closed as taken over, without writes).
    Taken,
    /// A newer claim of this node holds the client id (a CONNECT since
    /// Redis returned): nothing to do for the old session.
    Newer,
}

/// One reclaim for the owner thread.
pub(crate) struct Reclaim {
    /// The session's own client id (the key of its entry in the claims).
    pub(crate) client_id: ByteString,
    /// The token the session held before (its claim from before the cut),
    /// compact; `None` for a session accepted without a claim.
    pub(crate) old: Option<u128>,
    pub(crate) token: String,
    /// A live connection (else a parked session).
    pub(crate) connected: bool,
    pub(crate) reply: Completer<Reclaimed>,
}

impl Cluster {
    /// Claims `client_id` again after an outage served without Redis
    /// (`old`: the token its session held, if any; `connected`: a live
    /// connection, else a parked session). Returns the new token (compact)
    /// and the answer. Refused at once while Redis is unreachable.
    pub fn reclaim(
        &self,
        client_id: &ByteString,
        old: Option<u128>,
        connected: bool,
    ) -> Result<(u128, Done<Reclaimed>), ClusterError> {
        if !self.healthy() {
            return Err(ClusterError::Unavailable);
        }
        let bits = uuid::Uuid::new_v4().as_u128();
        let (done, reply) = done::pair();
        let request = Request::Reclaim(Reclaim {
            client_id: client_id.clone(),
            old,
            token: token_text(bits),
            connected,
            reply,
        });
        self.shared
            .owners
            .push(request)
            .map_err(|_| ClusterError::Unavailable)?;
        Ok((bits, done))
    }
}

/// On the owner thread (which makes every claim of this node, in order):
/// `latest` is this node's latest claim of the client id.
pub(crate) fn run(
    link: &mut Link,
    shared: &Shared,
    latest: Option<u128>,
    reclaim: &Reclaim,
) -> Result<Reclaimed, ClusterError> {
    if latest.is_some() && latest != reclaim.old {
        return Ok(Reclaimed::Newer);
    }
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let client_id = &*reclaim.client_id;
    let state = if reclaim.connected {
        "connected"
    } else {
        "disconnected"
    };
    let keep = u64::try_from(KEEP_RELEASED.as_millis()).unwrap_or(u64::MAX);
    let claimed: i64 = link.run(|c| {
        let script = Script::new(scripts::RECLAIM);
        let mut call = script.prepare_invoke();
        call.key(keys.owner_of(client_id));
        for row in keys.rows_of(client_id) {
            call.key(row);
        }
        call.arg(me)
            .arg(&reclaim.token)
            .arg(state)
            .arg(keep)
            .invoke(c)
    })?;
    if claimed == 0 {
        return Ok(Reclaimed::Taken);
    }
    link.run(|c| {
        redis::cmd("SADD")
            .arg(keys.sessions_of(me))
            .arg(client_id)
            .query::<()>(c)
    })?;
    Ok(Reclaimed::Owned)
}
