//go:build !unit

package generator_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// copyModel copies a model directory (without goldens) into root.
func copyModel(t *testing.T, m *catalog.Model, root string) string {
	t.Helper()
	dst := filepath.Join(root, filepath.Base(m.Dir))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(m.Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func editManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "model.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func firstTensor(m map[string]any, graph, side string) map[string]any {
	g := m["graphs"].(map[string]any)[graph].(map[string]any)
	return g[side].([]any)[0].(map[string]any)
}

// TestBrokenModelsAreRefusedByName: a corrupt or mismatched model is
// refused at load with a message naming what is wrong; the others serve.
func TestBrokenModelsAreRefusedByName(t *testing.T) {
	cat := sampleCatalog(t)
	var gen *catalog.Model
	for _, m := range generators(cat) {
		if m.Manifest.Kind == catalog.KindCVAEGAN {
			gen = m
		}
	}
	if gen == nil {
		t.Fatal("no cvaegan sample model")
	}
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"corrupt graph", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "generator.onnx")
			raw, _ := os.ReadFile(p)
			raw[len(raw)/2] ^= 0xff
			os.WriteFile(p, raw, 0o644)
		}, "sha256"},
		{"truncated graph with matching sha", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "generator.onnx")
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:len(raw)/3], 0o644)
			sum, _ := exec.Command("sha256sum", p).Output()
			editManifest(t, dir, func(m map[string]any) {
				m["graphs"].(map[string]any)["generator"].(map[string]any)["sha256"] = strings.Fields(string(sum))[0]
			})
		}, "generator"},
		{"renamed tensor", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { firstTensor(m, "generator", "inputs")["name"] = "noise" })
		}, `"noise"`},
		{"wrong dtype", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { firstTensor(m, "generator", "inputs")["dtype"] = "int64" })
		}, "int64"},
		{"wrong rank", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { firstTensor(m, "generator", "outputs")["shape"] = []any{"B", 3} })
		}, "rank"},
		{"missing role", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { firstTensor(m, "generator", "outputs")["role"] = "picture" })
		}, `"image"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for _, m := range cat.Models() {
				copyModel(t, m, root)
			}
			c.spoil(t, filepath.Join(root, filepath.Base(gen.Dir)))
			cat2, err := catalog.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			svc := generator.Load(rt, cat2, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			defer svc.Close()
			err = svc.Failed()[gen.Manifest.Name]
			if !errors.Is(err, generator.ErrModel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("load error %v, want ErrModel naming %s", err, c.want)
			}
			if len(svc.Loaded()) != len(generators(cat))-1 {
				t.Fatalf("loaded %v: the other models must keep serving", svc.Loaded())
			}
		})
	}
}

// TestNoLeaks loads, runs and closes every model many times: sessions and
// tensors are destroyed, so resident memory stays flat. The loop runs in a
// child process with two malloc arenas: every load starts ONNX Runtime
// thread pools, and with glibc's default of one arena per thread the
// resident set wanders by tens of megabytes with scheduling alone.
func TestNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("long loop")
	}
	if os.Getenv("FGSTUDIO_LEAK_CHILD") != "1" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNoLeaks$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "FGSTUDIO_LEAK_CHILD=1", "MALLOC_ARENA_MAX=2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("leak loop: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "resident set") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}
	cat := sampleCatalog(t)
	round := func() {
		svc := generator.Load(rt, cat, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, m := range generators(cat) {
			req := exampleRequest(t, m, 1)
			req.N = 4
			if _, err := svc.Generate(t.Context(), m.Manifest.Name, []generator.Request{req}); err != nil {
				t.Fatal(err)
			}
			// A bad request on the way must not leak either.
			svc.Generate(t.Context(), m.Manifest.Name, []generator.Request{{N: 1, Prompt: "zzqx", Class: "nope"}})
		}
		svc.Close()
		// Exact: every session the service made is destroyed.
		if n := rt.LiveSessions(); n != 0 {
			t.Fatalf("%d ONNX Runtime sessions still alive after Close", n)
		}
	}
	// glibc's arenas and ONNX Runtime's allocators grow for the first ten
	// to twenty rounds and then hold steady (±30 MB, measured over 120
	// rounds); how soon depends on the machine (in CI one run still grew
	// by 80 MB between rounds 10 and 40). A leaked session would add its
	// weights (2–7 MB a graph, ~40 MB for all models) every round, so the
	// measure is the steady part: the median resident set of the last
	// rounds against that of the rounds just after the warm-up.
	const warmup, rounds, window = 15, 30, 5
	for i := 0; i < warmup; i++ {
		round()
	}
	rss := make([]int, rounds)
	for i := range rss {
		round()
		runtime.GC()
		rss[i] = rssKB(t)
	}
	before, after := median(rss[:window]), median(rss[rounds-window:])
	t.Logf("resident set %d kB → %d kB over %d load/run/close rounds (medians of %d; every round: %v)",
		before, after, rounds, window, rss)
	if after-before > 64*1024 {
		t.Fatalf("resident set grew by %d kB over %d rounds", after-before, rounds)
	}
}

func median(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func rssKB(t *testing.T) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
