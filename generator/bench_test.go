//go:build !unit

package generator_test

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// benchBatches are the batch sizes every benchmark here measures.
var benchBatches = []int{1, 8, 32}

// cpuTime is the CPU time (user + system) of the whole process so far:
// every thread, ONNX Runtime's included. On a shared machine CPU time per
// image is steadier than wall time, which depends on the cores one gets.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportImages reports images/s and CPU milliseconds per image of b.N
// runs of batch images that used cpu.
func reportImages(b *testing.B, batch int, cpu time.Duration) {
	images := float64(b.N * batch)
	b.ReportMetric(images/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/images, "cpu-ms/image")
}

// BenchmarkGenerate measures images/s of each sample generator at batch
// 1, 8 and 32, with and without fidelity scoring, so the cost of scoring
// is the ratio of the two. A call is the whole generator path: text
// encoding (AttnGAN), the generator graph, scoring and PNG encoding.
// scripts/bench.sh runs it with BenchmarkGraph and the PyTorch eager
// benchmark (python3 -m fgtrain bench) and writes BENCHMARKS.md.
func BenchmarkGenerate(b *testing.B) {
	cat, err := catalog.Open(sampleModels())
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range generators(cat) {
		for _, scored := range []bool{true, false} {
			for _, batch := range benchBatches {
				name := fmt.Sprintf("%s/scored=%v/batch=%d", m.Manifest.Name, scored, batch)
				// One service per sub-benchmark, made on its first call and
				// warmed up once: the b.N rounds that follow reuse it.
				var svc *generator.Service
				b.Run(name, func(b *testing.B) {
					req := exampleRequest(b, m, 0)
					req.N = batch
					if svc == nil {
						svc = generator.Load(rt, cat, generator.Config{MaxBatch: batch, MaxImages: batch, NoScore: !scored},
							slog.New(slog.NewTextHandler(io.Discard, nil)))
						// Warm up: sessions are created on first use.
						if _, err := svc.Generate(b.Context(), m.Manifest.Name, []generator.Request{req}); err != nil {
							b.Fatal(err)
						}
						b.ResetTimer()
					}
					cpu := cpuTime()
					for i := 0; i < b.N; i++ {
						req.Seed = uint64(i * batch)
						if _, err := svc.Generate(b.Context(), m.Manifest.Name, []generator.Request{req}); err != nil {
							b.Fatal(err)
						}
					}
					reportImages(b, batch, cpuTime()-cpu)
				})
				if svc != nil {
					svc.Close()
				}
			}
		}
	}
}

// benchGraph is one distinct graph file of the sample models.
type benchGraph struct {
	key     string // model/role of its first appearance
	path    string
	spec    catalog.Graph
	sizes   *catalog.Manifest
	aliases []string // other model/role pairs with the same file
}

