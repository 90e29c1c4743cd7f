package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/queue"
)

// backend is every method both queues offer; the contract below is written
// against it and run against each implementation.
type backend interface {
	Enqueue(ctx context.Context, n queue.NewJob) (queue.Job, bool, error)
	Get(ctx context.Context, client, id string) (queue.Job, error)
	GetMeta(ctx context.Context, client, id string, indexes []int) (queue.Job, error)
	GetBlob(ctx context.Context, client, id string, index, part int) (queue.Job, []byte, error)
	Cancel(ctx context.Context, client, id string) (queue.Job, error)
	Claim(ctx context.Context, worker string, max int, wait time.Duration) ([]queue.Lease, error)
	ClaimCapped(ctx context.Context, worker string, max int, wait time.Duration, caps map[queue.Lane]int) ([]queue.Lease, error)
	Extend(ctx context.Context, l queue.Lease) error
	PutResult(ctx context.Context, l queue.Lease, r queue.Result) error
	Ack(ctx context.Context, l queue.Lease) error
	Fail(ctx context.Context, l queue.Lease, cause error, retryable bool) error
	Events(ctx context.Context, id string) (<-chan queue.Event, error)
	Stats(ctx context.Context) (queue.Stats, error)
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ backend = (*queue.Redis)(nil)
	_ backend = (*queue.Embedded)(nil)
)

// newBackendFunc makes a fresh, empty queue with cfg for one test and
// closes it when the test ends.
type newBackendFunc func(t *testing.T, cfg queue.Config) backend

// contractConfig keeps time-based behaviour short. Tests that need other
// values change a copy.
func contractConfig() queue.Config {
	return queue.Config{
		MaxQueued:     100,
		LeaseTTL:      500 * time.Millisecond,
		MaxDeliveries: 3,
		RetryBackoff:  queue.Backoff{Base: 400 * time.Millisecond, Max: 800 * time.Millisecond},
		ResultTTL:     time.Hour,
		PollInterval:  20 * time.Millisecond,
	}
}

func job(client string, lane queue.Lane, total int) queue.NewJob {
	return queue.NewJob{Client: client, Lane: lane, Model: "attngan-birds", Total: total,
		Spec: json.RawMessage(`{"prompt":"a small red bird","seed":7}`)}
}

func mustEnqueue(t *testing.T, q backend, n queue.NewJob) queue.Job {
	t.Helper()
	j, created, err := q.Enqueue(t.Context(), n)
	if err != nil || !created {
		t.Fatalf("enqueue %+v: created=%v err=%v", n, created, err)
	}
	return j
}

func claimOne(t *testing.T, q backend, worker string, wait time.Duration) queue.Lease {
	t.Helper()
	ls, err := q.Claim(t.Context(), worker, 1, wait)
	if err != nil || len(ls) != 1 {
		t.Fatalf("claim by %s: %d leases, err %v", worker, len(ls), err)
	}
	return ls[0]
}

func claimNone(t *testing.T, q backend, worker string) {
	t.Helper()
	ls, err := q.Claim(t.Context(), worker, 10, 0)
	if err != nil || len(ls) != 0 {
		t.Fatalf("claim by %s: want nothing, got %d leases (err %v)", worker, len(ls), err)
	}
}

func put(t *testing.T, q backend, l queue.Lease, index int, data string) error {
	t.Helper()
	return q.PutResult(t.Context(), l, queue.Result{Index: index, Data: []byte(data),
		Meta: json.RawMessage(fmt.Sprintf(`{"score":0.%d}`, index+1))})
}

