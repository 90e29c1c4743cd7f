package studio_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
)

// TestKeysAndScopes: with --require-auth every /v1 call needs a key; keys
// carry scopes, see only their own jobs, and stop working when revoked.
func TestKeysAndScopes(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, requireAuth: true})
		resp, body := e.do("GET", "/v1/models", nil)
		if p := problemOf(t, body); resp.StatusCode != 401 || p.Field != "Authorization" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("no key: %d %s", resp.StatusCode, body)
		}
		alice := e.createKey("alice", "generate")
		bob := e.createKey("bob", "generate", "datasets")
		reader := e.createKey("reader", "datasets")
		if !strings.HasPrefix(alice.Token, "fgs_") || alice.ID == bob.ID {
			t.Fatalf("keys %+v %+v", alice, bob)
		}

		j := e.submit(api.GenerationRequest{Model: classModel, Class: trainedClass(t, e)}, bearer(alice.Token))
		if resp, _ := e.do("GET", j.Links.Self, nil, bearer(alice.Token)); resp.StatusCode != 200 {
			t.Fatalf("own job: %d", resp.StatusCode)
		}
		// Another key's job does not exist for bob, whatever he asks.
		for _, r := range []struct{ method, path string }{
			{"GET", j.Links.Self}, {"DELETE", j.Links.Self}, {"GET", j.Links.Events},
			{"GET", imgPath(j.ID, 0)}, {"GET", j.Links.Self + "/images/0/attention"},
		} {
			resp, body := e.do(r.method, r.path, nil, bearer(bob.Token))
			if resp.StatusCode != 404 || problemOf(t, body).Slug() != api.TypeNotFound {
				t.Errorf("bob %s %s: %d %s", r.method, r.path, resp.StatusCode, body)
			}
		}
		if resp, body := e.do("GET", j.Links.Self, nil, bearer(alice.Token)); decode[api.Job](t, resp, body, 200).State != "queued" {
			t.Fatal("bob's DELETE cancelled alice's job")
		}
		// Scopes.
		for _, c := range []struct {
			token, method, path string
			body                any
			status              int
		}{
			{reader.Token, "POST", "/v1/generations", api.GenerationRequest{Model: classModel, Class: "x"}, 403},
			{reader.Token, "GET", j.Links.Self, nil, 403},
			{reader.Token, "GET", "/v1/models", nil, 200},
			{alice.Token, "GET", "/v1/admin/keys", nil, 403},
			{alice.Token, "POST", "/v1/admin/keys", api.KeyRequest{Name: "x", Scopes: []string{"admin"}}, 403},
			{alice.Token, "POST", "/v1/datasets", api.DatasetRequest{Model: classModel, PerClass: 1}, 403},
			{alice.Token, "GET", "/v1/datasets/abc", nil, 403},
			{bob.Token, "GET", "/v1/datasets/abc", nil, 404},
			{bob.Token, "DELETE", "/v1/datasets/abc", nil, 404},
			// A generation is not a data set, even for its owner's key.
			{alice.Token, "GET", "/v1/datasets/" + j.ID, nil, 403},
		} {
			resp, body := e.do(c.method, c.path, c.body, bearer(c.token))
			if resp.StatusCode != c.status {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, body)
			}
		}
		// Listing shows no secret; revoking stops the key at once.
		resp, body = e.do("GET", "/v1/admin/keys", nil, bearer(testAdminToken))
		list := decode[api.KeyList](t, resp, body, 200)
		if len(list.Keys) != 3 || strings.Contains(string(body), alice.Token) || strings.Contains(string(body), "hash") {
			t.Fatalf("list %s", body)
		}
		resp, body = e.do("DELETE", "/v1/admin/keys/"+alice.ID, nil, bearer(testAdminToken))
		if k := decode[api.Key](t, resp, body, 200); k.RevokedAt.IsZero() {
			t.Fatalf("revoked %+v", k)
		}
		resp, body = e.do("GET", j.Links.Self, nil, bearer(alice.Token))
		if p := problemOf(t, body); resp.StatusCode != 401 || !strings.Contains(p.Detail, "revoked") {
			t.Fatalf("revoked key: %d %s", resp.StatusCode, body)
		}
		if resp, _ := e.do("DELETE", "/v1/admin/keys/key_0000", nil, bearer(testAdminToken)); resp.StatusCode != 404 {
			t.Fatalf("revoke unknown: %d", resp.StatusCode)
		}
		// Key requests are validated.
		resp, body = e.do("POST", "/v1/admin/keys", api.KeyRequest{Name: "x", Scopes: []string{"root"}}, bearer(testAdminToken))
		if p := problemOf(t, body); resp.StatusCode != 422 || p.Field != "scopes" {
			t.Fatalf("bad scope: %d %s", resp.StatusCode, body)
		}
		if !strings.Contains(e.logs.String(), "api key revoked") || strings.Contains(e.logs.String(), bob.Token) || strings.Contains(e.logs.String(), testAdminToken) {
			t.Fatal("the log must record key changes and never a token")
		}
	})
}

