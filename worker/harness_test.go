package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/worker"
)

// backend is a queue as the tests use it: the worker's side and the
// client's side.
type backend interface {
	worker.Queue
	Enqueue(ctx context.Context, n queue.NewJob) (queue.Job, bool, error)
	Get(ctx context.Context, client, id string) (queue.Job, error)
	Cancel(ctx context.Context, client, id string) (queue.Job, error)
	Close() error
}

var (
	_ backend = (*queue.Redis)(nil)
	_ backend = (*queue.Embedded)(nil)
)

// testQueueConfig keeps the queue's timers short.
func testQueueConfig() queue.Config {
	return queue.Config{
		LeaseTTL:      5 * time.Second,
		MaxDeliveries: 3,
		RetryBackoff:  queue.Backoff{Base: 20 * time.Millisecond, Max: 40 * time.Millisecond},
		ResultTTL:     time.Hour,
		PollInterval:  10 * time.Millisecond,
	}
}

// newQueueFunc makes a fresh queue for one subtest.
type newQueueFunc func(t *testing.T, cfg queue.Config) backend

// backends runs f against the embedded queue and, outside the unit tier,
// the real backends of realparts_test.go (a redis-server).
func backends(t *testing.T, f func(t *testing.T, newQueue newQueueFunc)) {
	t.Run("embedded", func(t *testing.T) {
		f(t, func(t *testing.T, cfg queue.Config) backend {
			q := queue.NewEmbeddedConfig(cfg)
			t.Cleanup(func() { q.Close() })
			return q
		})
	})
	for _, b := range realBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b.start(t)) })
	}
}

// realBackend is a queue backend that needs a real server: start starts
// one for a test and returns how to open fresh queues on it.
type realBackend struct {
	name  string
	start func(t *testing.T) newQueueFunc
}

func quiet() *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testWorkerConfig is quick to notice things and to give up on them.
func testWorkerConfig() worker.Config {
	return worker.Config{
		Name:         "w",
		MaxBatch:     8,
		MaxWait:      5 * time.Millisecond,
		ClaimWait:    50 * time.Millisecond,
		Heartbeat:    20 * time.Millisecond,
		DrainTimeout: 10 * time.Second,
		ErrorBackoff: 20 * time.Millisecond,
	}
}

// running is a worker started in the background.
type running struct {
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

// start runs a worker until the test ends or stop is called.
func start(t *testing.T, cfg worker.Config, q worker.Queue, gen worker.Generator) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := worker.New(cfg, q, gen, reg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{reg: reg, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("worker did not stop")
		}
	})
	return r
}

// wait stops the worker and waits for Run to return.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not stop within 20s")
		return nil
	}
}

// counter reads a counter (or gauge) of the worker's registry.
// counterReaches waits for a counter that the worker bumps after the queue
// has recorded the outcome (so a test that saw the job finish can be a
// moment early) and returns its value once it equals want or after 5 s.
func (r *running) counterReaches(t *testing.T, name, label string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.counter(t, name, label)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *running) counter(t *testing.T, name, label string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// eventually polls cond (generous deadline: the tests assert behaviour,
// not speed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const client = "alice"

func enqueue(t testing.TB, q backend, lane queue.Lane, s jobspec.Spec) queue.Job {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := q.Enqueue(t.Context(), queue.NewJob{Client: client, Lane: lane, Model: s.Model, Spec: raw, Total: s.Total()})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func get(t *testing.T, q backend, id string) queue.Job {
	t.Helper()
	j, err := q.Get(t.Context(), client, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitState waits until the job is in state s.
func waitState(t *testing.T, q backend, id string, s queue.State) queue.Job {
	t.Helper()
	var j queue.Job
	eventually(t, fmt.Sprintf("job %s %s", id, s), func() bool {
		j = get(t, q, id)
		return j.State == s
	})
	return j
}

func metas(t *testing.T, j queue.Job) []jobspec.ImageMeta {
	t.Helper()
	var out []jobspec.ImageMeta
	for _, r := range j.Results {
		var m jobspec.ImageMeta
		if err := json.Unmarshal(r.Meta, &m); err != nil {
			t.Fatalf("meta of %d: %v", r.Index, err)
		}
		out = append(out, m)
	}
	return out
}
