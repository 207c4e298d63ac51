package redis

import "github.com/redis/rueidis"

// The scripts are loaded once per server and called by SHA (rueidis falls
// back to EVAL on NOSCRIPT, after a failover or a SCRIPT FLUSH). Each
// touches the keys of one partition only, declared in KEYS, so that it
// runs on a Redis Cluster. They answer a table whose first element is OK
// or the name of the refusal (NOTFOUND, CONFLICT, EXISTS, LIMIT, SUBJECT,
// EVICT); a write that records events answers OK and the Seq of the first.

// luaCommon is shared by the session scripts. KEYS[1..13] are
// keys.sessionKeys. A connection's record (internal/codec) is a version
// byte, then its id, kind and node as uvarint-prefixed strings: the
// scripts read the kind and node from it to keep the counts and the node
// index.
const luaCommon = `
local K = {s=KEYS[1], c=KEYS[2], live=KEYS[3], dev=KEYS[4], subj=KEYS[5], ids=KEYS[6],
  bystate=KEYS[7], nodeconns=KEYS[8], nodes=KEYS[9], stats=KEYS[10], events=KEYS[11], due=KEYS[12], r=KEYS[13]}

-- setDue puts a member of the deadline index at score (microseconds), or
-- removes it for ''.
local function setDue(id, score)
  if score == '' then redis.call('ZREM', K.due, id) else redis.call('ZADD', K.due, score, id) end
end

local function uvarint(b, pos)
  local v, mul = 0, 1
  while true do
    local c = string.byte(b, pos)
    if c == nil then return 0, pos end
    pos = pos + 1
    if c < 128 then return v + c * mul, pos end
    v = v + (c - 128) * mul
    mul = mul * 128
  end
end

local function str(b, pos)
  local n
  n, pos = uvarint(b, pos)
  return string.sub(b, pos, pos + n - 1), pos + n
end

local function connMeta(rec)
  local _, kind, node
  local pos = 2
  _, pos = str(rec, pos)
  kind, pos = str(rec, pos)
  node = str(rec, pos)
  return kind, node
end

local function nodeMember(node, id) return string.format('%08x', #node) .. node .. id end

local function unindexConn(id, rec)
  local kind, node = connMeta(rec)
  if redis.call('HINCRBY', K.stats, 'k:' .. kind, -1) <= 0 then redis.call('HDEL', K.stats, 'k:' .. kind) end
  if node ~= '' then
    redis.call('ZREM', K.nodeconns, nodeMember(node, id))
    if redis.call('HINCRBY', K.nodes, node, -1) <= 0 then redis.call('HDEL', K.nodes, node) end
  end
end

-- The session hash keeps the number of its connections in field n, so
-- that a read of a session is one HMGET.
local function putConn(ckey, id, rec)
  local old = redis.call('HGET', ckey, id)
  if old then unindexConn(id, old) else redis.call('HINCRBY', K.s, 'n', 1) end
  redis.call('HSET', ckey, id, rec)
  local kind, node = connMeta(rec)
  redis.call('HINCRBY', K.stats, 'k:' .. kind, 1)
  if node ~= '' then
    redis.call('ZADD', K.nodeconns, 0, nodeMember(node, id))
    redis.call('HINCRBY', K.nodes, node, 1)
  end
end

local function dropConn(ckey, id)
  local old = redis.call('HGET', ckey, id)
  if old then
    unindexConn(id, old)
    redis.call('HDEL', ckey, id)
    redis.call('ZREM', K.due, id)
    redis.call('HINCRBY', K.s, 'n', -1)
  end
end

-- dropAllConns drops the connections under ckey of the session under skey.
local function dropAllConns(ckey, skey)
  local all = redis.call('HGETALL', ckey)
  for i = 1, #all, 2 do
    unindexConn(all[i], all[i + 1])
    redis.call('ZREM', K.due, all[i])
  end
  redis.call('DEL', ckey)
  redis.call('HDEL', skey, 'n')
end

local function isLive(st) return tonumber(st) < 6 end

local function devMember(dev, lk) return string.format('%08x', #dev) .. dev .. lk end

-- f: {id, st, dev, lk}
local function unindex(f)
  redis.call('HINCRBY', K.stats, 'n' .. f.st, -1)
  redis.call('ZREM', K.bystate, f.st .. ':' .. f.id)
  if isLive(f.st) then
    redis.call('ZREM', K.live, f.lk)
    if redis.call('ZCARD', K.live) == 0 then redis.call('HINCRBY', K.stats, 'subj', -1) end
    if f.dev ~= '' then redis.call('ZREM', K.dev, devMember(f.dev, f.lk)) end
  end
end

local function index(f)
  redis.call('HINCRBY', K.stats, 'n' .. f.st, 1)
  redis.call('ZADD', K.bystate, 0, f.st .. ':' .. f.id)
  if isLive(f.st) then
    if redis.call('ZADD', K.live, 0, f.lk) == 1 and redis.call('ZCARD', K.live) == 1 then
      redis.call('HINCRBY', K.stats, 'subj', 1)
    end
    if f.dev ~= '' then redis.call('ZADD', K.dev, 0, devMember(f.dev, f.lk)) end
  end
end

local function stored(skey, id)
  local v = redis.call('HMGET', skey, 'v', 'st', 'sub', 'dev', 'lk')
  if not v[1] then return nil end
  return {id=id, v=v[1], st=v[2], sub=v[3], dev=v[4], lk=v[5]}
end

-- write replaces the session under skey with f ({id, d, v, st, sub, dev,
-- lk, due}) and keeps the indexes; old is what was stored, or nil. Its
-- record goes under rkey once its connections are changed (putRecord).
local function write(skey, old, f)
  if old then unindex(old) end
  redis.call('HSET', skey, 'v', f.v, 'st', f.st, 'sub', f.sub, 'dev', f.dev, 'lk', f.lk)
  index(f)
  setDue(f.id, f.due)
end

-- putRecord stores a session's record d under rkey with the number of its
-- connections after it (field n of its hash skey): d, then n in decimal,
-- then one byte, the length of that; a read is one GET.
local function putRecord(rkey, skey, d)
  local n = redis.call('HGET', skey, 'n') or '0'
  redis.call('SET', rkey, d .. n .. string.char(#n))
end

-- args reads a session's fields from ARGV at i: id d v st sub dev lk due.
local function session(i)
  return {id=ARGV[i], d=ARGV[i+1], v=ARGV[i+2], st=ARGV[i+3], sub=ARGV[i+4], dev=ARGV[i+5], lk=ARGV[i+6], due=ARGV[i+7]}, i + 8
end

-- conns applies the connection changes at ARGV[i]: n puts (id, record),
-- then m drops (id), then k deadlines (id, score) of connections the
-- session has. A session that is not live loses them all.
local function conns(ckey, live, i)
  local n = tonumber(ARGV[i]); i = i + 1
  local puts = i
  i = i + 2 * n
  local m = tonumber(ARGV[i]); i = i + 1
  local drops = i
  i = i + m
  local k = tonumber(ARGV[i]); i = i + 1
  if not live then
    dropAllConns(ckey, K.s)
    return i + 2 * k
  end
  for j = 0, m - 1 do dropConn(ckey, ARGV[drops + j]) end
  for j = 0, n - 1 do putConn(ckey, ARGV[puts + 2 * j], ARGV[puts + 2 * j + 1]) end
  for j = 0, k - 1 do
    local id = ARGV[i + 2 * j]
    if redis.call('HEXISTS', ckey, id) == 1 then setDue(id, ARGV[i + 2 * j + 1]) end
  end
  return i + 2 * k
end

-- events appends the n events at ARGV[i] and returns the first one's Seq.
local function events(maxlen, i)
  local n = tonumber(ARGV[i]); i = i + 1
  local first = nil
  for j = 0, n - 1 do
    local seq = redis.call('HINCRBY', K.stats, 'seq', 1)
    if not first then first = seq end
    redis.call('XADD', K.events, 'MAXLEN', '~', maxlen, seq .. '-0', 'e', ARGV[i + j])
  end
  return tostring(first or 0), i + n
end
`

