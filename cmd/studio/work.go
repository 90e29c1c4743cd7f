package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/worker"
)

// workQueue is what this process's worker needs of a queue: the worker
// side, and Stats for the queue gauges on /metrics.
type workQueue interface {
	worker.Queue
	queue.StatsReader
}

// newWorker builds the generation worker of this process: loops worker
// loops on q and svc, its metrics and the queue's gauges in reg. Of the
// shutdown timeout, a quarter (at most 5s) is kept for handing unfinished
// jobs back; the rest is for finishing them.
func newWorker(cfg Config, loops int, q workQueue, gen worker.Generator, ds worker.DatasetMaker, reg prometheus.Registerer, log *slog.Logger) (*worker.Worker, error) {
	handBack := min(5*time.Second, cfg.ShutdownTimeout/4)
	maxWait := cfg.MaxWait
	if maxWait == 0 {
		maxWait = -1 // 0s on the command line: no coalescing wait
	}
	w, err := worker.New(worker.Config{
		Name:            workerName(),
		Concurrency:     loops,
		MaxBatch:        cfg.MaxBatch,
		MaxWait:         maxWait,
		DrainTimeout:    cfg.ShutdownTimeout - handBack,
		HandBackTimeout: handBack,
		Datasets:        ds,
		DatasetsDir:     cfg.DatasetsDir,
	}, q, gen, reg, log)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(queue.NewCollector(q, 0)); err != nil {
		return nil, fmt.Errorf("queue metrics: %w", err)
	}
	wc := w.Config()
	log.Info("worker ready", "worker", wc.Name, "loops", wc.Concurrency, "max_batch", wc.MaxBatch,
		"max_wait", wc.MaxWait, "drain_timeout", wc.DrainTimeout, "datasets_dir", wc.DatasetsDir)
	return w, nil
}

// workerName identifies this process in the queue: host and pid.
func workerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// generatorConfig sizes the generator for loops worker loops: a session
// per graph for each, created and run once at load (Warm), so that the
// first job after readiness pays no session creation. The worker sends at most --max-batch images per
// Generate call; the generator's own MaxBatch is also its limit on the
// steps of one interpolation (a single graph run), so it is never below
// the largest n a job may ask for.
func generatorConfig(cfg Config, loops int) generator.Config {
	return generator.Config{PoolSize: loops, MaxBatch: max(cfg.MaxBatch, jobspec.MaxN), Warm: true}
}

// startInProcessWorker runs one worker loop on the embedded queue for
// `studio serve`. stop ends it, waits until it has drained (within the
// shutdown timeout), and may be called more than once.
func startInProcessWorker(ctx context.Context, cfg Config, q *queue.Embedded, gen worker.Generator, ds worker.DatasetMaker, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	w, err := newWorker(cfg, 1, q, gen, ds, reg, log)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			log.Error("in-process worker stopped", "err", err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}, nil
}

// datasetMaker makes the data sets of dataset jobs with the worker's
// models (reloads included) and the catalogue it started with. Novelty is
// checked as the CLI checks it: against the real data set cfg.Data scored
// by the job's scorer, on the first job that needs it, and kept in
// cfg.FeatureCache for later jobs and processes. Without that data set
// there is no reference: a job with min_novelty > 0 fails naming the
// field, one with min_novelty_auto runs without the check (as the CLI
// without --data), and reports say no novelty check ran.
func datasetMaker(cfg Config, gen *models, cat *catalog.Catalog, log *slog.Logger) worker.DatasetMaker {
	refs := &references{data: cfg.Data, cache: dataset.FeatureCache{Dir: cfg.FeatureCache}, gen: gen, cat: cat, log: log,
		built: map[string]*dataset.Reference{}}
	return &worker.Maker{Service: swapScorer{gen}, Models: cat, References: refs.get}
}

// references are the novelty references of a worker process, by scorer
// and model hash.
type references struct {
	data  string
	cache dataset.FeatureCache
	gen   *models
	cat   *catalog.Catalog
	log   *slog.Logger

	mu     sync.Mutex
	ds     *cub.Dataset
	noData bool
	built  map[string]*dataset.Reference
}

func (r *references) get(ctx context.Context, model string) (*dataset.Reference, error) {
	var scorer string
	err := r.gen.With(func(s *generator.Service) (err error) {
		scorer, err = s.ScorerName(model)
		return err
	})
	if err != nil {
		return nil, err
	}
	m, ok := r.cat.Get(scorer)
	if !ok {
		return nil, fmt.Errorf("scorer %s is not in the catalogue", scorer)
	}
	hash, err := dataset.ModelHash(m)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ref, ok := r.built[scorer+"@"+hash]; ok {
		return ref, nil
	}
	if r.ds == nil && !r.noData {
		if r.ds, err = cub.Open(r.data); err != nil {
			r.log.Warn("dataset jobs get no novelty check: no real data set", "data", r.data, "err", err)
			r.noData, r.ds = true, nil
		}
	}
	if r.ds == nil {
		return nil, nil
	}
	t0 := time.Now()
	ref, hit, err := r.cache.Reference(ctx, swapScorer{r.gen}, m, r.ds)
	if err != nil {
		return nil, err
	}
	r.log.Info("novelty reference ready", "scorer", scorer, "images", len(ref.Images), "train", ref.TrainCount(),
		"from_cache", hit, "seconds", time.Since(t0).Seconds())
	r.built[scorer+"@"+hash] = ref
	return ref, nil
}

// swapScorer adds the scorer of the current models to a Swap, for
// dataset.Make.
type swapScorer struct{ *models }

func (s swapScorer) ScoreImages(ctx context.Context, model string, images [][]byte) (res []generator.Scores, err error) {
	err = s.With(func(m *generator.Service) error {
		res, err = m.ScoreImages(ctx, model, images)
		return err
	})
	return res, err
}

// ScorerInputSize lets real images be cropped and resized as the
// classifier's training saw them (dataset.InputSizer), as in the CLI.
func (s swapScorer) ScorerInputSize(model string) (n int, err error) {
	err = s.With(func(m *generator.Service) error {
		n, err = m.ScorerInputSize(model)
		return err
	})
	return n, err
}
