package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/queue"
)

// option is one setting: a flag, the environment variable that sets it
// when the flag is absent, a default, and the subcommands that read it.
// Every setting of the binary is in the options table below, and nothing
// below cmd/ reads the environment.
type option struct {
	name, env, def, usage string
	cmds                  []string
	// set checks the value and stores it in the Config; an error says what
	// is wanted (badValue names the flag or variable and the value).
	set func(c *Config, v string) error

	value, source string
}

// options is the table of every setting: one row each, with the setter
// that checks its value and stores it in the Config (buildConfig only
// walks the table, so a setting cannot be read without a row). It is
// longer than 100 lines on purpose: it is one declarative literal, a row
// per setting, and split up it would no longer be one table to read.
func options() []*option {
	both := []string{"serve", "worker"}
	return []*option{
		{name: "addr", env: "STUDIO_ADDR", def: ":8080", cmds: []string{"serve"},
			usage: "HTTP listen address of the API and web studio",
			set:   hostPort(func(c *Config) *string { return &c.Addr })},
		{name: "admin-addr", env: "STUDIO_ADMIN_ADDR", def: ":9090", cmds: []string{"worker"},
			usage: "listen address of the worker's /healthz, /readyz and /metrics",
			set:   hostPort(func(c *Config) *string { return &c.AdminAddr })},
		{name: "redis-url", env: "REDIS_URL", def: "", cmds: both,
			usage: "Redis URL (redis://host:port/db); empty for serve = embedded queue, API and worker in one process",
			set: func(c *Config, v string) error {
				if v != "" {
					if err := queue.ParseRedisURL(v); err != nil {
						return err
					}
				}
				c.RedisURL = v
				return nil
			}},
		{name: "models-dir", env: "STUDIO_MODELS_DIR", def: "samples/models", cmds: both,
			usage: "folder of model directories (each with a model.json)",
			set:   nonEmpty(func(c *Config) *string { return &c.ModelsDir })},
		{name: "ort-lib", env: "ORT_LIB_PATH", def: ort.DefaultLibraryPath(), cmds: both,
			usage: "path of libonnxruntime.so (ONNX Runtime 1.24.x)",
			set:   nonEmpty(func(c *Config) *string { return &c.ORT.LibraryPath })},
		{name: "provider", env: "STUDIO_PROVIDER", def: "cpu", cmds: both,
			usage: "execution provider: cpu, or cuda (falls back to cpu with a warning when unavailable)",
			set: func(c *Config, v string) error {
				p, err := ort.ParseProvider(v)
				if err != nil {
					return errors.New("want cpu or cuda")
				}
				c.ORT.Provider = p
				return nil
			}},
		{name: "require-provider", env: "STUDIO_REQUIRE_PROVIDER", def: "false", cmds: both,
			usage: "fail readiness (/readyz check provider) when the sessions do not run on --provider, e.g. cuda fell back to cpu",
			set:   boolean(func(c *Config) *bool { return &c.RequireProvider })},
		{name: "threads", env: "STUDIO_THREADS", def: "0", cmds: both,
			usage: "intra-op threads per graph session; 0 = number of CPUs",
			set: func(c *Config, v string) error {
				n, err := wholeIn(v, 0, 1024)
				c.ORT.IntraOpThreads = threadsOr(n)
				return err
			}},
		{name: "log-format", env: "STUDIO_LOG_FORMAT", def: "text", cmds: both,
			usage: "log format: text or json",
			set: func(c *Config, v string) error {
				if v != "text" && v != "json" {
					return errors.New("want text or json")
				}
				c.LogFormat = v
				return nil
			}},
		{name: "log-level", env: "STUDIO_LOG_LEVEL", def: "info", cmds: both,
			usage: "log level: debug, info, warn or error",
			set: func(c *Config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return errors.New("want debug, info, warn or error")
				}
				return nil
			}},
		{name: "shutdown-timeout", env: "STUDIO_SHUTDOWN_TIMEOUT", def: "30s", cmds: both,
			usage: "how long in-flight work may take to finish after SIGINT/SIGTERM",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return errors.New("want a positive duration such as 30s")
				}
				c.ShutdownTimeout = d
				return nil
			}},
		{name: "examples-dir", env: "STUDIO_EXAMPLES_DIR", def: "samples/examples/birds", cmds: []string{"serve"},
			usage: "folder of one real image per class, <class name>.png, shown by the class picker (GET /v1/models/{name}/classes/{id}/example.png); missing = none",
			set:   func(c *Config, v string) error { c.ExamplesDir = v; return nil }},
		{name: "datasets-dir", env: "STUDIO_DATASETS_DIR", def: "data/datasets", cmds: both,
			usage: "folder of the data sets that dataset jobs make (<dir>/<job id>); the API serves downloads from it, so with Redis and several machines it must be shared storage",
			set:   nonEmpty(func(c *Config) *string { return &c.DatasetsDir })},
		{name: "data", env: "STUDIO_DATA", def: "data/birds", cmds: both,
			usage: "real data set (CUB layout) that dataset jobs check novelty against, scored once per scorer and kept in --feature-cache; a missing folder = no novelty check (jobs with min_novelty_auto run without one, min_novelty > 0 fails naming the field)",
			set:   func(c *Config, v string) error { c.Data = v; return nil }},
		{name: "feature-cache", env: "STUDIO_FEATURE_CACHE", def: "<user cache dir>/fgstudio/features", cmds: both,
			usage: "folder of the real images' features by scorer, keyed by the model's and the data's hashes (reused across runs); empty = keep none",
			set: func(c *Config, v string) error {
				if v == "<user cache dir>/fgstudio/features" {
					v = dataset.DefaultFeatureCacheDir()
				}
				c.FeatureCache = v
				return nil
			}},
		{name: "body-limit", env: "STUDIO_BODY_LIMIT", def: "8388608", cmds: []string{"serve"},
			usage: "largest request body in bytes",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1024 || n > 1<<30 {
					return errors.New("want a number of bytes from 1024 to 1073741824")
				}
				c.BodyLimit = n
				return nil
			}},
		{name: "worker-concurrency", env: "STUDIO_WORKER_CONCURRENCY", def: "1", cmds: []string{"worker"},
			usage: "worker loops, each claiming and generating on its own (one session per graph each; divide --threads among them)",
			set:   whole(1, 256, func(c *Config) *int { return &c.WorkerConcurrency })},
		{name: "max-batch", env: "STUDIO_MAX_BATCH", def: "8", cmds: both,
			usage: "most images in one generator call, gathered across queued jobs of one model",
			set:   whole(1, 256, func(c *Config) *int { return &c.MaxBatch })},
		{name: "max-wait", env: "STUDIO_MAX_WAIT", def: "5ms", cmds: both,
			usage: "how long a worker that found a job waits for more to fill its batch",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > 10*time.Second {
					return errors.New("want a duration from 0s to 10s, such as 5ms")
				}
				c.MaxWait = d
				return nil
			}},
		{name: "require-auth", env: "STUDIO_REQUIRE_AUTH", def: "false", cmds: []string{"serve"},
			usage: "every API request needs a key (Authorization: Bearer); without it, requests without a key are served from this machine only",
			set:   boolean(func(c *Config) *bool { return &c.RequireAuth })},
		{name: "admin-token", env: "STUDIO_ADMIN_TOKEN", def: "", cmds: []string{"serve"},
			usage: "bootstrap token with every scope, to create the first API keys (at least 20 characters; never logged)",
			set: func(c *Config, v string) error {
				if v != "" && (len(v) < 20 || strings.ContainsAny(v, " \t\r\n")) {
					// Never echo the token: no badValue here.
					return &usageError{"invalid --admin-token (STUDIO_ADMIN_TOKEN): want at least 20 characters without spaces"}
				}
				c.AdminToken = v
				return nil
			}},
		{name: "rate-limit", env: "STUDIO_RATE_LIMIT", def: "50", cmds: []string{"serve"},
			usage: "requests per second of one API key (keys may carry their own); 0 = unlimited",
			set: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 100000 || f != f {
					return errors.New("want requests per second from 0 to 100000")
				}
				c.RateLimit = f
				return nil
			}},
		{name: "rate-burst", env: "STUDIO_RATE_BURST", def: "100", cmds: []string{"serve"},
			usage: "requests one API key may send at once above its rate",
			set:   whole(1, 100000, func(c *Config) *int { return &c.RateBurst })},
		{name: "max-active-jobs", env: "STUDIO_MAX_ACTIVE_JOBS", def: "16", cmds: []string{"serve"},
			usage: "unfinished jobs one API key may hold (keys may carry their own); 0 = unlimited",
			set:   whole(0, 100000, func(c *Config) *int { return &c.MaxActiveJobs })},
	}
}

