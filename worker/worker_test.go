package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
)

func gen(model, prompt string, n int, seed uint64) jobspec.Spec {
	return jobspec.Spec{Kind: jobspec.Generate, Model: model, Prompt: prompt, N: n, Seed: seed}
}

// checkImages asserts that a finished job holds, per index, the image of
// its seed and a meta that says so.
func checkImages(t *testing.T, j queue.Job, s jobspec.Spec) {
	t.Helper()
	if len(j.Results) != s.N {
		t.Fatalf("job %s: %d results, want %d", j.ID, len(j.Results), s.N)
	}
	for i, m := range metas(t, j) {
		seed := s.Seed + uint64(i)
		want := fakePNG(s.Model, generator.Request{Prompt: s.Prompt, Class: s.Class}, seed)
		if !bytes.Equal(j.Results[i].Data, want) || m.Index != i || m.Seed != seed || m.Size != 64 || m.Attempts != 1 {
			t.Fatalf("job %s result %d: data %q meta %+v; want %q", j.ID, i, j.Results[i].Data, m, want)
		}
	}
}

// Jobs of one model waiting together run as one generator call, up to
// MaxBatch images; models are never mixed; each job gets exactly its own
// images.
func TestBatchesAcrossJobs(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		specs := []jobspec.Spec{
			gen("m-a", "red bird", 2, 10), gen("m-a", "blue bird", 2, 20), gen("m-a", "red bird", 2, 30),
			gen("m-a", "tiny bird", 2, 40), gen("m-b", "red bird", 2, 50), gen("m-a", "red bird", 2, 60),
			gen("m-a", "red bird", 2, 70),
		}
		var jobs []queue.Job
		for _, s := range specs {
			jobs = append(jobs, enqueue(t, q, queue.Interactive, s))
		}
		f := newFake()
		w := start(t, testWorkerConfig(), q, f)
		for i, j := range jobs {
			checkImages(t, waitState(t, q, j.ID, queue.Succeeded), specs[i])
		}
		var sizes []string
		for _, c := range f.batches() {
			sizes = append(sizes, fmt.Sprintf("%d/%d", len(c), images(c)))
		}
		// Claimed in order: the first four (8 images) fill a batch; then
		// m-b's job runs alone, and the last two m-a jobs together.
		if got := strings.Join(sizes, " "); got != "4/8 1/2 2/4" {
			t.Fatalf("generator calls (requests/images): %s, want 4/8 1/2 2/4", got)
		}
		if got := w.counterReaches(t, "studio_worker_jobs_total", "succeeded", 7); got != 7 {
			t.Fatalf("succeeded counter %v", got)
		}
		if got := w.counter(t, "studio_worker_batch_images", ""); got != 3 {
			t.Fatalf("batch histogram has %v samples, want 3", got)
		}
	})
}

// The interactive lane is served before the batch lane.
func TestInteractiveFirst(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		bj := enqueue(t, q, queue.Batch, gen("m-batch", "red bird", 1, 1))
		ij := enqueue(t, q, queue.Interactive, gen("m-inter", "red bird", 1, 1))
		f := newFake()
		start(t, testWorkerConfig(), q, f)
		waitState(t, q, bj.ID, queue.Succeeded)
		waitState(t, q, ij.ID, queue.Succeeded)
		if got := strings.Join(f.callModels(), " "); got != "m-inter m-batch" {
			t.Fatalf("generator calls by model: %s, want m-inter m-batch", got)
		}
	})
}

// A job of the interactive lane claimed while batch-lane jobs are held
// runs before them.
func TestInteractiveOvertakesHeldBatchJobs(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.MaxBatch = 4
		enqueue(t, q, queue.Batch, gen("m-a", "bird", 2, 0))
		b2 := enqueue(t, q, queue.Batch, gen("m-b", "bird", 2, 0))
		start(t, cfg, q, f)
		<-f.entered // m-a runs; m-b is held, waiting
		eventually(t, "m-b held", func() bool { return get(t, q, b2.ID).State == queue.Running })
		ij := enqueue(t, q, queue.Interactive, gen("m-c", "bird", 1, 0))
		for range 3 {
			f.gate <- struct{}{}
		}
		waitState(t, q, ij.ID, queue.Succeeded)
		waitState(t, q, b2.ID, queue.Succeeded)
		if got := strings.Join(f.callModels(), " "); got != "m-a m-c m-b" {
			t.Fatalf("generator calls by model: %s, want m-a m-c m-b", got)
		}
	})
}

