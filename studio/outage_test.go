//go:build !unit

package studio_test

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
	"github.com/fgstudio/fgstudio/test/redistest"
)

// With Redis down, every route that needs it answers 503 unavailable with
// Retry-After (never 500), and the reads that need no store keep
// answering for a key verified before the outage: models, a model, its
// vocabulary, tokenize, the static studio. Once Redis is back, so is
// everything else.
func TestRedisOutageAnswers503(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	e := newEnv(t, envOpts{requireAuth: true, limits: studio.Limits{RateLimit: 1000},
		queue: queue.Config{PollInterval: 20 * time.Millisecond},
		open: func(t *testing.T, cfg queue.Config, log *slog.Logger) (workerQueue, keyStore) {
			q, err := queue.NewRedis(t.Context(), srv.URL(), cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := auth.OpenRedis(t.Context(), srv.URL(), auth.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ks.Close() })
			return q, ks
		}})
	key := e.createKey("outage", "generate", "datasets").Token
	if resp, body := e.do("GET", "/v1/models", nil, bearer(key)); resp.StatusCode != 200 {
		t.Fatalf("models before the outage: %d %s", resp.StatusCode, body)
	}
	job := e.submit(api.GenerationRequest{Model: textModel, Prompt: "a small red bird"}, bearer(key))

	srv.Stop()
	const unknown = "fgs_0123456789012345678901234567890123456789012"
	for _, c := range []struct {
		method, path string
		body         any
		token        string
		want         int
	}{
		{"GET", "/v1/models", nil, key, 200},
		{"GET", "/v1/models/" + textModel, nil, key, 200},
		{"GET", "/v1/models/" + textModel + "/vocabulary", nil, key, 200},
		{"POST", "/v1/tokenize", api.TokenizeRequest{Model: textModel, Prompt: "a red bird"}, key, 200},
		{"GET", "/v1/models", nil, unknown, 503}, // a key never seen cannot be checked
		{"POST", "/v1/generations", api.GenerationRequest{Model: textModel, Prompt: "a small red bird"}, key, 503},
		{"GET", job.Links.Self, nil, key, 503},
		{"GET", job.Links.Self + "/events", nil, key, 503},
		{"GET", job.Links.Self + "/images/0.png", nil, key, 503},
		{"DELETE", job.Links.Self, nil, key, 503},
		{"GET", "/v1/jobs", nil, key, 503},
		{"GET", "/v1/admin/keys", nil, testAdminToken, 503},
		{"POST", "/v1/admin/keys", api.KeyRequest{Name: "k", Scopes: []string{"generate"}}, testAdminToken, 503},
	} {
		var opts []opt
		if c.token != "" {
			opts = append(opts, bearer(c.token))
		}
		began := time.Now()
		resp, body := e.do(c.method, c.path, c.body, opts...)
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("%s %s with Redis down took %s; an outage must answer promptly", c.method, c.path, took)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with Redis down: %d, want %d: %.300s", c.method, c.path, resp.StatusCode, c.want, body)
			continue
		}
		if c.want == 503 {
			checkProblem(t, resp, body)
			if p := problemOf(t, body); p.Slug() != api.TypeUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s: problem %s, Retry-After %q", c.method, c.path, p.Slug(), resp.Header.Get("Retry-After"))
			}
		}
	}
	// The static studio needs no store either.
	if resp, err := e.hc.Get(e.url + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET / with Redis down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if strings.Contains(e.logs.String(), "status=500") {
		t.Error("a request answered 500 while Redis was down")
	}

	// Once Redis is back, so is every route, within seconds: a read first
	// (it may still be answered with the cached key), then a submission,
	// which needs the key store's pool too. go-redis redials a pool that
	// saw many failed dials about once a second, so the first tries may
	// still answer 503 with Retry-After; a client that honours it gets
	// through. The idempotency key makes the retries one job.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	retry := func(what string, try func() (*http.Response, []byte), ok ...int) {
		t.Helper()
		for {
			resp, body := try()
			if slices.Contains(ok, resp.StatusCode) {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s after Redis came back: %d %s", what, resp.StatusCode, body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still unavailable 10 s after Redis came back: %s", what, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry("GET job", func() (*http.Response, []byte) { return e.do("GET", job.Links.Self, nil, bearer(key)) }, http.StatusOK)
	req := api.GenerationRequest{Model: textModel, Prompt: "a small red bird", IdempotencyKey: "after-the-outage"}
	retry("POST /v1/generations", func() (*http.Response, []byte) {
		return e.do("POST", "/v1/generations", req, bearer(key))
	}, http.StatusAccepted, http.StatusOK) // 200: a try that enqueued, then answered 503
	if strings.Contains(e.logs.String(), "status=500") {
		t.Error("a request answered 500 while Redis came back")
	}
}
