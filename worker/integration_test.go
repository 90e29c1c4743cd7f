//go:build !unit

package worker_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/textenc"
)

// The ONNX Runtime of the process, opened by the first test that needs
// it; the fake-generator tests run without it.
var (
	rtOnce sync.Once
	rt     *ort.Runtime
	rtErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if rt != nil {
		rt.Close()
	}
	os.Exit(code)
}

func runtimeFor(t testing.TB) *ort.Runtime {
	t.Helper()
	rtOnce.Do(func() {
		lib := os.Getenv("ORT_LIB_PATH")
		if lib == "" {
			lib = filepath.Join("..", ort.DefaultLibraryPath())
		}
		rt, rtErr = ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 2, InterOpThreads: 1}, slog.New(slog.DiscardHandler))
	})
	if rtErr != nil {
		t.Fatalf("onnx runtime (run scripts/setup.sh, or set ORT_LIB_PATH): %v", rtErr)
	}
	return rt
}

// sampleCatalog is the committed sample models, or STUDIO_TEST_MODELS; a
// missing folder fails the test.
func sampleCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	dir := os.Getenv("STUDIO_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "samples", "models")
	}
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat.Problems() {
		t.Errorf("sample model problem: %v", p)
	}
	if len(cat.Models()) == 0 {
		t.Fatalf("no sample models in %s", dir)
	}
	return cat
}

func loadService(t testing.TB, cat *catalog.Catalog, cfg generator.Config) *generator.Service {
	t.Helper()
	svc := generator.Load(runtimeFor(t), cat, cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(svc.Close)
	for name, err := range svc.Failed() {
		t.Errorf("model %s failed to load: %v", name, err)
	}
	if len(svc.Loaded()) == 0 {
		t.Fatal("no generator model loaded")
	}
	return svc
}

// exampleSpec is a valid request for a model, made from its own
// vocabulary or classes.
func exampleSpec(t testing.TB, m *catalog.Model, variant int) jobspec.Spec {
	t.Helper()
	s := jobspec.Spec{Kind: jobspec.Generate, Model: m.Manifest.Name}
	switch m.Manifest.Kind {
	case catalog.KindAttnGAN:
		v, err := textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab))
		if err != nil {
			t.Fatal(err)
		}
		w := v.Words()
		var words []string
		for i := range 3 + variant%4 {
			words = append(words, w[(variant*7+i*3)%len(w)])
		}
		s.Prompt = strings.Join(words, " ")
	case catalog.KindCVAEGAN:
		cls, err := m.ReadClasses()
		if err != nil {
			t.Fatal(err)
		}
		tr := cls.Trained()
		s.Class = tr[variant%len(tr)].Name
	default:
		t.Fatalf("kind %s", m.Manifest.Kind)
	}
	return s
}

func generatorModels(cat *catalog.Catalog) []*catalog.Model {
	var res []*catalog.Model
	for _, m := range cat.Models() {
		if m.Manifest.Kind == catalog.KindAttnGAN || m.Manifest.Kind == catalog.KindCVAEGAN {
			res = append(res, m)
		}
	}
	return res
}

// Real models through the queue: every image a job gets is byte-identical
// to the same seed generated alone by the Service, whatever batch it ran
// in, and its meta describes it.
func TestRealModelsThroughQueue(t *testing.T) {
	cat := sampleCatalog(t)
	svc := loadService(t, cat, generator.Config{MaxBatch: 4})
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		var specs []jobspec.Spec
		var jobs []queue.Job
		for _, m := range generatorModels(cat) {
			for v := range 3 {
				s := exampleSpec(t, m, v)
				s.N, s.Seed = 3, uint64(1000*v+7)
				if v == 2 {
					s.MinFidelity, s.MaxAttempts = 0.999, 2 // the bar is out of reach: two tries each
				}
				specs = append(specs, s)
				jobs = append(jobs, enqueue(t, q, queue.Interactive, s))
			}
		}
		cfg := testWorkerConfig()
		cfg.MaxBatch = 4 // 9 images per model: jobs split across batches and batches mix jobs
		start(t, cfg, q, svc)
		for i, s := range specs {
			j := waitState(t, q, jobs[i].ID, queue.Succeeded)
			for k, meta := range metas(t, j) {
				alone, err := svc.Generate(t.Context(), s.Model, []generator.Request{{Prompt: s.Prompt, Class: s.Class, N: 1, Seed: meta.Seed, FidelityOnly: true}})
				if err != nil {
					t.Fatal(err)
				}
				img := alone[0][0]
				if !bytes.Equal(j.Results[k].Data, img.PNG) {
					t.Fatalf("%s job %d image %d (seed %d): PNG differs from the same seed generated alone", s.Model, i, k, meta.Seed)
				}
				checkMeta(t, s, k, meta, img)
				// Each attention map travels as a part of its own, the finest stage first.
				maps := append(append([]generator.WordMap(nil), img.Attention...), img.CoarseAttention...)
				if len(j.Results[k].Parts) != len(maps) {
					t.Fatalf("%s image %d: %d parts for %d attention maps", s.Model, k, len(j.Results[k].Parts), len(maps))
				}
				for w, m := range maps {
					if !bytes.Equal(j.Results[k].Parts[w], m.PNG) || meta.Attention[w].PNG != nil || meta.Attention[w].Word != m.Word {
						t.Fatalf("%s image %d: attention map %d (%s) not its part %d", s.Model, k, w, m.Word, w+1)
					}
				}
			}
		}
	})
}

func checkMeta(t *testing.T, s jobspec.Spec, k int, meta jobspec.ImageMeta, img generator.Image) {
	t.Helper()
	f, measure := img.Scores.Fidelity()
	wantAttempts := 1
	if s.MinFidelity > 0 && f < s.MinFidelity {
		wantAttempts = s.MaxAttempts
	}
	seedOK := false
	for try := range s.Attempts() {
		seedOK = seedOK || meta.Seed == s.SeedFor(k, try)
	}
	if meta.Index != k || !seedOK || meta.Size != img.Size || meta.Fidelity != f || meta.FidelityMeasure != measure || measure == "" ||
		meta.BelowMin != (s.MinFidelity > 0 && f < s.MinFidelity) || meta.Attempts != wantAttempts {
		t.Fatalf("%s image %d: meta %+v; image fidelity %v (%s)", s.Model, k, meta, f, measure)
	}
	var sc generator.Scores
	if err := json.Unmarshal(meta.Scores, &sc); err != nil || len(sc.Top) == 0 {
		t.Fatalf("%s image %d: scores %s (%v)", s.Model, k, meta.Scores, err)
	}
	if s.Prompt != "" && (len(meta.Attention) != len(img.Attention)+len(img.CoarseAttention) || len(meta.Attention) == 0) {
		t.Fatalf("%s image %d: %d attention maps; want %d", s.Model, k,
			len(meta.Attention), len(img.Attention)+len(img.CoarseAttention))
	}
}
