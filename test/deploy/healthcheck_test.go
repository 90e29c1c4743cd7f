//go:build !unit

package deploy

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }

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

// fiberHealth serves /healthz with a status, as a failing `studio serve`
// would (Fiber, fasthttp).
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

// startStudio runs `studio cmd` as the image does (settings in the
// environment, no models) until the test ends, and returns once it
// answers on addr.
func startStudio(t *testing.T, cmd, addr string, env ...string) {
	t.Helper()
	p := exec.Command(studiotest.Studio(t), cmd)
	p.Env = append([]string{"PATH=/usr/bin:/bin", "ORT_LIB_PATH=" + studiotest.ORTLib(t), "STUDIO_MODELS_DIR=" + t.TempDir(), "STUDIO_THREADS=1"}, env...)
	studiotest.Start(t, p).Get(t, "http://"+addr+"/healthz", 30*time.Second)
}

// imageHealthcheck is the HEALTHCHECK command of Dockerfile: the image's
// binary and its arguments.
func imageHealthcheck(t *testing.T) []string {
	t.Helper()
	hc := parseDockerfile(t, "Dockerfile").final().one(t, "HEALTHCHECK")
	if !hc.JSON || len(hc.Args) < 2 {
		t.Fatalf("HEALTHCHECK CMD %s: want the exec form of the studio binary", hc.Raw)
	}
	return hc.Args
}

// runHealth runs the image's HEALTHCHECK arguments with the binary built
// here, in the environment env (as Docker runs it in the container), and
// returns its exit code and output.
func runHealth(t *testing.T, env ...string) (int, string) {
	t.Helper()
	args := imageHealthcheck(t)[1:]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, studiotest.Studio(t), args...)
	// A proxy in the container's environment must not be used: the check
	// is about this machine.
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HTTP_PROXY=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9"}, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("studio %v: %v", args, err)
	return -1, ""
}

// TestHealthSubcommand runs the image's health check (`studio health` with
// the HEALTHCHECK's arguments) against a real `studio serve` and a real
// `studio worker`, and against servers that fail or hang.
func TestHealthSubcommand(t *testing.T) {
	serveAddr, workerAddr := closedAddr(t), closedAddr(t)
	startStudio(t, "serve", serveAddr, "STUDIO_ADDR="+serveAddr)
	redis := redistest.Start(t, redistest.Options{})
	startStudio(t, "worker", workerAddr, "STUDIO_ADMIN_ADDR="+workerAddr, "REDIS_URL="+redis.URL())
	_, servePort, _ := net.SplitHostPort(serveAddr)

	for _, c := range []struct {
		name      string
		api, adm  func(t *testing.T) string
		wantCode  int
		wantError string
	}{
		{"serve healthy", func(*testing.T) string { return serveAddr }, closedAddr, 0, "ok"},
		{"worker healthy", closedAddr, func(*testing.T) string { return workerAddr }, 0, "ok"},
		{"wildcard host", func(*testing.T) string { return ":" + servePort }, closedAddr, 0, "127.0.0.1:" + servePort},
		{"nothing listening", closedAddr, closedAddr, 1, "unhealthy"},
		{"serve answers 503", func(t *testing.T) string { return fiberHealth(t, 503) }, closedAddr, 1, "503"},
		{"worker hangs", closedAddr, silent, 1, "unhealthy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			api, adm := c.api(t), c.adm(t)
			code, out := runHealth(t, "STUDIO_ADDR="+api, "STUDIO_ADMIN_ADDR="+adm)
			if code != c.wantCode || !strings.Contains(out, c.wantError) {
				t.Errorf("exit %d, output %q; want exit %d, output with %q", code, out, c.wantCode, c.wantError)
			}
		})
	}
}

// TestHealthDefaults: without the variables the check asks the binary's
// default addresses, where serve and worker listen by default.
func TestHealthDefaults(t *testing.T) {
	code, out := runHealth(t)
	for _, name := range []string{"addr", "admin-addr"} {
		_, port, err := net.SplitHostPort(optionNamed(t, name).Def)
		if err != nil {
			t.Fatal(err)
		}
		if want := "127.0.0.1:" + port; code == 1 && !strings.Contains(out, want) {
			t.Errorf("without settings the check did not ask %s (the default of --%s): %q", want, name, out)
		}
	}
	if code == 2 {
		t.Fatalf("the HEALTHCHECK's arguments are refused: %s", out)
	}
}