func finishLease(t *testing.T, q backend, l queue.Lease) {
	t.Helper()
	for i := range l.Job.Total {
		if err := put(t, q, l, i, fmt.Sprintf("png-%s-%d", l.Worker, i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := q.Ack(t.Context(), l); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func get(t *testing.T, q backend, client, id string) queue.Job {
	t.Helper()
	j, err := q.Get(t.Context(), client, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return j
}

// collect reads events until the channel closes.
func collect(t *testing.T, ch <-chan queue.Event, within time.Duration) []queue.Event {
	t.Helper()
	var out []queue.Event
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("event channel still open after %s; got %v", within, types(out))
		}
	}
}

func types(evs []queue.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// contract is the behaviour every queue backend must have, one named
// sub-test each.
var contract = []struct {
	name string
	run  func(t *testing.T, newBackend newBackendFunc)
}{
	{"lifecycle and timestamps", contractLifecycleAndTimestamps},
	{"invalid jobs", contractInvalidJobs},
	{"idempotency", contractIdempotency},
	{"other clients see not found", contractOtherClientsSeeNotFound},
	{"interactive lane ahead of batch", contractInteractiveLaneAheadOfBatch},
	{"round-robin fairness across clients", contractRoundRobinFairnessAcrossClients},
	{"claim waits for work", contractClaimWaitsForWork},
	{"cancel queued", contractCancelQueued},
	{"cancel running stops at the next heartbeat", contractCancelRunningStopsAtTheNextHeartbeat},
	{"cancel running whose worker died", contractCancelRunningWhoseWorkerDied},
	{"lease expiry, takeover and fencing", contractLeaseExpiryTakeoverAndFencing},
	{"expired leases count as deliveries", contractExpiredLeasesCountAsDeliveries},
	{"retries with backoff then dead letter", contractRetriesWithBackoffThenDeadLetter},
	{"backoff delays the next delivery", contractBackoffDelaysTheNextDelivery},
	{"bounded queue answers ErrFull", contractBoundedQueueAnswersErrFull},
	{"finished jobs and results expire", contractFinishedJobsAndResultsExpire},
	{"events in order", contractEventsInOrder},
	{"stats gauges", contractStatsGauges},
	{"concurrent workers get each job once", contractConcurrentWorkersGetEachJobOnce},
	{"closed queue", contractClosedQueue},
	{"results read one at a time", contractResultsReadOneAtATime},
	{"claims capped per lane", contractClaimsCappedPerLane},
}

// runContract runs every sub-test of contract on the backend newBackend makes.
func runContract(t *testing.T, newBackend newBackendFunc) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) { c.run(t, newBackend) })
	}
}

