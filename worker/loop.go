package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
)

// errShutdown is the cause recorded on jobs handed back at shutdown.
var errShutdown = errors.New("worker shutting down: job handed back")

// loop is one claim → generate → store cycle. Only its own goroutine
// changes its tasks; the heartbeat reads them under mu.
type loop struct {
	w    *Worker
	name string
	log  *slog.Logger

	mu    sync.Mutex
	tasks []*task // held jobs in priority order

	seq   uint64
	lastN int // images of the last job claimed: how many jobs to ask for
}

// run consumes until ctx ends, then drains. Queue writes use a context
// that outlives ctx by DrainTimeout, so that held jobs can finish.
func (l *loop) run(ctx context.Context) error {
	cfg := l.w.cfg
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		l.log.Info("worker stopping: no new jobs; finishing held ones", "held", l.held(), "drain_timeout", cfg.DrainTimeout)
		time.AfterFunc(cfg.DrainTimeout, cancelWork)
	})
	defer stopDrainTimer()

	hbCtx, stopHeartbeat := context.WithCancel(work)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		l.heartbeat(hbCtx)
	}()
	defer func() {
		stopHeartbeat()
		<-hbDone
	}()

	for {
		if work.Err() != nil { // drain timeout
			l.handBack(ctx)
			return nil
		}
		l.settleStopped(work)
		if ctx.Err() == nil {
			if err := l.fill(ctx, work); err != nil {
				return err
			}
		}
		b := l.next()
		if b == nil {
			if ctx.Err() != nil && l.held() == 0 {
				return nil
			}
			continue
		}
		l.runBatch(work, b)
		if work.Err() == nil {
			l.settleFinished(work)
		}
	}
}

func (l *loop) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tasks)
}

// pendingImages counts the images the held jobs still need.
func (l *loop) pendingImages() int {
	n := 0
	for _, t := range l.tasks {
		if t.stopped() == nil {
			n += len(t.pending)
		}
	}
	return n
}

// fill claims jobs while the next batch has room. An idle loop blocks up
// to ClaimWait for a first job, then up to MaxWait more to coalesce; a busy
// one only takes what is already waiting. It fails only when the queue is
// closed.
func (l *loop) fill(ctx, work context.Context) error {
	cfg := l.w.cfg
	room := cfg.MaxBatch - l.pendingImages()
	if room <= 0 {
		return nil
	}
	var deadline time.Time
	if len(l.tasks) == 0 {
		got, err := l.claim(ctx, work, 1, cfg.ClaimWait)
		if err != nil || got == 0 {
			return err
		}
		deadline = time.Now().Add(cfg.MaxWait)
		room = cfg.MaxBatch - l.pendingImages()
	}
	for room > 0 && len(l.tasks) < cfg.MaxBatch && ctx.Err() == nil {
		// Ask for as many jobs as the room holds at the size of the last
		// one, so that large jobs are not hoarded from other workers.
		limit := min(max(1, room/max(1, l.lastN)), cfg.MaxBatch-len(l.tasks))
		got, err := l.claim(ctx, work, limit, max(0, time.Until(deadline)))
		if err != nil || got == 0 {
			return err
		}
		room = cfg.MaxBatch - l.pendingImages()
	}
	return nil
}

// claim asks the queue for up to limit jobs and accepts them; it returns
// how many leases came.
func (l *loop) claim(ctx, work context.Context, limit int, wait time.Duration) (int, error) {
	leases, reserved, err := l.w.claim(ctx, l.name, limit, wait)
	// Each batch-lane lease takes one of the dataset slots reserved for
	// this claim; those left over are free again.
	defer func() { l.w.datasetsHeld.Add(-int32(reserved)) }()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return 0, nil
		case errors.Is(err, queue.ErrClosed):
			return 0, fmt.Errorf("worker %s: %w", l.name, err)
		}
		l.log.Warn("claim failed", "err", err)
		if len(l.tasks) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(l.w.cfg.ErrorBackoff):
			}
		}
		return 0, nil
	}
	for _, ls := range leases {
		slot := reserved > 0 && ls.Job.Lane == queue.Batch
		if slot {
			reserved--
		}
		l.accept(ctx, work, ls, slot)
	}
	return len(leases), nil
}

