package studio_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/studio"
)

func newServer(t *testing.T, checks ...studio.Check) *studio.Server {
	t.Helper()
	return studio.New(studio.Config{Version: "test", BodyLimit: 2048}, studio.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Checks: checks})
}

func do(t *testing.T, s *studio.Server, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func TestHealthz(t *testing.T) {
	resp, body := do(t, newServer(t), httptest.NewRequest("GET", "/healthz", nil))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	ok := studio.Check{Name: "queue", Run: func(context.Context) error { return nil }}
	bad := studio.Check{Name: "models", Run: func(context.Context) error { return errors.New("no models loaded") }}

	resp, body := do(t, newServer(t, ok), httptest.NewRequest("GET", "/readyz", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("all checks pass: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, newServer(t, ok, bad), httptest.NewRequest("GET", "/readyz", nil))
	var got struct {
		Status string
		Checks map[string]string
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || got.Checks["models"] != "no models loaded" || got.Checks["queue"] != "ok" {
		t.Fatalf("one check fails: %d %s", resp.StatusCode, body)
	}
}

func TestUnknownRouteIsProblem(t *testing.T) {
	resp, body := do(t, newServer(t), httptest.NewRequest("GET", "/v1/nothing-here", nil))
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p studio.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Type, "/not-found") || p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-ID") {
		t.Fatalf("problem %+v, header id %q", p, resp.Header.Get("X-Request-ID"))
	}
}

func TestRequestIDKeptOrMade(t *testing.T) {
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "client-chosen-42")
	resp, _ := do(t, newServer(t), req)
	if got := resp.Header.Get("X-Request-ID"); got != "client-chosen-42" {
		t.Fatalf("kept id: %q", got)
	}
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", strings.Repeat("x", 500))
	resp, _ = do(t, newServer(t), req)
	if got := resp.Header.Get("X-Request-ID"); len(got) != 36 {
		t.Fatalf("an oversized id must be replaced by a fresh one, got %q", got)
	}
}

func TestBodyTooLargeIsProblem(t *testing.T) {
	// fasthttp rejects an oversized body while reading it, before any
	// handler, so this needs a real listener rather than App().Test.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- newServer(t).Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	resp, err := http.Post("http://"+ln.Addr().String()+"/healthz", "text/plain", strings.NewReader(strings.Repeat("a", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), "larger than 2048 bytes") {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	s := newServer(t)
	for range 3 {
		do(t, s, httptest.NewRequest("GET", "/healthz", nil))
	}
	do(t, s, httptest.NewRequest("GET", "/no/such/page", nil))
	_, body := do(t, s, httptest.NewRequest("GET", "/metrics", nil))
	text := string(body)
	for _, want := range []string{
		`studio_http_requests_total{code="200",method="GET",route="/healthz"} 3`,
		`studio_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`studio_http_request_duration_seconds_count{method="GET",route="/healthz"} 3`,
		`studio_http_problems_total{code="404",type="not-found"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestServesStudioPage(t *testing.T) {
	resp, body := do(t, newServer(t), httptest.NewRequest("GET", "/", nil))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("%d %.80s", resp.StatusCode, body)
	}
}
