package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// writeModel writes a model directory with one graph file and a manifest
// that edit may spoil.
func writeModel(t *testing.T, root, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(root, dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	graph := []byte("not really onnx")
	if err := os.WriteFile(filepath.Join(p, "classifier.onnx"), graph, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(graph)
	m := map[string]any{
		"schema": 1, "name": dir, "kind": "classifier", "version": "0.1.0",
		"graphs": map[string]any{"classifier": map[string]any{
			"file": "classifier.onnx", "sha256": hex.EncodeToString(sum[:]),
			"inputs":  []any{map[string]any{"role": "image", "name": "image", "dtype": "float32", "shape": []any{"B", 3, 64, 64}}},
			"outputs": []any{map[string]any{"role": "logits", "name": "logits", "dtype": "float32", "shape": []any{"B", 48}}},
		}},
	}
	if edit != nil {
		edit(m)
	}
	raw, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(p, "model.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func graphOf(m map[string]any) map[string]any {
	return m["graphs"].(map[string]any)["classifier"].(map[string]any)
}

func TestOpenKeepsGoodModelsAndReportsBadOnes(t *testing.T) {
	root := t.TempDir()
	writeModel(t, root, "good", nil)
	bad := map[string]func(map[string]any){
		"bad-kind":    func(m map[string]any) { m["kind"] = "diffusion" },
		"bad-schema":  func(m map[string]any) { m["schema"] = 7 },
		"bad-sha":     func(m map[string]any) { graphOf(m)["sha256"] = "abc" },
		"escape-path": func(m map[string]any) { graphOf(m)["file"] = "../good/classifier.onnx" },
		"no-file":     func(m map[string]any) { graphOf(m)["file"] = "missing.onnx" },
		"no-graphs":   func(m map[string]any) { m["graphs"] = map[string]any{} },
		"no-version":  func(m map[string]any) { m["version"] = "" },
		"bad-name":    func(m map[string]any) { m["name"] = "Has Spaces" },
	}
	for dir, edit := range bad {
		writeModel(t, root, dir, edit)
	}
	if err := os.MkdirAll(filepath.Join(root, "not-a-model"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "corrupt"), nil, 0o644)
	os.MkdirAll(filepath.Join(root, "corrupt-json"), 0o755)
	os.WriteFile(filepath.Join(root, "corrupt-json", "model.json"), []byte("{not json"), 0o644)

	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if ms := c.Models(); len(ms) != 1 || ms[0].Manifest.Name != "good" {
		t.Fatalf("models %v", ms)
	}
	probs := c.Problems()
	if len(probs) != len(bad)+1 {
		t.Fatalf("%d problems, want %d: %v", len(probs), len(bad)+1, probs)
	}
	for _, p := range probs {
		if !errors.Is(p, catalog.ErrManifest) || !strings.Contains(p.Error(), "model.json") {
			t.Errorf("problem %v does not name the manifest", p)
		}
	}
}

func TestDuplicateNames(t *testing.T) {
	root := t.TempDir()
	writeModel(t, root, "a", func(m map[string]any) { m["name"] = "same" })
	writeModel(t, root, "b", func(m map[string]any) { m["name"] = "same" })
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models()) != 1 || len(c.Problems()) != 1 {
		t.Fatalf("models %d problems %v", len(c.Models()), c.Problems())
	}
}

func TestMissingDirIsEmpty(t *testing.T) {
	c, err := catalog.Open(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(c.Models()) != 0 {
		t.Fatalf("%v %v", c, err)
	}
}

func TestEvaluatorKind(t *testing.T) {
	root := t.TempDir()
	writeModel(t, root, "clf", nil)
	c, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Evaluator(""); err == nil {
		t.Fatal("a folder without an evaluator found one")
	}
	if _, err := c.Evaluator("clf"); err == nil || !strings.Contains(err.Error(), "not an evaluator") {
		t.Fatalf("a classifier taken for the evaluator: %v", err)
	}
	writeModel(t, root, "judge", func(m map[string]any) { m["kind"] = "evaluator"; m["role"] = "evaluator" })
	if c, err = catalog.Open(root); err != nil {
		t.Fatal(err)
	}
	if len(c.Problems()) != 0 {
		t.Fatalf("evaluator refused: %v", c.Problems())
	}
	m, err := c.Evaluator("")
	if err != nil || m.Manifest.Name != "judge" || m.Manifest.Role != "evaluator" || m.Manifest.Generates() {
		t.Fatalf("evaluator %+v %v", m, err)
	}
	writeModel(t, root, "judge2", func(m map[string]any) { m["kind"] = "evaluator" })
	if c, err = catalog.Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Evaluator(""); err == nil {
		t.Fatal("two evaluators and no name: want an error")
	}
	if m, err := c.Evaluator("judge2"); err != nil || m.Manifest.Name != "judge2" {
		t.Fatalf("named evaluator: %v", err)
	}
}
