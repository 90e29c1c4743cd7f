//go:build !unit

package integration

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

// testModels is the committed sample models, or STUDIO_TEST_MODELS; a
// missing folder fails the test.
func testModels(t *testing.T) (dir, model, class string) {
	t.Helper()
	dir = studiotest.Models(t)
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cat.Models() {
		if m.Manifest.Kind != catalog.KindCVAEGAN {
			continue
		}
		cls, err := m.ReadClasses()
		if err != nil {
			t.Fatal(err)
		}
		return dir, m.Manifest.Name, cls.Trained()[0].Name
	}
	t.Fatalf("no cvaegan sample model in %s", dir)
	return "", "", ""
}

// A worker process consumes jobs from Redis; on SIGTERM it finishes or
// hands back what it holds and exits 0; a second worker finishes the rest.
// Every job ends succeeded, once, with all its images.
func TestWorkerConsumesAndDrainsOnSIGTERM(t *testing.T) {
	models, model, class := testModels(t)
	redis := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	q, err := queue.NewRedis(ctx, redis.URL(), queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var ids []string
	for i := range 40 {
		s := jobspec.Spec{Kind: jobspec.Generate, Model: model, Class: class, N: 4, Seed: uint64(10 * i)}
		raw, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		j, _, err := q.Enqueue(ctx, queue.NewJob{Client: "c", Model: model, Spec: raw, Total: 4})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	env := []string{"REDIS_URL=" + redis.URL(), "STUDIO_MODELS_DIR=" + models, "STUDIO_THREADS=1",
		"STUDIO_WORKER_CONCURRENCY=2", "STUDIO_MAX_BATCH=4"}
	first := start(t, append(env, "STUDIO_ADMIN_ADDR="+studiotest.FreeAddr(t)), "worker")
	waitFor(t, first, "a first job done", func() bool {
		j, err := q.Get(ctx, "c", ids[0])
		return err == nil && j.State == queue.Succeeded
	})
	if code := first.Stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM; log:\n%s", code, first.Logs())
	}
	held := 0
	for _, id := range ids {
		j, err := q.Get(ctx, "c", id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == queue.Running {
			held++
		}
	}
	if held != 0 {
		t.Fatalf("%d jobs still held by the stopped worker; log:\n%s", held, first.Logs())
	}

	second := start(t, append(env, "STUDIO_ADMIN_ADDR="+studiotest.FreeAddr(t)), "worker")
	for _, id := range ids {
		waitFor(t, second, "job "+id, func() bool {
			j, err := q.Get(ctx, "c", id)
			if err != nil || j.State != queue.Succeeded {
				return false
			}
			var m jobspec.ImageMeta
			return len(j.Results) == 4 && json.Unmarshal(j.Results[3].Meta, &m) == nil && m.Index == 3
		})
	}
	if code := second.Stop(t); code != 0 {
		t.Fatalf("second worker exit %d; log:\n%s", code, second.Logs())
	}
}

func waitFor(t *testing.T, p *studiotest.Process, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
