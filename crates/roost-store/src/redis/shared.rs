//! A prefix shared by the nodes of a cluster (docs/cluster.md, "Sessions
//! across nodes"): each client's rows are written by the node that owns the
//! client id, in one Lua script per client and batch that first checks the
//! owner record `<p>{c:<id>}:own` (written by `roost-cluster`) still names
//! this node's token, or names it as the owner handing the session over.
//! Otherwise nothing is written (the batch's rows for that client are
//! dropped and counted: another node owns the session now). Retained
//! messages are the cluster's (`roost-cluster`'s own buckets), delayed
//! publications are not shared: both are skipped here. A session is read
//! on demand, when its client connects ([`load_session`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytestring::ByteString;
use redis::Script;

use crate::delta::Delta;
use crate::error::StoreError;
use crate::fence::Fences;
use crate::redis::connection::Link;
use crate::redis::keys::{ClientKey, Keys};
use crate::redis::load::{add_client_field, hgetall_many};
use crate::redis::ops::{self, Op, Owner};
use crate::state::StoreState;
use crate::store::LoadedSession;

/// Applies one client's writes if the owner record still names `token`
/// (or names it as the owner handing over: state `taking_over`, field
/// `from`). KEYS[1]: the owner record; KEYS[2..]: the client's row keys.
/// ARGV[1]: token; then ops: `S` key# field value | `U` key# field | `D` key#.
/// Returns 1 when written, 0 when fenced off.
const FENCED_WRITE: &str = r"
local own = redis.call('HMGET', KEYS[1], 'token', 'state', 'from')
if own[1] ~= ARGV[1] and not (own[2] == 'taking_over' and own[3] == ARGV[1]) then
  return 0
end
local i = 2
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'S' then
    redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'U' then
    redis.call('HDEL', key, ARGV[i + 2])
    i = i + 3
  else
    redis.call('DEL', key)
    i = i + 2
  end
end
return 1
";

/// Counters of the shared mode.
#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    /// Client write groups refused by Redis: another node owns the client.
    pub(crate) fenced: AtomicU64,
    /// Client write groups not sent: this node holds no token for the client.
    pub(crate) unowned: AtomicU64,
}

/// Writes `batch`: each client's rows in one fenced script, in batch order
/// per client. Not atomic across clients (each client's rows are).
pub(crate) fn apply(
    link: &Link,
    keys: &Keys,
    fences: &Fences,
    stats: &SharedStats,
    batch: &[Delta],
) -> Result<(), StoreError> {
    let mut per_client: BTreeMap<&ByteString, Vec<Op>> = BTreeMap::new();
    let mut scratch = Vec::new();
    for delta in batch {
        scratch.clear();
        match ops::ops(keys, delta, &mut scratch)? {
            Owner::Client(client_id) => per_client
                .entry(client_id)
                .or_default()
                .append(&mut scratch),
            // The cluster shares retained messages itself; delayed
            // publications stay with the node that scheduled them.
            Owner::Broker => {}
        }
    }
    for (client_id, writes) in per_client {
        let Some(token) = fences.get(client_id).map(crate::fence::token_text) else {
            stats.unowned.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%client_id, "session rows not written: this node does not own the client id");
            continue;
        };
        let written = link.run(|c| script(keys, client_id, &token, &writes).invoke::<i64>(c))?;
        if written == 0 {
            stats.fenced.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%client_id, "session write fenced off: another node owns the client id now");
        }
    }
    Ok(())
}

/// The fenced script invocation for one client's writes.
fn script<'a>(
    keys: &Keys,
    client_id: &str,
    token: &str,
    writes: &[Op],
) -> redis::ScriptInvocation<'a> {
    static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(FENCED_WRITE));
    let mut call = script.prepare_invoke();
    call.key(keys.owner(client_id));
    let mut slots: Vec<Vec<u8>> = Vec::new();
    let mut slot_of = |key: &Vec<u8>, call: &mut redis::ScriptInvocation<'a>| {
        let at = match slots.iter().position(|k| k == key) {
            Some(at) => at,
            None => {
                slots.push(key.clone());
                call.key(key.clone());
                slots.len() - 1
            }
        };
        // KEYS[1] is the owner record.
        at + 2
    };
    call.arg(token);
    for op in writes {
        match op {
            Op::Set(key, field, value) => {
                let n = slot_of(key, &mut call);
                call.arg("S")
                    .arg(n)
                    .arg(field.as_slice())
                    .arg(value.as_slice());
            }
            Op::Unset(key, field) => {
                let n = slot_of(key, &mut call);
                call.arg("U").arg(n).arg(field.as_slice());
            }
            Op::Delete(key) => {
                let n = slot_of(key, &mut call);
                call.arg("D").arg(n);
            }
        }
    }
    call
}

/// One client's session and will, read in one pipeline (`None`s when absent).
pub(crate) fn load_session(
    link: &Link,
    keys: &Keys,
    client_id: &str,
) -> Result<LoadedSession, StoreError> {
    let id = ByteString::from(client_id);
    let row_keys: Vec<Vec<u8>> = ClientKey::ALL
        .iter()
        .map(|kind| keys.client(client_id, *kind))
        .collect();
    let mut state = StoreState::default();
    for (kind, hash) in ClientKey::ALL.iter().zip(hgetall_many(link, &row_keys)?) {
        for (field, value) in hash {
            add_client_field(&mut state, &id, *kind, field, &value)?;
        }
    }
    let will = state.wills.remove(&id);
    let session = state.into_snapshot().sessions.into_iter().next();
    Ok((session, will))
}
