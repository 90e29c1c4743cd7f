package main

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestBadSettingsExit2WithOneLine(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown command", []string{"launch"}, nil, `unknown command "launch"`},
		{"unknown flag", []string{"serve", "--colour", "red"}, nil, "-colour"},
		{"stray argument", []string{"serve", "now"}, nil, `unexpected argument "now"`},
		{"bad addr flag", []string{"serve", "--addr", "8080"}, nil, `--addr="8080"`},
		{"bad addr env", []string{"serve"}, map[string]string{"STUDIO_ADDR": "localhost"}, `STUDIO_ADDR="localhost"`},
		{"bad port", []string{"serve", "--addr", ":99999"}, nil, `--addr=":99999"`},
		{"bad threads", []string{"serve", "--threads", "-1"}, nil, `--threads="-1"`},
		{"bad provider", []string{"worker", "--redis-url", "redis://x:1", "--provider", "tpu"}, nil, `--provider="tpu"`},
		{"bad log format", []string{"serve"}, map[string]string{"STUDIO_LOG_FORMAT": "xml"}, `STUDIO_LOG_FORMAT="xml"`},
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil, `--log-level="loud"`},
		{"bad timeout", []string{"serve", "--shutdown-timeout", "0s"}, nil, `--shutdown-timeout="0s"`},
		{"bad body limit", []string{"serve", "--body-limit", "12"}, nil, `--body-limit="12"`},
		{"bad redis url", []string{"serve", "--redis-url", "http://x"}, nil, `--redis-url="http://x"`},
		{"worker without redis", []string{"worker"}, nil, "--redis-url (REDIS_URL) is required"},
		{"bad worker concurrency", []string{"worker", "--redis-url", "redis://x:1"},
			map[string]string{"STUDIO_WORKER_CONCURRENCY": "0"}, `STUDIO_WORKER_CONCURRENCY="0"`},
		{"concurrency is the worker's", []string{"serve", "--worker-concurrency", "2"}, nil, "-worker-concurrency"},
		{"bad max batch", []string{"serve", "--max-batch", "many"}, nil, `--max-batch="many"`},
		{"bad max wait", []string{"serve"}, map[string]string{"STUDIO_MAX_WAIT": "-1ms"}, `STUDIO_MAX_WAIT="-1ms"`},
		{"flag of another command", []string{"worker", "--addr", ":1"}, nil, "-addr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, env(c.env), &out, &errb)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
			}
			lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Fatalf("stderr %q, want one line containing %q", errb.String(), c.want)
			}
		})
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	cfg, err := parseConfig("serve", []string{"--addr", ":7000"},
		env(map[string]string{"STUDIO_ADDR": ":6000", "STUDIO_MODELS_DIR": "/srv/models"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.ModelsDir != "/srv/models" || cfg.ShutdownTimeout.String() != "30s" {
		t.Fatalf("%+v", cfg)
	}
	if cfg.ORT.IntraOpThreads < 1 {
		t.Fatalf("threads 0 must resolve to the CPU count, got %d", cfg.ORT.IntraOpThreads)
	}
	joined := fmtAttrs(cfg.logAttrs())
	for _, want := range []string{":7000 (flag)", "/srv/models (env)", "30s (default)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("effective config %s lacks %q", joined, want)
		}
	}
}

func TestWorkerSettings(t *testing.T) {
	cfg, err := parseConfig("worker", []string{"--redis-url", "redis://db:6379/0", "--max-batch", "32"},
		env(map[string]string{"STUDIO_WORKER_CONCURRENCY": "4", "STUDIO_MAX_WAIT": "0s"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WorkerConcurrency != 4 || cfg.MaxBatch != 32 || cfg.MaxWait != 0 {
		t.Fatalf("%+v", cfg)
	}
	cfg, err = parseConfig("serve", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxBatch != 8 || cfg.MaxWait.String() != "5ms" {
		t.Fatalf("serve defaults: %+v", cfg)
	}
}

func TestRedisPasswordIsNotLogged(t *testing.T) {
	cfg, err := parseConfig("serve", []string{"--redis-url", "redis://user:s3cret@db:6379/0"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmtAttrs(cfg.logAttrs()); strings.Contains(s, "s3cret") || !strings.Contains(s, "redis://***@db:6379/0") {
		t.Fatalf("logged %s", s)
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-h"}, env(nil), &out, &errb); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	if !strings.Contains(errb.String(), "STUDIO_ADDR") {
		t.Fatalf("help does not name the env vars: %s", errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, env(nil), &out, &errb); code != 0 || !strings.Contains(out.String(), "onnxruntime 1.24.3") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

// fmtAttrs renders slog attributes as the text handler would, roughly.
func fmtAttrs(attrs []any) string { return fmt.Sprint(attrs...) }

// TestEveryOptionSetsTheConfig: each row of the options table has a
// setter that accepts its default and changes what the Config holds for
// at least one value (so no row is read by nothing).
func TestEveryOptionSetsTheConfig(t *testing.T) {
	samples := map[string]string{"addr": "127.0.0.1:7001", "admin-addr": "127.0.0.1:7002", "redis-url": "redis://x:1/0",
		"models-dir": "m", "ort-lib": "l.so", "provider": "cuda", "require-provider": "true", "threads": "1000",
		"log-format": "json", "log-level": "debug", "shutdown-timeout": "7s", "examples-dir": "e", "datasets-dir": "d",
		"body-limit": "2048", "worker-concurrency": "3", "max-batch": "3", "max-wait": "7ms", "require-auth": "true",
		"admin-token": "an-admin-token-of-24-chars", "rate-limit": "7", "rate-burst": "7", "max-active-jobs": "7",
		"data": "other/birds", "feature-cache": "fc"}
	for _, o := range options() {
		t.Run(o.name, func(t *testing.T) {
			if o.set == nil {
				t.Fatal("no setter")
			}
			var def, other Config
			if err := o.set(&def, o.def); err != nil {
				t.Fatalf("default %q refused: %v", o.def, err)
			}
			v, ok := samples[o.name]
			if !ok {
				t.Fatal("no sample value in this test")
			}
			if err := o.set(&other, v); err != nil {
				t.Fatalf("%q refused: %v", v, err)
			}
			if reflect.DeepEqual(def, other) {
				t.Errorf("%q and the default %q make the same Config", v, o.def)
			}
		})
	}
}
