//go:build !unit

package generator_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// Scoring by the fidelity measure alone (FidelityOnly) gives every image
// the fidelity of full scoring; the DAMSM measure is left out only where
// it is not the image's measure. Running the DAMSM encoders beside the
// classifier changes no number.
func TestFidelityOnlyAndParallelScoring(t *testing.T) {
	cat := sampleCatalog(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prompts := []string{"a small bird with a red crown and black wings", "this bird is small", "a bird"}
	run := func(cfg generator.Config, only bool) [][]generator.Image {
		svc := generator.Load(rt, cat, cfg, quiet)
		defer svc.Close()
		var reqs []generator.Request
		for _, p := range prompts {
			reqs = append(reqs, generator.Request{Prompt: p, N: 3, Seed: 11, FidelityOnly: only})
		}
		out, err := svc.Generate(t.Context(), "attngan-birds", reqs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := run(generator.Config{ParallelScoring: -1}, false)
	par := run(generator.Config{ParallelScoring: 1}, false)
	lean := run(generator.Config{ParallelScoring: -1}, true)
	skipped := 0
	for r := range full {
		for k, f := range full[r] {
			fv, fm := f.Scores.Fidelity()
			pv, pm := par[r][k].Scores.Fidelity()
			lv, lm := lean[r][k].Scores.Fidelity()
			if fm == "" || pv != fv || pm != fm || lv != fv || lm != fm {
				t.Fatalf("prompt %d image %d: fidelity %v (%s) full, %v (%s) parallel, %v (%s) fidelity only", r, k, fv, fm, pv, pm, lv, lm)
			}
			ps, ls := par[r][k].Scores, lean[r][k].Scores
			if *ps.DAMSMSimilarity != *f.Scores.DAMSMSimilarity {
				t.Fatalf("prompt %d image %d: parallel DAMSM %v, sequential %v", r, k, *ps.DAMSMSimilarity, *f.Scores.DAMSMSimilarity)
			}
			switch {
			case fm == generator.FidelityDAMSMSimilarity && ls.DAMSMSimilarity == nil:
				t.Fatalf("prompt %d image %d: its measure is DAMSM and fidelity-only left it out", r, k)
			case fm != generator.FidelityDAMSMSimilarity && ls.DAMSMSimilarity != nil:
				t.Fatalf("prompt %d image %d: measure %s, and fidelity-only still ran DAMSM", r, k, fm)
			case ls.DAMSMSimilarity == nil:
				skipped++
			}
		}
	}
	t.Logf("fidelity-only skipped the image encoder for %d of %d images", skipped, 3*len(prompts))
}

// BenchmarkScoring measures what fidelity scoring adds to generation at
// batch 8, per way of scoring: none, full (classifier, then the DAMSM
// encoders), parallel (the encoders beside the classifier) and
// fidelity-only (the DAMSM image encoder only where damsm_similarity is
// the measure). Each iteration runs every way once, in turn, so that a
// shared machine's changing load falls on all of them alike; it reports
// each way's wall and CPU milliseconds per call (<way>-ms, <way>-cpu-ms).
// Overhead = a way ÷ unscored − 1 (`go run ./test/bench pressure`
// reports it). The prompt names attributes, as most prompts do; "plain"
// names none (DAMSM is its measure).
func BenchmarkScoring(b *testing.B) {
	cat, err := catalog.Open(sampleModels())
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const batch = 8
	ways := []struct {
		name string
		cfg  generator.Config
		only bool
	}{
		{"unscored", generator.Config{NoScore: true}, false},
		{"full", generator.Config{ParallelScoring: -1}, false},
		{"parallel", generator.Config{ParallelScoring: 1}, false},
		{"fidelity-only", generator.Config{ParallelScoring: -1}, true},
	}
	for _, m := range []struct{ model, prompt, class string }{
		{"attngan-birds", "a small bird with a red crown and white wings", ""},
		{"attngan-birds/plain", "this bird is small", ""},
		{"cvaegan-birds", "", "first"},
	} {
		model, _, _ := strings.Cut(m.model, "/")
		b.Run(m.model, func(b *testing.B) {
			req := generator.Request{Prompt: m.prompt, N: batch}
			if m.class != "" {
				mm, _ := cat.Get(model)
				cls, err := mm.ReadClasses()
				if err != nil {
					b.Fatal(err)
				}
				req.Class = cls.Trained()[0].Name
			}
			svcs := make([]*generator.Service, len(ways))
			for k, w := range ways {
				cfg := w.cfg
				cfg.MaxBatch, cfg.MaxImages, cfg.Warm = batch, batch, true
				svcs[k] = generator.Load(rt, cat, cfg, quiet)
				defer svcs[k].Close()
			}
			wall := make([]time.Duration, len(ways))
			cpu := make([]time.Duration, len(ways))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range ways {
					k := (i + j) % len(ways) // each way goes first in turn
					r := req
					r.Seed, r.FidelityOnly = uint64(i*batch), ways[k].only
					t0, c0 := time.Now(), cpuTime()
					if _, err := svcs[k].Generate(b.Context(), model, []generator.Request{r}); err != nil {
						b.Fatal(err)
					}
					wall[k] += time.Since(t0)
					cpu[k] += cpuTime() - c0
				}
			}
			for k, w := range ways {
				b.ReportMetric(float64(wall[k].Microseconds())/1000/float64(b.N), w.name+"-ms")
				// CPU time is what a shared machine's load disturbs least.
				b.ReportMetric(float64(cpu[k].Microseconds())/1000/float64(b.N), w.name+"-cpu-ms")
			}
		})
	}
}
