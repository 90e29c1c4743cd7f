// Command chaosworker is the worker the chaos tests start, kill and cut
// off: it claims jobs in batches from the Redis queue and runs a no-op
// model that writes a small fake result per unit after a fixed delay.
//
// It prints one line per event the tests look for:
//
//	claimed job=<id> attempt=<n>
//	stored job=<id> index=<i> attempt=<n>
//	acked job=<id> attempt=<n>
//	leaselost job=<id> attempt=<n> op=<extend|put|ack> index=<i, for put>
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/fgstudio/fgstudio/queue"
)

func main() {
	var (
		url    = flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
		name   = flag.String("name", "chaos", "worker name")
		prefix = flag.String("prefix", "{chaos}:", "key prefix")
		lease  = flag.Duration("lease", time.Second, "lease TTL")
		maxDel = flag.Int("max-deliveries", 50, "deliveries before a job fails")
		batch  = flag.Int("batch", 4, "jobs claimed at once")
		unit   = flag.Duration("unit", 20*time.Millisecond, "time per unit of work")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := queue.Config{Prefix: *prefix, LeaseTTL: *lease, MaxDeliveries: *maxDel, PollInterval: 50 * time.Millisecond}
	var q *queue.Redis
	for {
		var err error
		if q, err = queue.NewRedis(ctx, *url, cfg, log); err == nil {
			break
		}
		log.Warn("connect", "err", err)
		if ctx.Err() != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer q.Close()
	w := &worker{q: q, name: *name, unit: *unit, lease: *lease, log: log}
	for ctx.Err() == nil {
		leases, err := q.Claim(ctx, *name, *batch, time.Second)
		if err != nil {
			log.Warn("claim", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(leases) > 0 {
			w.run(ctx, leases)
		}
	}
}

type worker struct {
	q     *queue.Redis
	name  string
	unit  time.Duration
	lease time.Duration
	log   *slog.Logger
	out   sync.Mutex
}

func (w *worker) say(format string, args ...any) {
	w.out.Lock()
	defer w.out.Unlock()
	fmt.Printf(format+"\n", args...)
}

// retry repeats op through transient errors (Redis down, link cut) and
// stops at the first fencing answer.
func (w *worker) retry(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || errors.Is(err, queue.ErrLeaseLost) || errors.Is(err, queue.ErrCancelled) ||
			errors.Is(err, queue.ErrInvalid) || ctx.Err() != nil {
			return err
		}
		w.log.Warn("transient error, retrying", "err", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// run processes one batch: unit i of every job, then unit i+1, as a
// batched graph call would; a heartbeat extends every lease meanwhile.
func (w *worker) run(ctx context.Context, leases []queue.Lease) {
	var mu sync.Mutex
	live := map[string]queue.Lease{}
	for _, l := range leases {
		live[l.Job.ID] = l
		w.say("claimed job=%s attempt=%d", l.Job.ID, l.Attempt)
	}
	drop := func(l queue.Lease, op string, err error) {
		mu.Lock()
		delete(live, l.Job.ID)
		mu.Unlock()
		if errors.Is(err, queue.ErrLeaseLost) {
			w.say("leaselost job=%s attempt=%d op=%s", l.Job.ID, l.Attempt, op)
		} else if errors.Is(err, queue.ErrCancelled) {
			_ = w.retry(ctx, func() error { return w.q.Fail(ctx, l, err, false) })
		}
	}

	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		t := time.NewTicker(w.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			ls := make([]queue.Lease, 0, len(live))
			for _, l := range live {
				ls = append(ls, l)
			}
			mu.Unlock()
			for _, l := range ls {
				// A transient heartbeat error is not fatal: the lease may
				// still hold; fencing decides at the next write.
				if err := w.q.Extend(hbCtx, l); errors.Is(err, queue.ErrLeaseLost) {
					drop(l, "extend", err)
				}
			}
		}
	}()

	most := 0
	for _, l := range leases {
		most = max(most, l.Job.Total)
	}
	for i := range most {
		time.Sleep(w.unit) // the "graph call" for unit i of the whole batch
		for _, l := range leases {
			mu.Lock()
			_, ok := live[l.Job.ID]
			mu.Unlock()
			if !ok || i >= l.Job.Total {
				continue
			}
			data := fmt.Sprintf("job=%s index=%d attempt=%d worker=%s", l.Job.ID, i, l.Attempt, w.name)
			err := w.retry(ctx, func() error {
				return w.q.PutResult(ctx, l, queue.Result{Index: i, Data: []byte(data), Meta: []byte(`{"score":1}`)})
			})
			if err != nil {
				drop(l, fmt.Sprintf("put index=%d", i), err)
				continue
			}
			w.say("stored job=%s index=%d attempt=%d", l.Job.ID, i, l.Attempt)
		}
	}
	for _, l := range leases {
		mu.Lock()
		_, ok := live[l.Job.ID]
		mu.Unlock()
		if !ok {
			continue
		}
		if err := w.retry(ctx, func() error { return w.q.Ack(ctx, l) }); err != nil {
			drop(l, "ack", err)
			continue
		}
		w.say("acked job=%s attempt=%d", l.Job.ID, l.Attempt)
	}
}
