// Package studio is the HTTP face of the product: it validates requests,
// hands slow work to the queue, and answers. It never runs a graph.
package studio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is the HTTP server's configuration.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// once shutdown begins.
	ShutdownTimeout time.Duration
	// BodyLimit is the largest request body accepted, in bytes.
	BodyLimit int
	// Version is reported by /healthz.
	Version string
}

// Check is one readiness condition, such as "queue reachable".
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Server is the studio's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	app     *fiber.App
	checks  []Check
	metrics *httpMetrics
}

// New builds the server and registers its routes. reg receives the
// server's metrics and is what /metrics exposes.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, checks []Check) *Server {
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 4 << 20
	}
	s := &Server{cfg: cfg, log: log, checks: checks, metrics: newHTTPMetrics(reg)}
	s.app = fiber.New(fiber.Config{
		AppName:               "studio",
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           60 * time.Second,
		ErrorHandler:          s.handleError,
	})
	s.routes(reg)
	return s
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve answers on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within ShutdownTimeout, and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("http server shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.app.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return <-errc
}

// ListenAndServe listens on cfg.Addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}