// updateScript: ARGV = maxlen, expected stored version, session (8),
// conns, events.
var updateScript = rueidis.NewLuaScript(luaCommon + `
local maxlen, want = ARGV[1], ARGV[2]
local f, i = session(3)
local old = stored(K.s, f.id)
if not old then return {'NOTFOUND'} end
if old.v ~= want then return {'CONFLICT'} end
if old.sub ~= f.sub then return {'SUBJECT'} end
write(K.s, old, f)
i = conns(K.c, isLive(f.st), i)
putRecord(K.r, K.s, f.d)
local seq = events(maxlen, i)
return {'OK', seq}
`)

// createScript: KEYS[14] is the claim key of the id in this partition
// (set by a create of the id in another partition), KEYS[15..] the
// session, connection and record keys of the evictees. ARGV = maxlen, max,
// evict (0/1), unique device (0/1), session (8), conns, the number of
// evictees, each as expected stored version and session (8), then the
// events (the evictions' first). If the evictees are not the subject's
// oldest live sessions at those versions, it answers EVICT and the ids of
// the oldest, for the caller to read them and try again: a script only
// touches the keys it is given.
var createScript = rueidis.NewLuaScript(luaCommon + `
local maxlen, max, evict, unique = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4] == '1'
local f, i = session(5)
if redis.call('EXISTS', K.s) == 1 or redis.call('EXISTS', KEYS[14]) == 1 then return {'EXISTS'} end
if unique and f.dev ~= '' then
  local p = string.format('%08x', #f.dev) .. f.dev
  if #redis.call('ZRANGE', K.dev, '[' .. p, '(' .. p .. '\255', 'BYLEX', 'LIMIT', 0, 1) > 0 then return {'EXISTS'} end
end
local connsAt = i
local n = tonumber(ARGV[i]); i = i + 1 + 2 * n
local m = tonumber(ARGV[i]); i = i + 1 + m
local k = tonumber(ARGV[i]); i = i + 1 + 2 * k
local ne = tonumber(ARGV[i]); i = i + 1
local ev = {}
for j = 1, ne do
  local want = ARGV[i]
  local e
  e, i = session(i + 1)
  ev[j] = {want=want, f=e}
end
local over = 0
if max > 0 then over = redis.call('ZCARD', K.live) - max + 1 end
if over > 0 then
  if not evict then return {'LIMIT'} end
  local oldest = redis.call('ZRANGE', K.live, 0, over - 1)
  local ok = #oldest == ne
  local olds = {}
  for j = 1, #oldest do
    oldest[j] = string.sub(oldest[j], 18) -- the id
    if ok and ev[j].f.id == oldest[j] then
      olds[j] = stored(KEYS[12 + 3 * j], oldest[j])
      ok = olds[j] ~= nil and olds[j].v == ev[j].want
    else
      ok = false
    end
  end
  if not ok then
    table.insert(oldest, 1, 'EVICT')
    return oldest
  end
  for j = 1, ne do
    write(KEYS[12 + 3 * j], olds[j], ev[j].f)
    dropAllConns(KEYS[13 + 3 * j], KEYS[12 + 3 * j])
    putRecord(KEYS[14 + 3 * j], KEYS[12 + 3 * j], ev[j].f.d)
  end
elseif ne > 0 then
  return {'EVICT'}
end
write(K.s, nil, f)
redis.call('ZADD', K.ids, 0, f.id)
redis.call('ZADD', K.subj, 0, f.id)
conns(K.c, true, connsAt)
putRecord(K.r, K.s, f.d)
local seq = events(maxlen, i)
return {'OK', seq}
`)