// Config is the effective configuration of serve and worker.
type Config struct {
	Addr        string
	AdminAddr   string
	RedisURL    string
	ModelsDir   string
	ExamplesDir string
	DatasetsDir string
	// Data is the real data set of the novelty check of dataset jobs,
	// FeatureCache where its scored features are kept.
	Data         string
	FeatureCache string
	ORT          ort.Config
	// RequireProvider fails readiness when sessions run on another
	// execution provider than ORT.Provider (CUDA fell back to CPU).
	RequireProvider bool
	LogFormat       string
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	BodyLimit       int
	// Worker: loops, dynamic batching.
	WorkerConcurrency int
	MaxBatch          int
	MaxWait           time.Duration
	// API access: keys, rates, quotas (serve).
	RequireAuth   bool
	AdminToken    string
	RateLimit     float64
	RateBurst     int
	MaxActiveJobs int

	opts []*option // for logging the effective config with its sources
}

// usageError is a bad flag or setting: reported in one line, exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func badValue(o *option, why string) error {
	src := "--" + o.name
	if o.source == "env" {
		src = o.env
	}
	return &usageError{fmt.Sprintf("invalid %s=%q: %s", src, o.value, why)}
}

// errHelp is returned when -h was asked for; usage has been printed.
var errHelp = errors.New("help requested")

