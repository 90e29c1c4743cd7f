package queue

import "github.com/redis/go-redis/v9"

// Every multi-key state change is one of the Lua scripts below: Redis runs a
// script atomically, and with `appendfsync always` its effects reach the AOF
// before the caller gets the reply.
//
// Conventions shared by all scripts:
//   - ARGV[1] is the key prefix. KEYS name the keys a script is about (and
//     route it in Redis Cluster); keys it discovers while running (another
//     job's hash, a client's sub-queue) are built from ARGV[1] by the helpers
//     in luaLib, mirroring keys in redis_keys.go. They all carry the prefix's
//     hash tag, so they live in the same slot as KEYS[1].
//   - Time is the server's (TIME), so workers on machines with skewed clocks
//     agree on leases, backoff and expiry. Times are Unix milliseconds.
//   - Fencing: a lease is valid while the job hash says state=running and
//     attempts=<the lease's attempt>. Claim increments attempts on every
//     delivery, so a stale attempt can never pass the check again.
//   - A script validates everything before its first write: Redis does not
//     roll back a script that fails half-way.
//   - Replies are arrays whose first element is a status word: ok, created,
//     existing, full, lost, cancelled, incomplete, invalid, notfound, retry.
//
// Job hash fields: id client lane model spec total done state attempts
// worker error cancel(0|1) created started finished idem(key name or "")
// eid(stream entry id of the current delivery, or "").

// luaLib is prepended to every script.
const luaLib = `
local P = ARGV[1]
local GROUP = 'workers'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function k_job(id) return P .. 'job:' .. id end
local function k_res(id) return P .. 'job:' .. id .. ':res' end
local function k_ev(id) return P .. 'job:' .. id .. ':ev' end
local function k_stream(lane) return P .. 'lane:' .. lane end
local function k_waiting(lane) return P .. 'waiting:' .. lane end
local function k_rr(lane) return P .. 'rr:' .. lane end
local function k_cq(lane, client) return P .. 'cq:' .. lane .. ':' .. client end
local function k_done(state) return P .. 'done:' .. state end
local K_DELAYED = P .. 'delayed'
local K_DEAD = P .. 'dead'
local K_WAKE = P .. 'wake'

-- emit appends one event to the job's event stream.
local function emit(id, typ, now, done, total, index, err)
  redis.call('XADD', k_ev(id), 'MAXLEN', '~', 1000, '*',
    'type', typ, 'done', done, 'total', total, 'index', index, 'error', err or '', 'at', now)
end

-- release removes the job's current delivery from its lane stream (and the
-- consumer group's pending list).
local function release(id)
  local jk = k_job(id)
  local j = redis.call('HMGET', jk, 'lane', 'eid')
  if j[2] and j[2] ~= '' then
    redis.call('XACK', k_stream(j[1]), GROUP, j[2])
    redis.call('XDEL', k_stream(j[1]), j[2])
    redis.call('HSET', jk, 'eid', '')
  end
end

-- finish moves a job to a terminal state, emits the event and sets the
-- expiry of everything the job owns.
local function finish(id, state, err, now, ttl)
  local jk = k_job(id)
  release(id)
  redis.call('HSET', jk, 'state', state, 'finished', now)
  if err and err ~= '' then redis.call('HSET', jk, 'error', err) end
  local j = redis.call('HMGET', jk, 'done', 'total', 'idem')
  emit(id, state, now, j[1], j[2], 0, err)
  redis.call('ZADD', k_done(state), now, id)
  redis.call('ZREMRANGEBYSCORE', k_done(state), '-inf', now - ttl)
  redis.call('PEXPIRE', jk, ttl)
  redis.call('PEXPIRE', k_res(id), ttl)
  redis.call('PEXPIRE', k_ev(id), ttl)
  if j[3] and j[3] ~= '' then redis.call('PEXPIRE', j[3], ttl) end
end

-- deadletter records a job that failed for good.
local function deadletter(id, err, now, cap)
  local j = redis.call('HMGET', k_job(id), 'client', 'lane', 'model', 'attempts')
  redis.call('XADD', K_DEAD, 'MAXLEN', '~', cap, '*', 'job', id, 'client', j[1],
    'lane', j[2], 'model', j[3], 'attempts', j[4], 'error', err, 'at', now)
end

-- fenced reports whether the job is running under this attempt.
local function fenced(jk, attempt)
  local j = redis.call('HMGET', jk, 'state', 'attempts')
  return j[1] == 'running' and j[2] == attempt
end

-- touch resets the idle time of the job's delivery: the lease heartbeat.
local function touch(jk)
  local j = redis.call('HMGET', jk, 'lane', 'eid', 'worker')
  redis.call('XCLAIM', k_stream(j[1]), GROUP, j[3], 0, j[2], 'JUSTID')
end
`

