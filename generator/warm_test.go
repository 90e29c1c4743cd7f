//go:build !unit

package generator_test

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// countingRuntime counts the sessions made.
type countingRuntime struct {
	*ort.Runtime
	made atomic.Int32
}

func (c *countingRuntime) NewSession(path string, in, out []string) (*ort.Session, error) {
	c.made.Add(1)
	return c.Runtime.NewSession(path, in, out)
}

// TestWarmCreatesSessionsAtLoad: with Warm, Load creates every session a
// generation needs (PoolSize per graph) and runs them, so the first jobs
// create none; without it, Load creates none.
func TestWarmCreatesSessionsAtLoad(t *testing.T) {
	cat := sampleCatalog(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cold := &countingRuntime{Runtime: rt}
	svc := generator.Load(cold, cat, generator.Config{PoolSize: 2}, quiet)
	svc.Close()
	if n := cold.made.Load(); n != 0 {
		t.Fatalf("a cold load made %d sessions", n)
	}

	warm := &countingRuntime{Runtime: rt}
	svc = generator.Load(warm, cat, generator.Config{PoolSize: 2, Warm: true}, quiet)
	defer svc.Close()
	if len(svc.Failed()) > 0 {
		t.Fatalf("failed: %v", svc.Failed())
	}
	atLoad := warm.made.Load()
	if atLoad == 0 {
		t.Fatal("a warm load made no session")
	}
	for _, name := range svc.Loaded() {
		req := generator.Request{N: 2, Seed: 5}
		if m, _ := cat.Get(name); m.Manifest.Kind == "attngan" {
			req.Prompt = "a small bird with a red crown"
		} else {
			cls, err := m.ReadClasses()
			if err != nil {
				t.Fatal(err)
			}
			req.Class = cls.Trained()[0].Name
		}
		res, err := svc.Generate(t.Context(), name, []generator.Request{req})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The first morph, too, finds its encoder sessions made.
		if m, _ := cat.Get(name); m.Manifest.Kind == "cvaegan" {
			if _, err := svc.Morph(t.Context(), name, res[0][0].PNG, req.Class); err != nil {
				t.Fatalf("%s morph: %v", name, err)
			}
		}
	}
	if n := warm.made.Load(); n != atLoad {
		t.Fatalf("the first jobs after a warm load made %d more sessions (load made %d)", n-atLoad, atLoad)
	}
}
