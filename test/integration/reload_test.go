//go:build !unit

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

// modelsWithout is a models folder of links to the sample models but
// one, and a func that adds that one.
func modelsWithout(t *testing.T, src, left string) (dir string, add func()) {
	t.Helper()
	cat, err := catalog.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	link := func(m *catalog.Model) {
		if err := os.Symlink(m.Dir, filepath.Join(dir, filepath.Base(m.Dir))); err != nil {
			t.Fatal(err)
		}
	}
	var later *catalog.Model
	for _, m := range cat.Models() {
		if m.Manifest.Name == left {
			later = m
			continue
		}
		link(m)
	}
	if later == nil {
		t.Fatalf("no model %s in %s", left, src)
	}
	return dir, func() { link(later) }
}

func getJSON[T any](t *testing.T, url string) (int, T) {
	t.Helper()
	var v T
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	return resp.StatusCode, v
}

// TestServeReloadReloadsItsWorker: in the one-process studio an admin's
// reload makes a model added to the folder both accepted by the API and
// run by the in-process worker, without a restart.
func TestServeReloadReloadsItsWorker(t *testing.T) {
	src, classModel, class := testModels(t)
	dir, add := modelsWithout(t, src, classModel)
	addr := studiotest.FreeAddr(t)
	p := start(t, []string{"STUDIO_ADDR=" + addr, "STUDIO_MODELS_DIR=" + dir, "STUDIO_THREADS=1"}, "serve")
	base := "http://" + addr
	waitReady(t, p, base)
	_, list := getJSON[api.ModelList](t, base+"/v1/models")
	for _, m := range list.Models {
		if !m.Loaded || m.LoadCheck != "generator" || m.Name == classModel {
			t.Fatalf("before the reload: %+v", m)
		}
	}

	add()
	resp, err := http.Post(base+"/v1/admin/models/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var r api.Reload
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 || len(r.Problems) != 0 {
		t.Fatalf("reload: %d %+v %v", resp.StatusCode, r, err)
	}
	resp.Body.Close()
	if code, m := getJSON[api.Model](t, base+"/v1/models/"+classModel); code != 200 || !m.Loaded || m.LoadCheck != "generator" {
		t.Fatalf("after the reload: %d %+v", code, m.ModelSummary)
	}
	c, err := client.New(base, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	job, err := c.Generate(ctx, api.GenerationRequest{Model: classModel, Class: class, N: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, job.ID, nil)
	if err != nil || done.State != "succeeded" || len(done.Images) != 2 || done.Images[0].FidelityMeasure != "class_probability" {
		t.Fatalf("%+v %v; log:\n%s", done, err, p.Logs())
	}
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), "generator reloaded") {
		t.Errorf("no reload in the log:\n%s", p.Logs())
	}
}

// TestWorkerReloadsOnSIGHUP: a worker that did not have a model runs its
// jobs after SIGHUP, having read the models folder again; it keeps
// running through the reload and stops cleanly after.
func TestWorkerReloadsOnSIGHUP(t *testing.T) {
	src, classModel, class := testModels(t)
	dir, add := modelsWithout(t, src, classModel)
	redis := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	q, err := queue.NewRedis(ctx, redis.URL(), queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	admin := studiotest.FreeAddr(t)
	p := start(t, []string{"REDIS_URL=" + redis.URL(), "STUDIO_MODELS_DIR=" + dir, "STUDIO_ADMIN_ADDR=" + admin, "STUDIO_THREADS=1"}, "worker")
	waitReady(t, p, "http://"+admin)

	add()
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "the reload", func() bool { return strings.Contains(p.Logs(), "generator reloaded") })
	s := jobspec.Spec{Kind: jobspec.Generate, Model: classModel, Class: class, N: 2, Seed: 5}
	raw, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := q.Enqueue(ctx, queue.NewJob{Client: "c", Model: classModel, Spec: raw, Total: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "the job of the reloaded model", func() bool {
		got, err := q.Get(ctx, "c", j.ID)
		if err == nil && got.State == queue.Failed {
			t.Fatalf("job failed: %s; log:\n%s", got.Error, p.Logs())
		}
		return err == nil && got.State == queue.Succeeded && len(got.Results) == 2
	})
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; log:\n%s", code, p.Logs())
	}
}

// TestProviderFallbackFailsReadinessWhenRequired: this machine's library
// has no CUDA provider, so a worker asked for CUDA runs on CPU: the
// metric says so, and with --require-provider readiness fails naming
// both; without it the worker stays ready.
func TestProviderFallbackFailsReadinessWhenRequired(t *testing.T) {
	models, _, _ := testModels(t)
	redis := redistest.Start(t, redistest.Options{})
	for _, require := range []bool{true, false} {
		t.Run(fmt.Sprintf("require=%v", require), func(t *testing.T) {
			admin := studiotest.FreeAddr(t)
			p := start(t, []string{"REDIS_URL=" + redis.URL(), "STUDIO_MODELS_DIR=" + models, "STUDIO_ADMIN_ADDR=" + admin,
				"STUDIO_THREADS=1", "STUDIO_PROVIDER=cuda", fmt.Sprintf("STUDIO_REQUIRE_PROVIDER=%v", require)}, "worker")
			base := "http://" + admin
			get(t, p, base+"/healthz")
			waitFor(t, p, "the provider probe", func() bool { return strings.Contains(p.Logs(), "execution provider") })
			code, body := get(t, p, base+"/readyz")
			if require && (code != 503 || !strings.Contains(body, `"provider":"asked for cuda, graph sessions run on cpu`)) {
				t.Errorf("readyz %d %s", code, body)
			}
			if !require && (code != 200 || strings.Contains(body, "provider")) {
				t.Errorf("readyz %d %s", code, body)
			}
			if _, metrics := get(t, p, base+"/metrics"); !strings.Contains(metrics, `studio_ort_provider_info{effective="cpu",requested="cuda"} 1`) {
				t.Errorf("metrics lack the provider info:\n%s", metrics)
			}
			if code := p.Stop(t); code != 0 {
				t.Fatalf("exit %d; log:\n%s", code, p.Logs())
			}
		})
	}
}