func newScript(body string) *redis.Script { return redis.NewScript(luaLib + body) }

// scriptEnqueue creates a job.
//
//	KEYS[1] job hash of the new id   KEYS[2] idempotency key (KEYS[1] again when none)
//	KEYS[3] waiting zset of the lane KEYS[4] the client's sub-queue in the lane
//	KEYS[5] round-robin list of the lane
//	ARGV[2] id  ARGV[3] client  ARGV[4] lane  ARGV[5] model  ARGV[6] spec
//	ARGV[7] total  ARGV[8] max queued in the lane  ARGV[9] 1 when KEYS[2] is an idempotency key
//
// Replies {created, job} | {existing, job} | {full}. A replay of the same
// call (a client retry after a lost reply) finds its own id and answers
// created again, so a retried Enqueue never makes two jobs.
var scriptEnqueue = newScript(`
local jk, wk, cq, rr = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local idem = ''
if ARGV[9] == '1' then idem = KEYS[2] end
local id, client, lane, total = ARGV[2], ARGV[3], ARGV[4], ARGV[7]
if redis.call('EXISTS', jk) == 1 then
  return {'created', redis.call('HGETALL', jk)}
end
if idem ~= '' then
  local prev = redis.call('GET', idem)
  if prev and redis.call('EXISTS', k_job(prev)) == 1 then
    return {'existing', redis.call('HGETALL', k_job(prev))}
  end
end
if redis.call('ZCARD', wk) >= tonumber(ARGV[8]) then
  return {'full'}
end
local now = now_ms()
redis.call('HSET', jk, 'id', id, 'client', client, 'lane', lane, 'model', ARGV[5],
  'spec', ARGV[6], 'total', total, 'done', 0, 'state', 'queued', 'attempts', 0,
  'worker', '', 'error', '', 'cancel', 0, 'created', now, 'started', 0, 'finished', 0,
  'idem', idem, 'eid', '')
if redis.call('RPUSH', cq, id) == 1 then redis.call('RPUSH', rr, client) end
redis.call('ZADD', wk, now, id)
if idem ~= '' then redis.call('SET', idem, id) end
emit(id, 'queued', now, 0, total, 0, '')
redis.call('RPUSH', K_WAKE, 1)
redis.call('LTRIM', K_WAKE, -64, -1)
return {'created', redis.call('HGETALL', jk)}
`)