// deleteScript: ARGV = the stored version expected, the id, the subject
// (read before, which named KEYS).
var deleteScript = rueidis.NewLuaScript(luaCommon + `
local old = stored(K.s, ARGV[2])
if not old then return {'NOTFOUND'} end
if old.v ~= ARGV[1] or old.sub ~= ARGV[3] then return {'CONFLICT'} end
unindex(old)
dropAllConns(K.c, K.s)
redis.call('DEL', K.s, K.r)
redis.call('ZREM', K.due, old.id)
redis.call('ZREM', K.ids, old.id)
redis.call('ZREM', K.subj, old.id)
return {'OK'}
`)

// claimDueScript claims the due entries of one partition's deadline
// index: KEYS = the index; ARGV = now, the claim's end (scores in
// microseconds), the most to claim. It answers the score of the earliest
// entry left (empty for none), then each entry claimed as member and score.
var claimDueScript = rueidis.NewLuaScript(`
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]), 'WITHSCORES')
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[2], due[i]) end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = {first[2] or ''}
for i = 1, #due do out[#out + 1] = due[i] end
return out
`)

// rescheduleScript moves an entry of the deadline index if the session
// is at the version (and has the connection, for a connection's entry):
// KEYS = the session, its connections, the index; ARGV = version, member,
// score (empty removes it), 1 for a connection's entry.
var rescheduleScript = rueidis.NewLuaScript(`
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return {'CONFLICT'} end
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return {'NOTFOUND'} end
if ARGV[3] == '' then redis.call('ZREM', KEYS[3], ARGV[2]) else redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
return {'OK'}
`)