func contractLifecycleAndTimestamps(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 3))
	if j.ID == "" || j.State != queue.Queued || j.Attempts != 0 || j.Done != 0 || j.Total != 3 ||
		j.CreatedAt.Before(before) || !j.StartedAt.IsZero() || !j.FinishedAt.IsZero() {
		t.Fatalf("enqueued job: %+v", j)
	}
	if g := get(t, q, "alice", j.ID); g.State != queue.Queued || string(g.Spec) != `{"prompt":"a small red bird","seed":7}` ||
		g.Model != "attngan-birds" || g.Lane != queue.Interactive || !g.CreatedAt.Equal(j.CreatedAt) {
		t.Fatalf("get queued: %+v", g)
	}

	l := claimOne(t, q, "w1", 0)
	if l.Job.ID != j.ID || l.Attempt != 1 || l.Worker != "w1" || l.Job.State != queue.Running || l.Job.Total != 3 {
		t.Fatalf("lease: %+v", l)
	}
	g := get(t, q, "alice", j.ID)
	if g.State != queue.Running || g.Worker != "w1" || g.Attempts != 1 || g.StartedAt.Before(g.CreatedAt) {
		t.Fatalf("running job: %+v", g)
	}
	if err := q.Ack(ctx, l); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("ack with no results: %v, want ErrInvalid", err)
	}
	if err := put(t, q, l, 3, "x"); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("put index out of range: %v, want ErrInvalid", err)
	}
	for i := 2; i >= 0; i-- {
		if err := put(t, q, l, i, fmt.Sprintf("png%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(t, q, l, 1, "again"); err != nil {
		t.Fatalf("repeated put of the same index: %v", err)
	}
	if g := get(t, q, "alice", j.ID); g.Done != 3 || len(g.Results) != 3 {
		t.Fatalf("progress: done %d, %d results", g.Done, len(g.Results))
	}
	if err := q.Extend(ctx, l); err != nil {
		t.Fatalf("extend: %v", err)
	}
	if err := q.Ack(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, l); err != nil {
		t.Fatalf("repeated ack: %v", err)
	}
	g = get(t, q, "alice", j.ID)
	if g.State != queue.Succeeded || g.Done != 3 || g.FinishedAt.Before(g.StartedAt) || g.Error != "" {
		t.Fatalf("succeeded job: %+v", g)
	}
	for i, r := range g.Results {
		if r.Index != i || string(r.Data) != fmt.Sprintf("png%d", i) || string(r.Meta) != fmt.Sprintf(`{"score":0.%d}`, i+1) {
			t.Fatalf("result %d: index %d data %q meta %s", i, r.Index, r.Data, r.Meta)
		}
	}
	if err := put(t, q, l, 0, "late"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("put after ack: %v, want ErrLeaseLost", err)
	}
	if err := q.Fail(ctx, l, errors.New("late"), true); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("fail after ack: %v, want ErrLeaseLost", err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.ByState[queue.Succeeded] != 1 || st.ByState[queue.Queued] != 0 || st.ByState[queue.Running] != 0 {
		t.Fatalf("stats: %+v %v", st, err)
	}
}

func contractInvalidJobs(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	cases := []struct {
		name  string
		edit  func(*queue.NewJob)
		field string
	}{
		{"no client", func(n *queue.NewJob) { n.Client = "" }, "client"},
		{"unknown lane", func(n *queue.NewJob) { n.Lane = "urgent" }, "lane"},
		{"no model", func(n *queue.NewJob) { n.Model = "" }, "model"},
		{"zero total", func(n *queue.NewJob) { n.Total = 0 }, "total"},
		{"huge total", func(n *queue.NewJob) { n.Total = queue.MaxTotal + 1 }, "total"},
		{"spec not json", func(n *queue.NewJob) { n.Spec = json.RawMessage(`{"prompt":`) }, "spec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := job("alice", queue.Interactive, 1)
			c.edit(&n)
			_, _, err := q.Enqueue(t.Context(), n)
			var inv *queue.InvalidError
			if !errors.Is(err, queue.ErrInvalid) || !errors.As(err, &inv) || inv.Field != c.field {
				t.Fatalf("err %v, want ErrInvalid on %s", err, c.field)
			}
		})
	}
	n := job("alice", "", 1)
	if j := mustEnqueue(t, q, n); j.Lane != queue.Interactive {
		t.Fatalf("empty lane became %q, want interactive", j.Lane)
	}
}

func contractIdempotency(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	n := job("alice", queue.Interactive, 2)
	n.IdempotencyKey = "req-1"
	a := mustEnqueue(t, q, n)
	b, created, err := q.Enqueue(t.Context(), n)
	if err != nil || created || b.ID != a.ID {
		t.Fatalf("repeat: id %s created %v err %v, want %s false", b.ID, created, err, a.ID)
	}
	n.Client = "bob"
	if c := mustEnqueue(t, q, n); c.ID == a.ID {
		t.Fatal("another client's request with the same key got alice's job")
	}
	n.Client, n.IdempotencyKey = "alice", ""
	x, y := mustEnqueue(t, q, n), mustEnqueue(t, q, n)
	if x.ID == y.ID {
		t.Fatal("two requests without a key got one job")
	}
	// The key keeps answering after the job ran.
	l := claimOne(t, q, "w", 0)
	if l.Job.ID != a.ID {
		t.Fatalf("claimed %s, want %s", l.Job.ID, a.ID)
	}
	finishLease(t, q, l)
	n.IdempotencyKey = "req-1"
	if d, created, err := q.Enqueue(t.Context(), n); err != nil || created || d.ID != a.ID || d.State != queue.Succeeded {
		t.Fatalf("repeat after success: %+v created %v err %v", d, created, err)
	}
}

func contractOtherClientsSeeNotFound(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	if _, err := q.Get(ctx, "mallory", j.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("get by another client: %v", err)
	}
	if _, err := q.Cancel(ctx, "mallory", j.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("cancel by another client: %v", err)
	}
	if g := get(t, q, "alice", j.ID); g.State != queue.Queued {
		t.Fatalf("another client's cancel changed the job: %s", g.State)
	}
	if _, err := q.Get(ctx, "alice", "no-such-job"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	for _, id := range []string{"no-such-job", "01a214c8-abb0-727a-97c8-21736d83d17f", j.ID + ":ev", j.ID + ":res"} {
		if _, err := q.Get(ctx, "alice", id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("get %q: %v", id, err)
		}
		if _, err := q.Cancel(ctx, "alice", id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("cancel %q: %v", id, err)
		}
		if _, err := q.Events(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("events %q: %v", id, err)
		}
	}
}

func contractInteractiveLaneAheadOfBatch(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	var batch, inter []string
	for range 3 {
		batch = append(batch, mustEnqueue(t, q, job("dataset", queue.Batch, 1)).ID)
	}
	for range 2 {
		inter = append(inter, mustEnqueue(t, q, job("designer", queue.Interactive, 1)).ID)
	}
	if l := claimOne(t, q, "w", 0); l.Job.ID != inter[0] {
		t.Fatalf("first claim got %s (%s), want the first interactive job", l.Job.ID, l.Job.Lane)
	}
	ls, err := q.Claim(t.Context(), "w", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Job.ID)
	}
	if want := append([]string{inter[1]}, batch...); !slices.Equal(got, want) {
		t.Fatalf("claim order %v, want %v", got, want)
	}
}

func contractRoundRobinFairnessAcrossClients(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	for _, c := range []struct {
		client string
		n      int
	}{{"a", 4}, {"b", 2}, {"c", 1}} {
		for range c.n {
			mustEnqueue(t, q, job(c.client, queue.Batch, 1))
		}
	}
	var order []string
	for range 7 {
		order = append(order, claimOne(t, q, "w", 0).Job.Client)
	}
	if want := []string{"a", "b", "c", "a", "b", "a", "a"}; !slices.Equal(order, want) {
		t.Fatalf("clients served %v, want %v", order, want)
	}
	// A client that comes back joins the end of the rotation.
	mustEnqueue(t, q, job("a", queue.Batch, 1))
	mustEnqueue(t, q, job("d", queue.Batch, 1))
	mustEnqueue(t, q, job("a", queue.Batch, 1))
	ls, err := q.Claim(t.Context(), "w", 3, 0)
	if err != nil || len(ls) != 3 {
		t.Fatalf("claim: %d %v", len(ls), err)
	}
	if got := []string{ls[0].Job.Client, ls[1].Job.Client, ls[2].Job.Client}; !slices.Equal(got, []string{"a", "d", "a"}) {
		t.Fatalf("clients served %v, want [a d a]", got)
	}
}

func contractClaimWaitsForWork(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	claimNone(t, q, "w")
	got := make(chan []queue.Lease, 1)
	go func() {
		ls, err := q.Claim(t.Context(), "w", 4, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- ls
	}()
	time.Sleep(100 * time.Millisecond)
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	select {
	case ls := <-got:
		if len(ls) != 1 || ls[0].Job.ID != j.ID {
			t.Fatalf("blocked claim got %d leases", len(ls))
		}
	case <-time.After(8 * time.Second):
		t.Fatal("blocked claim did not wake up for a new job")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := q.Claim(ctx, "w", 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("claim with a cancelled context: %v", err)
	}
}

func contractCancelQueued(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	a := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	b := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	c, err := q.Cancel(t.Context(), "alice", a.ID)
	if err != nil || c.State != queue.Cancelled || c.FinishedAt.IsZero() {
		t.Fatalf("cancel queued: %+v %v", c, err)
	}
	if l := claimOne(t, q, "w", 0); l.Job.ID != b.ID {
		t.Fatalf("claimed %s, want the job not cancelled", l.Job.ID)
	}
	claimNone(t, q, "w")
	if again, err := q.Cancel(t.Context(), "alice", a.ID); err != nil || again.State != queue.Cancelled {
		t.Fatalf("repeated cancel: %+v %v", again, err)
	}
	st, err := q.Stats(t.Context())
	if err != nil || st.ByState[queue.Cancelled] != 1 || st.Depth[queue.Interactive] != 0 {
		t.Fatalf("stats: %+v %v", st, err)
	}
}

func contractCancelRunningStopsAtTheNextHeartbeat(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 4))
	l := claimOne(t, q, "w", 0)
	if err := put(t, q, l, 0, "png0"); err != nil {
		t.Fatal(err)
	}
	c, err := q.Cancel(ctx, "alice", j.ID)
	if err != nil || c.State != queue.Running || !c.CancelRequested {
		t.Fatalf("cancel running: %+v %v", c, err)
	}
	if err := q.Extend(ctx, l); !errors.Is(err, queue.ErrCancelled) {
		t.Fatalf("extend after cancel: %v, want ErrCancelled", err)
	}
	if err := put(t, q, l, 1, "png1"); !errors.Is(err, queue.ErrCancelled) {
		t.Fatalf("put after cancel: %v, want ErrCancelled", err)
	}
	if err := q.Fail(ctx, l, queue.ErrCancelled, false); err != nil {
		t.Fatal(err)
	}
	g := get(t, q, "alice", j.ID)
	if g.State != queue.Cancelled || g.Done != 1 || len(g.Results) != 1 || g.FinishedAt.IsZero() {
		t.Fatalf("cancelled job: %+v", g)
	}
	st, _ := q.Stats(ctx)
	if st.DeadLetters != 0 || st.ByState[queue.Cancelled] != 1 || st.ByState[queue.Running] != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func contractCancelRunningWhoseWorkerDied(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	q := newBackend(t, cfg)
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 2))
	claimOne(t, q, "w1", 0) // w1 dies without a word
	if _, err := q.Cancel(t.Context(), "alice", j.ID); err != nil {
		t.Fatal(err)
	}
	// The next claim after the lease expired finishes the cancel
	// instead of handing the job out again.
	time.Sleep(cfg.LeaseTTL + 100*time.Millisecond)
	claimNone(t, q, "w2")
	if g := get(t, q, "alice", j.ID); g.State != queue.Cancelled || g.Attempts != 1 {
		t.Fatalf("job: state %s attempts %d, want cancelled after 1", g.State, g.Attempts)
	}
}

