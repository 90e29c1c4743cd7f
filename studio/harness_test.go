package studio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// The OpenAPI document, and every (operation, status) that the tests saw:
// each response of the suite is validated against the document, and when
// the whole suite runs every documented operation must have been called.
var (
	oaDoc    *openapi3.T
	oaRouter routers.Router
	seenMu   sync.Mutex
	seen     = map[string]map[int]bool{} // "METHOD /path" → statuses
)

func TestMain(m *testing.M) {
	flag.Parse()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(studio.OpenAPI())
	if err == nil {
		err = doc.Validate(context.Background())
	}
	if err == nil {
		oaRouter, err = gorillamux.NewRouter(doc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi.json:", err)
		os.Exit(1)
	}
	oaDoc = doc
	openapi3filter.RegisterBodyDecoder("image/png", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-tar", openapi3filter.FileBodyDecoder)
	code := m.Run()
	closeRealParts()
	// Only the whole suite calls every operation: the unit tier leaves out
	// the tests that need a worker with real graphs.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() && wholeSuite {
		if missing := uncalledOperations(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: documented operations no test called: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

func uncalledOperations() []string {
	seenMu.Lock()
	defer seenMu.Unlock()
	var missing []string
	for path, item := range oaDoc.Paths.Map() {
		for method := range item.Operations() {
			if len(seen[method+" "+path]) == 0 {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// checkAgainstDoc validates one exchange against the document: the route
// must be documented (unknown paths may only answer 404/405), the status
// and body must be the documented ones, and a request the server accepted
// must be valid by the document.
func checkAgainstDoc(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	t.Helper()
	route, params, err := oaRouter.FindRoute(req)
	if err != nil {
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s answered %d but is not in openapi.json: %v", req.Method, req.URL.Path, resp.StatusCode, err)
		}
		return
	}
	seenMu.Lock()
	key := req.Method + " " + route.Path
	if seen[key] == nil {
		seen[key] = map[int]bool{}
	}
	seen[key][resp.StatusCode] = true
	seenMu.Unlock()

	ctx := context.Background()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s was accepted (%d) but the request breaks openapi.json: %v", req.Method, req.URL.Path, resp.StatusCode, err)
		}
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		t.Errorf("%s %s → %d breaks openapi.json: %v\nbody: %.400s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	if resp.StatusCode >= 400 {
		checkProblem(t, resp, body)
	}
}

// checkProblem: every error is a problem document with a stable type and
// the request id of its header.
func checkProblem(t testing.TB, resp *http.Response, body []byte) {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%d is not a problem document (%q): %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		return
	}
	if !strings.HasPrefix(p.Type, api.TypeBase) || p.Status != resp.StatusCode || p.Detail == "" ||
		p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-ID") {
		t.Errorf("problem %+v (status %d, header id %q)", p, resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	for _, leak := range []string{"goroutine ", ".go:", "panic", "runtime."} {
		if strings.Contains(p.Detail, leak) {
			t.Errorf("problem detail leaks internals: %q", p.Detail)
		}
	}
}

// sampleModels is the sample models folder, or STUDIO_TEST_MODELS. A
// missing folder fails the tests that need it.
func sampleModels(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("STUDIO_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "samples", "models")
	}
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{textModel, classModel} {
		if _, ok := cat.Get(want); !ok {
			t.Fatalf("sample model %s missing from %s (set STUDIO_TEST_MODELS or train the sample models)", want, dir)
		}
	}
	return dir
}

const (
	textModel  = "attngan-birds"
	classModel = "cvaegan-birds"
	scorer     = "classifier-birds"
)

// workerQueue is the worker side of both queue backends, for tests that
// play the worker.
type workerQueue interface {
	studio.Jobs
	Claim(ctx context.Context, worker string, limit int, wait time.Duration) ([]queue.Lease, error)
	Extend(ctx context.Context, l queue.Lease) error
	PutResult(ctx context.Context, l queue.Lease, r queue.Result) error
	Ack(ctx context.Context, l queue.Lease) error
	Fail(ctx context.Context, l queue.Lease, cause error, retryable bool) error
	Stats(ctx context.Context) (queue.Stats, error)
	Close() error
}

type keyStore interface {
	studio.Keys
	studio.Limiter
}

// productionBackend is the backend of production deployments (Redis) in
// the whole suite, and the embedded one in the unit tier: for tests that
// run on one backend.
func productionBackend() string {
	if len(realBackends) > 0 {
		return realBackends[0].name
	}
	return "embedded"
}

// realBackend is a queue and key store on a real server (realparts_test.go).
type realBackend struct {
	name string
	open func(t *testing.T, cfg queue.Config, log *slog.Logger) (workerQueue, keyStore)
}

// env is a studio on a real listener with a real queue and key store.
type env struct {
	t       *testing.T
	url     string
	q       workerQueue
	keys    keyStore
	hc      *http.Client
	logs    *syncBuffer
	models  string
	stop    func()
	backend string
}

type envOpts struct {
	backend     string // "embedded" (default) or "redis"
	requireAuth bool
	adminToken  string
	limits      studio.Limits
	queue       queue.Config
	bodyLimit   int
	models      string // default: the sample models
	examples    string // default: the sample examples; "-" for none
	loads       studio.LoadStatus
	onReload    func(ctx context.Context, cat *catalog.Catalog) error
	datasetsDir string
	// open, when set, opens the queue and key store (a test that stops
	// its own server); backend then only names it.
	open func(t *testing.T, cfg queue.Config, log *slog.Logger) (workerQueue, keyStore)
}

const testAdminToken = "test-admin-token-0123456789"

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.models == "" {
		o.models = sampleModels(t)
	}
	cat, err := catalog.Open(o.models)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{t: t, logs: logs, models: o.models, backend: o.backend, hc: &http.Client{Timeout: 30 * time.Second}}
	switch {
	case o.open != nil:
		e.q, e.keys = o.open(t, o.queue, log)
	case o.backend == "" || o.backend == "embedded":
		e.backend = "embedded"
		e.q = queue.NewEmbeddedConfig(o.queue)
		e.keys = auth.NewMemory(auth.Config{})
	default:
		i := slices.IndexFunc(realBackends, func(b realBackend) bool { return b.name == o.backend })
		if i < 0 {
			t.Fatalf("backend %q (the unit tier has only embedded)", o.backend)
		}
		e.q, e.keys = realBackends[i].open(t, o.queue, log)
	}
	t.Cleanup(func() { e.q.Close() })
	if o.adminToken == "" {
		o.adminToken = testAdminToken
	}
	if o.bodyLimit == 0 {
		o.bodyLimit = 8 << 20
	}
	if o.limits.RateLimit == 0 {
		o.limits.RateLimit = -1 // tests that measure it set it
	}
	if o.limits.Heartbeat == 0 {
		o.limits.Heartbeat = 200 * time.Millisecond
	}
	switch o.examples {
	case "":
		o.examples = filepath.Join("..", "samples", "examples", "birds")
	case "-":
		o.examples = ""
	}
	srv := studio.New(studio.Config{Version: "test", BodyLimit: o.bodyLimit, ShutdownTimeout: 5 * time.Second,
		RequireAuth: o.requireAuth, AdminToken: o.adminToken, Limits: o.limits, ExamplesDir: o.examples, DatasetsDir: o.datasetsDir},
		studio.Deps{Log: log, Registry: prometheus.NewRegistry(), Jobs: e.q, Keys: e.keys, Limiter: e.keys, Models: cat,
			Loads: o.loads, OnReload: o.onReload})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// opt changes a request.
type opt func(*http.Request)

func bearer(token string) opt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func header(k, v string) opt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends a request (body: nil, []byte or string as is, anything else as
// JSON) and checks the exchange against the OpenAPI document.
func (e *env) do(method, path string, body any, opts ...opt) (*http.Response, []byte) {
	e.t.Helper()
	return doReq(e.t, e.hc, e.url, method, path, body, opts...)
}

func doReq(t testing.TB, hc *http.Client, base, method, path string, body any, opts ...opt) (*http.Response, []byte) {
	t.Helper()
	var raw []byte
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
		ct = "application/json"
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	checkAgainstDoc(t, req, raw, resp, out)
	return resp, out
}

// decode unmarshals a JSON answer after checking its status.
func decode[T any](t testing.TB, resp *http.Response, body []byte, status int) T {
	t.Helper()
	var v T
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %.500s", resp.StatusCode, status, body)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %.300s", v, err, body)
	}
	return v
}

func problemOf(t testing.TB, body []byte) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %v: %.300s", err, body)
	}
	return p
}

// createKey makes a key through the admin API with the bootstrap token.
func (e *env) createKey(name string, scopes ...string) api.CreatedKey {
	e.t.Helper()
	resp, body := e.do("POST", "/v1/admin/keys", api.KeyRequest{Name: name, Scopes: scopes}, bearer(testAdminToken))
	return decode[api.CreatedKey](e.t, resp, body, http.StatusCreated)
}

func ptr[T any](v T) *T { return &v }

// submit posts a generation and returns the job.
func (e *env) submit(req api.GenerationRequest, opts ...opt) api.Job {
	e.t.Helper()
	resp, body := e.do("POST", "/v1/generations", req, opts...)
	j := decode[api.Job](e.t, resp, body, http.StatusAccepted)
	if resp.Header.Get("Location") != j.Links.Self {
		e.t.Errorf("Location %q, self %q", resp.Header.Get("Location"), j.Links.Self)
	}
	return j
}
