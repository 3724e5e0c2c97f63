//! The janitor of a node whose sessions have no live owner (cluster-redis.md
//! §3.5): a node whose lease lapsed (run by the node that removed it, once),
//! or this node's own earlier run (at start, and after it fenced itself).
//! Each session it listed is made nobody's by a Lua check that the owner
//! record still names that node: a client reconnecting anywhere resumes it
//! without waiting for a handover. Its will is taken out in the same script,
//! so exactly one janitor gets it, and handed to the broker to publish when
//! due; its rows expire in Redis with the session (the expiry fires once in
//! the cluster, on no node).

use std::time::{Duration, SystemTime};

use redis::{Script, Value};

use crate::link::Link;
use crate::wire::{bytes_of, from_unix_ms, unix_ms};
use crate::{ClusterError, OrphanWill, Shared, scripts};

/// How long the owner record of an orphaned session without expiry data is
/// kept.
const KEEP_ORPHAN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Adopts every session `node` listed (those still its); returns the client
/// ids it listed (an inbox handoff delivers to them).
/// `wills`: hand their wills to the broker (a death). A node back from a
/// short self-fence (nobody saw its lease lapse) passes false: its wills
/// are taken out all the same, but dropped, as for a server-side close
/// nobody else noticed (docs/cluster.md, "Self-fencing").
pub(crate) fn orphan_sessions(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    wills: bool,
) -> Result<Vec<String>, ClusterError> {
    orphan_listed(
        link,
        shared,
        node,
        &shared.keys.sessions_of(node),
        true,
        wills,
    )
}

/// [`orphan_sessions`] of the sessions in set `list`; `forget`: each goes
/// off it once done (a dead node's list set aside for its janitor job
/// stays whole: a janitor taking the job over goes through it again, and
/// `ORPHAN` skips those done already).
pub(crate) fn orphan_listed(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    list: &str,
    forget: bool,
    wills: bool,
) -> Result<Vec<String>, ClusterError> {
    let clients: Vec<String> = link.run(|c| redis::cmd("SMEMBERS").arg(list).query(c))?;
    let mut adopted = 0;
    for client_id in &clients {
        if orphan(link, shared, node, client_id, wills)? {
            adopted += 1;
        }
        if forget {
            link.run(|c| redis::cmd("SREM").arg(list).arg(client_id).query::<()>(c))?;
        }
    }
    if adopted > 0 {
        tracing::warn!(
            node,
            sessions = adopted,
            "sessions of a node without a live owner are nobody's now (their clients resume them anywhere)"
        );
    }
    Ok(clients)
}

fn orphan(
    link: &mut Link,
    shared: &Shared,
    node: &str,
    client_id: &str,
    wills: bool,
) -> Result<bool, ClusterError> {
    let keys = &shared.keys;
    let owner = keys.owner_of(client_id);
    let rows = keys.rows_of(client_id);
    let now = SystemTime::now();
    let reply: Value = link.run(|c| {
        Script::new(scripts::ORPHAN)
            .key(&owner)
            .key(&rows[0])
            .arg(node)
            .arg(unix_ms(now))
            .invoke(c)
    })?;
    let Value::Array(parts) = reply else {
        return Ok(false); // another node owns it now
    };
    let field = |i: usize| parts.get(i).and_then(bytes_of).unwrap_or_default();
    let (token, will, record) = (field(0), field(1), field(2));
    let token = String::from_utf8_lossy(&token).into_owned();
    // When the death was recorded with the will (an earlier pass, or the
    // first orphaning before its adopter died too): its delay counts from
    // then, not from this pass.
    let died = recorded_time(&field(3)).unwrap_or(now);
    let expiry = if record.is_empty() {
        None
    } else {
        match roost_store::redis::decode_session(&record) {
            Ok(record) => Some(record.expiry_interval),
            Err(e) => {
                tracing::warn!(client_id, error = %e, "undecodable session record of an orphan");
                None
            }
        }
    };
    // A session that does not persist (expiry 0) ends now; others when
    // their expiry runs out, counted from the node's death.
    let keep_ms = match expiry {
        Some(u32::MAX) => None,
        Some(secs) => Some(u64::from(secs).saturating_mul(1000).max(1)),
        None => Some(u64::try_from(KEEP_ORPHAN.as_millis()).unwrap_or(u64::MAX)),
    };
    // The will first: one due now is taken out before the keys of a
    // session that does not persist expire.
    if !will.is_empty() && !wills {
        tracing::info!(client_id, "will not published: this node's fence was short");
        link.run(|c| redis::cmd("HDEL").arg(&rows[0]).arg("owill").query::<()>(c))?;
    } else if !will.is_empty() {
        schedule_will(link, shared, client_id, token.clone(), &will, expiry, died)?;
    }
    if let Some(ms) = keep_ms {
        link.run(|c| {
            let script = Script::new(scripts::EXPIRE_ORPHAN);
            let mut call = script.prepare_invoke();
            call.key(&owner);
            for row in &rows {
                call.key(row);
            }
            call.arg(&token).arg(ms).invoke::<i64>(c)
        })?;
    }
    Ok(true)
}