// scriptClaim hands up to max jobs to one worker.
//
//	KEYS[1] lane stream interactive  KEYS[2] lane stream batch  KEYS[3] delayed zset
//	ARGV[2] worker  ARGV[3] max  ARGV[4] lease TTL ms  ARGV[5] max deliveries
//	ARGV[6] result TTL ms  ARGV[7] dead-letter cap  ARGV[8] consumer idle ms before removal
//	ARGV[9] most jobs from the interactive lane  ARGV[10] most jobs from the batch lane
//
// Steps: (0) at most once per ARGV[8] ms (key <p>gc), idle consumers with
// no pending delivery leave the group; (1) retries whose backoff is over go back to the head of their
// client's sub-queue; (2) for each lane, interactive first: (a) take over
// deliveries idle for longer than the lease TTL (XAUTOCLAIM), attempt+1,
// after a retrying event that names the silent worker, or fail them when they ran out of deliveries, or cancel them when a
// cancel was requested; (b) take fresh jobs round-robin across the lane's
// clients (LMOVE rotates the client list) and deliver each through the
// lane stream (XADD, then XREADGROUP puts it in the worker's pending list).
// Replies {job, job, ...}, each a flat HGETALL.
var scriptClaim = newScript(`
local worker, max = ARGV[2], tonumber(ARGV[3])
local lease, maxdel, ttl, deadcap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local gcidle = tonumber(ARGV[8])
local lanemax = {tonumber(ARGV[9]), tonumber(ARGV[10])}
local now = now_ms()

-- At most once per gcidle: remove the consumers that hold no delivery and
-- were idle for longer than gcidle (workers that exited or were killed;
-- a live worker's consumer comes back at its next claim).
if redis.call('SET', P .. 'gc', now, 'NX', 'PX', gcidle) then
  for li = 1, 2 do
    if redis.call('EXISTS', KEYS[li]) == 1 then
      for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[li], GROUP)) do
        local f = {}
        for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
        if tonumber(f['pending']) == 0 and tonumber(f['idle']) > gcidle then
          redis.call('XGROUP', 'DELCONSUMER', KEYS[li], GROUP, f['name'])
        end
      end
    end
  end
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[3], id)
  local j = redis.call('HMGET', k_job(id), 'lane', 'client', 'state')
  if j[3] == 'queued' then
    if redis.call('LPUSH', k_cq(j[1], j[2]), id) == 1 then redis.call('RPUSH', k_rr(j[1]), j[2]) end
  end
end

local out = {}
local function start(id, eid)
  local jk = k_job(id)
  redis.call('HINCRBY', jk, 'attempts', 1)
  redis.call('HSET', jk, 'state', 'running', 'worker', worker, 'started', now, 'eid', eid)
  local j = redis.call('HMGET', jk, 'done', 'total')
  emit(id, 'started', now, j[1], j[2], 0, '')
  out[#out + 1] = redis.call('HGETALL', jk)
end

for li, lane in ipairs({'interactive', 'batch'}) do
  if #out >= max then break end
  -- This lane may fill up to cap: max overall, lanemax[li] from it.
  local cap = math.min(max, #out + lanemax[li])
  local s = KEYS[li]
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
  end

  -- Follow the cursor (a bounded number of pages): live leases early in
  -- the pending list must not hide an expired one behind them.
  local cursor, pages = '0-0', 0
  repeat
    if #out >= cap then break end
    local r = redis.call('XAUTOCLAIM', s, GROUP, worker, lease, cursor, 'COUNT', cap - #out)
    cursor, pages = r[1], pages + 1
    for _, e in ipairs(r[2]) do
      local eid, id = e[1], e[2][2]
      local j = redis.call('HMGET', k_job(id), 'state', 'eid', 'cancel', 'attempts', 'worker')
      if j[1] ~= 'running' or j[2] ~= eid then
        redis.call('XACK', s, GROUP, eid)
        redis.call('XDEL', s, eid)
      elseif j[3] == '1' then
        finish(id, 'cancelled', '', now, ttl)
      elseif tonumber(j[4]) >= maxdel then
        local err = 'lease expired: worker ' .. j[5] .. ' stopped heartbeating (delivery ' .. j[4] .. ' of ' .. maxdel .. ')'
        finish(id, 'failed', err, now, ttl)
        deadletter(id, err, now, deadcap)
      else
        -- Tell the job's watchers why it starts again.
        local err = 'lease expired: worker ' .. j[5] .. ' stopped heartbeating; delivery ' ..
          (tonumber(j[4]) + 1) .. ' of ' .. maxdel .. ' follows'
        redis.call('HSET', k_job(id), 'error', err)
        local d = redis.call('HMGET', k_job(id), 'done', 'total')
        emit(id, 'retrying', now, d[1], d[2], 0, err)
        start(id, eid)
      end
    end
  until cursor == '0-0' or #out >= cap or pages >= 10

  local rr, wk = k_rr(lane), k_waiting(lane)
  while #out < cap do
    local client = redis.call('LMOVE', rr, rr, 'LEFT', 'RIGHT')
    if not client then break end
    local cq = k_cq(lane, client)
    local id = redis.call('LPOP', cq)
    if redis.call('LLEN', cq) == 0 then redis.call('LREM', rr, -1, client) end
    if id and redis.call('HGET', k_job(id), 'state') == 'queued' then
      redis.call('ZREM', wk, id)
      local eid = redis.call('XADD', s, '*', 'job', id)
      redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', 1, 'STREAMS', s, '>')
      start(id, eid)
    end
  end
end
return out
`)