// Several loops share the work; every job completes exactly once.
func TestManyLoops(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		var jobs []queue.Job
		var specs []jobspec.Spec
		for i := range 30 {
			s := gen(fmt.Sprintf("m-%d", i%3), "bird", 1+i%4, uint64(100*i))
			specs = append(specs, s)
			jobs = append(jobs, enqueue(t, q, queue.Interactive, s))
		}
		cfg := testWorkerConfig()
		cfg.Concurrency = 3
		w := start(t, cfg, q, newFake())
		for i, j := range jobs {
			checkImages(t, waitState(t, q, j.ID, queue.Succeeded), specs[i])
		}
		if got := w.counterReaches(t, "studio_worker_jobs_total", "succeeded", 30); got != 30 {
			t.Fatalf("succeeded %v, want 30", got)
		}
		if got := w.counter(t, "studio_worker_loops", ""); got != 3 {
			t.Fatalf("loops gauge %v", got)
		}
	})
}

// Morphs and interpolations run through the same loop.
func TestMorphAndInterpolate(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		m := enqueue(t, q, queue.Interactive, jobspec.Spec{Kind: jobspec.Morph, Model: "m-c", Class: "cardinal", Image: []byte("jpeg")})
		ip := enqueue(t, q, queue.Interactive, jobspec.Spec{Kind: jobspec.Interpolate, Model: "m-c", N: 3,
			From: &jobspec.Endpoint{Class: "a", Seed: 1}, To: &jobspec.Endpoint{Class: "b", Seed: 2}})
		start(t, testWorkerConfig(), q, newFake())
		if j := waitState(t, q, m.ID, queue.Succeeded); string(j.Results[0].Data) != "morph|cardinal|jpeg" {
			t.Fatalf("morph result %q", j.Results[0].Data)
		}
		j := waitState(t, q, ip.ID, queue.Succeeded)
		for i, r := range j.Results {
			if string(r.Data) != fmt.Sprintf("lerp|a|b|%d", i) {
				t.Fatalf("step %d: %q", i, r.Data)
			}
		}
	})
}

// Images are stored batch by batch: a client sees progress before the
// job ends.
func TestProgressStreamsPerBatch(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.MaxBatch = 2
		j := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 6, 0))
		start(t, cfg, q, f)
		for batch := 1; batch <= 3; batch++ {
			<-f.entered
			if got := get(t, q, j.ID); got.Done != 2*(batch-1) || got.State != queue.Running {
				t.Fatalf("batch %d running: done %d state %s", batch, got.Done, got.State)
			}
			f.gate <- struct{}{}
		}
		checkImages(t, waitState(t, q, j.ID, queue.Succeeded), gen("m-a", "bird", 6, 0))
	})
}

// A cancellation while a batch runs stops the job at once (the heartbeat
// sees it and cancels the batch's context), records it as cancelled, and
// the loop goes on with other jobs.
func TestCancelStopsRunningJob(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.MaxBatch = 2
		j := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 8, 0))
		w := start(t, cfg, q, f)
		<-f.entered
		if _, err := q.Cancel(t.Context(), client, j.ID); err != nil {
			t.Fatal(err)
		}
		got := waitState(t, q, j.ID, queue.Cancelled)
		if got.Done != 0 || len(f.batches()) != 1 {
			t.Fatalf("cancelled job: done %d after %d generator calls", got.Done, len(f.batches()))
		}
		eventually(t, "cancelled counter", func() bool { return w.counter(t, "studio_worker_jobs_total", "cancelled") == 1 })

		next := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 1, 5))
		<-f.entered
		f.gate <- struct{}{}
		waitState(t, q, next.ID, queue.Succeeded)
	})
}

