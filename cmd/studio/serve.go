package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/worker"
)

// pinger is what readiness needs from a queue backend.
type pinger interface {
	Ping(ctx context.Context) error
	Close() error
}

// servedQueue is what serve needs of a queue backend: readiness and the
// API's job calls.
type servedQueue interface {
	pinger
	studio.Jobs
}

// runServe runs the API; without Redis it also hosts the worker side (the
// ONNX Runtime and the models) in the same process, on the embedded queue,
// and an admin's model reload reloads that worker's models too. With
// Redis it is an API replica: it loads no graph, and exports the queue
// gauges so that queue-depth autoscaling works with no worker running.
func runServe(ctx context.Context, cfg Config, log *slog.Logger) error {
	cat, err := openCatalog(cfg, log)
	if err != nil {
		return err
	}

	reg := newRegistry()
	var q servedQueue
	ready := catalogReady(cat)
	var extra []studio.Check
	deps := studio.Deps{Log: log, Registry: reg, Models: cat}
	stopWorker := func() {} // the in-process worker (embedded mode)
	if cfg.RedisURL == "" {
		log.Info("no REDIS_URL: API and worker run in this process on the embedded queue")
		eq := queue.NewEmbedded()
		q = eq
		rt, err := openRuntime(cfg, log)
		if err != nil {
			return err
		}
		defer closeLogged(log, "onnx runtime", rt.Close)
		gen := worker.NewSwap(loadModels(rt, cat, cfg, 1, log))
		defer gen.Close() // after the worker stopped: no call runs then
		prov, err := newProviders(cfg, reg, log)
		if err != nil {
			return err
		}
		prov.probe(ctx, gen)
		ready, extra = modelsReady(gen), prov.checks(cfg)
		deps.Loads = loadStatus{gen}
		deps.OnReload = func(ctx context.Context, cat *catalog.Catalog) error {
			reloadModels(ctx, rt, cat, cfg, 1, gen, prov, log)
			return nil
		}
		if stopWorker, err = startInProcessWorker(ctx, cfg, eq, gen, datasetMaker(cfg, gen, cat, log), reg, log); err != nil {
			return err
		}
	} else {
		r, err := queue.OpenRedis(ctx, cfg.RedisURL)
		if err != nil {
			return err
		}
		q = r
		if err := reg.Register(queue.NewCollector(r, 0)); err != nil {
			r.Close()
			return fmt.Errorf("queue metrics: %w", err)
		}
	}
	defer closeLogged(log, "queue", q.Close)
	defer stopWorker() // runs first: the worker drains before models and queue close

	keys, err := openKeys(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(log, "key store", keys.Close)
	deps.Checks = append(readiness(q, ready), extra...)
	deps.Jobs, deps.Keys, deps.Limiter = q, keys, keys
	if _, err := os.Stat(cfg.ExamplesDir); cfg.ExamplesDir != "" && err != nil {
		log.Info("no class examples: the class picker draws sketches", "examples_dir", cfg.ExamplesDir, "err", err)
	}
	srv := studio.New(apiConfig(cfg, log), deps)
	return srv.ListenAndServe(ctx)
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func readiness(q pinger, models func(context.Context) error) []studio.Check {
	return []studio.Check{
		{Name: "queue", Run: q.Ping},
		{Name: "models", Run: models},
	}
}

// catalogReady is the models check of an API-only replica, which reads
// manifests but loads no graph: ready when a generator model is listed.
func catalogReady(models *catalog.Catalog) func(context.Context) error {
	return func(context.Context) error {
		for _, m := range models.Models() {
			if m.Manifest.Generates() {
				return nil
			}
		}
		return fmt.Errorf("no models loaded from %s", models.Dir())
	}
}

// openCatalog reads the models folder (again, for a reload) and logs
// what it found.
func openCatalog(cfg Config, log *slog.Logger) (*catalog.Catalog, error) {
	c, err := catalog.Open(cfg.ModelsDir)
	if err != nil {
		return nil, err
	}
	for _, p := range c.Problems() {
		log.Warn("model skipped", "err", p)
	}
	if len(c.Models()) == 0 {
		log.Warn("no models found: starting with none (train them with `make train`)", "models_dir", cfg.ModelsDir)
	}
	for _, m := range c.Models() {
		log.Info("model found", "model", m.Manifest.Name, "kind", m.Manifest.Kind, "version", m.Manifest.Version)
	}
	return c, nil
}

func openRuntime(cfg Config, log *slog.Logger) (*ort.Runtime, error) {
	rt, err := ort.Open(cfg.ORT, log)
	if err != nil {
		return nil, err
	}
	log.Info("onnx runtime ready", "version", rt.Version(), "provider", cfg.ORT.Provider,
		"intra_op_threads", cfg.ORT.IntraOpThreads)
	return rt, nil
}

func closeLogged(log *slog.Logger, what string, f func() error) {
	if err := f(); err != nil {
		log.Warn("close "+what, "err", err)
	}
}
