// Package integration runs the studio binary as users do: as a process,
// with real Redis, real ONNX Runtime, and signals.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/test/redistest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "studio-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "studio")
	build := exec.Command("go", "build", "-o", binary, "github.com/fgstudio/fgstudio/cmd/studio")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build studio:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ortLib(t *testing.T) string {
	if p := os.Getenv("ORT_LIB_PATH"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../.deps/onnxruntime/lib/libonnxruntime.so")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a running studio process whose log is collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), "ORT_LIB_PATH="+ortLib(t), "STUDIO_MODELS_DIR="+t.TempDir())
	p.cmd.Env = append(p.cmd.Env, env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM; log:\n%s", p.logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get polls url until it answers (the process may still be starting).
func get(t *testing.T, p *proc, url string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v; log:\n%s", url, err, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeEmbeddedStartsAnswersAndStopsCleanly(t *testing.T) {
	addr := freeAddr(t)
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
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; log:\n%s", code, p.logs())
	}
	log := p.logs()
	for _, want := range []string{`"msg":"starting studio serve"`, `"addr":"` + addr + ` (env)"`, "embedded queue", `"version":"1.24.3"`, "stopped cleanly"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func TestServeWithRedisIsAPIOnly(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	addr := freeAddr(t)
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
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.logs())
	}
	if strings.Contains(p.logs(), "onnx runtime ready") {
		t.Error("an API-only replica must not load ONNX Runtime")
	}
}

func TestWorkerAnswersAdminEndpointsAndStops(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	admin := freeAddr(t)
	p := start(t, []string{"REDIS_URL=" + redis.URL(), "STUDIO_ADMIN_ADDR=" + admin}, "worker")
	if code, _ := get(t, p, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get(t, p, "http://"+admin+"/readyz"); code != 503 || !strings.Contains(body, "no models") {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.logs())
	}
}

func TestWorkerWithoutRedisFailsClearly(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	url := redis.URL()
	redis.Stop()
	p := start(t, []string{"REDIS_URL=" + url, "STUDIO_ADMIN_ADDR=" + freeAddr(t)}, "worker")
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not give up on an unreachable Redis")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.logs(), "redis ping") {
		t.Fatalf("exit %d; log:\n%s", code, p.logs())
	}
}

func TestMissingOnnxRuntimeFailsClearly(t *testing.T) {
	p := start(t, []string{"ORT_LIB_PATH=" + filepath.Join(t.TempDir(), "libonnxruntime.so"), "STUDIO_ADDR=" + freeAddr(t)}, "serve")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatal("serve did not stop without ONNX Runtime")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.logs(), "scripts/setup.sh") {
		t.Fatalf("exit %d; log:\n%s", code, p.logs())
	}
}

func TestBadFlagExits2(t *testing.T) {
	p := start(t, nil, "serve", "--threads", "many")
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 2 || strings.Count(strings.TrimSpace(p.logs()), "\n") != 0 ||
		!strings.Contains(p.logs(), `--threads="many"`) {
		t.Fatalf("exit %d; stderr:\n%s", code, p.logs())
	}
}
