//go:build !unit

// Package apiload measures the studio API under load from a second
// process over loopback: a `studio serve` API replica on a real Redis
// (authentication, rate limit and quota checks on the path, no worker),
// driven by loadgen. Run it with
//
//	go test -run '^$' -bench . -benchtime 1x ./test/apiload/
//
// It reports submissions and status reads per second with p50 and p99
// latencies; nothing is asserted about speed.
package apiload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }

const adminToken = "apiload-admin-token-0123456789"

func models(b *testing.B) (dir, class string) {
	dir = studiotest.Models(b)
	cat, err := catalog.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, ok := cat.Get("cvaegan-birds")
	if !ok {
		b.Fatalf("no cvaegan-birds in %s", dir)
	}
	cls, err := m.ReadClasses()
	if err != nil {
		b.Fatal(err)
	}
	return dir, cls.Trained()[0].Name
}

func BenchmarkAPILoad(b *testing.B) {
	studio := studiotest.Studio(b)
	loadgen := studiotest.Binary(b, studiotest.Module+"/test/apiload/loadgen")
	modelsDir, class := models(b)
	redis := redistest.Start(b, redistest.Options{})
	addr := studiotest.FreeAddr(b)
	srv := exec.Command(studio, "serve")
	srv.Env = append(os.Environ(), "REDIS_URL="+redis.URL(), "STUDIO_ADDR="+addr, "STUDIO_MODELS_DIR="+modelsDir,
		"STUDIO_REQUIRE_AUTH=true", "STUDIO_ADMIN_TOKEN="+adminToken, "STUDIO_RATE_LIMIT=0", "STUDIO_MAX_ACTIVE_JOBS=0",
		"STUDIO_LOG_LEVEL=warn")
	logs := studiotest.Start(b, srv)
	base := "http://" + addr
	token := waitAndCreateKey(b, base)

	for range b.N {
		cmd := exec.Command(loadgen, "-url", base, "-token", token, "-class", class, "-submits", "4000", "-reads", "8000", "-c", "16")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("loadgen: %v\n%s\nserver log:\n%s", err, out, logs.Logs())
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var r struct {
				Phase    string
				Requests int
				Errors   int
				RPS      float64
				P50ms    float64 `json:"p50_ms"`
				P99ms    float64 `json:"p99_ms"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				b.Fatal(err)
			}
			if r.Errors > 0 {
				b.Fatalf("%s: %d of %d requests failed", r.Phase, r.Errors, r.Requests)
			}
			b.ReportMetric(r.RPS, r.Phase+"/s")
			b.ReportMetric(r.P50ms, r.Phase+"-p50-ms")
			b.ReportMetric(r.P99ms, r.Phase+"-p99-ms")
			fmt.Fprintf(os.Stderr, "%s: %d requests, %.0f/s, p50 %.2f ms, p99 %.2f ms\n", r.Phase, r.Requests, r.RPS, r.P50ms, r.P99ms)
		}
	}
}

func waitAndCreateKey(b *testing.B, base string) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("POST", base+"/v1/admin/keys", strings.NewReader(`{"name":"load","scopes":["generate"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var k struct{ Token string }
			json.NewDecoder(resp.Body).Decode(&k)
			resp.Body.Close()
			if resp.StatusCode == 201 {
				return k.Token
			}
			b.Fatalf("create key: %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			b.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
