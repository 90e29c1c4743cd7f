package queue

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Embedded is the in-process backend used by `studio serve` without Redis:
// API and worker share it inside one process. It keeps the Redis backend's
// semantics (the same contract tests run against both) with the same
// structures in memory: per-client sub-queues with a round-robin client
// list per lane, leases with deadlines, attempts as fencing tokens. Nothing
// survives the process.
type Embedded struct {
	cfg Config

	mu       sync.Mutex
	closed   bool
	done     chan struct{} // closed by Close: ends Events subscribers
	wake     chan struct{} // closed and replaced when a job becomes claimable
	jobs     map[string]*ejob
	idem     map[idemKey]string
	lanes    map[Lane]*elane
	delayed  map[string]*ejob // queued, waiting out a retry backoff
	running  map[string]*ejob
	finished []*ejob // in finish order, for expiry after ResultTTL
	dead     int
}

type idemKey struct{ client, key string }

// elane holds the queued jobs of one lane.
type elane struct {
	rr     []string           // clients with queued jobs, round-robin order
	queues map[string][]*ejob // per-client FIFO
	queued int                // queued jobs, including those in backoff
}

type ejob struct {
	job        Job // Results stay nil here
	results    map[int]Result
	events     []Event
	changed    chan struct{} // closed and replaced on each event
	idem       *idemKey
	readyAt    time.Time // retry due time
	leaseUntil time.Time
}

// NewEmbedded makes an empty embedded queue with the default Config.
func NewEmbedded() *Embedded { return NewEmbeddedConfig(Config{}) }

// NewEmbeddedConfig makes an empty embedded queue; Prefix is unused.
func NewEmbeddedConfig(cfg Config) *Embedded {
	return &Embedded{
		cfg:     cfg.withDefaults(),
		done:    make(chan struct{}),
		wake:    make(chan struct{}),
		jobs:    map[string]*ejob{},
		idem:    map[idemKey]string{},
		lanes:   map[Lane]*elane{Interactive: {queues: map[string][]*ejob{}}, Batch: {queues: map[string][]*ejob{}}},
		delayed: map[string]*ejob{},
		running: map[string]*ejob{},
	}
}

// Ping reports whether the queue accepts work.
func (e *Embedded) Ping(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Close stops the queue; later calls fail with ErrClosed.
func (e *Embedded) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
	return nil
}

// now is wall-clock time at the Redis backend's precision.
func now() time.Time { return time.Now().Truncate(time.Millisecond) }

// lock takes the mutex, fails after Close, and drops expired jobs.
func (e *Embedded) lock(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return time.Time{}, ErrClosed
	}
	t := now()
	for len(e.finished) > 0 && !e.finished[0].job.FinishedAt.Add(e.cfg.ResultTTL).After(t) {
		j := e.finished[0]
		e.finished = e.finished[1:]
		delete(e.jobs, j.job.ID)
		if j.idem != nil && e.idem[*j.idem] == j.job.ID {
			delete(e.idem, *j.idem)
		}
	}
	return t, nil
}

func (e *Embedded) signal() {
	close(e.wake)
	e.wake = make(chan struct{})
}

func (j *ejob) emit(typ string, at time.Time, index int, errText string) {
	j.events = append(j.events, Event{
		JobID: j.job.ID, Type: typ, Done: j.job.Done, Total: j.job.Total, Index: index, Error: errText, At: at,
	})
	close(j.changed)
	j.changed = make(chan struct{})
}