// A cancellation seen when a result is stored stops the job at that batch
// boundary, with no further generator call.
func TestCancelAtBatchBoundary(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.MaxBatch = 2
		cfg.Heartbeat = time.Hour // only PutResult reports the cancellation
		j := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 8, 0))
		start(t, cfg, q, f)
		<-f.entered
		if _, err := q.Cancel(t.Context(), client, j.ID); err != nil {
			t.Fatal(err)
		}
		f.gate <- struct{}{}
		got := waitState(t, q, j.ID, queue.Cancelled)
		if got.Done != 0 || len(f.batches()) != 1 {
			t.Fatalf("cancelled job: done %d after %d generator calls", got.Done, len(f.batches()))
		}
	})
}

// A worker whose lease expired (another worker took the job over) drops
// the job without writing anything; the new holder's results stand.
func TestLeaseLostDropsJobWithoutWrites(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		qcfg := testQueueConfig()
		qcfg.LeaseTTL = 300 * time.Millisecond
		q := newQueue(t, qcfg)
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.Heartbeat = time.Hour // never extends: the lease runs out
		j := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 2, 0))
		w := start(t, cfg, q, f)
		<-f.entered

		ls, err := q.Claim(t.Context(), "thief", 1, 10*time.Second)
		if err != nil || len(ls) != 1 || ls[0].Attempt != 2 {
			t.Fatalf("takeover claim: %v %v", ls, err)
		}
		f.gate <- struct{}{}
		eventually(t, "lost counter", func() bool { return w.counter(t, "studio_worker_jobs_total", "lost") == 1 })
		if got := get(t, q, j.ID); got.Done != 0 || got.Worker != "thief" || got.State != queue.Running {
			t.Fatalf("after the old worker's batch: %+v", got)
		}
		for i := range 2 {
			if err := q.PutResult(t.Context(), ls[0], queue.Result{Index: i, Data: []byte("thief")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Ack(t.Context(), ls[0]); err != nil {
			t.Fatal(err)
		}
		for _, r := range get(t, q, j.ID).Results {
			if string(r.Data) != "thief" {
				t.Fatalf("result %d is %q: the old worker wrote", r.Index, r.Data)
			}
		}
	})
}

// An internal error is retried by the queue, and the retry succeeds.
func TestInternalErrorIsRetried(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.failFirst = 1
		s := gen("m-a", "bird", 3, 7)
		j := enqueue(t, q, queue.Interactive, s)
		w := start(t, testWorkerConfig(), q, f)
		got := waitState(t, q, j.ID, queue.Succeeded)
		checkImages(t, got, s)
		if got.Attempts != 2 {
			t.Fatalf("attempts %d, want 2", got.Attempts)
		}
		if r := w.counterReaches(t, "studio_worker_jobs_total", "retried", 1); r != 1 {
			t.Fatalf("retried counter %v", r)
		}
	})
}

// A job that keeps failing inside a mixed batch fails alone: the other
// jobs of its batch succeed, and it is dead-lettered after the queue's
// MaxDeliveries.
func TestPoisonJobFailsAlone(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		good1 := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 2, 0))
		bad := enqueue(t, q, queue.Interactive, gen("m-a", "boom", 2, 0))
		good2 := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 2, 9))
		start(t, testWorkerConfig(), q, newFake())
		checkImages(t, waitState(t, q, good1.ID, queue.Succeeded), gen("m-a", "bird", 2, 0))
		checkImages(t, waitState(t, q, good2.ID, queue.Succeeded), gen("m-a", "bird", 2, 9))
		got := waitState(t, q, bad.ID, queue.Failed)
		if got.Attempts != 3 || !strings.Contains(got.Error, errBoom.Error()) {
			t.Fatalf("poison job: attempts %d error %q", got.Attempts, got.Error)
		}
	})
}

