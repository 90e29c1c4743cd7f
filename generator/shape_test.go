//go:build !unit

package generator_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/internal/ort/onnxtest"
)

// TestOpenOutputShapesAreCheckedAtRun: a graph that leaves an output's
// axes open loads against any fixed size in the manifest, so the run
// holds each output to the manifest's sizes and names the tensor.
func TestOpenOutputShapesAreCheckedAtRun(t *testing.T) {
	open := func(name string) onnxtest.Value {
		return onnxtest.Value{Name: name, Elem: onnxtest.Float, Dims: []int64{-1, -1}, Params: []string{"B", "N"}}
	}
	raw := onnxtest.Graph{Name: "double", Nodes: []onnxtest.Node{{Op: "Add", Inputs: []string{"x", "x"}, Outputs: []string{"y"}}},
		Inputs: []onnxtest.Value{open("x")}, Outputs: []onnxtest.Value{open("y")}}.Marshal()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "double.onnx"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	model := func(outShape ...any) *catalog.Model {
		return &catalog.Model{Dir: dir, Manifest: &catalog.Manifest{Name: "double", Graphs: map[string]catalog.Graph{"double": {
			File: "double.onnx", SHA256: hex.EncodeToString(sum[:]),
			Inputs:  []catalog.TensorSpec{{Role: "x", Name: "x", DType: "float32", Shape: []any{"B", 3.0}}},
			Outputs: []catalog.TensorSpec{{Role: "y", Name: "y", DType: "float32", Shape: outShape}},
		}}}}
	}
	in := map[string]ort.Tensor{"x": ort.F32Tensor([]float32{1, 2, 3}, 1, 3)}
	out, err := generator.RunGraph(t.Context(), rt, model("B", 3.0), "double", in, []string{"y"})
	if err != nil || len(out["y"].F32) != 3 || out["y"].F32[2] != 6 {
		t.Fatalf("manifest that matches: %v %v", out, err)
	}
	for _, c := range []struct {
		name  string
		shape []any
		want  string
	}{
		{"size", []any{"B", 4.0}, `output "y" has size 3 on axis 1, manifest says 4`},
		{"rank (known at load)", []any{"B", 3.0, 1.0}, `output "y" has rank 2 in the graph, manifest says 3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := generator.RunGraph(t.Context(), rt, model(c.shape...), "double", in, []string{"y"})
			if !errors.Is(err, generator.ErrModel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrModel with %q", err, c.want)
			}
		})
	}
}