// accept checks a claimed job and holds it, or fails it for good when its
// spec is unusable. A dataset job runs beside the loop and stops with
// runCtx (Run's context, not the drain context: it is handed back and
// continued by the next delivery).
func (l *loop) accept(runCtx, ctx context.Context, ls queue.Lease, slot bool) {
	spec, err := jobspec.Unmarshal(ls.Job.Spec)
	if err == nil && spec.Kind == jobspec.Dataset && ls.Job.Total == spec.Total() {
		l.startDataset(runCtx, ls, spec, slot)
		return
	}
	if slot { // a batch-lane job that is no data set
		l.w.datasetsHeld.Add(-1)
	}
	if err == nil {
		err = checkJob(ls.Job, spec, l.w.gen)
	}
	if err != nil {
		l.fail(ctx, ls, requestCause(err), false)
		return
	}
	l.seq++
	l.lastN = spec.Total()
	t := newTask(ls, spec, l.seq)
	l.mu.Lock()
	i, _ := slices.BinarySearchFunc(l.tasks, t, func(a, b *task) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	l.tasks = slices.Insert(l.tasks, i, t)
	l.mu.Unlock()
	l.log.Debug("job claimed", "job_id", t.id(), "model", spec.Model, "kind", spec.Kind,
		"images", spec.Total(), "attempt", ls.Attempt)
}

// checkJob is what can be refused before anything runs.
func checkJob(j queue.Job, s jobspec.Spec, gen Generator) error {
	if j.Model != "" && j.Model != s.Model {
		return &jobspec.FieldError{Field: "model", Reason: fmt.Sprintf("job is queued for %q but its spec names %q", j.Model, s.Model)}
	}
	if j.Total != s.Total() {
		return &jobspec.FieldError{Field: "n", Reason: fmt.Sprintf("job expects %d results but its spec makes %d", j.Total, s.Total())}
	}
	if s.Kind == jobspec.Generate {
		return gen.Validate(s.Model, generator.Request{Prompt: s.Prompt, Class: s.Class, N: s.N, Seed: s.Seed})
	}
	return nil
}

// remove takes a task out of the held set.
func (l *loop) remove(t *task) {
	l.mu.Lock()
	l.tasks = slices.DeleteFunc(l.tasks, func(x *task) bool { return x == t })
	l.mu.Unlock()
	t.finished = true
}

// settleStopped ends the tasks that were cancelled or lost their lease.
func (l *loop) settleStopped(ctx context.Context) {
	for _, t := range slices.Clone(l.tasks) {
		if t.stopped() != nil {
			l.settle(ctx, t)
		}
	}
}

// settleFinished acks the tasks with every image stored, and ends stopped ones.
func (l *loop) settleFinished(ctx context.Context) {
	for _, t := range slices.Clone(l.tasks) {
		switch {
		case t.stopped() != nil || t.stored == t.spec.Total():
			l.settle(ctx, t)
		case len(t.pending) == 0:
			// Cannot happen; if it did, the loop would spin on a job
			// with nothing left to run.
			l.remove(t)
			l.fail(ctx, t.lease, fmt.Errorf("internal: %d of %d images stored and none left to make", t.stored, t.spec.Total()), true)
		}
	}
}

// handBack ends every held task at shutdown: finished ones are acked,
// cancelled ones recorded, the rest failed retryably so that another
// worker takes them at once.
func (l *loop) handBack(ctx context.Context) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.w.cfg.HandBackTimeout)
	defer cancel()
	for _, t := range slices.Clone(l.tasks) {
		l.settle(hctx, t)
	}
}

// settle ends one held task according to its state.
func (l *loop) settle(ctx context.Context, t *task) {
	l.remove(t)
	switch stop := t.stopped(); {
	case errors.Is(stop, queue.ErrLeaseLost):
		l.w.metrics.jobs.WithLabelValues(outcomeLost).Inc()
		l.log.Info("lease lost: job dropped without further writes", "job_id", t.id(), "attempt", t.lease.Attempt)
	case errors.Is(stop, queue.ErrCancelled):
		l.fail(ctx, t.lease, queue.ErrCancelled, false)
	case t.stored == t.spec.Total():
		l.ack(ctx, t)
	default:
		l.fail(ctx, t.lease, errShutdown, true)
	}
}

