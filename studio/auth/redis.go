package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/redis/go-redis/v9"
)

// Redis keeps keys, rates and quotas in Redis, shared by every API
// replica. Every key lives under Config.Prefix (one hash tag, one Cluster
// slot):
//
//	keys          HASH  key id → Key as JSON
//	tokens        HASH  token hash → key id
//	revoked       HASH  key id → revocation time (unix ms)
//	rate:<subj>   STRING  GCRA theoretical arrival time (unix µs)
//	active:<subj> ZSET  quota members (slot:… reservations and job ids) → expiry (unix ms)
type Redis struct {
	cfg Config
	c   *redis.Client
}

// OpenRedis connects to url (redis://host:port/db) and checks it answers.
func OpenRedis(ctx context.Context, url string, cfg Config) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("auth store: %w", err)
	}
	// As the queue's client: an unreachable server fails a call quickly,
	// and the pool size bounds the connections.
	queue.ClientDefaults(opts)
	r := &Redis{cfg: cfg.withDefaults(), c: redis.NewClient(opts)}
	if err := r.Ping(ctx); err != nil {
		r.c.Close()
		return nil, err
	}
	return r, nil
}

// Ping checks Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("auth store: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.c.Close() }

func (r *Redis) kKeys() string                 { return r.cfg.Prefix + "keys" }
func (r *Redis) kTokens() string               { return r.cfg.Prefix + "tokens" }
func (r *Redis) kRevoked() string              { return r.cfg.Prefix + "revoked" }
func (r *Redis) kRate(subject string) string   { return r.cfg.Prefix + "rate:" + subject }
func (r *Redis) kActive(subject string) string { return r.cfg.Prefix + "active:" + subject }

// Create stores a new key and returns it with its token, shown only now.
func (r *Redis) Create(ctx context.Context, n NewKey) (Key, string, error) {
	k, token, err := newKey(n, time.Now())
	if err != nil {
		return Key{}, "", err
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.kKeys(), k.ID, raw)
		p.HSet(ctx, r.kTokens(), k.Hash, k.ID)
		return nil
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, token, nil
}

// scriptLookup finds a key by token hash in one round trip.
// KEYS[1] tokens, KEYS[2] keys, KEYS[3] revoked; ARGV[1] token hash.
// Returns false, or {key JSON, revocation ms or false}.
var scriptLookup = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
local k = redis.call('HGET', KEYS[2], id)
if not k then return false end
return {k, redis.call('HGET', KEYS[3], id)}
`)

// Lookup finds the key of a token: ErrUnknownKey, or ErrRevoked with the key.
func (r *Redis) Lookup(ctx context.Context, token string) (Key, error) {
	if !WellFormed(token) {
		return Key{}, ErrUnknownKey
	}
	res, err := scriptLookup.Run(ctx, r.c, []string{r.kTokens(), r.kKeys(), r.kRevoked()}, HashToken(token)).Slice()
	if errors.Is(err, redis.Nil) {
		return Key{}, ErrUnknownKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("look up key: %w", err)
	}
	k, err := decodeKey(res[0], res[1])
	if err != nil {
		return Key{}, err
	}
	if !k.RevokedAt.IsZero() {
		return k, ErrRevoked
	}
	return k, nil
}

func decodeKey(raw, revoked any) (Key, error) {
	var k Key
	s, _ := raw.(string)
	if err := json.Unmarshal([]byte(s), &k); err != nil {
		return Key{}, fmt.Errorf("stored key: %w", err)
	}
	if rs, ok := revoked.(string); ok {
		ms, err := strconv.ParseInt(rs, 10, 64)
		if err != nil {
			return Key{}, fmt.Errorf("stored key %s: revocation time %q", k.ID, rs)
		}
		k.RevokedAt = time.UnixMilli(ms).UTC()
	}
	return k, nil
}

// scriptRevoke records the first revocation of an existing key.
// KEYS[1] keys, KEYS[2] revoked; ARGV[1] key id, ARGV[2] now (unix ms).
// Returns false for an unknown id, else {key JSON, revocation ms}.
var scriptRevoke = redis.NewScript(`
local k = redis.call('HGET', KEYS[1], ARGV[1])
if not k then return false end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
return {k, redis.call('HGET', KEYS[2], ARGV[1])}
`)

// Revoke marks a key revoked (once; later calls return it unchanged).
func (r *Redis) Revoke(ctx context.Context, id string) (Key, error) {
	res, err := scriptRevoke.Run(ctx, r.c, []string{r.kKeys(), r.kRevoked()}, id, time.Now().UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return Key{}, fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("revoke %q: %w", id, err)
	}
	return decodeKey(res[0], res[1])
}

// List returns every key, revoked ones included, oldest first.
func (r *Redis) List(ctx context.Context) ([]Key, error) {
	var keys, revoked *redis.MapStringStringCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		keys = p.HGetAll(ctx, r.kKeys())
		revoked = p.HGetAll(ctx, r.kRevoked())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	res := make([]Key, 0, len(keys.Val()))
	for id, raw := range keys.Val() {
		var rev any
		if v, ok := revoked.Val()[id]; ok {
			rev = v
		}
		k, err := decodeKey(raw, rev)
		if err != nil {
			return nil, err
		}
		res = append(res, k)
	}
	sortKeys(res)
	return res, nil
}

// scriptAllow is GCRA on the server's clock.
// KEYS[1] rate:<subject>; ARGV[1] interval (µs), ARGV[2] burst.
// Returns 0 when allowed, else the wait in µs.
var scriptAllow = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if now < allow_at then return allow_at - now end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return 0
`)