// claimScript reserves an id in its home partition for a session stored
// in another: KEYS = the id's session key and claim key there; ARGV = the
// claim's value. EXISTS if a session or a claim has the id.
var claimScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then return {'OK'} end
return {'EXISTS'}
`)

// releaseScript deletes a claim if it still holds the value: KEYS = the
// claim key; ARGV = the value.
var releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return {'OK'}
`)

// putLeaseScript: KEYS = the leases hash; ARGV = node, version, the
// version expected stored, record.
var putLeaseScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if cur then return {'EXISTS'} end
else
  if not cur then return {'NOTFOUND'} end
  if string.match(cur, '^(%d+)|') ~= ARGV[3] then return {'CONFLICT'} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[4])
return {'OK'}
`)

// deleteLeaseScript: KEYS = the leases hash; ARGV = node, version.
var deleteLeaseScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return {'NOTFOUND'} end
if string.match(cur, '^(%d+)|') ~= ARGV[2] then return {'CONFLICT'} end
redis.call('HDEL', KEYS[1], ARGV[1])
return {'OK'}
`)

// claimConsumerScript claims a consumer of the event log: KEYS = its
// hash; ARGV = owner, the cursor to record if it is new, now and the
// claim's end (Unix microseconds). CLAIMED, the holder and its claim's
// end while another owner's claim is live; else OK and the cursor.
var claimConsumerScript = rueidis.NewLuaScript(`
local cur = redis.call('HMGET', KEYS[1], 'owner', 'until', 'cursor')
if cur[1] and cur[1] ~= ARGV[1] and tonumber(cur[2]) > tonumber(ARGV[3]) then return {'CLAIMED', cur[1], cur[2]} end
local c = cur[3] or ARGV[2]
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[4], 'cursor', c)
return {'OK', c}
`)

// commitConsumerScript stores a consumer's cursor and extends its claim
// if owner holds it: KEYS = its hash; ARGV = owner, cursor, the claim's
// end (Unix microseconds). CLAIMED and the holder (” for none) if not.
var commitConsumerScript = rueidis.NewLuaScript(`
local cur = redis.call('HMGET', KEYS[1], 'owner', 'until')
if cur[1] ~= ARGV[1] then return {'CLAIMED', cur[1] or '', cur[2] or '0'} end
redis.call('HSET', KEYS[1], 'until', ARGV[3], 'cursor', ARGV[2])
return {'OK'}
`)
