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

	value, source string
}

func options() []*option {
	both := []string{"serve", "worker"}
	return []*option{
		{name: "addr", env: "STUDIO_ADDR", def: ":8080", cmds: []string{"serve"},
			usage: "HTTP listen address of the API and web studio"},
		{name: "admin-addr", env: "STUDIO_ADMIN_ADDR", def: ":9090", cmds: []string{"worker"},
			usage: "listen address of the worker's /healthz, /readyz and /metrics"},
		{name: "redis-url", env: "REDIS_URL", def: "", cmds: both,
			usage: "Redis URL (redis://host:port/db); empty for serve = embedded queue, API and worker in one process"},
		{name: "models-dir", env: "STUDIO_MODELS_DIR", def: "samples/models", cmds: both,
			usage: "folder of model directories (each with a model.json)"},
		{name: "ort-lib", env: "ORT_LIB_PATH", def: ort.DefaultLibraryPath(), cmds: both,
			usage: "path of libonnxruntime.so (ONNX Runtime 1.24.x)"},
		{name: "provider", env: "STUDIO_PROVIDER", def: "cpu", cmds: both,
			usage: "execution provider: cpu, or cuda (falls back to cpu with a warning when unavailable)"},
		{name: "require-provider", env: "STUDIO_REQUIRE_PROVIDER", def: "false", cmds: both,
			usage: "fail readiness (/readyz check provider) when the sessions do not run on --provider, e.g. cuda fell back to cpu"},
		{name: "threads", env: "STUDIO_THREADS", def: "0", cmds: both,
			usage: "intra-op threads per graph session; 0 = number of CPUs"},
		{name: "log-format", env: "STUDIO_LOG_FORMAT", def: "text", cmds: both,
			usage: "log format: text or json"},
		{name: "log-level", env: "STUDIO_LOG_LEVEL", def: "info", cmds: both,
			usage: "log level: debug, info, warn or error"},
		{name: "shutdown-timeout", env: "STUDIO_SHUTDOWN_TIMEOUT", def: "30s", cmds: both,
			usage: "how long in-flight work may take to finish after SIGINT/SIGTERM"},
		{name: "examples-dir", env: "STUDIO_EXAMPLES_DIR", def: "samples/examples/birds", cmds: []string{"serve"},
			usage: "folder of one real image per class, <class name>.png, shown by the class picker (GET /v1/models/{name}/classes/{id}/example.png); missing = none"},
		{name: "datasets-dir", env: "STUDIO_DATASETS_DIR", def: "data/datasets", cmds: both,
			usage: "folder of the data sets that dataset jobs make (<dir>/<job id>); the API serves downloads from it, so with Redis and several machines it must be shared storage"},
		{name: "body-limit", env: "STUDIO_BODY_LIMIT", def: "8388608", cmds: []string{"serve"},
			usage: "largest request body in bytes"},
		{name: "worker-concurrency", env: "STUDIO_WORKER_CONCURRENCY", def: "1", cmds: []string{"worker"},
			usage: "worker loops, each claiming and generating on its own (one session per graph each; divide --threads among them)"},
		{name: "max-batch", env: "STUDIO_MAX_BATCH", def: "8", cmds: both,
			usage: "most images in one generator call, gathered across queued jobs of one model"},
		{name: "max-wait", env: "STUDIO_MAX_WAIT", def: "5ms", cmds: both,
			usage: "how long a worker that found a job waits for more to fill its batch"},
		{name: "require-auth", env: "STUDIO_REQUIRE_AUTH", def: "false", cmds: []string{"serve"},
			usage: "every API request needs a key (Authorization: Bearer); without it, requests without a key are served from this machine only"},
		{name: "admin-token", env: "STUDIO_ADMIN_TOKEN", def: "", cmds: []string{"serve"},
			usage: "bootstrap token with every scope, to create the first API keys (at least 20 characters; never logged)"},
		{name: "rate-limit", env: "STUDIO_RATE_LIMIT", def: "50", cmds: []string{"serve"},
			usage: "requests per second of one API key (keys may carry their own); 0 = unlimited"},
		{name: "rate-burst", env: "STUDIO_RATE_BURST", def: "100", cmds: []string{"serve"},
			usage: "requests one API key may send at once above its rate"},
		{name: "max-active-jobs", env: "STUDIO_MAX_ACTIVE_JOBS", def: "16", cmds: []string{"serve"},
			usage: "unfinished jobs one API key may hold (keys may carry their own); 0 = unlimited"},
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
	ORT         ort.Config
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
		v := o.value
		switch o.name {
		case "addr", "admin-addr":
			if _, port, err := net.SplitHostPort(v); err != nil || !validPort(port) {
				return cfg, badValue(o, "want host:port, e.g. :8080 or 127.0.0.1:8080")
			}
			if o.name == "addr" {
				cfg.Addr = v
			} else {
				cfg.AdminAddr = v
			}
		case "redis-url":
			if v != "" {
				if err := queue.ParseRedisURL(v); err != nil {
					return cfg, badValue(o, err.Error())
				}
			}
			cfg.RedisURL = v
		case "models-dir":
			if v == "" {
				return cfg, badValue(o, "must not be empty")
			}
			cfg.ModelsDir = v
		case "examples-dir":
			cfg.ExamplesDir = v
		case "datasets-dir":
			if v == "" {
				return cfg, badValue(o, "must not be empty")
			}
			cfg.DatasetsDir = v
		case "require-provider":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, badValue(o, "want true or false")
			}
			cfg.RequireProvider = b
		case "ort-lib":
			if v == "" {
				return cfg, badValue(o, "must not be empty")
			}
			cfg.ORT.LibraryPath = v
		case "provider":
			p, err := ort.ParseProvider(v)
			if err != nil {
				return cfg, badValue(o, "want cpu or cuda")
			}
			cfg.ORT.Provider = p
		case "threads":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1024 {
				return cfg, badValue(o, "want a whole number from 0 to 1024")
			}
			cfg.ORT.IntraOpThreads = threadsOr(n)
		case "log-format":
			if v != "text" && v != "json" {
				return cfg, badValue(o, "want text or json")
			}
			cfg.LogFormat = v
		case "log-level":
			if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return cfg, badValue(o, "want debug, info, warn or error")
			}
		case "shutdown-timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return cfg, badValue(o, "want a positive duration such as 30s")
			}
			cfg.ShutdownTimeout = d
		case "body-limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1024 || n > 1<<30 {
				return cfg, badValue(o, "want a number of bytes from 1024 to 1073741824")
			}
			cfg.BodyLimit = n
		case "worker-concurrency":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 256 {
				return cfg, badValue(o, "want a whole number from 1 to 256")
			}
			cfg.WorkerConcurrency = n
		case "max-batch":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 256 {
				return cfg, badValue(o, "want a whole number from 1 to 256")
			}
			cfg.MaxBatch = n
		case "max-wait":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > 10*time.Second {
				return cfg, badValue(o, "want a duration from 0s to 10s, such as 5ms")
			}
			cfg.MaxWait = d
		case "require-auth":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, badValue(o, "want true or false")
			}
			cfg.RequireAuth = b
		case "admin-token":
			if v != "" && (len(v) < 20 || strings.ContainsAny(v, " \t\r\n")) {
				return cfg, &usageError{"invalid --admin-token (STUDIO_ADMIN_TOKEN): want at least 20 characters without spaces"}
			}
			cfg.AdminToken = v
		case "rate-limit":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 100000 || f != f {
				return cfg, badValue(o, "want requests per second from 0 to 100000")
			}
			cfg.RateLimit = f
		case "rate-burst":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100000 {
				return cfg, badValue(o, "want a whole number from 1 to 100000")
			}
			cfg.RateBurst = n
		case "max-active-jobs":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100000 {
				return cfg, badValue(o, "want a whole number from 0 to 100000")
			}
			cfg.MaxActiveJobs = n
		}
	}
	if cmd == "worker" && cfg.RedisURL == "" {
		return cfg, &usageError{"--redis-url (REDIS_URL) is required: workers share jobs through Redis"}
	}
	return cfg, nil
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
