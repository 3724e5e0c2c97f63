//! Client-id ownership (cluster-redis.md §3.4): one connection per client id
//! in the whole cluster, and one node that writes a session's rows. A
//! CONNECT claims the id with a fresh token (a Lua compare-and-set); a
//! previous owner on another live node is sent a kick through its inbox: it
//! closes the connection there, flushes the session's rows (still allowed:
//! the record says `taking_over` from its token) and answers `handed`.
//! The new owner then settles the record (only its token writes from there)
//! and loads the session. The end of a connection releases the claim only
//! while it still holds its token, so a late release can never undo a
//! newer owner. Its own thread and connection: a CONNECT does not wait
//! behind a batch of forwards. Every claim of this node goes through this
//! one thread, so the node's session list (`{n:<id>}:sess`, the janitor's)
//! changes in claim order: this thread records each granted claim in the
//! node's one map of claims (`Shared::claims`, the store's fences) before
//! it answers, so a session's end that reaches it after a newer claim of
//! the same id sees that claim there.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytestring::ByteString;
use redis::{Script, Value};

use crate::done::{self, Completer};
use crate::link::Link;
use crate::wire::{self, DATA, Handed, KIND, Kick, ORIGIN};
use crate::{Claimed, ClusterError, Shared, scripts, token_text};

/// How long a released owner record is kept (then Redis deletes it).
const KEEP_RELEASED: Duration = Duration::from_secs(7 * 24 * 3600);

/// A request for the owner thread.
pub(crate) enum Request {
    Claim {
        /// The session's own client id (a clone shares its bytes): the
        /// key of the claim's entry in `Shared::claims`.
        client_id: ByteString,
        token: u128,
        resume: bool,
        reply: Completer<Claimed>,
    },
    Release {
        client_id: String,
        token: u128,
    },
    Settle {
        client_id: String,
        token: String,
        reply: Completer<bool>,
    },
    /// This node flushed a session taken by `to` (claim `new_token`).
    Handed {
        client_id: String,
        new_token: String,
        to: String,
    },
    /// The session of `client_id` (claimed with `token`) left this node.
    Ended {
        client_id: String,
        token: u128,
        /// Completed once handled: the broker keeps the claim's entry
        /// until then (the check below reads it).
        reply: Completer<()>,
    },
    /// Is `client_id` still the orphan of `token`?
    StillOrphan {
        client_id: String,
        token: String,
        reply: Completer<bool>,
    },
    /// Claim a session served while cut off again (`rejoin.rs`).
    Reclaim(crate::rejoin::Reclaim),
}

pub(crate) fn run(shared: Arc<Shared>, mut link: Link) {
    while let Some(requests) = shared.owners.take(64, Duration::from_millis(500)) {
        // What a burst of CONNECTs left free here goes back to the OS once
        // the broker asks (after connections hibernated; at most once per
        // ask, an atomic load otherwise): RSS per idle connection,
        // docs/performance.md.
        if let Some(release) = shared.options.release_memory {
            release();
        }
        let mut requests = requests.into_iter().peekable();
        while let Some(request) = requests.next() {
            if !matches!(request, Request::Claim { .. }) {
                handle(&shared, &mut link, request);
                continue;
            }
            // A run of consecutive claims (a burst of CONNECTs) goes to Redis
            // in one round trip: one at a time, a node's connect rate was
            // one claim per round trip (117 CONNECTs/s over 6 nodes in
            // bench/cluster-conn.sh). Order with the other requests holds.
            let mut run = vec![request];
            while let Some(next) = requests.next_if(|r| matches!(r, Request::Claim { .. })) {
                run.push(next);
            }
            claim_all(&shared, &mut link, run);
        }
    }
}

/// Claims of one run: their first step pipelined ([`first_steps`]), the
/// rest (a previous owner on another node: rare) one by one. If the
/// pipeline fails as a whole, each claim is retried on its own.
fn claim_all(shared: &Shared, link: &mut Link, run: Vec<Request>) {
    let firsts = if run.len() > 1 {
        first_steps(link, shared, &run).ok()
    } else {
        None
    };
    let mut firsts = firsts.map(Vec::into_iter);
    for request in run {
        let Request::Claim {
            client_id,
            token,
            resume,
            reply,
        } = request
        else {
            continue;
        };
        let result = match firsts.as_mut().and_then(Iterator::next) {
            Some(previous) => after_claim(link, shared, &client_id, token, resume, &previous),
            None => claim(link, shared, &client_id, token, resume),
        };
        answer_claim(shared, &client_id, token, result, reply);
    }
}

