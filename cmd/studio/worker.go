package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fgstudio/generator"
	"fgstudio/queue"
	"fgstudio/studio"
)

// runWorker consumes generation jobs from Redis with --worker-concurrency
// loops, and answers /healthz, /readyz and /metrics on the admin address
// for orchestrators. On SIGINT/SIGTERM it stops claiming, lets held jobs
// finish within the shutdown timeout (handing back the rest), then stops
// the admin server.
func runWorker(ctx context.Context, cfg Config, log *slog.Logger) error {
	models, err := openCatalog(cfg, log)
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
	svc := generator.Load(rt, models, generatorConfig(cfg, cfg.WorkerConcurrency), log)
	defer svc.Close()
	w, err := newWorker(cfg, cfg.WorkerConcurrency, q, svc, reg, log)
	if err != nil {
		return err
	}
	checks := readiness(q, svc.Ready)
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

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("worker admin endpoints listening", "addr", ln.Addr().String())

	// The worker drains on its own context, so that the admin server keeps
	// answering while held jobs finish.
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx) }()

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

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
