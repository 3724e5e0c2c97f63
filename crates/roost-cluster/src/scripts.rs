//! The Lua run inside Redis: each script is atomic and touches keys of one
//! hash tag only (so on a Redis Cluster it runs on the one primary serving
//! that slot). Sent with `EVALSHA`; on `NOSCRIPT` (a primary whose script
//! cache is empty: restarted, or a replica promoted) redis-rs's `Script`
//! sends `SCRIPT LOAD`, which the cluster client sends to every primary,
//! then `EVALSHA` again: unlike Redis Functions, nothing has to be loaded on
//! every primary beforehand.

/// Route update, fenced by the node's route incarnation (cluster-redis.md
/// §3.2). KEYS: the node's route set, its incarnation, the route log.
/// ARGV: node, incarnation, reset (1: empty the set first), log MAXLEN,
/// number of adds, the adds, then the removals. Returns 0 (`STALE`: the node
/// was declared dead since; it must register again) or 1.
pub(crate) const ROUTE_UPDATE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local na = tonumber(ARGV[5])
local adds, dels = {}, {}
for i = 6, 5 + na do adds[#adds + 1] = ARGV[i] end
for i = 6 + na, #ARGV do dels[#dels + 1] = ARGV[i] end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
if #adds > 0 then redis.call('SADD', KEYS[1], unpack(adds)) end
if #dels > 0 then redis.call('SREM', KEYS[1], unpack(dels)) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'n', ARGV[1], 'i', ARGV[2],
  'r', ARGV[3], 'a', table.concat(adds, '\0'), 'd', table.concat(dels, '\0'))
return 1
";

/// A dead node's routes go (idempotent: a second run finds nothing and logs
/// a second `down`, which every reader applies harmlessly). KEYS: its route
/// set, its incarnation, the route log. ARGV: node, log MAXLEN. Returns its new incarnation.
pub(crate) const ROUTE_DOWN: &str = r"
local inc = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'n', ARGV[1], 'r', 'down')
return inc
";

/// A dead node's routes go after its inbox handoff, unless it registered
/// again meanwhile (its incarnation moved on). KEYS: its route set, its
/// incarnation, the route log. ARGV: node, log MAXLEN, the incarnation the
/// janitor set. Returns 1 when removed.
pub(crate) const ROUTE_DOWN_IF: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'n', ARGV[1], 'r', 'down')
return 1
";

/// A janitor claims a dead node's inbox for handoff (docs/cluster.md,
/// "Inbox handoff"): renamed (one janitor gets it, a racing one finds no
/// inbox; the node restarting writes a fresh one) with its checkpoint
/// taken out (and kept in the janitor job's record, when given, for a
/// janitor taking the job over). KEYS: the inbox, its checkpoint, the
/// handoff key, optionally the job record (same hash tag). ARGV: how long the claimed stream is kept at most (ms). Returns
/// nil (nothing to hand off, or claimed already) or the checkpoint
/// (`0-0`: none).
pub(crate) const HANDOFF_CLAIM: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return false
end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
local ckpt = redis.call('GET', KEYS[2]) or '0-0'
redis.call('DEL', KEYS[2])
if KEYS[4] then redis.call('HSET', KEYS[4], 'from', ckpt) end
return ckpt
";

/// Removes a node from the membership set only if its lease has lapsed
/// (a node that renewed meanwhile stays), and in the same step records the
/// remover as the janitor of its job (`job.rs`): whoever removes a node
/// owes its janitor work, and if it dies too another node takes the job
/// over. KEYS: the nodes ZSET, the jobs hash. ARGV: node, now (ms), the
/// remover. Returns 1 when removed.
pub(crate) const EXPIRE_NODE: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
";

/// Takes over the janitor job of a dead node whose janitor is dead too
/// (not in the nodes ZSET, or its lease lapsed): one node gets it.
/// KEYS: the jobs hash, the nodes ZSET. ARGV: the dead node, the janitor
/// seen, the taker, now (ms). Returns 1 when taken.
pub(crate) const TAKE_JOB: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[2])
if score and tonumber(score) >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
";

/// A janitor job is finished: off the jobs hash if still this janitor's.
/// KEYS: the jobs hash. ARGV: the dead node, the janitor. Returns 1 when
/// removed.
pub(crate) const JOB_DONE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
";

/// A step of a janitor job recorded (`job.rs`: its stage, or how far its
/// replay got), only while the job is still this janitor's: a janitor cut
/// off or paused past its lease, whose job another node took over since
/// (`run` writes the taker's name in the record), records nothing more and
/// stops its replay. KEYS: the job record. ARGV: the janitor, then field
/// and value pairs, then `-` and the fields to delete. Returns 1, or 0
/// when the job is another node's.
pub(crate) const JOB_STEP: &str = r"
if redis.call('HGET', KEYS[1], 'janitor') ~= ARGV[1] then return 0 end
local i = 2
while i <= #ARGV and ARGV[i] ~= '-' do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i + 1, #ARGV do redis.call('HDEL', KEYS[1], ARGV[j]) end
return 1
";