/// A claim's answer; a granted claim is recorded first (the newest of its
/// client id on this node, tied to no connection yet).
fn answer_claim(
    shared: &Shared,
    client_id: &ByteString,
    token: u128,
    result: Result<Claimed, ClusterError>,
    reply: Completer<Claimed>,
) {
    match &result {
        Ok(_) => shared.claims.claimed(client_id, token),
        Err(e) => tracing::warn!(%client_id, error = %e, "cluster claim failed"),
    }
    reply.complete(result);
}

/// The first step of every claim in `run` ([`claim`]'s `CLAIM` script and
/// `SADD`) in one pipeline: each claim's previous owner record.
fn first_steps(
    link: &mut Link,
    shared: &Shared,
    run: &[Request],
) -> Result<Vec<Vec<Value>>, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let script = Script::new(scripts::CLAIM);
    let build = || {
        let mut pipe = redis::pipe();
        for request in run {
            if let Request::Claim {
                client_id, token, ..
            } = request
            {
                let rows = keys.rows_of(client_id);
                pipe.cmd("EVALSHA")
                    .arg(script.get_hash())
                    .arg(1 + rows.len())
                    .arg(keys.owner_of(client_id))
                    .arg(&rows)
                    .arg(me)
                    .arg(token_text(*token));
                pipe.cmd("SADD")
                    .arg(keys.sessions_of(me))
                    .arg(&**client_id)
                    .ignore();
            }
        }
        pipe
    };
    link.run(|c| match build().query::<Vec<Vec<Value>>>(c) {
        // First claim batch since Redis started (or ever): load the script,
        // then once more.
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load(c)?;
            build().query(c)
        }
        other => other,
    })
}
fn handle(shared: &Shared, link: &mut Link, request: Request) {
    match request {
        Request::Claim {
            client_id,
            token,
            resume,
            reply,
        } => {
            let result = claim(link, shared, &client_id, token, resume);
            answer_claim(shared, &client_id, token, result, reply);
        }
        Request::Release { client_id, token } => {
            if let Err(e) = release(link, shared, &client_id, &token_text(token)) {
                tracing::debug!(%client_id, error = %e, "cluster release failed (the record expires)");
            }
        }
        Request::Settle {
            client_id,
            token,
            reply,
        } => reply.complete(settle(link, shared, &client_id, &token)),
        Request::Handed {
            client_id,
            new_token,
            to,
        } => {
            let answer = wire::encode(&Handed {
                client_id: client_id.clone(),
                new_token,
            })
            .and_then(|data| send(link, shared, &to, "h", data));
            if let Err(e) = answer {
                tracing::info!(%client_id, error = %e, "handover answer not sent (the new owner stops waiting)");
            }
        }
        Request::Ended {
            client_id,
            token,
            reply,
        } => {
            // Only while it is still this node's latest claim of the id (a
            // newer one is recorded before it is answered, in this thread).
            if shared.claims.holds(&client_id, token) {
                let me = &shared.options.node_id;
                let key = shared.keys.sessions_of(me);
                let _ = link.run(|c| redis::cmd("SREM").arg(&key).arg(&client_id).query::<()>(c));
            }
            reply.complete(Ok(()));
        }
        Request::Reclaim(reclaim) => {
            let latest = shared.claims.get(&reclaim.client_id);
            let result = crate::rejoin::run(link, shared, latest, &reclaim);
            match &result {
                Ok(crate::Reclaimed::Owned) => {
                    // Its tokens are made compact (`Cluster::reclaim`); one
                    // that were not would leave the claim unrecorded: its
                    // rows unwritten, the safe side.
                    if let Some(token) = crate::compact_token(&reclaim.token) {
                        shared.claims.claimed(&reclaim.client_id, token);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(client_id = %reclaim.client_id, error = %e, "cluster reclaim failed")
                }
            }
            reclaim.reply.complete(result);
        }
        Request::StillOrphan {
            client_id,
            token,
            reply,
        } => {
            let still = link.run(|c| {
                Script::new(scripts::STILL_ORPHAN)
                    .key(shared.keys.owner_of(&client_id))
                    .key(&shared.keys.rows_of(&client_id)[0])
                    .arg(&token)
                    .invoke::<i64>(c)
            });
            reply.complete(still.map(|n| n == 1));
        }
    }
}

/// An entry of kind `kind` into node `to`'s inbox.
fn send(
    link: &mut Link,
    shared: &Shared,
    to: &str,
    kind: &str,
    data: Vec<u8>,
) -> Result<(), ClusterError> {
    link.run(|c| {
        redis::cmd("XADD")
            .arg(shared.keys.inbox_of(to))
            .arg("MAXLEN")
            .arg("~")
            .arg(shared.options.inbox_maxlen)
            .arg("*")
            .arg(KIND)
            .arg(kind)
            .arg(ORIGIN)
            .arg(&shared.options.node_id)
            .arg(DATA)
            .arg(&data)
            .query::<()>(c)
    })
}

fn claim(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: u128,
    resume: bool,
) -> Result<Claimed, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let previous: Vec<Value> = link.run(|c| {
        Script::new(scripts::CLAIM)
            .key(keys.owner_of(client_id))
            .key(&keys.rows_of(client_id))
            .arg(me)
            .arg(token_text(token))
            .invoke(c)
    })?;
    link.run(|c| {
        redis::cmd("SADD")
            .arg(keys.sessions_of(me))
            .arg(client_id)
            .query::<()>(c)
    })?;
    after_claim(link, shared, client_id, token, resume, &previous)
}

