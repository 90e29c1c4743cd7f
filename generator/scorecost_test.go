//go:build !unit

package generator_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

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
// the measure). The overhead of a way is its time per call ÷ unscored − 1
// (`studio`'s bench pressure reports it). The prompt names attributes, as
// most prompts do; "plain" is one that names none (DAMSM is its measure).
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
		for _, w := range ways {
			b.Run(m.model+"/"+w.name, func(b *testing.B) {
				cfg := w.cfg
				cfg.MaxBatch, cfg.MaxImages = batch, batch
				svc := generator.Load(rt, cat, cfg, quiet)
				defer svc.Close()
				req := generator.Request{Prompt: m.prompt, N: batch, FidelityOnly: w.only}
				if m.class != "" {
					mm, _ := cat.Get(model)
					cls, err := mm.ReadClasses()
					if err != nil {
						b.Fatal(err)
					}
					req.Class = cls.Trained()[0].Name
				}
				if _, err := svc.Generate(b.Context(), model, []generator.Request{req}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				cpu := cpuTime()
				for i := 0; i < b.N; i++ {
					req.Seed = uint64(i * batch)
					if _, err := svc.Generate(b.Context(), model, []generator.Request{req}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
				// CPU time is what a shared machine's load disturbs least.
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
