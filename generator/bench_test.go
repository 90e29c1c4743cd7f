package generator_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"fgstudio/catalog"
	"fgstudio/generator"
)

// BenchmarkGenerate measures images/s of each sample generator at batch
// 1, 8 and 32, with and without fidelity scoring, so the cost of scoring
// is the ratio of the two. Compare with PyTorch eager using
// scripts/bench-graphs.sh.
func BenchmarkGenerate(b *testing.B) {
	cat, err := catalog.Open(sampleModels())
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range generators(cat) {
		for _, scored := range []bool{true, false} {
			for _, batch := range []int{1, 8, 32} {
				name := fmt.Sprintf("%s/scored=%v/batch=%d", m.Manifest.Name, scored, batch)
				b.Run(name, func(b *testing.B) {
					svc := generator.Load(rt, cat, generator.Config{MaxBatch: batch, MaxImages: batch, NoScore: !scored},
						slog.New(slog.NewTextHandler(io.Discard, nil)))
					defer svc.Close()
					req := exampleRequest(b, m, 0)
					req.N = batch
					// Warm up: sessions are created on first use.
					if _, err := svc.Generate(b.Context(), m.Manifest.Name, []generator.Request{req}); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						req.Seed = uint64(i * batch)
						if _, err := svc.Generate(b.Context(), m.Manifest.Name, []generator.Request{req}); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
				})
			}
		}
	}
}
