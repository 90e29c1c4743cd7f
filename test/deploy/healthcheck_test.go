package deploy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// listen opens a loopback listener on a free port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fiberHealth serves /healthz as `studio serve` does (Fiber, fasthttp).
func fiberHealth(t *testing.T, status int) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.Status(status).JSON(fiber.Map{"status": "ok"})
	})
	ln := listen(t)
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })
	return ln.Addr().String()
}

// netHTTPHealth serves /healthz as the worker's admin server does (net/http).
func netHTTPHealth(t *testing.T, status int) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"ok"}`))
	})
	ln := listen(t)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// silent accepts connections and never answers.
func silent(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	conns := make(chan net.Conn, 16)
	t.Cleanup(func() {
		ln.Close()
		for len(conns) > 0 {
			(<-conns).Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
				c.Close()
			}
		}
	}()
	return ln.Addr().String()
}

// runHealthcheck runs the image's health check script with env and returns
// its exit code and stderr.
func runHealthcheck(t *testing.T, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", filepath.Join(root(t), "deploy", "docker", "healthcheck.sh"))
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HEALTHCHECK_TIMEOUT=1"}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("healthcheck.sh: %v", err)
	return -1, ""
}

// TestHealthcheckScript runs deploy/docker/healthcheck.sh against servers
// that answer /healthz as serve (Fiber) and worker (net/http) do.
func TestHealthcheckScript(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		api, adm  func(t *testing.T) string
		wantCode  int
		wantError string
	}{
		{"serve healthy", func(t *testing.T) string { return fiberHealth(t, 200) }, closedAddr, 0, ""},
		{"worker healthy", closedAddr, func(t *testing.T) string { return netHTTPHealth(t, 200) }, 0, ""},
		{"nothing listening", closedAddr, closedAddr, 1, "did not answer 200"},
		{"serve answers 503", func(t *testing.T) string { return fiberHealth(t, 503) }, closedAddr, 1, "did not answer 200"},
		{"worker answers 500", closedAddr, func(t *testing.T) string { return netHTTPHealth(t, 500) }, 1, "did not answer 200"},
		{"worker hangs", closedAddr, silent, 1, "did not answer 200"},
	} {
		t.Run(c.name, func(t *testing.T) {
			api, adm := c.api(t), c.adm(t)
			code, stderr := runHealthcheck(t, "STUDIO_ADDR="+api, "STUDIO_ADMIN_ADDR="+adm)
			if code != c.wantCode || !strings.Contains(stderr, c.wantError) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr with %q", code, stderr, c.wantCode, c.wantError)
			}
		})
	}
	t.Run("wildcard host", func(t *testing.T) {
		// ":PORT" as in the defaults: probed on 127.0.0.1.
		_, port, _ := net.SplitHostPort(netHTTPHealth(t, 200))
		if code, stderr := runHealthcheck(t, "STUDIO_ADDR="+closedAddr(t), "STUDIO_ADMIN_ADDR=:"+port); code != 0 {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestHealthcheckDefaults: without the variables the script probes the
// binary's default addresses.
func TestHealthcheckDefaults(t *testing.T) {
	script := readRepoFile(t, "deploy/docker/healthcheck.sh")
	for _, name := range []string{"addr", "admin-addr"} {
		o := optionNamed(t, name)
		re := regexp.MustCompile(`\$\{` + o.Env + `:-([^}]*)\}`)
		ms := re.FindAllStringSubmatch(script, -1)
		if len(ms) == 0 {
			t.Errorf("healthcheck.sh does not read %s", o.Env)
		}
		for _, m := range ms {
			if m[1] != o.Def {
				t.Errorf("healthcheck.sh: ${%s:-%s}, the binary's default is %s", o.Env, m[1], o.Def)
			}
		}
	}
}