/// What follows a claim's `CLAIM` script, given the owner record it
/// replaced: nothing when this node or nobody held the id; otherwise the
/// previous node drops it from its session list and, when alive, is sent
/// the kick whose answer ends the handover.
fn after_claim(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: u128,
    resume: bool,
    previous: &[Value],
) -> Result<Claimed, ClusterError> {
    let keys = &shared.keys;
    let me = &shared.options.node_id;
    let node = previous
        .first()
        .and_then(wire::text_of)
        .filter(|n| !n.is_empty() && n != me);
    let old_token = previous.get(1).and_then(wire::text_of);
    // A reply without the flag counts as stored: the safe side (the
    // session is loaded).
    let stored = !matches!(previous.get(3), Some(Value::Int(0)));
    let (Some(node), Some(old_token)) = (node, old_token) else {
        return Ok(Claimed {
            previous_node: None,
            handover: None,
            stored,
        });
    };
    // It stays on the old node's session list: the old node takes it off
    // once it let the session go, and if it died meanwhile its janitor finds
    // the record no longer names it (no orphan) but still counts the client
    // among the dead node's for the inbox handoff (`handoff.rs`).
    let lease = crate::lease::until(link, keys, &node)?;
    let now = wire::unix_ms(SystemTime::now()) as f64;
    if lease.is_none_or(|deadline| deadline < now) {
        // Dead (or declared so): nobody to wait for; its rows are what it
        // wrote before it died.
        tracing::info!(%client_id, from = %node, "client id taken from a node whose lease lapsed");
        return Ok(Claimed {
            previous_node: Some(node),
            handover: None,
            stored,
        });
    }
    let token = token_text(token);
    let (handover, waiter) = done::pair();
    shared.handovers.lock().insert(token.clone(), waiter);
    let kick = wire::encode(&Kick {
        client_id: client_id.to_string(),
        token: old_token,
        new_token: token.clone(),
        to: me.clone(),
        resume,
    })?;
    if let Err(e) = send(link, shared, &node, "x", kick) {
        shared.handovers.lock().remove(&token);
        return Err(e);
    }
    tracing::debug!(%client_id, from = %node, "client id taken from another node");
    Ok(Claimed {
        previous_node: Some(node),
        handover: Some(handover),
        stored,
    })
}

fn settle(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: &str,
) -> Result<bool, ClusterError> {
    // Stops waiting for an answer that did not come in time.
    shared.handovers.lock().remove(token);
    let keys = &shared.keys;
    let settled: i64 = link.run(|c| {
        let script = Script::new(scripts::SETTLE);
        let mut call = script.prepare_invoke();
        call.key(keys.owner_of(client_id));
        for row in keys.rows_of(client_id) {
            call.key(row);
        }
        call.arg(token).invoke(c)
    })?;
    Ok(settled == 1)
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
