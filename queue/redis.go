package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Redis is the backend shared by API replicas and workers on many machines.
//
// Design (key layout in redis_keys.go, scripts in redis_scripts.go):
//
//   - A job is a hash; its results a second hash (index → PNG, index →
//     meta); its progress a per-job stream that Events tails (a stream, not
//     pub/sub, so that a subscriber that connects late, or reconnects after
//     a Redis restart, misses nothing).
//   - Fairness: queued jobs wait in per-client sub-queues (one list per lane
//     and client) and each lane keeps a round-robin list of the clients that
//     have queued jobs. Claim rotates that list, so inside a lane clients
//     take turns (A, B, C, A, B, A...) however many jobs each has queued;
//     the interactive lane is served strictly before batch.
//   - Leases: a claimed job is delivered through its lane's stream with
//     consumer group "workers": XADD then XREADGROUP puts the entry in the
//     worker's pending list, Extend resets its idle time (XCLAIM JUSTID),
//     and Claim takes over entries idle for longer than LeaseTTL
//     (XAUTOCLAIM). A lane stream holds only running deliveries; the entry
//     is acknowledged and deleted when the delivery ends. Choosing the job
//     at claim time, instead of XADDing at enqueue, is what lets the
//     round-robin order apply: a stream delivers its entries in order.
//   - Fencing: the job's attempts counter, bumped by every delivery inside
//     the Claim script, is the lease's token; every worker write checks it
//     inside its script.
//   - Blocking: Claim runs its script, and when nothing is there waits on
//     a wake-up list that Enqueue pushes to (BLPOP), at most PollInterval at
//     a time so that due retries and expired leases are seen too.
//
// With AOF on and appendfsync always, a job whose Enqueue returned survives
// a server crash. The client reconnects by itself; script calls are safe to
// repeat after a lost reply (see each script), so go-redis' retries and the
// callers' own retries cannot duplicate a job or a result.
type Redis struct {
	c   redis.UniversalClient
	cfg Config
	k   keys
	log *slog.Logger
	hub *eventHub // Events subscribers of this process
}

// ParseRedisURL checks a redis:// or rediss:// URL without connecting.
func ParseRedisURL(url string) error {
	_, err := redis.ParseURL(url)
	return err
}

// OpenRedis connects with the default Config and no logging.
func OpenRedis(ctx context.Context, url string) (*Redis, error) {
	return NewRedis(ctx, url, Config{}, slog.New(slog.DiscardHandler))
}

// NewRedis connects to the server at url (redis://[user:pass@]host:port/db),
// checks that it answers, and creates the lane streams' consumer group.
func NewRedis(ctx context.Context, url string, cfg Config, log *slog.Logger) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	cfg = cfg.withDefaults()
	k, err := newKeys(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	ClientDefaults(opts)
	r := &Redis{c: redis.NewClient(opts), cfg: cfg, k: k, log: log}
	r.hub = newEventHub(r)
	if err := r.Ping(ctx); err != nil {
		r.c.Close()
		return nil, err
	}
	for _, l := range Lanes() {
		err := r.c.XGroupCreateMkStream(ctx, k.stream(l), "workers", "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			r.c.Close()
			return nil, fmt.Errorf("create consumer group on %s: %w", k.stream(l), err)
		}
	}
	return r, nil
}

// ClientDefaults sets what the URL left unset:
//   - a client gives up on a server that refuses connections in well
//     under a second (2 dial attempts 50ms apart per try, instead of 5
//     100ms apart), so that an API answers 503 promptly during an outage
//     rather than holding requests for seconds (command retries,
//     MaxRetries, still ride out a dropped connection);
//   - the pool size is a bound: at most PoolSize connections
//     (MaxActiveConns), pipelines included (no separate pipeline pool),
//     so a process's Redis connections never outgrow the configured pool
//     (pool_size in the URL; default 10 per CPU). Callers beyond it wait
//     for a connection (PoolTimeout).
func ClientDefaults(opts *redis.Options) {
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 2
	}
	if opts.DialerRetryTimeout == 0 {
		opts.DialerRetryTimeout = 50 * time.Millisecond
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	if opts.MaxActiveConns == 0 {
		opts.MaxActiveConns = opts.PoolSize
	}
	if opts.PipelinePoolSize == 0 {
		opts.PipelinePoolSize = -1
	}
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", r.mapErr(err))
	}
	return nil
}

