// Package studio is the HTTP face of the product: it validates requests,
// hands slow work to the queue, and answers. It never runs a graph.
package studio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/auth"
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
	// RequireAuth makes every /v1 request present an API key. Without it a
	// request with no key is served as the anonymous caller, with every
	// scope, but only from a loopback peer (the one-machine `make run`).
	RequireAuth bool
	// AdminToken, when set, is a bootstrap token with every scope (to
	// create the first keys). Keep it secret; it is never logged.
	AdminToken string
	// Limits bound what one request and one key may ask for.
	Limits Limits
	// ExamplesDir holds one real image per class, named after the class
	// (<class name>.png, e.g. 001.Black_footed_Albatross.png), served as
	// each class's example. Empty or missing: classes have no example.
	ExamplesDir string
	// DatasetsDir is the workers' datasets folder (<dir>/<job id>), from
	// which GET /v1/datasets/{id}/download is served. Empty, or a folder
	// the workers do not write (another machine without shared storage):
	// downloads answer 409.
	DatasetsDir string
}

// Limits bound requests and callers. Zero fields take the defaults.
type Limits struct {
	// MaxN is the most images of one generation (default jobspec.MaxN).
	MaxN int
	// MaxPromptBytes is the longest prompt (default jobspec.MaxPromptBytes).
	MaxPromptBytes int
	// MaxImageBytes and MaxImagePixels bound an uploaded image (defaults
	// 4 MiB and 2048×2048: 8× the side of the largest model, 256 px, so a
	// photo keeps detail after its centre square is resized, and a decode
	// holds at most 32 MiB).
	MaxImageBytes  int
	MaxImagePixels int
	// MaxDecodes bounds the uploads decoded at once (default GOMAXPROCS);
	// a request waits up to DecodeWait (default 2s) for a slot, then is
	// answered 503 with Retry-After.
	MaxDecodes int
	DecodeWait time.Duration
	// RateLimit is the default requests per second of one key with bursts of RateBurst (defaults 50 and 100);
	// a negative RateLimit turns rate limiting off. The anonymous local
	// caller of a studio without --require-auth is not rate limited.
	RateLimit float64
	RateBurst int
	// MaxActiveJobs is the default number of unfinished jobs one key may
	// hold (default 16); negative turns the quota off.
	MaxActiveJobs int
	// MaxDatasetImages bounds classes × per_class of one data set
	// (default 100000).
	MaxDatasetImages int
	// QuotaRetryAfter is the Retry-After of a quota refusal (default 2s).
	QuotaRetryAfter time.Duration
	// Heartbeat is the interval of SSE comments that keep idle streams
	// open and detect clients that left (default 15s).
	Heartbeat time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxN <= 0 {
		l.MaxN = maxN
	}
	if l.MaxPromptBytes <= 0 {
		l.MaxPromptBytes = maxPromptBytes
	}
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = 4 << 20
	}
	if l.MaxImagePixels <= 0 {
		l.MaxImagePixels = 2048 * 2048
	}
	if l.MaxDecodes <= 0 {
		l.MaxDecodes = runtime.GOMAXPROCS(0)
	}
	if l.DecodeWait <= 0 {
		l.DecodeWait = 2 * time.Second
	}
	if l.RateLimit == 0 {
		l.RateLimit = 50
	}
	if l.RateBurst <= 0 {
		l.RateBurst = 100
	}
	if l.MaxDatasetImages <= 0 {
		l.MaxDatasetImages = 100000
	}
	if l.MaxActiveJobs == 0 {
		l.MaxActiveJobs = 16
	}
	if l.QuotaRetryAfter <= 0 {
		l.QuotaRetryAfter = 2 * time.Second
	}
	if l.Heartbeat <= 0 {
		l.Heartbeat = 15 * time.Second
	}
	return l
}

// Check is one readiness condition, such as "queue reachable".
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Jobs is what the API needs from the queue.
type Jobs interface {
	Enqueue(ctx context.Context, n queue.NewJob) (queue.Job, bool, error)
	Get(ctx context.Context, client, id string) (queue.Job, error)
	// GetMeta is the job with its results' metadata (no pixels): of
	// indexes, all when nil, none for queue.NoResults.
	GetMeta(ctx context.Context, client, id string, indexes []int) (queue.Job, error)
	// GetBlob is the job (no spec) and one stored part of result index:
	// 0 its image, k ≥ 1 its k-th part (attention map k-1); nil when not stored.
	GetBlob(ctx context.Context, client, id string, index, part int) (queue.Job, []byte, error)
	Cancel(ctx context.Context, client, id string) (queue.Job, error)
	Events(ctx context.Context, id string) (<-chan queue.Event, error)
}

// Keys stores API keys.
type Keys interface {
	Create(ctx context.Context, n auth.NewKey) (auth.Key, string, error)
	Lookup(ctx context.Context, token string) (auth.Key, error)
	Revoke(ctx context.Context, id string) (auth.Key, error)
	List(ctx context.Context) ([]auth.Key, error)
}