// parseConfig reads the flags of cmd, then the environment, then defaults.
func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("studio "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var mine []*option
	for _, o := range options() {
		if !contains(o.cmds, cmd) {
			continue
		}
		mine = append(mine, o)
		o.value, o.source = o.def, "default"
		if v, ok := lookup(getenv, o.env); ok {
			o.value, o.source = v, "env"
		}
		set := func(v string) error {
			o.value, o.source = v, "flag"
			return nil
		}
		help := fmt.Sprintf("%s (env %s, default %q)", o.usage, o.env, o.def)
		if o.def == "true" || o.def == "false" {
			fs.BoolFunc(o.name, help, set) // --require-auth alone means true
		} else {
			fs.Func(o.name, help, set)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: studio %s [flags]\n", cmd)
			fs.PrintDefaults()
			return Config{}, errHelp
		}
		return Config{}, &usageError{err.Error() + " (see studio " + cmd + " -h)"}
	}
	if fs.NArg() > 0 {
		return Config{}, &usageError{fmt.Sprintf("unexpected argument %q (see studio %s -h)", fs.Arg(0), cmd)}
	}
	return buildConfig(cmd, mine)
}

func buildConfig(cmd string, opts []*option) (Config, error) {
	cfg := Config{opts: opts, ORT: ort.Config{InterOpThreads: 1}}
	for _, o := range opts {
		if err := o.set(&cfg, o.value); err != nil {
			if ue := (*usageError)(nil); errors.As(err, &ue) {
				return cfg, err
			}
			return cfg, badValue(o, err.Error())
		}
	}
	if cmd == "worker" && cfg.RedisURL == "" {
		return cfg, &usageError{"--redis-url (REDIS_URL) is required: workers share jobs through Redis"}
	}
	return cfg, nil
}

// hostPort is the setter of a listen address.
func hostPort(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if _, port, err := net.SplitHostPort(v); err != nil || !validPort(port) {
			return errors.New("want host:port, e.g. :8080 or 127.0.0.1:8080")
		}
		*field(c) = v
		return nil
	}
}

// nonEmpty is the setter of a path that must be given.
func nonEmpty(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		*field(c) = v
		return nil
	}
}

// boolean is the setter of true or false.
func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*field(c) = b
		return nil
	}
}

// whole is the setter of a whole number from lo to hi.
func whole(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := wholeIn(v, lo, hi)
		*field(c) = n
		return err
	}
}

func wholeIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

// logAttrs lists every setting with its value and where it came from,
// hiding the password in a Redis URL.
func (c Config) logAttrs() []any {
	sorted := append([]*option(nil), c.opts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	attrs := make([]any, 0, len(sorted))
	for _, o := range sorted {
		v := o.value
		if o.name == "redis-url" {
			v = redactURL(v)
		}
		if o.name == "admin-token" && v != "" {
			v = "***"
		}
		attrs = append(attrs, slog.String(o.name, v+" ("+o.source+")"))
	}
	return attrs
}

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "***" + u[at:]
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// threadsOr resolves 0 to the number of CPUs.
func threadsOr(n int) int {
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}