/// The list of a dead node's sessions, set aside for its janitor job
/// (once: a janitor taking the job over finds it there): a restarted node
/// of the same id lists its new sessions in a fresh set. KEYS: the node's
/// session set, the job's copy. Returns 1.
pub(crate) const SET_ASIDE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
end
return 1
";

/// A will a janitor took (`ORPHAN`) but that a dead janitor may not have
/// published: the orphan's token and the will, if the session is still an
/// orphan holding one. KEYS: the owner hash, the session hash. Returns
/// nil or {token, will, owhen} (`owhen`: when its node was declared dead,
/// unix ms; empty when not recorded).
pub(crate) const PEEK_WILL: &str = r"
local own = redis.call('HMGET', KEYS[1], 'node', 'token', 'orphan')
local will = redis.call('HGET', KEYS[2], 'owill')
if not will then return false end
local when = redis.call('HGET', KEYS[2], 'owhen') or ''
if own[1] == '' and own[2] then return {own[2], will, when} end
if own[3] then return {own[3], will, when} end
return false
";

/// Renews this node's lease, and says whether it was still a member: 0
/// means another node removed it meanwhile (saw its lease lapse, ran the
/// janitor on its sessions), or Redis lost the set. Atomic with
/// `EXPIRE_NODE`, so exactly one of "kept" and "collected" happens.
/// KEYS: the nodes ZSET. ARGV: node, new deadline (ms). Returns 1 or 0.
pub(crate) const RENEW: &str = r"
local kept = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if kept then return 1 end
return 0
";

/// A CONNECT claims the client id (cluster-redis.md §3.4, acquire): the
/// record now names this node and this connection's token; the previous
/// owner is returned so it can be told to close. When another node held it,
/// the record says `taking_over` and keeps the old token in `from`: until
/// the new owner settles (`SETTLE`), the old one may still write the
/// session's rows (its flush), and only it. Otherwise (nobody, an orphan,
/// or this node held it) there is nothing to hand over and the claim
/// settles at once, as `SETTLE` would: the rows lose any expiry a janitor
/// gave them. One round trip per CONNECT instead of two. KEYS: the owner
/// hash, then the row keys. ARGV: node, token. Returns {previous node,
/// previous token, previous state, 1 when the session hash exists (0: no
/// stored session to load, unless the previous node hands one over)}.
///
/// Idempotent per token: the answer is kept (`pnode`, `ptoken`, `pstate`),
/// and a second run with the same token (a pipeline of claims sent again
/// after a partial failure: on a Redis Cluster its parts go to several
/// primaries, and one may have run them while another refused) returns it
/// unchanged instead of reporting this node as the previous owner and
/// dropping `from`.
pub(crate) const CLAIM: &str = r"
local prev = redis.call('HMGET', KEYS[1], 'node', 'token', 'state', 'pnode', 'ptoken', 'pstate')
local stored = 1
if KEYS[2] then stored = redis.call('EXISTS', KEYS[2]) end
if prev[2] == ARGV[2] then
  return {prev[4] or '', prev[5] or '', prev[6] or '', stored}
end
if prev[1] and prev[1] ~= '' and prev[1] ~= ARGV[1] and prev[2] then
  redis.call('HSET', KEYS[1], 'node', ARGV[1], 'token', ARGV[2], 'state', 'taking_over', 'from', prev[2])
else
  redis.call('HSET', KEYS[1], 'node', ARGV[1], 'token', ARGV[2], 'state', 'connected')
  redis.call('HDEL', KEYS[1], 'from')
  for i = 2, #KEYS do redis.call('PERSIST', KEYS[i]) end
end
redis.call('HSET', KEYS[1], 'pnode', prev[1] or '', 'ptoken', prev[2] or '', 'pstate', prev[3] or '')
redis.call('HDEL', KEYS[1], 'orphan')
if KEYS[2] then redis.call('HDEL', KEYS[2], 'owill') end
redis.call('PERSIST', KEYS[1])
return {prev[1] or '', prev[2] or '', prev[3] or '', stored}
";

/// The new owner ends a handover (the old node flushed, or did not answer in
/// time, or is dead): from here only its token writes the rows, which lose
/// any expiry a janitor gave them. KEYS: the owner hash, then the row keys.
/// ARGV: token. Returns 0 when a newer claim holds the record.
pub(crate) const SETTLE: &str = r"
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'connected')
redis.call('HDEL', KEYS[1], 'from')
for i = 2, #KEYS do redis.call('PERSIST', KEYS[i]) end
return 1
";