// scriptExtend is the heartbeat: it resets the idle time of the job's
// delivery so that no other worker's XAUTOCLAIM takes it.
//
//	KEYS[1] job hash   ARGV[2] attempt
//
// Replies {ok} | {cancelled} (lease extended; the client asked to stop) | {lost}.
var scriptExtend = newScript(`
local jk = KEYS[1]
if not fenced(jk, ARGV[2]) then return {'lost'} end
touch(jk)
if redis.call('HGET', jk, 'cancel') == '1' then return {'cancelled'} end
return {'ok'}
`)

// scriptPutResult stores the result of one index, once.
//
//	KEYS[1] job hash  KEYS[2] results hash
//	ARGV[2] attempt  ARGV[3] job id  ARGV[4] index  ARGV[5] data  ARGV[6] meta
//	ARGV[7] number of parts  ARGV[8...] the parts (fields p:<index>:<k>, k from 1)
//
// A write from a stale attempt is rejected; an index already stored (by
// this attempt's retry or by an earlier attempt that still held the lease)
// keeps its first value, so a client never sees a result change or repeat.
// A new index bumps done and emits a result event. It also counts as a
// heartbeat. Replies {ok, done} | {lost} | {cancelled} | {invalid}.
var scriptPutResult = newScript(`
local jk, rk = KEYS[1], KEYS[2]
if not fenced(jk, ARGV[2]) then return {'lost'} end
if redis.call('HGET', jk, 'cancel') == '1' then return {'cancelled'} end
local idx, total = tonumber(ARGV[4]), tonumber(redis.call('HGET', jk, 'total'))
if idx < 0 or idx >= total then return {'invalid'} end
touch(jk)
if redis.call('HSETNX', rk, 'd:' .. ARGV[4], ARGV[5]) == 0 then
  return {'ok', redis.call('HGET', jk, 'done')}
end
redis.call('HSET', rk, 'm:' .. ARGV[4], ARGV[6])
for k = 1, tonumber(ARGV[7]) do
  redis.call('HSET', rk, 'p:' .. ARGV[4] .. ':' .. k, ARGV[7 + k])
end
local done = redis.call('HINCRBY', jk, 'done', 1)
emit(ARGV[3], 'result', now_ms(), done, total, idx, '')
return {'ok', done}
`)

// scriptAck marks a job succeeded once every index has a result.
//
//	KEYS[1] job hash  ARGV[2] attempt  ARGV[3] job id  ARGV[4] result TTL ms
//
// Replies {ok} (also for a repeated ack of the same attempt) | {lost} |
// {incomplete, done, total}.
var scriptAck = newScript(`
local jk = KEYS[1]
local j = redis.call('HMGET', jk, 'state', 'attempts', 'done', 'total')
if j[1] == 'succeeded' and j[2] == ARGV[2] then return {'ok'} end
if j[1] ~= 'running' or j[2] ~= ARGV[2] then return {'lost'} end
if tonumber(j[3]) < tonumber(j[4]) then return {'incomplete', j[3], j[4]} end
finish(ARGV[3], 'succeeded', '', now_ms(), tonumber(ARGV[4]))
return {'ok'}
`)