// uniqueGraphs lists every graph of every model once per sha256, under the
// first model (by name) and role (sorted) that has it: the same rule as
// the PyTorch side (training/fgtrain/bench.py), so the names match.
func uniqueGraphs(cat *catalog.Catalog) []*benchGraph {
	models := cat.Models()
	sort.Slice(models, func(i, j int) bool { return models[i].Manifest.Name < models[j].Manifest.Name })
	seen := map[string]*benchGraph{}
	var res []*benchGraph
	for _, m := range models {
		roles := make([]string, 0, len(m.Manifest.Graphs))
		for r := range m.Manifest.Graphs {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		for _, role := range roles {
			g := m.Manifest.Graphs[role]
			key := m.Manifest.Name + "/" + role
			if first, ok := seen[g.SHA256]; ok {
				first.aliases = append(first.aliases, key)
				continue
			}
			bg := &benchGraph{key: key, path: filepath.Join(m.Dir, g.File), spec: g, sizes: m.Manifest}
			seen[g.SHA256] = bg
			res = append(res, bg)
		}
	}
	return res
}

// graphInputs builds inputs of batch B from the manifest's tensor specs:
// "B" is the batch, "T" the model's max_words; floats are pseudo-random
// normal, masks (name contains "mask") zero, int64 lengths (name contains
// "len") T and other int64 tensors token ids in [1, vocab_size).
func graphInputs(tb testing.TB, g *benchGraph, batch int, seed uint64) map[string]ort.Tensor {
	tb.Helper()
	t := g.sizes.Size("max_words", 18)
	vocab := max(2, g.sizes.Size("vocab_size", 2))
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	in := make(map[string]ort.Tensor, len(g.spec.Inputs))
	for _, s := range g.spec.Inputs {
		shape := make([]int64, len(s.Shape))
		n := 1
		for i, d := range s.Shape {
			switch d {
			case "B":
				shape[i] = int64(batch)
			case "T":
				shape[i] = int64(t)
			default:
				v, ok := d.(float64)
				if !ok {
					tb.Fatalf("%s: input %s: dynamic axis %v", g.key, s.Name, d)
				}
				shape[i] = int64(v)
			}
			n *= int(shape[i])
		}
		name := strings.ToLower(s.Name)
		switch ort.DType(s.DType) {
		case ort.Float32:
			v := make([]float32, n)
			if !strings.Contains(name, "mask") {
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
			}
			in[s.Name] = ort.F32Tensor(v, shape...)
		case ort.Int64:
			v := make([]int64, n)
			for i := range v {
				if strings.Contains(name, "len") {
					v[i] = int64(t)
				} else {
					v[i] = 1 + rng.Int64N(int64(vocab-1))
				}
			}
			in[s.Name] = ort.I64Tensor(v, shape...)
		case ort.Bool:
			in[s.Name] = ort.BoolTensor(make([]bool, n), shape...)
		default:
			tb.Fatalf("%s: input %s: dtype %s", g.key, s.Name, s.DType)
		}
	}
	return in
}

// BenchmarkGraph measures images/s of every distinct graph of every
// sample model through ONNX Runtime alone (one session, every output
// fetched, inputs built from the manifest), at batch 1, 8 and 32. The
// PyTorch eager side of the same forward passes is
// `python3 -m fgtrain bench` (training/fgtrain/bench.py).
func BenchmarkGraph(b *testing.B) {
	cat, err := catalog.Open(sampleModels())
	if err != nil {
		b.Fatal(err)
	}
	// scripts/bench.sh reads this line into BENCHMARKS.md (a benchmark
	// with sub-benchmarks does not show its own log).
	fmt.Printf("onnxruntime %s, intra-op threads %d\n", rt.Version(), rt.Config().IntraOpThreads)
	for _, g := range uniqueGraphs(cat) {
		var inNames, outNames []string
		for _, s := range g.spec.Inputs {
			inNames = append(inNames, s.Name)
		}
		for _, s := range g.spec.Outputs {
			outNames = append(outNames, s.Name)
		}
		// The session is made by the first sub-benchmark that runs (none
		// when -bench filters them all out) and serves every batch size.
		var sess *ort.Session
		for _, batch := range benchBatches {
			warm := false
			b.Run(fmt.Sprintf("%s/batch=%d", g.key, batch), func(b *testing.B) {
				if sess == nil {
					if sess, err = rt.NewSession(g.path, inNames, outNames); err != nil {
						b.Fatal(err)
					}
				}
				in := graphInputs(b, g, batch, uint64(batch))
				if !warm {
					// The first run of a shape plans its memory; not timed.
					if _, err := sess.Run(in); err != nil {
						b.Fatal(err)
					}
					warm = true
					b.ResetTimer()
				}
				cpu := cpuTime()
				for i := 0; i < b.N; i++ {
					if _, err := sess.Run(in); err != nil {
						b.Fatal(err)
					}
				}
				reportImages(b, batch, cpuTime()-cpu)
			})
		}
		if sess != nil {
			if err := sess.Destroy(); err != nil {
				b.Error(err)
			}
		}
	}
}

// TestGraphInputs checks that the benchmark's generic inputs fit every
// graph: each distinct graph runs at batch 2 and returns every output with
// the batch as its first dimension.
func TestGraphInputs(t *testing.T) {
	graphs := uniqueGraphs(sampleCatalog(t))
	if len(graphs) < 5 {
		t.Fatalf("%d distinct graphs in the sample models, want at least 5", len(graphs))
	}
	for _, g := range graphs {
		t.Run(g.key, func(t *testing.T) {
			var inNames, outNames []string
			for _, s := range g.spec.Inputs {
				inNames = append(inNames, s.Name)
			}
			for _, s := range g.spec.Outputs {
				outNames = append(outNames, s.Name)
			}
			s, err := rt.NewSession(g.path, inNames, outNames)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			out, err := s.Run(graphInputs(t, g, 2, 1))
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range outNames {
				if o, ok := out[name]; !ok || len(o.Shape) == 0 || o.Shape[0] != 2 {
					t.Errorf("output %s: shape %v, want batch 2 first", name, o.Shape)
				}
			}
		})
	}
}