// Request errors fail the job at once, for good, naming the field.
func TestRequestErrorsFailForGood(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		w := start(t, testWorkerConfig(), q, newFake())
		cases := []struct {
			name  string
			job   queue.NewJob
			field string
		}{
			{"unknown class", queue.NewJob{Model: "m-c", Total: 1,
				Spec: []byte(`{"kind":"generate","model":"m-c","class":"nope","n":1}`)}, "class: "},
			{"unknown model", queue.NewJob{Model: "x", Total: 1,
				Spec: []byte(`{"kind":"generate","model":"x","prompt":"bird","n":1}`)}, "model: "},
			{"spec without kind", queue.NewJob{Model: "m-a", Total: 1,
				Spec: []byte(`{"model":"m-a","prompt":"bird","n":1}`)}, "kind: "},
			{"spec not an object", queue.NewJob{Model: "m-a", Total: 1, Spec: []byte(`[1]`)}, "spec: "},
			{"total differs from n", queue.NewJob{Model: "m-a", Total: 3,
				Spec: []byte(`{"kind":"generate","model":"m-a","prompt":"bird","n":2}`)}, "n: "},
			{"model differs from spec", queue.NewJob{Model: "m-b", Total: 1,
				Spec: []byte(`{"kind":"generate","model":"m-a","prompt":"bird","n":1}`)}, "model: "},
		}
		for _, c := range cases {
			c.job.Client = client
			j, _, err := q.Enqueue(t.Context(), c.job)
			if err != nil {
				t.Fatal(err)
			}
			got := waitState(t, q, j.ID, queue.Failed)
			if got.Attempts != 1 || !strings.HasPrefix(got.Error, c.field) {
				t.Errorf("%s: attempts %d error %q, want one attempt and an error starting %q", c.name, got.Attempts, got.Error, c.field)
			}
		}
		if got := w.counterReaches(t, "studio_worker_jobs_total", "failed", float64(len(cases))); got != float64(len(cases)) {
			t.Fatalf("failed counter %v", got)
		}
	})
}

// min_fidelity: an image below the bar is made again with the index's
// next seed (Seed + try·N + index) until it passes or max_attempts is
// reached; the best try is kept and marked below_min when none passed.
func TestMinFidelityRetries(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.fidelity = func(seed uint64) float64 { return float64(seed%10) / 10 }
		type want struct {
			seed     uint64
			attempts int
			below    bool
		}
		cases := []struct {
			name string
			spec jobspec.Spec
			want []want
		}{
			{"two tries each", jobspec.Spec{Kind: jobspec.Generate, Model: "m-c", Class: "c", N: 3, Seed: 0, MinFidelity: 0.45, MaxAttempts: 2},
				// index 0: seeds 0, 3 (0.0, 0.3); 1: 1, 4; 2: 2, 5 (0.5 passes)
				[]want{{3, 2, true}, {4, 2, true}, {5, 2, false}}},
			{"first try passes", jobspec.Spec{Kind: jobspec.Generate, Model: "m-c", Class: "c", N: 1, Seed: 9, MinFidelity: 0.5, MaxAttempts: 3},
				[]want{{9, 1, false}}},
			{"default attempts", jobspec.Spec{Kind: jobspec.Generate, Model: "m-c", Class: "c", N: 1, Seed: 0, MinFidelity: 0.95},
				[]want{{3, jobspec.DefaultMaxAttempts, true}}},
			{"no bar: one try", jobspec.Spec{Kind: jobspec.Generate, Model: "m-c", Class: "c", N: 2, Seed: 0},
				[]want{{0, 1, false}, {1, 1, false}}},
		}
		var jobs []queue.Job
		for _, c := range cases {
			jobs = append(jobs, enqueue(t, q, queue.Interactive, c.spec))
		}
		w := start(t, testWorkerConfig(), q, f)
		for i, c := range cases {
			j := waitState(t, q, jobs[i].ID, queue.Succeeded)
			for k, m := range metas(t, j) {
				wt := c.want[k]
				wantPNG := fakePNG(c.spec.Model, generator.Request{Class: "c"}, wt.seed)
				if m.Seed != wt.seed || m.Attempts != wt.attempts || m.BelowMin != wt.below ||
					m.Fidelity != float64(wt.seed%10)/10 || m.FidelityMeasure != generator.FidelityClassProbability ||
					!bytes.Equal(j.Results[k].Data, wantPNG) {
					t.Errorf("%s: image %d: meta %+v data %q; want seed %d, %d attempts, below_min %v",
						c.name, k, m, j.Results[k].Data, wt.seed, wt.attempts, wt.below)
				}
			}
		}
		if got := w.counterReaches(t, "studio_worker_images_total", "below_min", 3); got != 3 {
			t.Errorf("below_min counter %v, want 3", got)
		}
		if got := w.counterReaches(t, "studio_worker_images_total", "retried", 6); got != 6 {
			t.Errorf("retried images %v, want 6 (3 + 0 + 3)", got)
		}
		if got := w.counter(t, "studio_worker_fidelity", "class_probability"); got != 7 {
			t.Errorf("fidelity histogram has %v samples, want 7", got)
		}
	})
}

