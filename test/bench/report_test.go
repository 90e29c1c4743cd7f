package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestReport builds a report from two rounds of both runtimes: medians,
// ratios paired within a round, scoring overhead, spin speed-up, goals.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	goRound := func(graph32, scored, unscored float64) string {
		return fmt.Sprintf(`onnxruntime 1.24.3, intra-op threads 2
goos: linux
BenchmarkGraph/attngan-birds/generator/batch=32-2   1   1000 ns/op   %g images/s
BenchmarkGenerate/attngan-birds/scored=true/batch=8-2   3   1000 ns/op   %g images/s
BenchmarkGenerate/attngan-birds/scored=false/batch=8-2   3   1000 ns/op   %g images/s
PASS
`, graph32, scored, unscored)
	}
	torchRound := func(v float64) string {
		return fmt.Sprintf(`{"torch": "1.13", "threads": 2, "omp_wait_policy": "PASSIVE", "min_seconds": 0.2,
 "graphs": [{"graph": "attngan-birds/generator", "aliases": [], "weights": "checkpoint x (= exported weights: golden max diff 0)",
  "batches": {"32": {"samples": [%g]}}}]}`, v)
	}
	// Round 1: ORT 100 vs 50 (2x); round 2: ORT 60 vs 60 (1x). Paired
	// median 1.5x; the ratio of medians is 80/55.
	write(t, dir, "go-1.txt", goRound(100, 10, 11))
	write(t, dir, "go-2.txt", goRound(60, 10, 13))
	write(t, dir, "torch-1.json", torchRound(50))
	write(t, dir, "torch-2.json", torchRound(60))
	write(t, dir, "go-spin-1.txt", "BenchmarkGenerate/attngan-birds/scored=true/batch=8-2   3   1000 ns/op   5 images/s\n")
	write(t, dir, "load.txt", "start 1.00 2.00 3.00\nround 1 onnxruntime 1.50 2.00 3.00\n")

	rep, err := buildReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rounds != 2 || rep.Runtime.ORT != "1.24.3" || rep.Runtime.ORTThreads != 2 || rep.Runtime.TorchOMPWait != "PASSIVE" {
		t.Errorf("rounds %d, runtime %+v", rep.Rounds, rep.Runtime)
	}
	if len(rep.Graphs) != 1 {
		t.Fatalf("graphs: %+v", rep.Graphs)
	}
	g := rep.Graphs[0]
	if !near(g.ORT.Median, 80) || !near(g.Torch.Median, 55) || !near(g.Ratio.Median, 1.5) || !near(g.RatioOfMedians, 80.0/55) {
		t.Errorf("graph row %+v", g)
	}
	if len(rep.Generate) != 1 || !near(rep.Generate[0].Overhead.Median, 0.2) {
		t.Errorf("generate rows %+v, want overhead median (0.1+0.3)/2", rep.Generate)
	}
	if len(rep.Spin) != 1 || !near(rep.Spin[0].Speedup.Median, 2) || rep.Spin[0].Speedup.N != 1 {
		t.Errorf("spin rows %+v, want one round at 10/5", rep.Spin)
	}
	if len(rep.Load) != 2 || rep.Load[1].Phase != "round 1 onnxruntime" || rep.Load[1].Load[0] != 1.5 {
		t.Errorf("load %+v", rep.Load)
	}
	met := map[string]bool{}
	for _, goal := range rep.Goals {
		met[goal.Goal] = goal.Met
	}
	if !met["ONNX Runtime ≥ 1.5× PyTorch eager, AttnGAN generator, batch 32"] {
		t.Errorf("goals %+v: the AttnGAN ratio 1.5 meets 1.5", rep.Goals)
	}
	if m, ok := met["scoring adds ≤ 5%, attngan-birds, batch 8"]; !ok || m {
		t.Errorf("goals %+v: +20%% scoring overhead must not meet 5%%", rep.Goals)
	}
	md := markdown(rep)
	for _, want := range []string{"| `attngan-birds/generator` | 32 | 80.0 (60.0–100) | 55.0 (50.0–60.0) | **1.50×** (1.00–2.00) |",
		"**Not measured in this run**", "| `attngan-birds` | true | 8 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestParseGoBench(t *testing.T) {
	lines, err := parseGoBench(strings.NewReader(`BenchmarkRedisQueue-16   3000   575556 ns/op   1737 jobs/s   0.05862 jobs/xadd   29638 xadd/s
--- BENCH: BenchmarkRedisQueue-16
    bench_test.go:122: N=3000
BenchmarkX/a=1/b-2-8   10   5 ns/op
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Name != "BenchmarkRedisQueue" || lines[0].N != 3000 || lines[0].Metrics["xadd/s"] != 29638 {
		t.Fatalf("%+v", lines)
	}
	if lines[1].Name != "BenchmarkX/a=1/b-2" {
		t.Errorf("name %q: only the last -GOMAXPROCS suffix goes", lines[1].Name)
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{3, 1, math.NaN(), 2, 10})
	if s.N != 4 || s.Median != 2.5 || s.Min != 1 || s.Max != 10 {
		t.Errorf("%+v", s)
	}
	if s := summarize(nil); s.N != 0 || s.Median != 0 {
		t.Errorf("%+v", s)
	}
}