// TestLocalModeWithoutKey: without --require-auth, requests without a
// key are served from loopback only, and a key, when given, is checked.
func TestLocalModeWithoutKey(t *testing.T) {
	e := newEnv(t, envOpts{})
	if resp, body := e.do("GET", "/v1/models", nil); resp.StatusCode != 200 {
		t.Fatalf("local, no key: %d %s", resp.StatusCode, body)
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded"} {
		if resp, _ := e.do("GET", "/v1/models", nil, header(h, "203.0.113.9")); resp.StatusCode != 401 {
			t.Errorf("proxied request without key (%s): %d", h, resp.StatusCode)
		}
	}
	for _, auth := range []string{"Bearer fgs_nope", "Basic dXNlcjpwYXNz", "Bearer", "fgs_x"} {
		if resp, _ := e.do("GET", "/v1/models", nil, header("Authorization", auth)); resp.StatusCode != 401 {
			t.Errorf("Authorization %q: %d", auth, resp.StatusCode)
		}
	}
	k := e.createKey("k", "generate")
	j := e.submit(api.GenerationRequest{Model: classModel, Class: trainedClass(t, e)}, bearer(k.Token))
	if resp, _ := e.do("GET", j.Links.Self, nil); resp.StatusCode != 404 {
		t.Fatalf("the anonymous local user sees a key's job: %d", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, limits: studio.Limits{RateLimit: 1, RateBurst: 3}})
		k := e.createKey("k", "generate")
		for i := range 3 {
			if resp, _ := e.do("GET", "/v1/models", nil, bearer(k.Token)); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
		resp, body := e.do("GET", "/v1/models", nil, bearer(k.Token))
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 || problemOf(t, body).Slug() != api.TypeRateLimited || ra < 1 {
			t.Fatalf("4th: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		// Other keys have their own budget; the local user has none.
		k2 := e.createKey("k2", "generate")
		if resp, _ := e.do("GET", "/v1/models", nil, bearer(k2.Token)); resp.StatusCode != 200 {
			t.Fatalf("other key: %d", resp.StatusCode)
		}
		for range 10 {
			if resp, _ := e.do("GET", "/v1/models", nil); resp.StatusCode != 200 {
				t.Fatalf("anonymous local user: %d", resp.StatusCode)
			}
		}
		time.Sleep(time.Duration(ra) * time.Second)
		if resp, _ := e.do("GET", "/v1/models", nil, bearer(k.Token)); resp.StatusCode != 200 {
			t.Fatalf("after waiting: %d", resp.StatusCode)
		}
	})
}

func TestActiveJobQuota(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, limits: studio.Limits{MaxActiveJobs: 2}})
		cl := trainedClass(t, e)
		req := api.GenerationRequest{Model: classModel, Class: cl}
		a := e.submit(req)
		e.submit(req)
		resp, body := e.do("POST", "/v1/generations", req)
		if resp.StatusCode != 429 || problemOf(t, body).Slug() != api.TypeQuotaExceeded || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("3rd: %d %s", resp.StatusCode, body)
		}
		// Other keys are not affected.
		k := e.createKey("k", "generate")
		e.submit(req, bearer(k.Token))
		// A finished job frees its place.
		e.do("DELETE", a.Links.Self, nil)
		e.submit(req)
		// A job that finishes without anyone looking frees its place too.
		for range 3 {
			e.fakeWork(0)
		}
		e.submit(req)
		e.submit(req)
	})
}

func TestQueueFullIs429(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, queue: queueCfg(2)})
		req := api.GenerationRequest{Model: classModel, Class: trainedClass(t, e)}
		e.submit(req)
		e.submit(req)
		resp, body := e.do("POST", "/v1/generations", req)
		if resp.StatusCode != 429 || problemOf(t, body).Slug() != api.TypeQueueFull || resp.Header.Get("Retry-After") != "5" {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
}

func queueCfg(maxQueued int) queue.Config { return queue.Config{MaxQueued: maxQueued} }
