//go:build !unit

package generator_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// golden is golden/<graph>.json as the training code writes it: inputs
// and PyTorch's outputs by graph tensor name.
type golden struct {
	Inputs    map[string]goldenTensor `json:"inputs"`
	Outputs   map[string]goldenTensor `json:"outputs"`
	Tolerance float64                 `json:"tolerance"`
}

type goldenTensor struct {
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Data  string  `json:"data"`
}

func (g goldenTensor) tensor(t *testing.T) ort.Tensor {
	raw, err := base64.StdEncoding.DecodeString(g.Data)
	if err != nil {
		t.Fatal(err)
	}
	switch g.DType {
	case "float32":
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return ort.F32Tensor(v, g.Shape...)
	case "int64":
		v := make([]int64, len(raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return ort.I64Tensor(v, g.Shape...)
	}
	t.Fatalf("golden dtype %q", g.DType)
	return ort.Tensor{}
}

// TestGoldenParity runs every graph of every sample model on the inputs
// the training code saved and compares with PyTorch's outputs.
func TestGoldenParity(t *testing.T) {
	cat := sampleCatalog(t)
	checked := 0
	for _, m := range cat.Models() {
		roles := make([]string, 0, len(m.Manifest.Graphs))
		for r := range m.Manifest.Graphs {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		for _, role := range roles {
			g := m.Manifest.Graphs[role]
			path := filepath.Join(m.Dir, "golden", role+".json")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s/%s: no golden file: %v", m.Manifest.Name, role, err)
				continue
			}
			var gold golden
			if err := json.Unmarshal(raw, &gold); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			t.Run(m.Manifest.Name+"/"+role, func(t *testing.T) {
				checkGolden(t, m, g, gold)
			})
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no golden files found in the sample models")
	}
}

func checkGolden(t *testing.T, m *catalog.Model, g catalog.Graph, gold golden) {
	var inNames, outNames []string
	in := map[string]ort.Tensor{}
	for _, s := range g.Inputs {
		gt, ok := gold.Inputs[s.Name]
		if !ok {
			t.Fatalf("golden lacks input %q", s.Name)
		}
		inNames = append(inNames, s.Name)
		in[s.Name] = gt.tensor(t)
	}
	for name := range gold.Outputs {
		outNames = append(outNames, name)
	}
	sort.Strings(outNames)
	s, err := rt.NewSession(filepath.Join(m.Dir, g.File), inNames, outNames)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	tol := gold.Tolerance
	if tol == 0 {
		tol = 1e-4
	}
	for _, name := range outNames {
		want := gold.Outputs[name].tensor(t)
		got := out[name]
		if len(got.F32) != len(want.F32) {
			t.Fatalf("%s: %d values, golden has %d", name, len(got.F32), len(want.F32))
		}
		var worst float64
		for i := range got.F32 {
			worst = math.Max(worst, math.Abs(float64(got.F32[i])-float64(want.F32[i])))
		}
		if worst > tol || math.IsNaN(worst) {
			t.Errorf("%s: max |onnxruntime - pytorch| = %.3g > %.0e", name, worst, tol)
		}
		t.Logf("%s: max abs diff %.2e over %d values", name, worst, len(got.F32))
	}
}
