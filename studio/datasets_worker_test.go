//go:build !unit

package studio_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/worker"
)

// The ONNX Runtime of the tests that run a real worker (closed by TestMain).
var (
	testRuntime *ort.Runtime
	rtOnce      sync.Once
	rtErr       error
)

func runtimeFor(t testing.TB) *ort.Runtime {
	t.Helper()
	rtOnce.Do(func() {
		lib := os.Getenv("ORT_LIB_PATH")
		if lib == "" {
			lib = filepath.Join("..", ort.DefaultLibraryPath())
		}
		testRuntime, rtErr = ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 2, InterOpThreads: 1}, slog.New(slog.DiscardHandler))
	})
	if rtErr != nil {
		t.Fatalf("onnx runtime (run scripts/setup.sh, or set ORT_LIB_PATH): %v", rtErr)
	}
	return testRuntime
}

// datasetEnv is a studio with a real worker loop that makes data sets
// with the sample models into a folder the API also serves from (the
// one-process studio).
func datasetEnv(t *testing.T) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	e := newEnv(t, envOpts{datasetsDir: dir})
	cat, err := catalog.Open(e.models)
	if err != nil {
		t.Fatal(err)
	}
	svc := generator.Load(runtimeFor(t), cat, generator.Config{MaxBatch: 8}, slog.New(slog.DiscardHandler))
	t.Cleanup(svc.Close)
	if err, bad := svc.Failed()[classModel]; bad {
		t.Fatalf("%s did not load: %v", classModel, err)
	}
	w, err := worker.New(worker.Config{Name: "test", Heartbeat: 50 * time.Millisecond, ClaimWait: 100 * time.Millisecond,
		Datasets: &worker.Maker{Service: svc, Models: cat, Batch: 4}, DatasetsDir: dir}, e.q, svc, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return e, dir
}

func TestDatasetJobMakesProgressAndDownloads(t *testing.T) {
	e, _ := datasetEnv(t)
	classes := seenClasses(t, e, 2)
	seed := uint64(7)
	resp, body := e.do("POST", "/v1/datasets", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 3, Seed: &seed})
	d := decode[api.Dataset](t, resp, body, 202)
	if d.State != "queued" || d.Progress.Total != 3 || d.Links.Download == "" || resp.Header.Get("Location") != d.Links.Self {
		t.Fatalf("created %s", body)
	}
	seenDone := map[int]bool{}
	d = waitDataset(t, e, d.Links.Self, func(d api.Dataset) bool {
		seenDone[d.Progress.Done] = true
		return d.State != "queued" && d.State != "running"
	})
	if d.State != "succeeded" || d.Progress.Done != 3 || len(d.Classes) != 2 || len(d.Report) == 0 {
		t.Fatalf("finished %+v", d)
	}
	for i, c := range d.Classes {
		if c.Class != classes[i] || !c.Done || c.Kept == nil || *c.Kept != 3 || c.Made == nil || *c.Made < 3 || c.Acceptance == nil {
			t.Errorf("class %d: %+v", i, c)
		}
	}
	t.Logf("progress values seen while polling: %v", seenDone)

	// The event stream of a finished job: its state, then the end.
	resp, body = e.do("GET", d.Links.Events, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "event: finished") || strings.Contains(string(body), "event: image") {
		t.Errorf("events %d: %s", resp.StatusCode, body)
	}

	// The download is the manifest and every file it lists, with the
	// manifest's checksums.
	resp, body = e.do("GET", d.Links.Download, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("download %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	tr := tar.NewReader(strings.NewReader(string(body)))
	got := map[string]string{}
	var man datasetspec.Manifest
	for first := true; ; first = false {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			if h.Name != "manifest.json" || json.Unmarshal(b, &man) != nil {
				t.Fatalf("first entry %s", h.Name)
			}
			continue
		}
		sum := sha256.Sum256(b)
		got[h.Name] = hex.EncodeToString(sum[:])
	}
	// SHA256SUMS (sha256sum -c) lists the manifest's files; it is not one of them.
	if _, ok := got[datasetspec.SumsFile]; !ok {
		t.Fatalf("the tar has no %s", datasetspec.SumsFile)
	}
	delete(got, datasetspec.SumsFile)
	if len(man.Files) == 0 || len(got) != len(man.Files) {
		t.Fatalf("tar holds %d files, manifest lists %d", len(got), len(man.Files))
	}
	pngs := 0
	for _, f := range man.Files {
		if got[f.Path] != f.SHA256 {
			t.Errorf("%s: sha256 %s, manifest %s", f.Path, got[f.Path], f.SHA256)
		}
		if strings.HasSuffix(f.Path, ".png") {
			pngs++
		}
	}
	if pngs < 6 {
		t.Errorf("%d PNG files, want at least 2 classes × 3", pngs)
	}
	if len(man.Classes) != 2 || man.Classes[0].Count != 3 || man.Classes[1].Count != 3 {
		t.Errorf("manifest classes %+v", man.Classes)
	}

	// Another key's data set does not exist for it; a generation path
	// does not serve it.
	bob := e.createKey("bob", "datasets", "generate")
	for _, p := range []string{d.Links.Self, d.Links.Download, d.Links.Events} {
		if resp, body := e.do("GET", p, nil, bearer(bob.Token)); resp.StatusCode != 404 || problemOf(t, body).Slug() != api.TypeNotFound {
			t.Errorf("bob GET %s: %d %s", p, resp.StatusCode, body)
		}
	}
	if resp, body := e.do("DELETE", d.Links.Self, nil, bearer(bob.Token)); resp.StatusCode != 404 {
		t.Errorf("bob DELETE: %d %s", resp.StatusCode, body)
	}
}

func TestDatasetJobCancelledMidwayStaysResumable(t *testing.T) {
	e, dir := datasetEnv(t)
	resp, body := e.do("POST", "/v1/datasets", api.DatasetRequest{Model: classModel, Classes: seenClasses(t, e, 2), PerClass: 2000})
	d := decode[api.Dataset](t, resp, body, 202)
	// Wait until the worker has made images (its attempt journal, written
	// after every generator call, is not empty), then cancel. Accepted
	// images can take many attempts for classes the sample CVAE-GAN draws
	// poorly, so the journal is the signal, not the accepted records.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if fi, err := os.Stat(filepath.Join(dir, d.ID, "attempts.jsonl")); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no image made within two minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body = e.do("DELETE", d.Links.Self, nil)
	if c := decode[api.Dataset](t, resp, body, 200); c.State != "cancelled" && !c.CancelRequested {
		t.Fatalf("cancel answered %s", body)
	}
	d = waitDataset(t, e, d.Links.Self, func(d api.Dataset) bool { return d.State != "queued" && d.State != "running" })
	if d.State != "cancelled" || d.Progress.Done == d.Progress.Total {
		t.Fatalf("after cancel %+v", d)
	}
	// The folder keeps what was made, for a run that continues it.
	if _, err := datasetspec.ReadSpec(filepath.Join(dir, d.ID)); err != nil {
		t.Errorf("spec of the cancelled data set: %v", err)
	}
	if resp, body := e.do("GET", d.Links.Download, nil); resp.StatusCode != 409 {
		t.Errorf("download of a cancelled data set: %d %s", resp.StatusCode, body)
	}
}