// Limiter keeps per-caller request rates and active-job quotas.
type Limiter interface {
	Allow(ctx context.Context, subject string, rate float64, burst int) (time.Duration, error)
	Acquire(ctx context.Context, subject string, limit int) (string, error)
	Bind(ctx context.Context, subject, slot, jobID string) error
	Release(ctx context.Context, subject, member string) error
	// Active lists the jobs bound to subject and not released, oldest
	// first (GET /v1/jobs).
	Active(ctx context.Context, subject string) ([]string, error)
}

// LoadStatus reports whether this process's generator loaded a model: the
// in-process worker of the one-process studio. An API-only replica has
// none, and reports what its catalogue knows instead.
type LoadStatus interface {
	Status(model string) (loaded bool, err error)
}

// Deps are the server's collaborators. Keys and Limiter default to one
// in-memory auth store; Models to an empty catalog.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry // receives the server's metrics; /metrics exposes it
	Checks   []Check
	Jobs     Jobs
	Keys     Keys
	Limiter  Limiter
	Models   *catalog.Catalog
	// Loads, when set, says which models the in-process generator loaded
	// (GET /v1/models: loaded, load_check "generator").
	Loads LoadStatus
	// OnReload, when set, is called with the new catalog after an admin
	// reloaded the models (so an in-process worker can reload too).
	OnReload func(ctx context.Context, cat *catalog.Catalog) error
}

// Server is the studio's HTTP server.
type Server struct {
	cfg      Config
	lim      Limits
	log      *slog.Logger
	app      *fiber.App
	checks   []Check
	metrics  *httpMetrics
	jobs     Jobs
	keys     Keys
	limiter  Limiter
	onReload func(ctx context.Context, cat *catalog.Catalog) error
	loads    LoadStatus
	models   atomic.Pointer[modelIndex]
	reloadMu sync.Mutex
	adminSum [32]byte // SHA-256 of cfg.AdminToken
	openapi  []byte
	allowed  []routePattern // for 405 answers
	// keyCache and localRates stand in for the key store while it is
	// unreachable (keycache.go).
	keyCache   keyCache
	localRates *auth.Memory
	decodes    *decodeGate // uploads decoded at once

	// stop is closed when shutdown begins: event streams end.
	stop     chan struct{}
	stopOnce sync.Once
}

// New builds the server and registers its routes.
func New(cfg Config, d Deps) *Server {
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 4 << 20
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Keys == nil || d.Limiter == nil {
		m := auth.NewMemory(auth.Config{})
		if d.Keys == nil {
			d.Keys = m
		}
		if d.Limiter == nil {
			d.Limiter = m
		}
	}
	if d.Jobs == nil {
		d.Jobs = noQueue{}
	}
	if d.Models == nil {
		d.Models, _ = catalog.Open("")
	}
	s := &Server{cfg: cfg, lim: cfg.Limits.withDefaults(), log: d.Log, checks: d.Checks, metrics: newHTTPMetrics(d.Registry),
		jobs: d.Jobs, keys: d.Keys, limiter: d.Limiter, onReload: d.OnReload, loads: d.Loads, stop: make(chan struct{}),
		openapi: openAPIJSON, localRates: auth.NewMemory(auth.Config{})}
	s.decodes = newDecodeGate(s.lim.MaxDecodes, s.lim.DecodeWait)
	if cfg.AdminToken != "" {
		s.adminSum = sha256Sum(cfg.AdminToken)
	}
	s.models.Store(newModelIndex(d.Models, cfg.ExamplesDir, d.Log))
	s.app = fiber.New(fiber.Config{
		AppName:               "studio",
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           60 * time.Second,
		ErrorHandler:          s.handleError,
		// Values read from a request (params, headers) are copies, so a
		// handler may keep them past the request: the embedded queue keeps
		// an Idempotency-Key, an event stream its job id.
		Immutable: true,
	})
	s.routes(d.Registry)
	return s
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve answers on ln until ctx is done, then stops accepting, ends event
// streams, lets in-flight requests finish within ShutdownTimeout, and
// returns.
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
	s.stopOnce.Do(func() { close(s.stop) })
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

// noQueue answers when the server was built without a queue.
type noQueue struct{}

var errNoQueue = fmt.Errorf("no job queue configured: %w", queue.ErrClosed)

func (noQueue) Enqueue(context.Context, queue.NewJob) (queue.Job, bool, error) {
	return queue.Job{}, false, errNoQueue
}
func (noQueue) Get(context.Context, string, string) (queue.Job, error) {
	return queue.Job{}, errNoQueue
}
func (noQueue) GetMeta(context.Context, string, string, []int) (queue.Job, error) {
	return queue.Job{}, errNoQueue
}
func (noQueue) GetBlob(context.Context, string, string, int, int) (queue.Job, []byte, error) {
	return queue.Job{}, nil, errNoQueue
}
func (noQueue) Cancel(context.Context, string, string) (queue.Job, error) {
	return queue.Job{}, errNoQueue
}
func (noQueue) Events(context.Context, string) (<-chan queue.Event, error) {
	return nil, errNoQueue
}