/// A janitor adopts a session of a dead node (cluster-redis.md §3.5): only
/// if the record still names that node, it is now nobody's (a reconnect
/// anywhere resumes it without waiting for a handover) and its will is
/// moved to `owill` (the orphan's will: published by whichever janitor
/// takes it out first with `STILL_ORPHAN`, once, even if the janitor that
/// scheduled it dies; a janitor orphaning it again, after the death of a
/// node that adopted it, gets it back). With the will, `owhen` records
/// when the node was declared dead (what a delay counts from), so a janitor
/// taking the job over fires it at the same time (a will orphaned again
/// keeps its first `owhen`). KEYS: the owner hash, the session hash. ARGV:
/// the dead node, now (unix ms). Returns nil, or {token, will, record,
/// owhen} (empty strings when absent).
pub(crate) const ORPHAN: &str = r"
local own = redis.call('HMGET', KEYS[1], 'node', 'token')
if own[1] ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'node', '', 'state', 'orphaned')
redis.call('HDEL', KEYS[1], 'from')
local will = redis.call('HGET', KEYS[2], 'will')
local when
if will then
  redis.call('HDEL', KEYS[2], 'will')
  redis.call('HSET', KEYS[2], 'owill', will, 'owhen', ARGV[2])
  when = ARGV[2]
else
  will = redis.call('HGET', KEYS[2], 'owill')
  when = redis.call('HGET', KEYS[2], 'owhen')
end
local rec = redis.call('HGET', KEYS[2], 'rec')
return {own[2] or '', will or '', rec or '', when or ''}
";

/// An orphaned session's keys expire with the session (Redis deletes them:
/// the expiry fires once in the cluster, on no node), unless a client took
/// it meanwhile. KEYS: the owner hash, then the row keys. ARGV: the token
/// it was orphaned with, expiry (ms). Returns 1 when set.
pub(crate) const EXPIRE_ORPHAN: &str = r"
local own = redis.call('HMGET', KEYS[1], 'node', 'token')
if own[1] ~= '' or own[2] ~= ARGV[1] then return 0 end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
";

/// An orphan's will is due: taken out (1: publish it) if the client id is
/// still the orphan of `token` (nobody reconnected; a session a janitor
/// adopted, `ADOPT`, still is until its client comes back: a claim clears
/// `orphan` and `owill`) and nobody took it yet. KEYS: the owner hash, the
/// session hash. ARGV: token. Returns 1 or 0.
pub(crate) const STILL_ORPHAN: &str = r"
local own = redis.call('HMGET', KEYS[1], 'node', 'token', 'orphan')
if not ((own[1] == '' and own[2] == ARGV[1]) or own[3] == ARGV[1]) then return 0 end
if redis.call('HDEL', KEYS[2], 'owill') == 0 then return 0 end
return 1
";

/// A janitor adopts an orphaned session whose client has not come back by
/// its inbox handoff (docs/cluster.md, "Adoption"): the record names the
/// janitor's node and a new token of its own (the janitor's store writes
/// the session's queue under it; a client reconnecting anywhere takes it
/// over from the janitor like from any live node), keeps the orphan token
/// in `orphan` (a delayed will taken at the death still fires while the
/// client stays away, `STILL_ORPHAN`), and the rows lose the expiry the
/// orphaning gave them (the janitor's broker expires the session itself).
/// Only a session with a record: a clean one (expiry 0) is gone already.
/// KEYS: the owner hash, then the row keys (the session hash first).
/// ARGV: node, new token. Returns nil, or the orphan token.
pub(crate) const ADOPT: &str = r"
local own = redis.call('HMGET', KEYS[1], 'node', 'token', 'state')
if own[1] ~= '' or not own[2] or own[3] ~= 'orphaned' then return false end
if redis.call('HEXISTS', KEYS[2], 'rec') == 0 then return false end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'token', ARGV[2], 'state', 'adopted', 'orphan', own[2])
redis.call('HDEL', KEYS[1], 'from')
for i = 1, #KEYS do redis.call('PERSIST', KEYS[i]) end
return own[2]
";

/// The connection ended: marks the record disconnected, fenced by the token
/// (a newer owner's record is left alone). KEYS: the owner hash. ARGV: token,
/// time to keep the record (ms). Returns 1 when it was ours.
pub(crate) const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'disconnected')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// `availability_over_consistency`, Redis back: this node claims again a
/// session it served while cut off (`rejoin.rs`), unless another node holds
/// or last held the client id (a client took it there meanwhile, or a
/// janitor's node adopted it: this node's session gives way). Nobody, an
/// orphan (a janitor saw this node's lease lapse) or this node itself: the
/// record names this node and the new token, its rows lose any expiry. KEYS: the owner hash, then the row keys. ARGV:
/// node, token, state (`connected`, or `disconnected` for a parked
/// session), time to keep a disconnected record (ms). Returns 1 when
/// claimed, 0 when another node has it.
pub(crate) const RECLAIM: &str = r"
local node = redis.call('HGET', KEYS[1], 'node')
if node and node ~= '' and node ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'token', ARGV[2], 'state', ARGV[3])
redis.call('HDEL', KEYS[1], 'from')
for i = 2, #KEYS do redis.call('PERSIST', KEYS[i]) end
if ARGV[3] == 'disconnected' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
";