// claim asks for up to limit jobs. When the queue can cap a claim per lane
// and this worker makes data sets, it first reserves every free dataset
// slot (so that two loops claiming at once cannot both take the last one)
// and takes at most that many batch-lane jobs; it returns how many slots
// it reserved, which the caller hands to batch-lane leases or frees.
func (w *Worker) claim(ctx context.Context, name string, limit int, wait time.Duration) ([]queue.Lease, int, error) {
	cq, ok := w.q.(CappedQueue)
	if !ok || w.cfg.Datasets == nil {
		leases, err := w.q.Claim(ctx, name, limit, wait)
		return leases, 0, err
	}
	free := 0
	for {
		held := w.datasetsHeld.Load()
		free = max(0, w.cfg.DatasetSlots-int(held))
		if free == 0 || w.datasetsHeld.CompareAndSwap(held, held+int32(free)) {
			break
		}
	}
	leases, err := cq.ClaimCapped(ctx, name, limit, wait, map[queue.Lane]int{queue.Batch: free})
	return leases, free, err
}

// persist runs a queue write, repeating it with backoff (100ms doubling
// up to ErrorBackoff) while the store is unreachable, for up to StoreRetry.
func (l *loop) persist(ctx context.Context, what, jobID string, write func() error) error {
	deadline := time.Now().Add(l.w.cfg.StoreRetry)
	wait := 100 * time.Millisecond
	for {
		err := write()
		if err == nil || !queue.Unavailable(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		l.log.Warn("queue unreachable: repeating "+what, "job_id", jobID, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, l.w.cfg.ErrorBackoff)
	}
}

func (l *loop) ack(ctx context.Context, t *task) {
	err := l.persist(ctx, "ack", t.id(), func() error { return l.w.q.Ack(ctx, t.lease) })
	switch {
	case err == nil:
		l.w.metrics.jobs.WithLabelValues(outcomeSucceeded).Inc()
		l.log.Debug("job done", "job_id", t.id(), "images", t.stored)
	case errors.Is(err, queue.ErrLeaseLost):
		l.w.metrics.jobs.WithLabelValues(outcomeLost).Inc()
		l.log.Info("lease lost before ack: job dropped", "job_id", t.id())
	case errors.Is(err, queue.ErrCancelled):
		l.fail(ctx, t.lease, queue.ErrCancelled, false)
	default:
		// The lease runs out and another worker reruns the job; the images
		// stored are kept, so the rerun only acks.
		l.w.metrics.jobs.WithLabelValues(outcomeError).Inc()
		l.log.Error("ack failed", "job_id", t.id(), "err", err)
	}
}

// fail ends a lease with cause; cancellations are recorded as such.
func (l *loop) fail(ctx context.Context, ls queue.Lease, cause error, retryable bool) {
	outcome := outcomeFailed
	switch {
	case errors.Is(cause, queue.ErrCancelled):
		outcome = outcomeCancelled
	case errors.Is(cause, errShutdown):
		outcome = outcomeHandedBack
	case retryable:
		outcome = outcomeRetried
	}
	err := l.persist(ctx, "fail", ls.Job.ID, func() error { return l.w.q.Fail(ctx, ls, cause, retryable) })
	switch {
	case err == nil:
		l.w.metrics.jobs.WithLabelValues(outcome).Inc()
		lvl := slog.LevelInfo // the client's doing, or shutdown
		if outcome == outcomeRetried {
			lvl = slog.LevelWarn
		}
		l.log.Log(ctx, lvl, "job ended early", "job_id", ls.Job.ID, "outcome", outcome, "err", cause)
	case errors.Is(err, queue.ErrLeaseLost):
		l.w.metrics.jobs.WithLabelValues(outcomeLost).Inc()
		l.log.Info("lease lost before fail: job dropped", "job_id", ls.Job.ID, "cause", cause)
	default:
		l.w.metrics.jobs.WithLabelValues(outcomeError).Inc()
		l.log.Error("fail job", "job_id", ls.Job.ID, "cause", cause, "err", err)
	}
}

// heartbeat extends every held lease each Heartbeat, and stops the tasks
// that the queue says are cancelled or no longer this worker's.
func (l *loop) heartbeat(ctx context.Context) {
	tick := time.NewTicker(l.w.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.mu.Lock()
		tasks := slices.Clone(l.tasks)
		l.mu.Unlock()
		for _, t := range tasks {
			if t.stopped() != nil {
				continue
			}
			err := l.w.q.Extend(ctx, t.lease)
			switch {
			case err == nil:
			case errors.Is(err, queue.ErrCancelled):
				t.stop(queue.ErrCancelled)
			case errors.Is(err, queue.ErrLeaseLost):
				t.stop(queue.ErrLeaseLost)
			case ctx.Err() != nil:
				return
			default:
				l.log.Warn("heartbeat failed", "job_id", t.id(), "err", err)
			}
		}
	}
}
