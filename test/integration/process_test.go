//go:build !unit

// Package integration runs the studio binary as users do: as a process,
// with real Redis, real ONNX Runtime, and signals.
package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }

// start runs the studio binary with args, the real ONNX Runtime, an empty
// models folder and env on top of this process's environment.
func start(t *testing.T, env []string, args ...string) *studiotest.Process {
	t.Helper()
	cmd := exec.Command(studiotest.Studio(t), args...)
	cmd.Env = append(os.Environ(), "ORT_LIB_PATH="+studiotest.ORTLib(t), "STUDIO_MODELS_DIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	return studiotest.Start(t, cmd)
}

// get polls url until it answers (the process may still be starting).
func get(t *testing.T, p *studiotest.Process, url string) (int, string) {
	t.Helper()
	return p.Get(t, url, 15*time.Second)
}

func TestServeEmbeddedStartsAnswersAndStopsCleanly(t *testing.T) {
	addr := studiotest.FreeAddr(t)
	p := start(t, []string{"STUDIO_ADDR=" + addr}, "serve", "--log-format", "json")
	code, body := get(t, p, "http://"+addr+"/healthz")
	if code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz %d %s", code, body)
	}
	// No models yet: up, but not ready, and saying why.
	code, body = get(t, p, "http://"+addr+"/readyz")
	if code != 503 || !strings.Contains(body, "no models loaded") || !strings.Contains(body, `"queue":"ok"`) {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, body = get(t, p, "http://"+addr+"/metrics"); code != 200 || !strings.Contains(body, "studio_http_requests_total") {
		t.Fatalf("metrics %d", code)
	}
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; log:\n%s", code, p.Logs())
	}
	log := p.Logs()
	for _, want := range []string{`"msg":"starting studio serve"`, `"addr":"` + addr + ` (env)"`, "embedded queue", `"version":"1.24.3"`, "stopped cleanly"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func TestServeWithRedisIsAPIOnly(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	addr := studiotest.FreeAddr(t)
	p := start(t, []string{"REDIS_URL=" + redis.URL()}, "serve", "--addr", addr)
	if code, _ := get(t, p, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	_, body := get(t, p, "http://"+addr+"/readyz")
	if !strings.Contains(body, `"queue":"ok"`) {
		t.Fatalf("readyz %s", body)
	}
	// An API replica exports the queue gauges too, so that autoscaling on
	// queue depth works while no worker runs.
	if _, body := get(t, p, "http://"+addr+"/metrics"); !strings.Contains(body, `studio_queue_depth{lane="interactive"} 0`) ||
		!strings.Contains(body, "studio_queue_up 1") {
		t.Fatalf("metrics of an API replica lack the queue gauges:\n%s", body)
	}
	redis.Stop()
	if code, body := get(t, p, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "redis") {
		t.Fatalf("readyz with Redis down: %d %s", code, body)
	}
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
	if strings.Contains(p.Logs(), "onnx runtime ready") {
		t.Error("an API-only replica must not load ONNX Runtime")
	}
}

func TestWorkerAnswersAdminEndpointsAndStops(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	admin := studiotest.FreeAddr(t)
	p := start(t, []string{"REDIS_URL=" + redis.URL(), "STUDIO_ADMIN_ADDR=" + admin}, "worker")
	if code, _ := get(t, p, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get(t, p, "http://"+admin+"/readyz"); code != 503 || !strings.Contains(body, "no models") {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
}

func TestWorkerWithoutRedisFailsClearly(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	url := redis.URL()
	redis.Stop()
	p := start(t, []string{"REDIS_URL=" + url, "STUDIO_ADMIN_ADDR=" + studiotest.FreeAddr(t)}, "worker")
	if code := p.ExitCode(t, 30*time.Second); code != 1 || !strings.Contains(p.Logs(), "redis ping") {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
}

func TestMissingOnnxRuntimeFailsClearly(t *testing.T) {
	p := start(t, []string{"ORT_LIB_PATH=" + filepath.Join(t.TempDir(), "libonnxruntime.so"), "STUDIO_ADDR=" + studiotest.FreeAddr(t)}, "serve")
	if code := p.ExitCode(t, 20*time.Second); code != 1 || !strings.Contains(p.Logs(), "scripts/setup.sh") {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
}

func TestBadFlagExits2(t *testing.T) {
	p := start(t, nil, "serve", "--threads", "many")
	if code := p.ExitCode(t, 20*time.Second); code != 2 || strings.Count(strings.TrimSpace(p.Logs()), "\n") != 0 ||
		!strings.Contains(p.Logs(), `--threads="many"`) {
		t.Fatalf("exit %d; stderr:\n%s", code, p.Logs())
	}
}
