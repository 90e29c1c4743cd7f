// Package queue holds generation jobs: in Redis (Streams and consumer
// groups) when several processes share the work, or in process memory (the
// embedded backend) for a single-machine studio. Redis is used only here.
//
// Both backends have the same method set and pass the same contract tests:
//
//   - API side: Enqueue, Get (the job with every result), GetMeta (the job
//     with its results' metadata, all or some, no pixels), GetBlob (one
//     image or one part of it), Cancel, Events, Stats.
//   - Worker side: Claim, Extend (heartbeat), PutResult, Ack, Fail.
//
// Delivery is at least once; results are effectively once. Every lease
// carries an attempt number (the fencing token). A worker that stops
// heartbeating loses its lease after Config.LeaseTTL, another worker claims
// the job with the next attempt number, and from then on every write of the
// old attempt (Extend, PutResult, Ack, Fail) is rejected with ErrLeaseLost.
// A result, once stored for an index, is never replaced or duplicated.
//
// Job lifecycle:
//
//	queued ──claim──► running ──ack──► succeeded
//	  ▲  │               │ ├──fail (retryable, attempts < MaxDeliveries)──► queued (after backoff)
//	  │  │               │ ├──fail (final) / lease lost too often──► failed (+ dead letter)
//	  │  └──cancel──►    │ └──cancel requested, worker stops──► cancelled
//	  └── lease expired: claimed again by another worker (attempt+1)
//
// Finished jobs (succeeded, failed, cancelled) and their results expire
// Config.ResultTTL after they finish; Get then answers ErrNotFound.
package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Sentinel errors. Test them with errors.Is: the returned errors carry
// context (and, for ErrFull and ErrInvalid, typed details).
var (
	// ErrClosed is returned by a backend after Close.
	ErrClosed = errors.New("queue closed")
	// ErrNotFound: no such job for this client (never existed, belongs to
	// another client, or expired after ResultTTL).
	ErrNotFound = errors.New("job not found")
	// ErrFull: the lane holds MaxQueued queued jobs; see *FullError.
	ErrFull = errors.New("queue full")
	// ErrInvalid: a malformed NewJob or worker call; see *InvalidError.
	ErrInvalid = errors.New("invalid job")
	// ErrLeaseLost: the lease is no longer this worker's (it expired and
	// another attempt took the job over, or the job already finished). The
	// worker must drop the job without further writes.
	ErrLeaseLost = errors.New("lease lost")
	// ErrCancelled: the client cancelled the running job. The worker stops at
	// the batch boundary and calls Fail(ctx, lease, ErrCancelled, false),
	// which records the job as cancelled.
	ErrCancelled = errors.New("job cancelled")
	// ErrUnavailable: the store (Redis) did not answer: refused or lost
	// connection, timeout, a server loading its data or not yet a master.
	// The call may be repeated once it is back; Unavailable tells such
	// errors apart, wrapped or not.
	ErrUnavailable = errors.New("queue store unavailable")
)

