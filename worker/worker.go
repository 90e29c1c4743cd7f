// Package worker is the generation worker loop: it claims jobs from a
// queue (the interactive lane first), batches the images of several jobs of
// one model into one generator call, stores every image as soon as its
// batch is done (so progress streams to clients), and acknowledges each job
// once all its images are stored.
//
// It depends only on the two small interfaces it declares, Queue and
// Generator; *queue.Redis, *queue.Embedded and *generator.Service have
// their method sets.
//
// Batching: a loop claims jobs while its next batch has room (counted in
// images), asking for as many jobs as the room holds at the size of the
// last job claimed, so that it does not hoard large jobs that an idle
// worker could take. An idle loop blocks up to Config.ClaimWait for a
// first job, then waits up to Config.MaxWait for more. A batch takes the
// first held job (interactive lane first, then claim order) and fills up
// to Config.MaxBatch images from the held jobs of the same model; a job
// larger than a batch runs over several, storing its images batch by
// batch. Morphs and interpolations run alone. Since a loop claims only
// when its next batch has room, a newly queued interactive job may wait on
// that loop behind the images it already holds (at most jobspec.MaxN /
// MaxBatch batches); other loops and workers take it meanwhile, and once
// claimed it runs before held batch-lane jobs.
//
// Delivery is at least once: a job may run again after a crash or a lost
// lease, and since an image depends only on (model, request, seed), the
// rerun makes the same bytes; the queue keeps the first result stored per
// index.
//
// Failures:
//   - a request error (the spec does not decode, or the generator answers a
//     *generator.FieldError: unknown class, prompt with no known word...)
//     fails the job for good, with a message naming the field;
//   - any other error (graph run, queue write) fails it retryably: the queue
//     delivers it again after a backoff, up to its MaxDeliveries; a batch
//     of several jobs that fails is run again job by job first, so that one
//     bad job fails alone;
//   - a client's cancellation, seen by the heartbeat or when a result is
//     stored, stops the job at the end of the running batch (at once when
//     the batch holds nothing else) and records it as cancelled;
//   - a lost lease (another worker took the job over) stops the job with no
//     further write.
//
// Run stops claiming when its context ends, lets held jobs finish within
// Config.DrainTimeout, and hands back (retryable fail) what is still
// unfinished then, so that another worker takes it over after the queue's
// retry backoff rather than after its lease runs out.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
)

// Queue is what the worker needs of a queue backend.
type Queue interface {
	Claim(ctx context.Context, worker string, max int, wait time.Duration) ([]queue.Lease, error)
	Extend(ctx context.Context, l queue.Lease) error
	PutResult(ctx context.Context, l queue.Lease, r queue.Result) error
	Ack(ctx context.Context, l queue.Lease) error
	Fail(ctx context.Context, l queue.Lease, cause error, retryable bool) error
}

// Generator is what the worker needs of the models.
type Generator interface {
	Validate(model string, r generator.Request) error
	Generate(ctx context.Context, model string, reqs []generator.Request) ([][]generator.Image, error)
	Morph(ctx context.Context, model string, data []byte, target string) (generator.Image, error)
	Interpolate(ctx context.Context, model string, from, to generator.Endpoint, steps int) ([]generator.Image, error)
}

