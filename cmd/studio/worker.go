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

// runWorker holds the ONNX Runtime and the models, connected to Redis, and
// answers /healthz, /readyz and /metrics on the admin address for
// orchestrators. It stops on SIGINT/SIGTERM.
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
	q, err := queue.OpenRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer closeLogged(log, "queue", q.Close)

	reg := newRegistry()
	svc := generator.Load(rt, models, generator.Config{PoolSize: 1}, log)
	defer svc.Close()
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

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
