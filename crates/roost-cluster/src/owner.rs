//! Client-id ownership (cluster-redis.md §3.4): one connection per client id
//! in the whole cluster. A CONNECT claims the id with a fresh token (a Lua
//! compare-and-set); a previous owner on another node is sent a kick through
//! its inbox and closes its connection there. The end of a connection
//! releases the claim only while it still holds its token, so a late
//! release can never undo a newer owner. Its own thread and connection:
//! a CONNECT does not wait behind a batch of forwards.

use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use crate::done::Completer;
use crate::link::Link;
use crate::wire::{self, DATA, KIND, Kick, ORIGIN};
use crate::{Claimed, ClusterError, Shared, scripts};

/// How long a released owner record is kept (then Redis deletes it).
const KEEP_RELEASED: Duration = Duration::from_secs(7 * 24 * 3600);

/// A request for the owner thread.
pub(crate) enum Request {
    Claim {
        client_id: String,
        token: String,
        reply: Completer<Claimed>,
    },
    Release {
        client_id: String,
        token: String,
    },
}

pub(crate) fn run(shared: Arc<Shared>, mut link: Link) {
    while let Some(requests) = shared.owners.take(64, Duration::from_millis(500)) {
        for request in requests {
            match request {
                Request::Claim {
                    client_id,
                    token,
                    reply,
                } => {
                    let result = claim(&mut link, &shared, &client_id, &token);
                    if let Err(e) = &result {
                        tracing::warn!(%client_id, error = %e, "cluster claim failed");
                    }
                    reply.complete(result);
                }
                Request::Release { client_id, token } => {
                    if let Err(e) = release(&mut link, &shared, &client_id, &token) {
                        tracing::debug!(%client_id, error = %e, "cluster release failed (the record expires)");
                    }
                }
            }
        }
    }
}

fn claim(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: &str,
) -> Result<Claimed, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let previous: Vec<Value> = link.run(|c| {
        Script::new(scripts::CLAIM)
            .key(keys.owner_of(client_id))
            .arg(me)
            .arg(token)
            .invoke(c)
    })?;
    let node = previous.first().and_then(wire::text_of);
    let old_token = previous.get(1).and_then(wire::text_of);
    let state = previous.get(2).and_then(wire::text_of);
    if let (Some(node), Some(old_token)) = (&node, old_token)
        && node != me
    {
        let kick = wire::encode(&Kick {
            client_id: client_id.to_string(),
            token: old_token,
        })?;
        link.run(|c| {
            redis::cmd("XADD")
                .arg(keys.inbox_of(node))
                .arg("MAXLEN")
                .arg("~")
                .arg(shared.options.inbox_maxlen)
                .arg("*")
                .arg(KIND)
                .arg("x")
                .arg(ORIGIN)
                .arg(me)
                .arg(DATA)
                .arg(kick)
                .query::<()>(c)
        })?;
        tracing::debug!(%client_id, from = %node, ?state, "client id taken from another node");
    }
    Ok(Claimed {
        previous_node: node.filter(|n| n != me),
    })
}

fn release(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: &str,
) -> Result<(), ClusterError> {
    let keep = u64::try_from(KEEP_RELEASED.as_millis()).unwrap_or(u64::MAX);
    link.run(|c| {
        Script::new(scripts::RELEASE)
            .key(shared.keys.owner_of(client_id))
            .arg(token)
            .arg(keep)
            .invoke::<i64>(c)
    })?;
    Ok(())
}