// Enqueue adds a job, or returns the existing one for a repeated
// idempotency key (created=false).
func (e *Embedded) Enqueue(ctx context.Context, n NewJob) (Job, bool, error) {
	n, err := n.validate()
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: job id: %w", err)
	}
	t, err := e.lock(ctx)
	if err != nil {
		return Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	defer e.mu.Unlock()
	var ik *idemKey
	if n.IdempotencyKey != "" {
		ik = &idemKey{n.Client, n.IdempotencyKey}
		if prev, ok := e.jobs[e.idem[*ik]]; ok {
			return prev.job, false, nil
		}
	}
	l := e.lanes[n.Lane]
	if l.queued >= e.cfg.MaxQueued {
		return Job{}, false, &FullError{Lane: n.Lane, RetryAfter: e.cfg.FullRetryAfter}
	}
	j := &ejob{
		job: Job{
			ID: id.String(), Client: n.Client, Lane: n.Lane, Model: n.Model, Spec: bytes.Clone(n.Spec),
			Total: n.Total, State: Queued, CreatedAt: t,
		},
		results: map[int]Result{},
		changed: make(chan struct{}),
		idem:    ik,
	}
	e.jobs[j.job.ID] = j
	if ik != nil {
		e.idem[*ik] = j.job.ID
	}
	l.push(j, false)
	l.queued++
	j.emit(EventQueued, t, 0, "")
	e.signal()
	return j.job, true, nil
}

// push adds a job to its client's sub-queue (at the front for a retry).
func (l *elane) push(j *ejob, front bool) {
	q := l.queues[j.job.Client]
	if len(q) == 0 {
		l.rr = append(l.rr, j.job.Client)
	}
	if front {
		q = append([]*ejob{j}, q...)
	} else {
		q = append(q, j)
	}
	l.queues[j.job.Client] = q
}

// remove takes a queued job out of its client's sub-queue.
func (l *elane) remove(j *ejob) {
	c := j.job.Client
	q := slices.DeleteFunc(l.queues[c], func(x *ejob) bool { return x == j })
	if len(q) == 0 {
		delete(l.queues, c)
		l.rr = slices.DeleteFunc(l.rr, func(x string) bool { return x == c })
		return
	}
	l.queues[c] = q
}

// next pops the head job of the next client in round-robin order.
func (l *elane) next() *ejob {
	if len(l.rr) == 0 {
		return nil
	}
	c := l.rr[0]
	l.rr = l.rr[1:]
	q := l.queues[c]
	j := q[0]
	if len(q) > 1 {
		l.queues[c] = q[1:]
		l.rr = append(l.rr, c)
	} else {
		delete(l.queues, c)
	}
	return j
}

func (e *Embedded) owned(client, id string) (*ejob, bool) {
	j, ok := e.jobs[id]
	if !ok || j.job.Client != client {
		return nil, false
	}
	return j, true
}