// Allow spends one request of subject's budget of rate per second with
// bursts of burst; it returns 0, or how long to wait when refused.
func (r *Redis) Allow(ctx context.Context, subject string, rate float64, burst int) (time.Duration, error) {
	if rate <= 0 {
		return 0, nil
	}
	interval := max(int64(1e6/rate), 1)
	wait, err := scriptAllow.Run(ctx, r.c, []string{r.kRate(subject)}, interval, max(burst, 1)).Int64()
	if err != nil {
		return 0, fmt.Errorf("rate limit: %w", err)
	}
	return time.Duration(wait) * time.Microsecond, nil
}

// scriptAcquire reserves a quota slot.
// KEYS[1] active:<subject>; ARGV[1] now (ms), ARGV[2] limit, ARGV[3] slot,
// ARGV[4] slot expiry (ms). Returns {1} when reserved, else {0, members...}.
var scriptAcquire = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local res = {0}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do table.insert(res, m) end
  return res
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return {1}
`)

// Acquire reserves one of subject's limit active-job slots; it fails with
// *QuotaError listing the jobs that hold them.
func (r *Redis) Acquire(ctx context.Context, subject string, limit int) (string, error) {
	slot, err := newSlot()
	if err != nil {
		return "", err
	}
	now := time.Now()
	res, err := scriptAcquire.Run(ctx, r.c, []string{r.kActive(subject)},
		now.UnixMilli(), limit, slot, now.Add(r.cfg.PendingTTL).UnixMilli()).Slice()
	if err != nil {
		return "", fmt.Errorf("acquire quota: %w", err)
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return slot, nil
	}
	qe := &QuotaError{Limit: limit}
	for _, m := range res[1:] {
		if s, _ := m.(string); s != "" && !isSlot(s) {
			qe.Jobs = append(qe.Jobs, s)
		}
	}
	return "", qe
}

func isSlot(m string) bool { return len(m) > len(slotPrefix) && m[:len(slotPrefix)] == slotPrefix }

// Bind turns a reserved slot into the job that took it.
func (r *Redis) Bind(ctx context.Context, subject, slot, jobID string) error {
	k := r.kActive(subject)
	exp := time.Now().Add(r.cfg.JobTTL)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, k, slot)
		p.ZAdd(ctx, k, redis.Z{Score: float64(exp.UnixMilli()), Member: jobID})
		p.ExpireAt(ctx, k, exp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("bind quota slot: %w", err)
	}
	return nil
}

// Active lists the jobs bound to subject that have not been released
// nor expired, oldest binding first (pending reservations are left out).
func (r *Redis) Active(ctx context.Context, subject string) ([]string, error) {
	members, err := r.c.ZRangeByScore(ctx, r.kActive(subject), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list active jobs: %w", err)
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		if !isSlot(m) {
			ids = append(ids, m)
		}
	}
	return ids, nil
}

// Release frees a slot or a finished job's place.
func (r *Redis) Release(ctx context.Context, subject, member string) error {
	if err := r.c.ZRem(ctx, r.kActive(subject), member).Err(); err != nil {
		return fmt.Errorf("release quota slot: %w", err)
	}
	return nil
}