func contractLeaseExpiryTakeoverAndFencing(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	q := newBackend(t, cfg)
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 3))
	watch, err := q.Events(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	old := claimOne(t, q, "w1", 0)
	if err := put(t, q, old, 0, "from-w1"); err != nil {
		t.Fatal(err)
	}
	// Heartbeats keep the lease: nobody else gets the job for 2 TTLs.
	for end := time.Now().Add(2 * cfg.LeaseTTL); time.Now().Before(end); {
		if err := q.Extend(ctx, old); err != nil {
			t.Fatalf("extend: %v", err)
		}
		claimNone(t, q, "w2")
		time.Sleep(cfg.LeaseTTL / 5)
	}
	// w1 goes silent; w2 takes over after the TTL with the next attempt.
	takeover := claimOne(t, q, "w2", 5*cfg.LeaseTTL)
	if takeover.Job.ID != j.ID || takeover.Attempt != 2 || takeover.Job.Done != 1 {
		t.Fatalf("takeover lease: %+v", takeover)
	}
	if g := get(t, q, "alice", j.ID); g.Worker != "w2" || g.Attempts != 2 || g.State != queue.Running {
		t.Fatalf("after takeover: %+v", g)
	}
	// Every write of the old attempt is rejected.
	if err := put(t, q, old, 1, "from-w1-late"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale put: %v, want ErrLeaseLost", err)
	}
	if err := q.Extend(ctx, old); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale extend: %v", err)
	}
	if err := q.Fail(ctx, old, errors.New("stale"), true); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale fail: %v", err)
	}
	for i := range 3 {
		if err := put(t, q, takeover, i, "from-w2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Ack(ctx, old); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale ack: %v", err)
	}
	if err := q.Ack(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	// The watcher is told why the job started again, before it did.
	evs := collect(t, watch, 5*time.Second)
	want := []string{queue.EventQueued, queue.EventStarted, queue.EventResult, queue.EventRetrying,
		queue.EventStarted, queue.EventResult, queue.EventResult, queue.EventSucceeded}
	if !slices.Equal(types(evs), want) {
		t.Fatalf("events %v, want %v", types(evs), want)
	}
	if e := evs[3].Error; !strings.Contains(e, "lease expired") || !strings.Contains(e, "w1") {
		t.Fatalf("retrying event says %q; want the expired lease of w1", e)
	}
	g := get(t, q, "alice", j.ID)
	want = []string{"from-w1", "from-w2", "from-w2"} // index 0 was stored while w1 held the lease
	if g.State != queue.Succeeded || len(g.Results) != 3 {
		t.Fatalf("final: %+v", g)
	}
	for i, r := range g.Results {
		if r.Index != i || string(r.Data) != want[i] {
			t.Fatalf("result %d = %q, want %q", r.Index, r.Data, want[i])
		}
	}
	ch, err := q.Events(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, ch, 5*time.Second); len(evs) != 1 || evs[0].Type != queue.EventSucceeded {
		t.Fatalf("late subscriber got %v", types(evs))
	}
}

