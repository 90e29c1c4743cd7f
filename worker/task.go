package worker

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
)

// task is one held job: its lease, what is left to make, and the best
// image so far of each index still under the fidelity bar.
type task struct {
	lease queue.Lease
	spec  jobspec.Spec
	seq   uint64 // claim order within the loop

	pending  []unit      // images still to make, in order
	tries    map[int]int // images made so far per index
	best     map[int]candidate
	stored   int  // indices stored
	finished bool // no longer held

	mu      sync.Mutex
	stopErr error // queue.ErrCancelled or queue.ErrLeaseLost, set once
	guard   *batchGuard
}

// unit is one image to make: try (0-based) of index.
type unit struct {
	index, try int
}

type candidate struct {
	img      generator.Image
	fidelity float64
	measure  string
}

func newTask(l queue.Lease, s jobspec.Spec, seq uint64) *task {
	t := &task{lease: l, spec: s, seq: seq, tries: map[int]int{}, best: map[int]candidate{}}
	for i := range s.Total() {
		t.pending = append(t.pending, unit{index: i})
	}
	return t
}

func (t *task) id() string { return t.lease.Job.ID }

// priority orders held tasks: interactive lane first, then claim order.
func (t *task) before(o *task) bool {
	pi, po := t.lease.Job.Lane == queue.Batch, o.lease.Job.Lane == queue.Batch
	if pi != po {
		return !pi
	}
	return t.seq < o.seq
}

// stop records why the job must stop (first cause wins) and cancels the
// batch it runs in once no live task is left in it.
func (t *task) stop(cause error) {
	t.mu.Lock()
	if t.stopErr != nil {
		t.mu.Unlock()
		return
	}
	t.stopErr = cause
	g := t.guard
	t.mu.Unlock()
	if g != nil {
		g.release()
	}
}

func (t *task) stopped() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopErr
}

// batchGuard cancels a batch's context when every task in it has stopped,
// so that a cancelled or lost job does not hold the loop until its batch
// ends.
type batchGuard struct {
	live   atomic.Int32
	cancel context.CancelFunc
}

func (g *batchGuard) release() {
	if g.live.Add(-1) == 0 {
		g.cancel()
	}
}

// guardBatch attaches a guard to tasks; the returned function detaches it.
func guardBatch(tasks []*task, cancel context.CancelFunc) func() {
	g := &batchGuard{cancel: cancel}
	g.live.Store(int32(len(tasks)))
	for _, t := range tasks {
		t.mu.Lock()
		dead := t.stopErr != nil
		if !dead {
			t.guard = g
		}
		t.mu.Unlock()
		if dead {
			g.release()
		}
	}
	return func() {
		for _, t := range tasks {
			t.mu.Lock()
			t.guard = nil
			t.mu.Unlock()
		}
	}
}