/// Hands an orphan's will (`owill`) to the broker, due after its delay
/// counted from `died` (when its node was declared dead, as recorded with
/// the will), unless the will has a fire time of its own (its connection
/// had ended before: `fire_at`). One due now is taken out of Redis here (the
/// session's keys may expire at once); a delayed one when due, by
/// whichever janitor comes first (`STILL_ORPHAN`).
fn schedule_will(
    link: &mut Link,
    shared: &Shared,
    client_id: &str,
    token: String,
    will: &[u8],
    expiry: Option<u32>,
    died: SystemTime,
) -> Result<(), ClusterError> {
    let w = match roost_store::redis::decode_will(will) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(client_id, error = %e, "undecodable will of an orphan");
            return Ok(());
        }
    };
    let delay = w.delay_interval.min(expiry.unwrap_or(0));
    let at = w
        .fire_at
        .unwrap_or_else(|| died + Duration::from_secs(u64::from(delay)));
    let taken = at <= SystemTime::now();
    if taken {
        let keys = &shared.keys;
        let took: i64 = link.run(|c| {
            Script::new(scripts::STILL_ORPHAN)
                .key(keys.owner_of(client_id))
                .key(&keys.rows_of(client_id)[0])
                .arg(&token)
                .invoke(c)
        })?;
        if took == 0 {
            return Ok(()); // another janitor took it, or the client is back
        }
    }
    shared.receiver.will(OrphanWill {
        client_id: client_id.to_string(),
        token,
        message: w.message,
        at,
        taken,
    });
    Ok(())
}

/// A janitor job taken over from a dead janitor (`job.rs`): the wills it
/// took out and may not have published are scheduled again here, at the
/// time the dead janitor had them due (their delay counted from the death
/// recorded with them, `owhen`; from now only for a will without one:
/// late rather than lost). `STILL_ORPHAN` lets each out only once.
pub(crate) fn rearm_wills(
    link: &mut Link,
    shared: &Shared,
    clients: &[String],
) -> Result<usize, ClusterError> {
    let keys = &shared.keys;
    let mut rearmed = 0;
    for client_id in clients {
        let rows = keys.rows_of(client_id);
        let reply: Value = link.run(|c| {
            Script::new(scripts::PEEK_WILL)
                .key(keys.owner_of(client_id))
                .key(&rows[0])
                .invoke(c)
        })?;
        let Value::Array(parts) = reply else {
            continue;
        };
        let field = |i: usize| parts.get(i).and_then(bytes_of).unwrap_or_default();
        let (token, will) = (field(0), field(1));
        let token = String::from_utf8_lossy(&token).into_owned();
        let died = recorded_time(&field(2)).unwrap_or_else(SystemTime::now);
        let record: Option<Vec<u8>> =
            link.run(|c| redis::cmd("HGET").arg(&rows[0]).arg("rec").query(c))?;
        let expiry = record
            .and_then(|r| roost_store::redis::decode_session(&r).ok())
            .map(|r| r.expiry_interval);
        schedule_will(link, shared, client_id, token, &will, expiry, died)?;
        rearmed += 1;
    }
    Ok(rearmed)
}

/// A time recorded in Redis as unix milliseconds (`owhen`); `None` when
/// absent or not a number.
fn recorded_time(text: &[u8]) -> Option<SystemTime> {
    std::str::from_utf8(text)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(from_unix_ms)
}
