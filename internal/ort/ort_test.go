//go:build !unit

package ort_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/internal/ort/onnxtest"
)

// The environment is per process, so one Runtime serves every test here.
var rt *ort.Runtime

// logs collects what the runtime logs, for the CUDA fallback test.
var logs strings.Builder

func TestMain(m *testing.M) {
	lib := os.Getenv("ORT_LIB_PATH")
	if lib == "" {
		lib = filepath.Join("..", "..", ort.DefaultLibraryPath())
	}
	var err error
	rt, err = ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 1, InterOpThreads: 1, Provider: ort.CUDA},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		// A missing library is a failure, never a skip: run scripts/setup.sh.
		os.Stderr.WriteString("ort tests: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	if err := rt.Close(); err != nil {
		os.Stderr.WriteString("ort tests: " + err.Error() + "\n")
		code = 1
	}
	os.Exit(code)
}

func writeGraph(t *testing.T, g onnxtest.Graph) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), g.Name+".onnx")
	if err := os.WriteFile(p, g.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersionIs124(t *testing.T) {
	if v := rt.Version(); !strings.HasPrefix(v, "1.24.") {
		t.Fatalf("library version %q, want 1.24.x (the C API onnxruntime_go v1.27.0 is built for)", v)
	}
}

func TestRunTinyGraph(t *testing.T) {
	path := writeGraph(t, onnxtest.AddMul(3))
	s, err := rt.NewSession(path, []string{"x", "y"}, []string{"sum", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()

	for _, batch := range []int64{1, 4} {
		x := make([]float32, batch*3)
		y := make([]float32, batch*3)
		for i := range x {
			x[i] = float32(i) - 2.5
			y[i] = float32(i%3) + 0.5
		}
		out, err := s.Run(map[string]ort.Tensor{
			"x": ort.F32Tensor(x, batch, 3),
			"y": ort.F32Tensor(y, batch, 3),
		})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		sum, prod := out["sum"], out["prod"]
		if len(sum.Shape) != 2 || sum.Shape[0] != batch || sum.Shape[1] != 3 {
			t.Fatalf("batch %d: sum shape %v", batch, sum.Shape)
		}
		for i := range x {
			if sum.F32[i] != x[i]+y[i] || prod.F32[i] != x[i]*y[i] {
				t.Fatalf("batch %d elem %d: got sum %v prod %v for x %v y %v", batch, i, sum.F32[i], prod.F32[i], x[i], y[i])
			}
		}
	}
}

func TestCUDAFallsBackToCPU(t *testing.T) {
	// The library installed by scripts/setup.sh is the CPU build: asking
	// for CUDA must still give a working session, on CPU, with a warning.
	path := writeGraph(t, onnxtest.AddMul(2))
	s, err := rt.NewSession(path, []string{"x", "y"}, []string{"sum", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if s.Provider() != ort.CPU {
		t.Skip("a CUDA-enabled ONNX Runtime is installed; the fallback path is not reachable here")
	}
	if !strings.Contains(logs.String(), "CUDA execution provider unavailable") {
		t.Fatalf("no fallback warning logged; log was:\n%s", logs.String())
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	path := writeGraph(t, onnxtest.AddMul(3))
	s, err := rt.NewSession(path, []string{"x", "y"}, []string{"sum", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	cases := map[string]map[string]ort.Tensor{
		"missing input": {"x": ort.F32Tensor(make([]float32, 3), 1, 3)},
		"short data":    {"x": ort.F32Tensor(make([]float32, 2), 1, 3), "y": ort.F32Tensor(make([]float32, 3), 1, 3)},
		"wrong shape":   {"x": ort.F32Tensor(make([]float32, 4), 1, 4), "y": ort.F32Tensor(make([]float32, 4), 1, 4)},
		"wrong dtype":   {"x": ort.I64Tensor(make([]int64, 3), 1, 3), "y": ort.F32Tensor(make([]float32, 3), 1, 3)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Run(in); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestInspect(t *testing.T) {
	in, out, err := rt.Inspect(writeGraph(t, onnxtest.AddMul(5)))
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 2 || len(out) != 2 || in[0].Name != "x" || out[1].Name != "prod" {
		t.Fatalf("inputs %+v outputs %+v", in, out)
	}
	if in[0].DType != "float32" || in[0].Shape[0] != -1 || in[0].Shape[1] != 5 {
		t.Fatalf("x described as %+v", in[0])
	}
}

func TestOpenMissingLibrary(t *testing.T) {
	_, err := ort.Open(ort.Config{LibraryPath: filepath.Join(t.TempDir(), "nope.so")}, slog.Default())
	if !errors.Is(err, ort.ErrLibrary) {
		t.Fatalf("err = %v, want ErrLibrary", err)
	}
}

// LiveSessions counts what NewSession made and Destroy has not freed; a
// second Destroy frees nothing and counts nothing.
func TestLiveSessions(t *testing.T) {
	path := writeGraph(t, onnxtest.AddMul(3))
	base := rt.LiveSessions()
	a, err := rt.NewSession(path, []string{"x", "y"}, []string{"sum", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.NewSession(path, []string{"x", "y"}, []string{"sum"})
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.LiveSessions() - base; n != 2 {
		t.Fatalf("%d live sessions after two NewSession, want 2", n)
	}
	if _, err := rt.NewSession(filepath.Join(t.TempDir(), "missing.onnx"), []string{"x"}, []string{"sum"}); err == nil {
		t.Fatal("a missing graph loaded")
	}
	a.Destroy()
	a.Destroy()
	if n := rt.LiveSessions() - base; n != 1 {
		t.Fatalf("%d live sessions after destroying one twice, want 1", n)
	}
	b.Destroy()
	if n := rt.LiveSessions() - base; n != 0 {
		t.Fatalf("%d live sessions after destroying both, want 0", n)
	}
}
