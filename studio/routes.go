package studio

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fgstudio/fgstudio/frontend"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// routes registers every route; handlers live in files per resource.
// Every route is described in openapi.json, and a test holds them equal.
func (s *Server) routes(reg *prometheus.Registry) {
	s.app.Use(s.requestID, s.metrics.middleware, s.recoverPanic)

	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	s.app.Get("/openapi.json", s.openAPI)

	// Authentication runs per route, so that an unknown path is a 404
	// whoever asks.
	v1 := s.app.Group("/v1")
	anyKey := []fiber.Handler{s.authenticate}
	v1.Get("/models", with(anyKey, s.listModels)...)
	v1.Get("/models/:name", with(anyKey, s.getModel)...)
	v1.Get("/models/:name/vocabulary", with(anyKey, s.vocabulary)...)
	v1.Get("/models/:name/classes/:id/example.png", with(anyKey, s.classExample)...)
	v1.Post("/tokenize", with(anyKey, s.tokenize)...)
	v1.Get("/jobs", with(anyKey, s.listJobs)...)

	gen := []fiber.Handler{s.authenticate, require(auth.Generate)}
	v1.Post("/generations", with(gen, s.createGeneration)...)
	v1.Get("/generations/:id", with(gen, s.getGeneration)...)
	v1.Delete("/generations/:id", with(gen, s.cancelGeneration)...)
	v1.Get("/generations/:id/events", with(gen, s.events)...)
	v1.Get("/generations/:id/images/:k.png", with(gen, s.imagePNG)...)
	v1.Get("/generations/:id/images/:k/attention", with(gen, s.attention)...)
	v1.Get("/generations/:id/images/:k/attention/:w.png", with(gen, s.attentionPNG)...)
	v1.Post("/morphs", with(gen, s.createMorph)...)
	v1.Post("/interpolations", with(gen, s.createInterpolation)...)

	datasets := []fiber.Handler{s.authenticate, require(auth.Datasets)}
	v1.Post("/datasets", with(datasets, s.createDataset)...)
	v1.Get("/datasets/:id", with(datasets, s.getDataset)...)
	v1.Delete("/datasets/:id", with(datasets, s.cancelDataset)...)
	v1.Get("/datasets/:id/events", with(datasets, s.datasetEvents)...)
	v1.Get("/datasets/:id/download", with(datasets, s.downloadDataset)...)

	admin := []fiber.Handler{s.authenticate, require(auth.Admin)}
	v1.Post("/admin/keys", with(admin, s.createKey)...)
	v1.Get("/admin/keys", with(admin, s.listKeys)...)
	v1.Delete("/admin/keys/:id", with(admin, s.revokeKey)...)
	v1.Post("/admin/models/reload", with(admin, s.reloadModels)...)

	s.app.Use("/", frontend.Handler())
	s.allowed = allowedMethods(s.app.GetRoutes(true))
	s.app.Use(s.notFound)
}

// with is the middleware chain mws followed by the handler h.
func with(mws []fiber.Handler, h fiber.Handler) []fiber.Handler {
	return append(append([]fiber.Handler{}, mws...), h)
}
