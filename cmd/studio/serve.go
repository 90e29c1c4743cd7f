package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"fgstudio/catalog"
	"fgstudio/generator"
	"fgstudio/ort"
	"fgstudio/queue"
	"fgstudio/studio"
)

// pinger is what readiness needs from a queue backend.
type pinger interface {
	Ping(ctx context.Context) error
	Close() error
}

// runServe runs the API; without Redis it also hosts the worker side (the
// ONNX Runtime and the models) in the same process, on the embedded queue.
func runServe(ctx context.Context, cfg Config, log *slog.Logger) error {
	models, err := openCatalog(cfg, log)
	if err != nil {
		return err
	}

	var q pinger
	modelsReady := catalogReady(models)
	if cfg.RedisURL == "" {
		log.Info("no REDIS_URL: API and worker run in this process on the embedded queue")
		q = queue.NewEmbedded()
		rt, err := openRuntime(cfg, log)
		if err != nil {
			return err
		}
		defer closeLogged(log, "onnx runtime", rt.Close)
		svc := generator.Load(rt, models, generator.Config{PoolSize: 1}, log)
		defer svc.Close()
		modelsReady = svc.Ready
	} else {
		r, err := queue.OpenRedis(ctx, cfg.RedisURL)
		if err != nil {
			return err
		}
		q = r
	}
	defer closeLogged(log, "queue", q.Close)

	reg := newRegistry()
	srv := studio.New(studio.Config{
		Addr:            cfg.Addr,
		ShutdownTimeout: cfg.ShutdownTimeout,
		BodyLimit:       cfg.BodyLimit,
		Version:         version,
	}, log, reg, readiness(q, modelsReady))
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
			if m.Manifest.Kind != catalog.KindClassifier {
				return nil
			}
		}
		return fmt.Errorf("no models loaded from %s", models.Dir())
	}
}

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