// Close ends event subscriptions and closes the connection pool; later
// calls fail with ErrClosed.
func (r *Redis) Close() error {
	r.hub.close()
	return r.c.Close()
}

// mapErr turns go-redis' closed-client error into ErrClosed, and marks
// the errors of an unreachable server with ErrUnavailable.
func (r *Redis) mapErr(err error) error {
	switch {
	case errors.Is(err, redis.ErrClosed):
		return ErrClosed
	case Unavailable(err) && !errors.Is(err, ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Enqueue adds a job, or returns the existing one for a repeated
// idempotency key (created=false).
func (r *Redis) Enqueue(ctx context.Context, n NewJob) (Job, bool, error) {
	n, err := n.validate()
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: job id: %w", err)
	}
	jk := r.k.job(id.String())
	idem, hasIdem := jk, "0"
	if n.IdempotencyKey != "" {
		idem, hasIdem = r.k.idempotency(n.Client, n.IdempotencyKey), "1"
	}
	res, err := scriptEnqueue.Run(ctx, r.c,
		[]string{jk, idem, r.k.waiting(n.Lane), r.k.clientQueue(n.Lane, n.Client), r.k.roundRobin(n.Lane)},
		r.k.p, id.String(), n.Client, string(n.Lane), n.Model, string(n.Spec), n.Total, r.cfg.MaxQueued, hasIdem,
	).Slice()
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: %w", r.mapErr(err))
	}
	switch status(res) {
	case "full":
		return Job{}, false, &FullError{Lane: n.Lane, RetryAfter: r.cfg.FullRetryAfter}
	case "created", "existing":
		j, err := parseJob(res[1])
		if err != nil {
			return Job{}, false, fmt.Errorf("enqueue: %w", err)
		}
		return j, status(res) == "created", nil
	}
	return Job{}, false, fmt.Errorf("enqueue: unexpected reply %v", res)
}

// Get returns the job with its results; ErrNotFound also for another
// client's job.
func (r *Redis) Get(ctx context.Context, client, id string) (Job, error) {
	if !validID(id) {
		return Job{}, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	var hj, hr *redis.MapStringStringCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hj = p.HGetAll(ctx, r.k.job(id))
		hr = p.HGetAll(ctx, r.k.results(id))
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, r.mapErr(err))
	}
	m := hj.Val()
	if len(m) == 0 || m["client"] != client {
		return Job{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	j, err := jobFromMap(m)
	if err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	j.Results, err = resultsFromMap(hr.Val())
	if err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	return j, nil
}

// GetMeta returns the job with the metadata of its stored results (no Data
// or Parts): those of indexes, or all when indexes is nil (NoResults:
// none). It reads the job hash and the m:<index> fields only.
func (r *Redis) GetMeta(ctx context.Context, client, id string, indexes []int) (Job, error) {
	if !validID(id) {
		return Job{}, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	var hj *redis.MapStringStringCmd
	var hm *redis.SliceCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		hj = p.HGetAll(ctx, r.k.job(id))
		if len(indexes) > 0 {
			hm = p.HMGet(ctx, r.k.results(id), metaFields(indexes)...)
		}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, r.mapErr(err))
	}
	m := hj.Val()
	if len(m) == 0 || m["client"] != client {
		return Job{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	j, err := jobFromMap(m)
	if err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	if indexes == nil && j.Done > 0 {
		indexes = make([]int, j.Total)
		for i := range indexes {
			indexes[i] = i
		}
		hm = r.c.HMGet(ctx, r.k.results(id), metaFields(indexes)...)
		if err := hm.Err(); err != nil {
			return Job{}, fmt.Errorf("get %s: %w", id, r.mapErr(err))
		}
	}
	if hm != nil {
		for k, v := range hm.Val() {
			if s, ok := v.(string); ok {
				j.Results = append(j.Results, Result{Index: indexes[k], Meta: json.RawMessage(s)})
			}
		}
	}
	return j, nil
}

func metaFields(indexes []int) []string {
	f := make([]string, len(indexes))
	for k, i := range indexes {
		f[k] = "m:" + strconv.Itoa(i)
	}
	return f
}

// jobStateFields are the job hash's fields but the spec (which may hold
// an uploaded image).
var jobStateFields = []string{"id", "client", "lane", "model", "total", "done", "state", "attempts",
	"worker", "error", "cancel", "created", "started", "finished"}

// GetBlob returns the job (without its Spec) and one stored part of result
// index: 0 its Data, k ≥ 1 Parts[k-1]; nil when that is not stored. It
// reads the job's state fields and that one field of the results hash.
func (r *Redis) GetBlob(ctx context.Context, client, id string, index, part int) (Job, []byte, error) {
	if !validID(id) {
		return Job{}, nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	field := "d:" + strconv.Itoa(index)
	if part > 0 {
		field = "p:" + strconv.Itoa(index) + ":" + strconv.Itoa(part)
	}
	var hj *redis.SliceCmd
	var blob *redis.StringCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		hj = p.HMGet(ctx, r.k.job(id), jobStateFields...)
		blob = p.HGet(ctx, r.k.results(id), field)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Job{}, nil, fmt.Errorf("get %s: %w", id, r.mapErr(err))
	}
	m := make(map[string]string, len(jobStateFields))
	for k, v := range hj.Val() {
		if s, ok := v.(string); ok {
			m[jobStateFields[k]] = s
		}
	}
	if len(m) == 0 || m["client"] != client {
		return Job{}, nil, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	j, err := jobFromMap(m)
	if err != nil {
		return Job{}, nil, fmt.Errorf("get %s: %w", id, err)
	}
	if part < 0 || blob.Err() != nil {
		return j, nil, nil
	}
	data, _ := blob.Bytes()
	return j, data, nil
}

// Cancel cancels a queued job at once, or asks the worker of a running job
// to stop. A finished job is returned unchanged.
func (r *Redis) Cancel(ctx context.Context, client, id string) (Job, error) {
	if !validID(id) {
		return Job{}, fmt.Errorf("cancel %q: %w", id, ErrNotFound)
	}
	res, err := scriptCancel.Run(ctx, r.c, []string{r.k.job(id)},
		r.k.p, client, id, ms(r.cfg.ResultTTL)).Slice()
	if err != nil {
		return Job{}, fmt.Errorf("cancel %s: %w", id, r.mapErr(err))
	}
	if status(res) == "notfound" {
		return Job{}, fmt.Errorf("cancel %s: %w", id, ErrNotFound)
	}
	j, err := parseJob(res[1])
	if err != nil {
		return Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	return j, nil
}

// Claim returns up to limit jobs for worker, waiting up to wait for the first.
// It returns no leases and no error when nothing came.
func (r *Redis) Claim(ctx context.Context, worker string, limit int, wait time.Duration) ([]Lease, error) {
	return r.ClaimCapped(ctx, worker, limit, wait, nil)
}

// ClaimCapped is Claim taking at most caps[lane] jobs from a lane (a lane
// not in caps: up to limit; 0: none), so that a worker claims no more
// jobs of a kind than it has free slots for.
func (r *Redis) ClaimCapped(ctx context.Context, worker string, limit int, wait time.Duration, caps map[Lane]int) ([]Lease, error) {
	if worker == "" || limit < 1 {
		return nil, fmt.Errorf("claim: %w", &InvalidError{Field: "worker", Reason: "worker name and max ≥ 1 required"})
	}
	deadline := time.Now().Add(wait)
	for {
		res, err := scriptClaim.Run(ctx, r.c,
			[]string{r.k.stream(Interactive), r.k.stream(Batch), r.k.delayed()},
			r.k.p, worker, limit, ms(r.cfg.LeaseTTL), r.cfg.MaxDeliveries, ms(r.cfg.ResultTTL), r.cfg.DeadLetterMax,
			ms(r.cfg.ConsumerIdle), laneCap(caps, Interactive, limit), laneCap(caps, Batch, limit),
		).Slice()
		if err != nil {
			return nil, fmt.Errorf("claim: %w", r.mapErr(err))
		}
		if len(res) > 0 {
			leases := make([]Lease, 0, len(res))
			for _, raw := range res {
				j, err := parseJob(raw)
				if err != nil {
					// The job is claimed but unreadable: its lease will expire
					// and the next claims fail it after MaxDeliveries.
					r.log.Error("claimed job unreadable", "err", err)
					continue
				}
				leases = append(leases, Lease{Job: j, Attempt: j.Attempts, Worker: worker})
			}
			return leases, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		// Sleep until an Enqueue pushes a wake-up token, or the poll interval
		// passes (due retries and expired leases push nothing).
		block := max(min(left, r.cfg.PollInterval, time.Second), 10*time.Millisecond)
		err = r.c.Do(ctx, "BLPOP", r.k.wake(), strconv.FormatFloat(block.Seconds(), 'f', 3, 64)).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("claim: %w", ctx.Err())
			}
			return nil, fmt.Errorf("claim: wait: %w", r.mapErr(err))
		}
	}
}

// fenceErr maps a worker script's status word to an error.
func fenceErr(op string, l Lease, st string) error {
	switch st {
	case "ok":
		return nil
	case "lost":
		return fmt.Errorf("%s %s attempt %d: %w", op, l.Job.ID, l.Attempt, ErrLeaseLost)
	case "cancelled":
		return fmt.Errorf("%s %s: %w", op, l.Job.ID, ErrCancelled)
	}
	return fmt.Errorf("%s %s: unexpected reply %q", op, l.Job.ID, st)
}

// Extend renews the lease (heartbeat). ErrCancelled still renews it, so
// that the worker can stop at its batch boundary and call Fail.
func (r *Redis) Extend(ctx context.Context, l Lease) error {
	res, err := scriptExtend.Run(ctx, r.c, []string{r.k.job(l.Job.ID)}, r.k.p, l.Attempt).Slice()
	if err != nil {
		return fmt.Errorf("extend %s: %w", l.Job.ID, r.mapErr(err))
	}
	return fenceErr("extend", l, status(res))
}

// PutResult stores the result of one index for the lease's attempt.
func (r *Redis) PutResult(ctx context.Context, l Lease, res Result) error {
	if err := validateResult(l, res); err != nil {
		return fmt.Errorf("put result %s: %w", l.Job.ID, err)
	}
	args := make([]any, 0, 7+len(res.Parts))
	args = append(args, r.k.p, l.Attempt, l.Job.ID, res.Index, res.Data, string(res.Meta), len(res.Parts))
	for _, p := range res.Parts {
		args = append(args, p)
	}
	reply, err := scriptPutResult.Run(ctx, r.c, []string{r.k.job(l.Job.ID), r.k.results(l.Job.ID)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("put result %s[%d]: %w", l.Job.ID, res.Index, r.mapErr(err))
	}
	if status(reply) == "invalid" {
		return fmt.Errorf("put result %s: %w", l.Job.ID, &InvalidError{Field: "index", Reason: "out of range"})
	}
	return fenceErr("put result", l, status(reply))
}

// Ack marks the job succeeded; it needs a result for every index.
func (r *Redis) Ack(ctx context.Context, l Lease) error {
	res, err := scriptAck.Run(ctx, r.c, []string{r.k.job(l.Job.ID)},
		r.k.p, l.Attempt, l.Job.ID, ms(r.cfg.ResultTTL)).Slice()
	if err != nil {
		return fmt.Errorf("ack %s: %w", l.Job.ID, r.mapErr(err))
	}
	if status(res) == "incomplete" {
		return fmt.Errorf("ack %s: %w", l.Job.ID,
			&InvalidError{Field: "results", Reason: fmt.Sprintf("%v of %v stored", res[1], res[2])})
	}
	return fenceErr("ack", l, status(res))
}

// Fail ends the lease's delivery: retried after backoff when retryable and
// deliveries remain, cancelled when the client asked, otherwise failed and
// dead-lettered with cause.
func (r *Redis) Fail(ctx context.Context, l Lease, cause error, retryable bool) error {
	retry := "0"
	if retryable {
		retry = "1"
	}
	res, err := scriptFail.Run(ctx, r.c, []string{r.k.job(l.Job.ID), r.k.delayed()},
		r.k.p, l.Attempt, l.Job.ID, causeText(cause), retry, r.cfg.MaxDeliveries,
		ms(r.cfg.RetryBackoff.Delay(l.Attempt)), ms(r.cfg.ResultTTL), r.cfg.DeadLetterMax).Slice()
	if err != nil {
		return fmt.Errorf("fail %s: %w", l.Job.ID, r.mapErr(err))
	}
	switch st := status(res); st {
	case "retry", "cancelled", "failed":
		return nil
	default:
		return fenceErr("fail", l, st)
	}
}

// Stats reads the queue gauges.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	v, err := scriptStats.Run(ctx, r.c, []string{
		r.k.waiting(Interactive), r.k.waiting(Batch), r.k.stream(Interactive), r.k.stream(Batch), r.k.dead(),
		r.k.finished(Succeeded), r.k.finished(Failed), r.k.finished(Cancelled),
	}, r.k.p, ms(r.cfg.ResultTTL)).Int64Slice()
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", r.mapErr(err))
	}
	if len(v) != 11 {
		return Stats{}, fmt.Errorf("stats: unexpected reply %v", v)
	}
	now := v[6]
	age := func(oldest int64) time.Duration {
		if oldest < 0 {
			return 0
		}
		return time.Duration(now-oldest) * time.Millisecond
	}
	s := Stats{
		Depth:       map[Lane]int{Interactive: int(v[0]), Batch: int(v[1])},
		OldestAge:   map[Lane]time.Duration{Interactive: age(v[2]), Batch: age(v[3])},
		Running:     map[Lane]int{Interactive: int(v[4]), Batch: int(v[5])},
		DeadLetters: int(v[10]),
	}
	s.ByState = map[State]int{
		Queued: int(v[0] + v[1]), Running: int(v[4] + v[5]),
		Succeeded: int(v[7]), Failed: int(v[8]), Cancelled: int(v[9]),
	}
	return s, nil
}

// status is the first element of a script reply.
func status(res []any) string {
	if len(res) == 0 {
		return ""
	}
	s, _ := res[0].(string)
	return s
}

// parseJob reads a flat HGETALL reply from a script.
func parseJob(raw any) (Job, error) {
	flat, ok := raw.([]any)
	if !ok || len(flat)%2 != 0 {
		return Job{}, fmt.Errorf("job hash: unexpected reply %T", raw)
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return jobFromMap(m)
}

// jobFromMap converts a job hash.
func jobFromMap(m map[string]string) (Job, error) {
	var err error
	num := func(field string) int {
		n, e := strconv.Atoi(m[field])
		if e != nil && err == nil {
			err = fmt.Errorf("job hash field %s: %w", field, e)
		}
		return n
	}
	at := func(field string) time.Time {
		n := num(field)
		if n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(int64(n))
	}
	j := Job{
		ID: m["id"], Client: m["client"], Lane: Lane(m["lane"]), Model: m["model"],
		Total: num("total"), Done: num("done"), State: State(m["state"]), Attempts: num("attempts"),
		Worker: m["worker"], Error: m["error"], CancelRequested: m["cancel"] == "1",
		CreatedAt: at("created"), StartedAt: at("started"), FinishedAt: at("finished"),
	}
	if s := m["spec"]; s != "" {
		j.Spec = []byte(s)
	}
	return j, err
}

// resultsFromMap converts a results hash (d:<i> data, m:<i> meta, p:<i>:<k>
// parts), by index.
func resultsFromMap(m map[string]string) ([]Result, error) {
	var out []Result
	for f, v := range m {
		rest, ok := strings.CutPrefix(f, "d:")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil {
			return nil, fmt.Errorf("results field %q: %w", f, err)
		}
		r := Result{Index: i, Data: []byte(v)}
		if meta := m["m:"+rest]; meta != "" {
			r.Meta = []byte(meta)
		}
		for k := 1; ; k++ {
			p, ok := m["p:"+rest+":"+strconv.Itoa(k)]
			if !ok {
				break
			}
			r.Parts = append(r.Parts, []byte(p))
		}
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}

// eventFromMessage converts one event stream entry.
func eventFromMessage(id string, v map[string]any) Event {
	str := func(k string) string { s, _ := v[k].(string); return s }
	num := func(k string) int { n, _ := strconv.Atoi(str(k)); return n }
	return Event{
		JobID: id, Type: str("type"), Done: num("done"), Total: num("total"), Index: num("index"),
		Error: str("error"), At: time.UnixMilli(int64(num("at"))),
	}
}
