package studio

import (
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fgstudio/frontend"
)

// routes registers every route; handlers live in files per resource.
func (s *Server) routes(reg *prometheus.Registry) {
	s.app.Use(s.requestID, s.metrics.middleware, s.recoverPanic)

	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))

	s.app.Use("/", frontend.Handler())
	s.app.Use(func(c *fiberCtx) error { return errNotFound(c.Path()) })
}