// Unavailable reports whether err means that a Redis store could not be
// reached or could not answer yet (as opposed to a refusal or a bug): a
// network error, a pool timeout, a server that is loading, a replica that
// is not a master. The API answers such errors with 503 and Retry-After;
// workers repeat the call. It is true for ErrUnavailable and for the raw
// errors of go-redis, so the auth store's errors classify the same way.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "BUSY"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// FullError is returned by Enqueue when the job's lane is full.
type FullError struct {
	Lane Lane
	// RetryAfter is a hint for the client (HTTP Retry-After).
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("queue full: lane %s, retry after %s", e.Lane, e.RetryAfter)
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// InvalidError names the field at fault.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Lane separates interactive work (studio, API) from batch work (datasets).
// Claim serves the interactive lane strictly first.
type Lane string

// The lanes, in the order Claim serves them.
const (
	Interactive Lane = "interactive"
	Batch       Lane = "batch"
)

// Lanes lists every lane in priority order.
func Lanes() []Lane { return []Lane{Interactive, Batch} }

// State is where a job is in its lifecycle.
type State string

// Job states.
const (
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// States lists every state.
func States() []State { return []State{Queued, Running, Succeeded, Failed, Cancelled} }

// Finished reports whether s is terminal.
func (s State) Finished() bool { return s == Succeeded || s == Failed || s == Cancelled }

// NewJob is what a client asks for.
type NewJob struct {
	Client string
	Lane   Lane // empty means Interactive
	Model  string
	// Spec is the request (prompt, class, seed, n...), opaque to the queue;
	// it must be valid JSON when set.
	Spec json.RawMessage
	// Total is the number of units of work (images), for progress and
	// completeness: Ack needs a result for every index 0..Total-1.
	Total int
	// IdempotencyKey is optional: the same (Client, key) returns the same
	// job with created=false, until that job expires.
	IdempotencyKey string
}

// Limits on NewJob fields, so one request cannot swamp the store.
const (
	MaxTotal     = 10000
	maxSpecBytes = 64 << 10
	maxNameBytes = 256
)

// Job is the state of one job as clients and workers see it.
type Job struct {
	ID     string          `json:"id"`
	Client string          `json:"client"`
	Lane   Lane            `json:"lane"`
	Model  string          `json:"model"`
	Spec   json.RawMessage `json:"spec,omitempty"`
	Total  int             `json:"total"`
	Done   int             `json:"done"`
	State  State           `json:"state"`
	// Attempts counts deliveries to workers so far.
	Attempts int    `json:"attempts"`
	Worker   string `json:"worker,omitempty"`
	// Error is the last failure (kept while a retry waits).
	Error string `json:"error,omitempty"`
	// CancelRequested is set when a client cancelled the job while it ran.
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	// Results holds one entry per stored index, by Index; only Get fills it.
	Results []Result `json:"results,omitempty"`
}

// Result is the output of one unit of work.
type Result struct {
	Index int             `json:"index"`
	Data  []byte          `json:"data"`           // PNG
	Meta  json.RawMessage `json:"meta,omitempty"` // scores, provenance
	// Parts are the index's further binary outputs (an image's attention
	// maps, PNG each), stored apart from Meta so that each is read alone:
	// GetBlob part k ≥ 1 is Parts[k-1].
	Parts [][]byte `json:"parts,omitempty"`
}

// NoResults asks GetMeta for the job alone.
var NoResults = []int{}

// MaxParts bounds Result.Parts.
const MaxParts = 1024

// Lease is a job handed to one worker. Attempt is the fencing token: every
// write made with a stale lease is rejected.
type Lease struct {
	Job     Job
	Attempt int
	Worker  string
}

// Event types.
const (
	EventQueued  = "queued"
	EventStarted = "started" // a worker claimed the job (again, after a lost lease)
	EventResult  = "result"  // a new index was stored; Done/Total is the progress
	// EventRetrying: the delivery ended without finishing the job and
	// another follows; Error says why. Either a retryable failure (queued
	// again after backoff) or a lease taken over from a worker that
	// stopped heartbeating (started again at once, by another worker).
	EventRetrying  = "retrying"
	EventSucceeded = "succeeded"
	EventFailed    = "failed"
	EventCancelled = "cancelled"
)

// Event is one step of a job, for progress streams (SSE).
type Event struct {
	JobID string    `json:"job_id"`
	Type  string    `json:"type"`
	Done  int       `json:"done"`
	Total int       `json:"total"`
	Index int       `json:"index"` // the stored index, for EventResult
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// Terminal reports whether the event ends the job.
func (e Event) Terminal() bool {
	return e.Type == EventSucceeded || e.Type == EventFailed || e.Type == EventCancelled
}

// snapshotEvent is what a late subscriber gets first: the job's current
// state as an event.
func snapshotEvent(j Job) Event {
	ev := Event{JobID: j.ID, Done: j.Done, Total: j.Total, Error: j.Error, At: j.CreatedAt}
	switch j.State {
	case Queued:
		ev.Type = EventQueued
	case Running:
		ev.Type, ev.At = EventStarted, j.StartedAt
	default:
		ev.Type, ev.At = string(j.State), j.FinishedAt
	}
	return ev
}

// Stats are the queue's gauges, for metrics.
type Stats struct {
	// Depth counts queued jobs per lane, including those waiting out a
	// retry backoff.
	Depth map[Lane]int
	// Running counts jobs held by workers per lane.
	Running map[Lane]int
	// OldestAge is the age of the oldest queued job per lane (0 when none).
	OldestAge map[Lane]time.Duration
	// ByState counts jobs per state: queued and running now; finished
	// states count the jobs finished within ResultTTL (still retrievable).
	ByState map[State]int
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int
}

// Backoff is an exponential, capped retry delay.
type Backoff struct {
	Base time.Duration // delay after the first failure
	Max  time.Duration // cap
}

// Delay is the wait before delivery attempt+1, after attempt failed.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Config tunes either backend. Zero fields take the defaults below.
type Config struct {
	// MaxQueued bounds the queued jobs per lane (default 10000); beyond it
	// Enqueue fails with *FullError.
	MaxQueued int
	// FullRetryAfter is the Retry-After hint of *FullError (default 5s).
	FullRetryAfter time.Duration
	// LeaseTTL: a worker that has not called Extend for this long loses its
	// job to another worker (default 8s, so that the job of a killed
	// worker is taken over within about 8s plus PollInterval). Workers
	// heartbeat every second; keep the TTL several heartbeats long.
	LeaseTTL time.Duration
	// ConsumerIdle (Redis): a consumer of the lane streams' group that
	// holds no delivery and has been idle this long (a worker that exited
	// or was killed) is removed from the group; Claim looks at most once
	// per ConsumerIdle (default 10 LeaseTTLs, at least a minute).
	ConsumerIdle time.Duration
	// MaxDeliveries: deliveries (claims, including reclaims after a lost
	// lease) before a job fails for good and is dead-lettered (default 5).
	MaxDeliveries int
	// RetryBackoff delays the next delivery after a retryable failure
	// (default 1s doubling up to 1m).
	RetryBackoff Backoff
	// ResultTTL keeps finished jobs and their results (default 24h).
	ResultTTL time.Duration
	// Prefix of every Redis key; it must contain a {hash tag} so that Redis
	// Cluster keeps all keys in one slot (default "{fgs}:").
	Prefix string
	// PollInterval bounds how long Claim sleeps between looks for due
	// retries and expired leases while it waits (default 250ms).
	PollInterval time.Duration
	// DeadLetterMax caps the dead-letter stream, approximately (default 10000).
	DeadLetterMax int
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.MaxQueued <= 0 {
		c.MaxQueued = 10000
	}
	if c.FullRetryAfter <= 0 {
		c.FullRetryAfter = 5 * time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 8 * time.Second
	}
	if c.ConsumerIdle <= 0 {
		c.ConsumerIdle = max(10*c.LeaseTTL, time.Minute)
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 5
	}
	if c.RetryBackoff.Base <= 0 {
		c.RetryBackoff.Base = time.Second
	}
	if c.RetryBackoff.Max < c.RetryBackoff.Base {
		c.RetryBackoff.Max = max(time.Minute, c.RetryBackoff.Base)
	}
	if c.ResultTTL <= 0 {
		c.ResultTTL = 24 * time.Hour
	}
	if c.Prefix == "" {
		c.Prefix = "{fgs}:"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.DeadLetterMax <= 0 {
		c.DeadLetterMax = 10000
	}
	return c
}

// laneCap is how many jobs a claim may take from lane.
func laneCap(caps map[Lane]int, lane Lane, limit int) int {
	if c, ok := caps[lane]; ok {
		return max(0, min(c, limit))
	}
	return limit
}

// validate checks a NewJob and fills its defaults.
func (n NewJob) validate() (NewJob, error) {
	if n.Lane == "" {
		n.Lane = Interactive
	}
	switch {
	case n.Client == "":
		return n, &InvalidError{Field: "client", Reason: "required"}
	case len(n.Client) > maxNameBytes:
		return n, &InvalidError{Field: "client", Reason: "too long"}
	case n.Lane != Interactive && n.Lane != Batch:
		return n, &InvalidError{Field: "lane", Reason: fmt.Sprintf("%q is not interactive or batch", n.Lane)}
	case n.Model == "":
		return n, &InvalidError{Field: "model", Reason: "required"}
	case len(n.Model) > maxNameBytes:
		return n, &InvalidError{Field: "model", Reason: "too long"}
	case n.Total < 1 || n.Total > MaxTotal:
		return n, &InvalidError{Field: "total", Reason: fmt.Sprintf("%d is not in 1..%d", n.Total, MaxTotal)}
	case len(n.IdempotencyKey) > maxNameBytes:
		return n, &InvalidError{Field: "idempotency_key", Reason: "too long"}
	case len(n.Spec) > maxSpecBytes:
		return n, &InvalidError{Field: "spec", Reason: "too large"}
	case len(n.Spec) > 0 && !json.Valid(n.Spec):
		return n, &InvalidError{Field: "spec", Reason: "not valid JSON"}
	}
	return n, nil
}

// validateResult checks a worker's result against its job.
func validateResult(l Lease, r Result) error {
	if r.Index < 0 || r.Index >= l.Job.Total {
		return &InvalidError{Field: "index", Reason: fmt.Sprintf("%d is not in 0..%d", r.Index, l.Job.Total-1)}
	}
	if len(r.Meta) > 0 && !json.Valid(r.Meta) {
		return &InvalidError{Field: "meta", Reason: "not valid JSON"}
	}
	if len(r.Parts) > MaxParts {
		return &InvalidError{Field: "parts", Reason: fmt.Sprintf("%d parts; at most %d", len(r.Parts), MaxParts)}
	}
	return nil
}

// validID reports whether id has the form of the IDs Enqueue makes (a
// UUID in its 36-character text form); other strings, which could name
// other keys in Redis, are never found.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// causeText is the error text recorded for a failure.
func causeText(cause error) string {
	if cause == nil {
		return "unknown error"
	}
	return cause.Error()
}