// scriptFail ends a delivery that failed.
//
//	KEYS[1] job hash  KEYS[2] delayed zset
//	ARGV[2] attempt  ARGV[3] job id  ARGV[4] error text  ARGV[5] retryable (1|0)
//	ARGV[6] max deliveries  ARGV[7] backoff ms  ARGV[8] result TTL ms
//	ARGV[9] dead-letter cap
//
// A job whose cancel was requested becomes cancelled. Otherwise a retryable
// failure with deliveries left is queued again (state queued, due after the
// backoff, its attempts and error kept); anything else fails the job and
// adds a dead letter. Replies {ok} | {retry} | {cancelled} | {failed} |
// {lost}; a repeated call for the same attempt replies {ok}.
var scriptFail = newScript(`
local jk, id = KEYS[1], ARGV[3]
local j = redis.call('HMGET', jk, 'state', 'attempts', 'cancel', 'lane', 'created')
if j[2] == ARGV[2] and (j[1] == 'queued' or j[1] == 'failed' or j[1] == 'cancelled') then
  return {'ok'}
end
if j[1] ~= 'running' or j[2] ~= ARGV[2] then return {'lost'} end
local now, ttl = now_ms(), tonumber(ARGV[8])
if j[3] == '1' then
  finish(id, 'cancelled', '', now, ttl)
  return {'cancelled'}
end
if ARGV[5] == '1' and tonumber(j[2]) < tonumber(ARGV[6]) then
  release(id)
  redis.call('HSET', jk, 'state', 'queued', 'worker', '', 'error', ARGV[4])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), id)
  redis.call('ZADD', k_waiting(j[4]), j[5], id)
  local d = redis.call('HMGET', jk, 'done', 'total')
  emit(id, 'retrying', now, d[1], d[2], 0, ARGV[4])
  return {'retry'}
end
finish(id, 'failed', ARGV[4], now, ttl)
deadletter(id, ARGV[4], now, tonumber(ARGV[9]))
return {'failed'}
`)

// scriptCancel cancels a job for its client.
//
//	KEYS[1] job hash  ARGV[2] client  ARGV[3] job id  ARGV[4] result TTL ms
//
// queued → cancelled at once (removed from its sub-queue, the round-robin
// list when that empties, the waiting and delayed sets); running → cancel
// requested (the worker learns it at its next Extend or PutResult, and a
// job whose worker died is cancelled when its lease is taken over);
// finished → unchanged. Replies {ok, job} | {notfound}.
var scriptCancel = newScript(`
local jk, id = KEYS[1], ARGV[3]
local j = redis.call('HMGET', jk, 'client', 'state', 'lane')
if j[1] ~= ARGV[2] then return {'notfound'} end
if j[2] == 'queued' then
  local cq = k_cq(j[3], j[1])
  redis.call('LREM', cq, 1, id)
  if redis.call('LLEN', cq) == 0 then redis.call('LREM', k_rr(j[3]), 0, j[1]) end
  redis.call('ZREM', k_waiting(j[3]), id)
  redis.call('ZREM', K_DELAYED, id)
  finish(id, 'cancelled', '', now_ms(), tonumber(ARGV[4]))
elseif j[2] == 'running' then
  redis.call('HSET', jk, 'cancel', 1)
end
return {'ok', redis.call('HGETALL', jk)}
`)

// scriptStats reads the gauges at one instant of server time.
//
//	KEYS[1] waiting interactive  KEYS[2] waiting batch
//	KEYS[3] lane stream interactive  KEYS[4] lane stream batch
//	KEYS[5] dead-letter stream  KEYS[6..8] finished sets: succeeded, failed, cancelled
//	ARGV[2] result TTL ms
//
// Replies {depth_i, depth_b, oldest_created_i, oldest_created_b, running_i,
// running_b, now, succeeded, failed, cancelled, dead} (oldest is -1 when
// the lane is empty). It writes nothing.
var scriptStats = newScript(`
local now, ttl = now_ms(), tonumber(ARGV[2])
local function oldest(k)
  local o = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if #o == 0 then return -1 end
  return tonumber(o[2])
end
local function finished(k)
  return redis.call('ZCOUNT', k, '(' .. (now - ttl), '+inf')
end
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
  oldest(KEYS[1]), oldest(KEYS[2]), redis.call('XLEN', KEYS[3]), redis.call('XLEN', KEYS[4]),
  now, finished(KEYS[6]), finished(KEYS[7]), finished(KEYS[8]), redis.call('XLEN', KEYS[5])}
`)
