package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/worker"
)

// models is this process's generator: the loaded models, replaced as a
// whole by a reload while the worker runs.
type models = worker.Swap[*generator.Service]

// loadModels loads every model of cat into a new generator of this
// process.
func loadModels(rt *ort.Runtime, cat *catalog.Catalog, cfg Config, loops int, log *slog.Logger) *generator.Service {
	return generator.Load(rt, cat, generatorConfig(cfg, loops), log)
}

// reloadModels swaps a generator loaded from cat in for the current one
// (which closes once its running calls return) and finds the provider
// its sessions run on.
func reloadModels(ctx context.Context, rt *ort.Runtime, cat *catalog.Catalog, cfg Config, loops int, gen *models, prov *providers, log *slog.Logger) {
	svc := loadModels(rt, cat, cfg, loops, log)
	loaded, failed := svc.Loaded(), len(svc.Failed())
	gen.Replace(svc)
	log.Info("generator reloaded", "models_dir", cat.Dir(), "generators", strings.Join(loaded, ","), "failed", failed)
	prov.probe(ctx, gen)
}

// modelsReady is the models readiness check of a process that runs the
// generator: at least one generator model loaded.
func modelsReady(gen *models) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return gen.With(func(s *generator.Service) error { return s.Ready(ctx) })
	}
}

// loadStatus tells the API which models this process's generator loaded.
type loadStatus struct{ gen *models }

var _ studio.LoadStatus = loadStatus{}

func (l loadStatus) Status(name string) (loaded bool, err error) {
	err = l.gen.With(func(s *generator.Service) error {
		loaded, err = s.Status(name)
		return err
	})
	return loaded, err
}

// providers exports the execution provider the graph sessions run on
// (studio_ort_provider_info) and, with --require-provider, fails
// readiness when it is not the one asked for: ONNX Runtime falls back to
// CPU, with one warning, when CUDA cannot be used.
type providers struct {
	requested ort.Provider
	info      *prometheus.GaugeVec
	log       *slog.Logger

	mu        sync.Mutex
	effective ort.Provider
	err       error
}

func newProviders(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*providers, error) {
	p := &providers{requested: cfg.ORT.Provider, log: log, err: errNotProbed}
	if p.requested == "" {
		p.requested = ort.CPU
	}
	p.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "studio_ort_provider_info",
		Help: "1 for the execution provider asked for (requested, --provider) and the one the graph sessions run on (effective); they differ when CUDA fell back to CPU. Absent until a model is loaded.",
	}, []string{"requested", "effective"})
	if err := reg.Register(p.info); err != nil {
		return nil, fmt.Errorf("provider metric: %w", err)
	}
	return p, nil
}

var errNotProbed = fmt.Errorf("no model loaded, so no graph session to ask")

// probe asks the generator which provider its sessions run on (opening
// one session of a loaded graph) and records the answer.
func (p *providers) probe(ctx context.Context, gen *models) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var eff ort.Provider
	err := gen.With(func(s *generator.Service) (err error) {
		eff, err = s.Provider(ctx)
		return err
	})
	p.mu.Lock()
	p.effective, p.err = eff, err
	p.mu.Unlock()
	p.info.Reset()
	switch {
	case err != nil:
		p.log.Warn("execution provider unknown", "requested", p.requested, "err", err)
	case eff != p.requested:
		p.info.WithLabelValues(string(p.requested), string(eff)).Set(1)
		p.log.Warn("graph sessions do not run on the execution provider asked for", "requested", p.requested, "effective", eff)
	default:
		p.info.WithLabelValues(string(p.requested), string(eff)).Set(1)
		p.log.Info("graph sessions run on the execution provider asked for", "provider", eff)
	}
}

// check is the readiness check "provider" of --require-provider.
func (p *providers) check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return fmt.Errorf("execution provider unknown: %v", p.err)
	case p.effective != p.requested:
		return fmt.Errorf("asked for %s, graph sessions run on %s (the log says why: CUDA execution provider unavailable)", p.requested, p.effective)
	}
	return nil
}

// checks are the readiness checks of a process that runs the generator.
func (p *providers) checks(cfg Config) []studio.Check {
	if !cfg.RequireProvider {
		return nil
	}
	return []studio.Check{{Name: "provider", Run: p.check}}
}
