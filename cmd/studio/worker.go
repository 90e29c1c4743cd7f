package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/worker"
)

// runWorker consumes generation jobs from Redis with --worker-concurrency
// loops, and answers /healthz, /readyz and /metrics on the admin address
// for orchestrators. On SIGHUP it reads the models folder again and swaps
// the new models in (jobs running on the old ones finish on them). On
// SIGINT/SIGTERM it stops claiming, lets held jobs finish within the
// shutdown timeout (handing back the rest), then stops the admin server.
func runWorker(ctx context.Context, cfg Config, log *slog.Logger) error {
	// From the start, so that a SIGHUP never ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cat, err := openCatalog(cfg, log)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(log, "onnx runtime", rt.Close)
	q, err := queue.NewRedis(ctx, cfg.RedisURL, queue.Config{}, log)
	if err != nil {
		return err
	}
	defer closeLogged(log, "queue", q.Close)

	reg := newRegistry()
	gen := worker.NewSwap(loadModels(rt, cat, cfg, cfg.WorkerConcurrency, log))
	defer gen.Close() // after the worker stopped: no call runs then
	prov, err := newProviders(cfg, reg, log)
	if err != nil {
		return err
	}
	prov.probe(ctx, gen)
	w, err := newWorker(cfg, cfg.WorkerConcurrency, q, gen, datasetMaker(cfg, gen, cat, log), reg, log)
	if err != nil {
		return err
	}
	checks := append(readiness(q, modelsReady(gen)), prov.checks(cfg)...)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: adminHandler(checks, reg), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("worker admin endpoints listening", "addr", ln.Addr().String())

	// The worker drains on its own context, so that the admin server keeps
	// answering while held jobs finish.
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx) }()

	// The reloads end before the models and ONNX Runtime close.
	reloads := reloadOnHUP(wctx, hup, rt, cfg, gen, prov, log)
	defer func() {
		stopWorker()
		<-reloads
	}()

	var runErr error
	select {
	case runErr = <-errc: // the admin server failed
		stopWorker()
		return errors.Join(runErr, <-werr)
	case runErr = <-werr: // the queue was closed under the worker
	case <-ctx.Done():
		runErr = <-werr
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return errors.Join(runErr, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	return runErr
}

// adminHandler answers the worker's /healthz, /readyz (checks) and
// /metrics (reg).
func adminHandler(checks []studio.Check, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, res := studio.RunChecks(r.Context(), checks)
		if !ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": res})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": res})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// reloadOnHUP reads the models folder again and swaps the models in at
// each signal on hup, until ctx ends; the channel it returns is closed
// when no reload runs any more.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, rt *ort.Runtime, cfg Config, gen *models, prov *providers, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the models", "models_dir", cfg.ModelsDir)
				cat, err := openCatalog(cfg, log)
				if err != nil {
					log.Error("models not reloaded", "err", err)
					continue
				}
				reloadModels(ctx, rt, cat, cfg, cfg.WorkerConcurrency, gen, prov, log)
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
