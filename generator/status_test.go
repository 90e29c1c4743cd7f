//go:build !unit

package generator_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// TestStatusNamesEachModel: every model of the folder reports whether it
// serves (generators and the scorer alike) and, when not, why.
func TestStatusNamesEachModel(t *testing.T) {
	cat := sampleCatalog(t)
	root := t.TempDir()
	var broken string
	for _, m := range cat.Models() {
		dir := copyModel(t, m, root)
		if m.Manifest.Kind == catalog.KindCVAEGAN {
			broken = m.Manifest.Name
			if err := os.Remove(filepath.Join(dir, "generator.onnx")); err != nil {
				t.Fatal(err)
			}
		}
	}
	cat2, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	svc := generator.Load(rt, cat2, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer svc.Close()
	for _, m := range cat2.Models() {
		if m.Manifest.Kind == catalog.KindEvaluator {
			continue // the judge of studio eval is read, never served
		}
		loaded, err := svc.Status(m.Manifest.Name)
		if m.Manifest.Name == broken {
			if loaded || err == nil || !strings.Contains(err.Error(), "generator.onnx") {
				t.Errorf("%s: loaded %v, err %v; want not loaded, naming generator.onnx", broken, loaded, err)
			}
			continue
		}
		if !loaded || err != nil {
			t.Errorf("%s (%s): loaded %v, err %v", m.Manifest.Name, m.Manifest.Kind, loaded, err)
		}
	}
	if loaded, err := svc.Status("added-later"); loaded || !errors.Is(err, generator.ErrNotLoaded) {
		t.Errorf("unknown model: loaded %v, err %v", loaded, err)
	}
}

// TestProviderIsWhatSessionsRunOn: this library is the CPU build, so the
// sessions run on CPU.
func TestProviderIsWhatSessionsRunOn(t *testing.T) {
	svc := loadService(t, sampleCatalog(t), generator.Config{})
	p, err := svc.Provider(t.Context())
	if err != nil || p != ort.CPU {
		t.Fatalf("provider %q, %v; want cpu", p, err)
	}
	empty, err := catalog.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	none := generator.Load(rt, empty, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer none.Close()
	if _, err := none.Provider(t.Context()); err == nil {
		t.Fatal("a service without models has no session to ask")
	}
}