// Get returns the job with its results; ErrNotFound also for another
// client's job.
func (e *Embedded) Get(ctx context.Context, client, id string) (Job, error) {
	if _, err := e.lock(ctx); err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	defer e.mu.Unlock()
	j, ok := e.owned(client, id)
	if !ok {
		return Job{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	out := j.job
	for _, r := range j.results {
		out.Results = append(out.Results, cloneResult(r))
	}
	sort.Slice(out.Results, func(a, b int) bool { return out.Results[a].Index < out.Results[b].Index })
	return out, nil
}

// GetMeta returns the job with the metadata of its stored results (no Data
// or Parts): those of indexes, or all when indexes is nil (NoResults: none).
func (e *Embedded) GetMeta(ctx context.Context, client, id string, indexes []int) (Job, error) {
	if _, err := e.lock(ctx); err != nil {
		return Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	defer e.mu.Unlock()
	j, ok := e.owned(client, id)
	if !ok {
		return Job{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	out := j.job
	add := func(r Result) {
		out.Results = append(out.Results, Result{Index: r.Index, Meta: bytes.Clone(r.Meta)})
	}
	if indexes == nil {
		for _, r := range j.results {
			add(r)
		}
		sort.Slice(out.Results, func(a, b int) bool { return out.Results[a].Index < out.Results[b].Index })
		return out, nil
	}
	for _, i := range indexes {
		if r, ok := j.results[i]; ok {
			add(r)
		}
	}
	return out, nil
}

// GetBlob returns the job (without its Spec) and one stored part of result
// index: 0 its Data, k ≥ 1 Parts[k-1]; nil when that is not stored.
func (e *Embedded) GetBlob(ctx context.Context, client, id string, index, part int) (Job, []byte, error) {
	if _, err := e.lock(ctx); err != nil {
		return Job{}, nil, fmt.Errorf("get %s: %w", id, err)
	}
	defer e.mu.Unlock()
	j, ok := e.owned(client, id)
	if !ok {
		return Job{}, nil, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	out := j.job
	out.Spec = nil
	r, ok := j.results[index]
	switch {
	case !ok || part < 0 || part > len(r.Parts):
		return out, nil, nil
	case part == 0:
		return out, bytes.Clone(r.Data), nil
	}
	return out, bytes.Clone(r.Parts[part-1]), nil
}

// Cancel cancels a queued job at once, or asks the worker of a running job
// to stop. A finished job is returned unchanged.
func (e *Embedded) Cancel(ctx context.Context, client, id string) (Job, error) {
	t, err := e.lock(ctx)
	if err != nil {
		return Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	defer e.mu.Unlock()
	j, ok := e.owned(client, id)
	if !ok {
		return Job{}, fmt.Errorf("cancel %s: %w", id, ErrNotFound)
	}
	switch j.job.State {
	case Queued:
		l := e.lanes[j.job.Lane]
		l.remove(j)
		l.queued--
		delete(e.delayed, id)
		e.finish(j, Cancelled, "", t)
	case Running:
		j.job.CancelRequested = true
	}
	return j.job, nil
}

// finish moves a job to a terminal state.
func (e *Embedded) finish(j *ejob, s State, errText string, t time.Time) {
	delete(e.running, j.job.ID)
	j.job.State, j.job.FinishedAt = s, t
	if errText != "" {
		j.job.Error = errText
	}
	j.emit(string(s), t, 0, errText)
	e.finished = append(e.finished, j)
}

func (e *Embedded) start(j *ejob, worker string, t time.Time) Lease {
	j.job.Attempts++
	j.job.State, j.job.Worker, j.job.StartedAt = Running, worker, t
	j.leaseUntil = t.Add(e.cfg.LeaseTTL)
	e.running[j.job.ID] = j
	j.emit(EventStarted, t, 0, "")
	return Lease{Job: j.job, Attempt: j.job.Attempts, Worker: worker}
}

// Claim returns up to limit jobs for worker, waiting up to wait for the
// first. It returns no leases and no error when nothing came.
func (e *Embedded) Claim(ctx context.Context, worker string, limit int, wait time.Duration) ([]Lease, error) {
	return e.ClaimCapped(ctx, worker, limit, wait, nil)
}

// ClaimCapped is Claim taking at most caps[lane] jobs from a lane (a lane
// not in caps: up to limit; 0: none).
func (e *Embedded) ClaimCapped(ctx context.Context, worker string, limit int, wait time.Duration, caps map[Lane]int) ([]Lease, error) {
	if worker == "" || limit < 1 {
		return nil, fmt.Errorf("claim: %w", &InvalidError{Field: "worker", Reason: "worker name and max ≥ 1 required"})
	}
	deadline := time.Now().Add(wait)
	for {
		t, err := e.lock(ctx)
		if err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
		leases := e.claim(worker, limit, caps, t)
		wake := e.wake
		e.mu.Unlock()
		left := time.Until(deadline)
		if len(leases) > 0 || left <= 0 {
			return leases, nil
		}
		timer := time.NewTimer(min(left, e.cfg.PollInterval))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("claim: %w", ctx.Err())
		}
		timer.Stop()
	}
}

// claim is one pass, as the Redis claim script: due retries back to the
// head of their client's queue; per lane, interactive first, expired leases
// then fresh jobs round-robin across clients.
func (e *Embedded) claim(worker string, limit int, caps map[Lane]int, t time.Time) []Lease {
	due := make([]*ejob, 0)
	for _, j := range e.delayed {
		if !j.readyAt.After(t) {
			due = append(due, j)
		}
	}
	sort.Slice(due, func(a, b int) bool { return due[a].readyAt.Before(due[b].readyAt) })
	for _, j := range due {
		delete(e.delayed, j.job.ID)
		e.lanes[j.job.Lane].push(j, true)
	}

	var out []Lease
	for _, lane := range Lanes() {
		capAt := min(limit, len(out)+laneCap(caps, lane, limit))
		expired := make([]*ejob, 0)
		for _, j := range e.running {
			if j.job.Lane == lane && j.leaseUntil.Before(t) {
				expired = append(expired, j)
			}
		}
		sort.Slice(expired, func(a, b int) bool { return expired[a].leaseUntil.Before(expired[b].leaseUntil) })
		for _, j := range expired {
			if len(out) >= capAt {
				break
			}
			switch {
			case j.job.CancelRequested:
				e.finish(j, Cancelled, "", t)
			case j.job.Attempts >= e.cfg.MaxDeliveries:
				msg := fmt.Sprintf("lease expired: worker %s stopped heartbeating (delivery %d of %d)",
					j.job.Worker, j.job.Attempts, e.cfg.MaxDeliveries)
				e.finish(j, Failed, msg, t)
				e.dead++
			default:
				msg := fmt.Sprintf("lease expired: worker %s stopped heartbeating; delivery %d of %d follows",
					j.job.Worker, j.job.Attempts+1, e.cfg.MaxDeliveries)
				j.job.Error = msg
				j.emit(EventRetrying, t, 0, msg)
				out = append(out, e.start(j, worker, t))
			}
		}
		l := e.lanes[lane]
		for len(out) < capAt {
			j := l.next()
			if j == nil {
				break
			}
			l.queued--
			out = append(out, e.start(j, worker, t))
		}
	}
	return out
}

func cloneResult(r Result) Result {
	c := Result{Index: r.Index, Data: bytes.Clone(r.Data), Meta: bytes.Clone(r.Meta)}
	for _, p := range r.Parts {
		c.Parts = append(c.Parts, bytes.Clone(p))
	}
	return c
}

// fenced returns the job if the lease still holds it.
func (e *Embedded) fenced(l Lease) (*ejob, bool) {
	j, ok := e.jobs[l.Job.ID]
	if !ok || j.job.State != Running || j.job.Attempts != l.Attempt {
		return nil, false
	}
	return j, true
}

func lostErr(op string, l Lease) error {
	return fmt.Errorf("%s %s attempt %d: %w", op, l.Job.ID, l.Attempt, ErrLeaseLost)
}

// Extend renews the lease (heartbeat). ErrCancelled still renews it, so
// that the worker can stop at its batch boundary and call Fail.
func (e *Embedded) Extend(ctx context.Context, l Lease) error {
	t, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("extend %s: %w", l.Job.ID, err)
	}
	defer e.mu.Unlock()
	j, ok := e.fenced(l)
	if !ok {
		return lostErr("extend", l)
	}
	j.leaseUntil = t.Add(e.cfg.LeaseTTL)
	if j.job.CancelRequested {
		return fmt.Errorf("extend %s: %w", l.Job.ID, ErrCancelled)
	}
	return nil
}

// PutResult stores the result of one index for the lease's attempt; an
// index already stored keeps its first value.
func (e *Embedded) PutResult(ctx context.Context, l Lease, r Result) error {
	if err := validateResult(l, r); err != nil {
		return fmt.Errorf("put result %s: %w", l.Job.ID, err)
	}
	t, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("put result %s: %w", l.Job.ID, err)
	}
	defer e.mu.Unlock()
	j, ok := e.fenced(l)
	if !ok {
		return lostErr("put result", l)
	}
	if j.job.CancelRequested {
		return fmt.Errorf("put result %s: %w", l.Job.ID, ErrCancelled)
	}
	j.leaseUntil = t.Add(e.cfg.LeaseTTL)
	if _, dup := j.results[r.Index]; dup {
		return nil
	}
	j.results[r.Index] = cloneResult(r)
	j.job.Done++
	j.emit(EventResult, t, r.Index, "")
	return nil
}

// Ack marks the job succeeded; it needs a result for every index.
func (e *Embedded) Ack(ctx context.Context, l Lease) error {
	t, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("ack %s: %w", l.Job.ID, err)
	}
	defer e.mu.Unlock()
	if j, ok := e.jobs[l.Job.ID]; ok && j.job.State == Succeeded && j.job.Attempts == l.Attempt {
		return nil
	}
	j, ok := e.fenced(l)
	if !ok {
		return lostErr("ack", l)
	}
	if j.job.Done < j.job.Total {
		return fmt.Errorf("ack %s: %w", l.Job.ID,
			&InvalidError{Field: "results", Reason: fmt.Sprintf("%d of %d stored", j.job.Done, j.job.Total)})
	}
	e.finish(j, Succeeded, "", t)
	return nil
}

// Fail ends the lease's delivery: retried after backoff when retryable and
// deliveries remain, cancelled when the client asked, otherwise failed and
// dead-lettered with cause.
func (e *Embedded) Fail(ctx context.Context, l Lease, cause error, retryable bool) error {
	t, err := e.lock(ctx)
	if err != nil {
		return fmt.Errorf("fail %s: %w", l.Job.ID, err)
	}
	defer e.mu.Unlock()
	if j, ok := e.jobs[l.Job.ID]; ok && j.job.Attempts == l.Attempt &&
		(j.job.State == Queued || j.job.State == Failed || j.job.State == Cancelled) {
		return nil
	}
	j, ok := e.fenced(l)
	if !ok {
		return lostErr("fail", l)
	}
	msg := causeText(cause)
	switch {
	case j.job.CancelRequested:
		e.finish(j, Cancelled, "", t)
	case retryable && j.job.Attempts < e.cfg.MaxDeliveries:
		delete(e.running, j.job.ID)
		j.job.State, j.job.Worker, j.job.Error = Queued, "", msg
		j.readyAt = t.Add(e.cfg.RetryBackoff.Delay(l.Attempt))
		e.delayed[j.job.ID] = j
		e.lanes[j.job.Lane].queued++
		j.emit(EventRetrying, t, 0, msg)
	default:
		e.finish(j, Failed, msg, t)
		e.dead++
	}
	return nil
}

// Events streams the job's events: first its current state, then every
// event after it, until the job finishes, ctx ends or the queue closes.
func (e *Embedded) Events(ctx context.Context, id string) (<-chan Event, error) {
	if _, err := e.lock(ctx); err != nil {
		return nil, fmt.Errorf("events %s: %w", id, err)
	}
	j, ok := e.jobs[id]
	if !ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("events %s: %w", id, ErrNotFound)
	}
	first, next := snapshotEvent(j.job), len(j.events)
	e.mu.Unlock()

	ch := make(chan Event, 16)
	go func() {
		defer close(ch)
		pending := []Event{first}
		for {
			for _, ev := range pending {
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
				if ev.Terminal() {
					return
				}
			}
			e.mu.Lock()
			pending = slices.Clone(j.events[next:])
			next = len(j.events)
			changed := j.changed
			e.mu.Unlock()
			if len(pending) > 0 {
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			case <-e.done:
				return
			}
		}
	}()
	return ch, nil
}

// Stats reads the queue gauges.
func (e *Embedded) Stats(ctx context.Context) (Stats, error) {
	t, err := e.lock(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer e.mu.Unlock()
	s := Stats{
		Depth:       map[Lane]int{Interactive: e.lanes[Interactive].queued, Batch: e.lanes[Batch].queued},
		Running:     map[Lane]int{Interactive: 0, Batch: 0},
		OldestAge:   map[Lane]time.Duration{Interactive: 0, Batch: 0},
		ByState:     map[State]int{Queued: 0, Running: 0, Succeeded: 0, Failed: 0, Cancelled: 0},
		DeadLetters: e.dead,
	}
	s.ByState[Queued] = s.Depth[Interactive] + s.Depth[Batch]
	for _, j := range e.jobs {
		switch j.job.State {
		case Queued:
			if age := t.Sub(j.job.CreatedAt); age > s.OldestAge[j.job.Lane] {
				s.OldestAge[j.job.Lane] = age
			}
		case Running:
			s.Running[j.job.Lane]++
			s.ByState[Running]++
		}
	}
	for _, j := range e.finished {
		s.ByState[j.job.State]++
	}
	return s, nil
}