func contractExpiredLeasesCountAsDeliveries(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	q := newBackend(t, cfg)
	j := mustEnqueue(t, q, job("alice", queue.Batch, 1))
	for attempt := 1; attempt <= cfg.MaxDeliveries; attempt++ {
		if l := claimOne(t, q, fmt.Sprintf("w%d", attempt), 5*cfg.LeaseTTL); l.Attempt != attempt {
			t.Fatalf("delivery %d has attempt %d", attempt, l.Attempt)
		}
	}
	deadline := time.Now().Add(5 * cfg.LeaseTTL)
	for {
		claimNone(t, q, "w-last")
		g := get(t, q, "alice", j.ID)
		if g.State == queue.Failed {
			if g.Attempts != cfg.MaxDeliveries || g.Error == "" {
				t.Fatalf("failed job: %+v", g)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after its last lease expired", g.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := q.Stats(t.Context()); st.DeadLetters != 1 || st.ByState[queue.Failed] != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func contractRetriesWithBackoffThenDeadLetter(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	q := newBackend(t, cfg)
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 2))
	ch, err := q.Events(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= cfg.MaxDeliveries; attempt++ {
		var l queue.Lease
		if attempt == 1 {
			l = claimOne(t, q, "w", 0)
		} else {
			claimNone(t, q, "w") // the backoff has not passed yet
			l = claimOne(t, q, "w", 10*cfg.RetryBackoff.Max)
		}
		if l.Attempt != attempt {
			t.Fatalf("attempt %d, want %d", l.Attempt, attempt)
		}
		if err := q.Fail(ctx, l, fmt.Errorf("boom %d", attempt), true); err != nil {
			t.Fatal(err)
		}
		if err := q.Fail(ctx, l, fmt.Errorf("boom %d", attempt), true); err != nil {
			t.Fatalf("repeated fail: %v", err)
		}
		g := get(t, q, "alice", j.ID)
		if g.Error != fmt.Sprintf("boom %d", attempt) || g.Attempts != attempt {
			t.Fatalf("after failure %d: %+v", attempt, g)
		}
		if attempt < cfg.MaxDeliveries {
			if g.State != queue.Queued || g.Worker != "" {
				t.Fatalf("retryable failure %d: state %s", attempt, g.State)
			}
			st, _ := q.Stats(ctx)
			if st.Depth[queue.Interactive] != 1 || st.ByState[queue.Queued] != 1 {
				t.Fatalf("a job in backoff counts as queued: %+v", st)
			}
		} else if g.State != queue.Failed || g.FinishedAt.IsZero() {
			t.Fatalf("after %d deliveries: state %s", attempt, g.State)
		}
	}
	if st, _ := q.Stats(ctx); st.DeadLetters != 1 || st.ByState[queue.Failed] != 1 || st.Depth[queue.Interactive] != 0 {
		t.Fatalf("stats: %+v", st)
	}
	want := []string{"queued", "started", "retrying", "started", "retrying", "started", "failed"}
	if got := types(collect(t, ch, 5*time.Second)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	// A non-retryable failure is final at once.
	k := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	l := claimOne(t, q, "w", 0)
	if err := q.Fail(ctx, l, errors.New("bad prompt"), false); err != nil {
		t.Fatal(err)
	}
	if g := get(t, q, "alice", k.ID); g.State != queue.Failed || g.Attempts != 1 || g.Error != "bad prompt" {
		t.Fatalf("non-retryable: %+v", g)
	}
}

func contractBackoffDelaysTheNextDelivery(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	q := newBackend(t, cfg)
	mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	l := claimOne(t, q, "w", 0)
	failedAt := time.Now()
	if err := q.Fail(t.Context(), l, errors.New("transient"), true); err != nil {
		t.Fatal(err)
	}
	l = claimOne(t, q, "w", 10*cfg.RetryBackoff.Max)
	// Times are kept in milliseconds: allow for the rounding.
	if waited := time.Since(failedAt); waited < cfg.RetryBackoff.Delay(1)-5*time.Millisecond {
		t.Fatalf("redelivered after %s, backoff is %s", waited, cfg.RetryBackoff.Delay(1))
	}
	failedAt = time.Now()
	if err := q.Fail(t.Context(), l, errors.New("transient"), true); err != nil {
		t.Fatal(err)
	}
	claimOne(t, q, "w", 10*cfg.RetryBackoff.Max)
	if waited := time.Since(failedAt); waited < cfg.RetryBackoff.Delay(2)-5*time.Millisecond {
		t.Fatalf("second redelivery after %s, backoff is %s", waited, cfg.RetryBackoff.Delay(2))
	}
}

func contractBoundedQueueAnswersErrFull(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	cfg.MaxQueued = 3
	cfg.FullRetryAfter = 7 * time.Second
	q := newBackend(t, cfg)
	ctx := t.Context()
	n := job("alice", queue.Interactive, 1)
	n.IdempotencyKey = "first"
	first := mustEnqueue(t, q, n)
	n.IdempotencyKey = ""
	mustEnqueue(t, q, n)
	mustEnqueue(t, q, n)
	_, _, err := q.Enqueue(ctx, n)
	var full *queue.FullError
	if !errors.Is(err, queue.ErrFull) || !errors.As(err, &full) || full.RetryAfter != 7*time.Second || full.Lane != queue.Interactive {
		t.Fatalf("fourth enqueue: %v, want ErrFull with RetryAfter 7s", err)
	}
	// A repeated request still finds its job; the other lane has room.
	n.IdempotencyKey = "first"
	if j, created, err := q.Enqueue(ctx, n); err != nil || created || j.ID != first.ID {
		t.Fatalf("idempotent repeat while full: %v", err)
	}
	mustEnqueue(t, q, job("dataset", queue.Batch, 1))
	st, err := q.Stats(ctx)
	if err != nil || st.Depth[queue.Interactive] != 3 || st.Depth[queue.Batch] != 1 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	claimOne(t, q, "w", 0)
	n.IdempotencyKey = ""
	mustEnqueue(t, q, n)
}

func contractFinishedJobsAndResultsExpire(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	cfg := contractConfig()
	cfg.ResultTTL = 400 * time.Millisecond
	q := newBackend(t, cfg)
	ctx := t.Context()
	n := job("alice", queue.Interactive, 2)
	n.IdempotencyKey = "once"
	j := mustEnqueue(t, q, n)
	c := mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	l := claimOne(t, q, "w", 0)
	finishLease(t, q, l)
	if _, err := q.Cancel(ctx, "alice", c.ID); err != nil {
		t.Fatal(err)
	}
	if g := get(t, q, "alice", j.ID); len(g.Results) != 2 {
		t.Fatalf("results right after finishing: %d", len(g.Results))
	}
	if st, _ := q.Stats(ctx); st.ByState[queue.Succeeded] != 1 || st.ByState[queue.Cancelled] != 1 {
		t.Fatalf("stats before expiry: %+v", st.ByState)
	}
	time.Sleep(cfg.ResultTTL + 200*time.Millisecond)
	for _, id := range []string{j.ID, c.ID} {
		if _, err := q.Get(ctx, "alice", id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("get %s after ResultTTL: %v, want ErrNotFound", id, err)
		}
	}
	if st, _ := q.Stats(ctx); st.ByState[queue.Succeeded] != 0 || st.ByState[queue.Cancelled] != 0 {
		t.Fatalf("stats after expiry: %+v", st.ByState)
	}
	// The idempotency key went with its job.
	if k, created, err := q.Enqueue(ctx, n); err != nil || !created || k.ID == j.ID {
		t.Fatalf("enqueue with an expired key: created %v err %v", created, err)
	}
}

func contractEventsInOrder(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 2))
	ch, err := q.Events(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	l := claimOne(t, q, "w", 0)
	finishLease(t, q, l)
	evs := collect(t, ch, 5*time.Second)
	want := []queue.Event{
		{Type: queue.EventQueued, Total: 2},
		{Type: queue.EventStarted, Total: 2},
		{Type: queue.EventResult, Done: 1, Total: 2, Index: 0},
		{Type: queue.EventResult, Done: 2, Total: 2, Index: 1},
		{Type: queue.EventSucceeded, Done: 2, Total: 2},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %v", types(evs))
	}
	for i, ev := range evs {
		w := want[i]
		if ev.JobID != j.ID || ev.Type != w.Type || ev.Done != w.Done || ev.Total != w.Total || ev.Index != w.Index ||
			ev.At.IsZero() || (i > 0 && ev.At.Before(evs[i-1].At)) {
			t.Fatalf("event %d: %+v, want %+v", i, ev, w)
		}
	}

	// A subscriber that joins mid-run gets the current state first.
	k := mustEnqueue(t, q, job("alice", queue.Interactive, 2))
	l = claimOne(t, q, "w", 0)
	if err := put(t, q, l, 1, "png"); err != nil {
		t.Fatal(err)
	}
	sub, cancel := context.WithCancel(ctx)
	ch, err = q.Events(sub, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first := <-ch; first.Type != queue.EventStarted || first.Done != 1 || first.Total != 2 {
		t.Fatalf("first event of a late subscriber: %+v", first)
	}
	if err := put(t, q, l, 0, "png"); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != queue.EventResult || ev.Index != 0 || ev.Done != 2 {
		t.Fatalf("next event: %+v", ev)
	}
	cancel()
	collect(t, ch, 5*time.Second) // closes when the context ends
}

func contractStatsGauges(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	mustEnqueue(t, q, job("a", queue.Interactive, 1))
	mustEnqueue(t, q, job("a", queue.Batch, 1))
	mustEnqueue(t, q, job("b", queue.Batch, 1))
	time.Sleep(50 * time.Millisecond)
	claimOne(t, q, "w", 0) // the interactive one
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth[queue.Interactive] != 0 || st.Depth[queue.Batch] != 2 ||
		st.Running[queue.Interactive] != 1 || st.Running[queue.Batch] != 0 ||
		st.ByState[queue.Queued] != 2 || st.ByState[queue.Running] != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if st.OldestAge[queue.Interactive] != 0 || st.OldestAge[queue.Batch] < 40*time.Millisecond {
		t.Fatalf("oldest age: %v", st.OldestAge)
	}
}

func contractConcurrentWorkersGetEachJobOnce(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	const jobs = 60
	for i := range jobs {
		mustEnqueue(t, q, job(fmt.Sprintf("c%d", i%5), queue.Lane([]string{"interactive", "batch"}[i%2]), 1))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for {
				ls, err := q.Claim(ctx, fmt.Sprintf("w%d", w), 3, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ls) == 0 {
					return
				}
				for _, l := range ls {
					mu.Lock()
					seen[l.Job.ID]++
					mu.Unlock()
					if err := put(t, q, l, 0, "png"); err != nil {
						t.Error(err)
					}
					if err := q.Ack(ctx, l); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("%d distinct jobs claimed, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("job %s claimed %d times", id, n)
		}
	}
	if st, _ := q.Stats(ctx); st.ByState[queue.Succeeded] != jobs {
		t.Fatalf("succeeded %d, want %d", st.ByState[queue.Succeeded], jobs)
	}
}

func contractClosedQueue(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Enqueue(t.Context(), job("a", queue.Interactive, 1)); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	if _, err := q.Claim(t.Context(), "w", 1, 0); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("claim after close: %v", err)
	}
}

// GetMeta reads results' metadata without pixels (all, some or none),
// GetBlob one image or one of its parts; Get still reads everything.
func contractResultsReadOneAtATime(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	j := mustEnqueue(t, q, job("alice", queue.Interactive, 3))
	l := claimOne(t, q, "w1", 0)
	for i := range 2 {
		r := queue.Result{Index: i, Data: []byte(fmt.Sprintf("png%d", i)), Meta: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			Parts: [][]byte{[]byte(fmt.Sprintf("att%d-1", i)), []byte(fmt.Sprintf("att%d-2", i))}}
		if err := q.PutResult(ctx, l, r); err != nil {
			t.Fatal(err)
		}
	}
	// A repeated store keeps the first parts too.
	if err := q.PutResult(ctx, l, queue.Result{Index: 1, Data: []byte("again"), Parts: [][]byte{[]byte("x")}}); err != nil {
		t.Fatal(err)
	}
	all, err := q.GetMeta(ctx, "alice", j.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if all.Done != 2 || string(all.Spec) == "" || len(all.Results) != 2 {
		t.Fatalf("meta of all: %+v", all)
	}
	for i, r := range all.Results {
		if r.Index != i || string(r.Meta) != fmt.Sprintf(`{"i":%d}`, i) || r.Data != nil || r.Parts != nil {
			t.Fatalf("meta result %d: %+v", i, r)
		}
	}
	some, err := q.GetMeta(ctx, "alice", j.ID, []int{1, 2})
	if err != nil || len(some.Results) != 1 || some.Results[0].Index != 1 {
		t.Fatalf("meta of 1 and 2 (2 not stored): %+v, %v", some.Results, err)
	}
	none, err := q.GetMeta(ctx, "alice", j.ID, queue.NoResults)
	if err != nil || len(none.Results) != 0 || none.Done != 2 {
		t.Fatalf("meta of none: %+v, %v", none, err)
	}
	for _, c := range []struct {
		index, part int
		want        string
	}{{0, 0, "png0"}, {1, 0, "png1"}, {1, 1, "att1-1"}, {1, 2, "att1-2"}, {1, 3, ""}, {2, 0, ""}, {0, -1, ""}} {
		bj, blob, err := q.GetBlob(ctx, "alice", j.ID, c.index, c.part)
		if err != nil || string(blob) != c.want || bj.ID != j.ID || bj.Total != 3 || bj.State != queue.Running || bj.Spec != nil {
			t.Fatalf("blob %d/%d: %q %+v %v, want %q", c.index, c.part, blob, bj, err, c.want)
		}
	}
	if _, _, err := q.GetBlob(ctx, "bob", j.ID, 0, 0); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("another client's blob: %v", err)
	}
	if _, err := q.GetMeta(ctx, "bob", j.ID, nil); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("another client's meta: %v", err)
	}
	full := get(t, q, "alice", j.ID)
	if len(full.Results) != 2 || string(full.Results[1].Data) != "png1" || len(full.Results[1].Parts) != 2 ||
		string(full.Results[1].Parts[1]) != "att1-2" {
		t.Fatalf("get: %+v", full.Results)
	}
}

// ClaimCapped takes no more jobs from a lane than its cap (a worker's free
// data-set slots), the other lanes up to the limit.
func contractClaimsCappedPerLane(t *testing.T, newBackend newBackendFunc) {
	t.Parallel()
	q := newBackend(t, contractConfig())
	ctx := t.Context()
	for range 3 {
		mustEnqueue(t, q, job("alice", queue.Batch, 1))
	}
	mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	if ls, err := q.ClaimCapped(ctx, "w1", 5, 0, map[queue.Lane]int{queue.Batch: 0, queue.Interactive: 0}); err != nil || len(ls) != 0 {
		t.Fatalf("capped at 0 everywhere: %d leases, %v", len(ls), err)
	}
	ls, err := q.ClaimCapped(ctx, "w1", 5, 0, map[queue.Lane]int{queue.Batch: 1})
	if err != nil || len(ls) != 2 || ls[0].Job.Lane != queue.Interactive || ls[1].Job.Lane != queue.Batch {
		t.Fatalf("batch capped at 1: %d leases, %v", len(ls), err)
	}
	if ls, err := q.ClaimCapped(ctx, "w1", 5, 0, map[queue.Lane]int{queue.Batch: 0}); err != nil || len(ls) != 0 {
		t.Fatalf("batch capped at 0: %d leases, %v", len(ls), err)
	}
	if ls, err := q.Claim(ctx, "w1", 5, 0); err != nil || len(ls) != 2 {
		t.Fatalf("uncapped: %d leases, %v", len(ls), err)
	}
}
