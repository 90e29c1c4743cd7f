package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/ort"
)

// healthServer answers /healthz with status; its address is loopback.
func healthServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestHealthExitCodes(t *testing.T) {
	up, down := healthServer(t, 200), healthServer(t, 503)
	_, upPort, _ := net.SplitHostPort(up)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"api up", []string{"health"}, map[string]string{"STUDIO_ADDR": up}, 0, "ok: http://" + up},
		{"flag beats env", []string{"health", "--addr", up}, map[string]string{"STUDIO_ADDR": closed}, 0, "ok"},
		{"wildcard host is loopback", []string{"health", "--addr", ":" + upPort}, nil, 0, "127.0.0.1:" + upPort},
		{"api answers 503", []string{"health"}, map[string]string{"STUDIO_ADDR": down}, 1, "503"},
		{"api down", []string{"health"}, map[string]string{"STUDIO_ADDR": closed, "STUDIO_ADMIN_ADDR": up}, 1, "unhealthy"},
		{"admin", []string{"health", "--admin"}, map[string]string{"STUDIO_ADDR": closed, "STUDIO_ADMIN_ADDR": up}, 0, "ok"},
		{"admin down", []string{"health", "--admin"}, map[string]string{"STUDIO_ADDR": up, "STUDIO_ADMIN_ADDR": closed}, 1, closed},
		{"any: the admin answers", []string{"health", "--any"}, map[string]string{"STUDIO_ADDR": closed, "STUDIO_ADMIN_ADDR": up}, 0, "ok"},
		{"any: neither", []string{"health", "--any"}, map[string]string{"STUDIO_ADDR": closed, "STUDIO_ADMIN_ADDR": down}, 1, "503"},
		{"bad address", []string{"health", "--addr", "8080"}, nil, 2, `--addr="8080"`},
		{"bad env address", []string{"health", "--admin"}, map[string]string{"STUDIO_ADMIN_ADDR": "x"}, 2, "admin-addr"},
		{"bad timeout", []string{"health", "--timeout", "0s"}, nil, 2, "--timeout"},
		{"stray argument", []string{"health", "now"}, nil, 2, `"now"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, env(c.env), &out, &errb)
			if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d mentioning %q", code, out.String(), errb.String(), c.code, c.want)
			}
		})
	}
}

func TestBoolFlagsAlone(t *testing.T) {
	cfg, err := parseConfig("serve", []string{"--require-auth", "--require-provider", "--addr", ":7001"}, env(nil), &bytes.Buffer{})
	if err != nil || !cfg.RequireAuth || !cfg.RequireProvider || cfg.Addr != ":7001" {
		t.Fatalf("%+v %v", cfg, err)
	}
	cfg, err = parseConfig("worker", []string{"--require-provider=false", "--redis-url", "redis://x:1"},
		env(map[string]string{"STUDIO_REQUIRE_PROVIDER": "true"}), &bytes.Buffer{})
	if err != nil || cfg.RequireProvider {
		t.Fatalf("flag false must beat env true: %+v %v", cfg, err)
	}
	if _, err := parseConfig("worker", []string{"--redis-url", "redis://x:1"},
		env(map[string]string{"STUDIO_REQUIRE_PROVIDER": "maybe"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "STUDIO_REQUIRE_PROVIDER") {
		t.Fatalf("bad value: %v", err)
	}
}

func TestProviderCheck(t *testing.T) {
	p := &providers{requested: ort.CUDA, err: errNotProbed}
	if err := p.check(t.Context()); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("before a probe: %v", err)
	}
	p.effective, p.err = ort.CPU, nil
	if err := p.check(t.Context()); err == nil || !strings.Contains(err.Error(), "asked for cuda, graph sessions run on cpu") {
		t.Errorf("fell back: %v", err)
	}
	p.effective = ort.CUDA
	if err := p.check(t.Context()); err != nil {
		t.Errorf("on cuda: %v", err)
	}
	if cs := p.checks(Config{}); len(cs) != 0 {
		t.Errorf("checks without --require-provider: %d", len(cs))
	}
	if cs := p.checks(Config{RequireProvider: true}); len(cs) != 1 || cs[0].Name != "provider" {
		t.Errorf("checks with --require-provider: %+v", cs)
	}
}
