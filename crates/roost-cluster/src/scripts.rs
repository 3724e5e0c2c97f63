//! The Lua run inside Redis: each script is atomic and touches keys of one
//! hash tag only. Sent with `EVALSHA` (falling back to `EVAL` when the
//! script cache lost it), which redis-rs's `Script` does: unlike Redis
//! Functions, nothing has to be loaded on every primary beforehand.

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
/// set, its incarnation, the route log. ARGV: node, log MAXLEN.
pub(crate) const ROUTE_DOWN: &str = r"
redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'n', ARGV[1], 'r', 'down')
return 1
";

/// Removes a node from the membership set only if its lease has lapsed
/// (a node that renewed meanwhile stays). KEYS: the nodes ZSET. ARGV: node,
/// now (ms). Returns 1 when removed.
pub(crate) const EXPIRE_NODE: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
";

/// A CONNECT claims the client id (cluster-redis.md §3.4, acquire): the
/// record now names this node and this connection's token; the previous
/// owner is returned so it can be told to close. KEYS: the owner hash.
/// ARGV: node, token. Returns {previous node, previous token, previous state}.
pub(crate) const CLAIM: &str = r"
local prev = redis.call('HMGET', KEYS[1], 'node', 'token', 'state')
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'token', ARGV[2], 'state', 'connected')
redis.call('PERSIST', KEYS[1])
return prev
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