// On shutdown the worker claims nothing more and finishes what it holds.
func TestShutdownFinishesHeldJobs(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{})
		cfg := testWorkerConfig()
		cfg.MaxBatch = 2
		held := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 4, 0))
		w := start(t, cfg, q, f)
		<-f.entered
		w.stop()
		later := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 1, 0))
		f.gate <- struct{}{}
		<-f.entered
		f.gate <- struct{}{}
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
		checkImages(t, get(t, q, held.ID), gen("m-a", "bird", 4, 0))
		if got := get(t, q, held.ID); got.State != queue.Succeeded {
			t.Fatalf("held job %s", got.State)
		}
		if got := get(t, q, later.ID); got.State != queue.Queued || got.Attempts != 0 {
			t.Fatalf("job enqueued after shutdown began: %s, %d attempts", got.State, got.Attempts)
		}
	})
}

// Held jobs not finished within DrainTimeout are handed back, and another
// worker completes them.
func TestShutdownHandsBackUnfinishedJobs(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		f := newFake()
		f.gate = make(chan struct{}) // never opened: the batch outlives the drain
		cfg := testWorkerConfig()
		cfg.MaxBatch = 2
		cfg.DrainTimeout = 50 * time.Millisecond
		j := enqueue(t, q, queue.Interactive, gen("m-a", "bird", 4, 0))
		w := start(t, cfg, q, f)
		<-f.entered
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
		got := get(t, q, j.ID)
		if got.State != queue.Queued || !strings.Contains(got.Error, "shutting down") {
			t.Fatalf("after shutdown: %s %q, want queued again", got.State, got.Error)
		}
		if n := w.counterReaches(t, "studio_worker_jobs_total", "handed_back", 1); n != 1 {
			t.Fatalf("handed_back counter %v", n)
		}

		start(t, cfg, q, newFake())
		done := waitState(t, q, j.ID, queue.Succeeded)
		checkImages(t, done, gen("m-a", "bird", 4, 0))
		if done.Attempts != 2 {
			t.Fatalf("attempts %d, want 2", done.Attempts)
		}
	})
}

// flakyStore makes the first writes of each kind fail as an unreachable
// store would (a Redis restart): the worker repeats them instead of
// handing the job back, so the job succeeds in its first delivery.
type flakyStore struct {
	backend
	mu                   sync.Mutex
	puts, acks, failures int
}

func (f *flakyStore) PutResult(ctx context.Context, l queue.Lease, r queue.Result) error {
	f.mu.Lock()
	f.puts++
	n := f.puts
	f.mu.Unlock()
	if n <= 2 {
		return fmt.Errorf("put: %w: dial tcp: connection refused", queue.ErrUnavailable)
	}
	return f.backend.PutResult(ctx, l, r)
}

func (f *flakyStore) Ack(ctx context.Context, l queue.Lease) error {
	f.mu.Lock()
	f.acks++
	n := f.acks
	f.mu.Unlock()
	if n <= 2 {
		return fmt.Errorf("ack: %w", queue.ErrUnavailable)
	}
	return f.backend.Ack(ctx, l)
}

func TestUnreachableStoreIsRetried(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := &flakyStore{backend: newQueue(t, testQueueConfig())}
		s := gen("m-a", "bird", 3, 7)
		j := enqueue(t, q, queue.Interactive, s)
		start(t, testWorkerConfig(), q, newFake())
		got := waitState(t, q, j.ID, queue.Succeeded)
		checkImages(t, got, s)
		if got.Attempts != 1 {
			t.Fatalf("attempts %d, want 1: the writes were repeated, the job not handed back", got.Attempts)
		}
	})
}