// Config tunes a Worker. Zero fields take the defaults named.
type Config struct {
	// Name identifies the worker in the queue (Job.Worker); loop i of
	// Concurrency claims as "Name/i". Required.
	Name string
	// Concurrency is the number of loops, each claiming and generating on
	// its own (default 1). The generator needs as many sessions per graph
	// (generator.Config.PoolSize) for them to run at once.
	Concurrency int
	// MaxBatch is the most images in one generator call, gathered across
	// the jobs of one model (default 8). The generator's own MaxBatch
	// should be at least this.
	MaxBatch int
	// MaxWait is how long a loop that just found work waits for more jobs
	// to fill its batch (default 5ms; negative: no wait).
	MaxWait time.Duration
	// ClaimWait is how long one idle Claim blocks (default 1s).
	ClaimWait time.Duration
	// Heartbeat is the interval of lease extensions; it is also how soon a
	// cancellation is noticed while a batch runs. Keep it well below the
	// queue's LeaseTTL (default 1s).
	Heartbeat time.Duration
	// DrainTimeout bounds how long held jobs may run after Run's context
	// ends (default 30s); then they are handed back.
	DrainTimeout time.Duration
	// HandBackTimeout bounds the queue calls that hand jobs back at
	// shutdown (default 5s).
	HandBackTimeout time.Duration
	// ErrorBackoff is the pause of an idle loop after a queue error
	// (default 1s).
	ErrorBackoff time.Duration
	// StoreRetry bounds how long storing a result, acking or failing a job
	// is repeated while the queue store is unreachable (queue.Unavailable:
	// a Redis restart or network blip), so that finished work is not
	// redone (default 30s). A lease lost meanwhile stops the job as usual.
	StoreRetry time.Duration
	// Datasets makes the data sets of dataset jobs (batch lane); nil: this
	// worker fails them for good. DatasetsDir is the folder that holds one
	// directory per dataset job (<DatasetsDir>/<job id>); the API serves
	// downloads from the same folder, so with several machines it must be
	// shared storage. DatasetSlots is how many data sets run at once
	// (default 1): a claim takes no more batch-lane jobs than there are
	// free slots (when the queue can cap claims: CappedQueue), so the
	// others stay queued for workers with room.
	Datasets     DatasetMaker
	DatasetsDir  string
	DatasetSlots int
}

func (c Config) withDefaults() Config {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxBatch < 1 {
		c.MaxBatch = 8
	}
	if c.MaxWait == 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.ClaimWait <= 0 {
		c.ClaimWait = time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.HandBackTimeout <= 0 {
		c.HandBackTimeout = 5 * time.Second
	}
	if c.ErrorBackoff <= 0 {
		c.ErrorBackoff = time.Second
	}
	if c.StoreRetry <= 0 {
		c.StoreRetry = 30 * time.Second
	}
	if c.DatasetSlots < 1 {
		c.DatasetSlots = 1
	}
	return c
}

// Worker runs Config.Concurrency loops against one queue and generator.
type Worker struct {
	cfg     Config
	q       Queue
	gen     Generator
	metrics *metrics
	log     *slog.Logger

	datasets     sync.WaitGroup // running dataset jobs
	datasetSlots chan struct{}
	datasetsHeld atomic.Int32 // dataset jobs claimed and not yet ended
}

// CappedQueue is a Queue that can cap the jobs one claim takes per lane
// (*queue.Redis and *queue.Embedded are): the worker claims no more
// batch-lane (data-set) jobs than it has free DatasetSlots.
type CappedQueue interface {
	ClaimCapped(ctx context.Context, worker string, max int, wait time.Duration, caps map[queue.Lane]int) ([]queue.Lease, error)
}

// New makes a worker and registers its metrics with reg (nil: none).
func New(cfg Config, q Queue, gen Generator, reg prometheus.Registerer, log *slog.Logger) (*Worker, error) {
	if cfg.Name == "" {
		return nil, errors.New("worker: config needs a name")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	m.loops.Set(float64(cfg.Concurrency))
	return &Worker{cfg: cfg, q: q, gen: gen, metrics: m, log: log, datasetSlots: make(chan struct{}, cfg.DatasetSlots)}, nil
}

// Config is the effective configuration, defaults filled.
func (w *Worker) Config() Config { return w.cfg }

// Run consumes jobs until ctx ends, then drains (see the package comment)
// and returns. It returns an error only when the queue is closed under it.
func (w *Worker) Run(ctx context.Context) error {
	errs := make([]error, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range w.cfg.Concurrency {
		l := &loop{w: w, name: fmt.Sprintf("%s/%d", w.cfg.Name, i), log: w.log.With("worker", fmt.Sprintf("%s/%d", w.cfg.Name, i))}
		wg.Go(func() { errs[i] = l.run(ctx) })
	}
	wg.Wait()
	w.datasets.Wait()
	return errors.Join(errs...)
}
