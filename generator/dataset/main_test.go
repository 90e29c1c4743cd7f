package dataset_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"fgstudio/catalog"
	"fgstudio/generator"
	"fgstudio/ort"
	"fgstudio/samples/cub"
)

// The process's ONNX Runtime, the sample models loaded once, and a small
// real data set in CUB layout (the novelty reference), shared by the
// tests of this package. A missing library, model or data set maker
// fails the tests; nothing is skipped.
var (
	svc     *generator.Service
	cat     *catalog.Catalog
	realSet *cub.Dataset
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	lib := os.Getenv("ORT_LIB_PATH")
	if lib == "" {
		lib = filepath.Join("..", "..", ort.DefaultLibraryPath())
	}
	rt, err := ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 2, InterOpThreads: 1}, slog.Default())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataset tests:", err)
		return 1
	}
	defer rt.Close()
	models := os.Getenv("STUDIO_TEST_MODELS")
	if models == "" {
		models = filepath.Join("..", "..", "samples", "models")
	}
	if cat, err = catalog.Open(models); err != nil || len(cat.Models()) == 0 {
		fmt.Fprintf(os.Stderr, "dataset tests: no sample models in %s (%v)\n", models, err)
		return 1
	}
	svc = generator.Load(rt, cat, generator.Config{MaxBatch: 16}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer svc.Close()
	if f := svc.Failed(); len(f) > 0 {
		fmt.Fprintf(os.Stderr, "dataset tests: models failed to load: %v\n", f)
		return 1
	}
	tmp, err := os.MkdirTemp("", "dataset-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// Ten classes of four images: enough training images for novelty,
	// made in about two seconds.
	out := filepath.Join(tmp, "birds")
	cmd := exec.Command("/usr/bin/python3", "-m", "samples.cubmaker", "--out", out, "--classes", "10", "--per-class", "4", "--size", "64")
	cmd.Dir = filepath.Join("..", "..")
	if msg, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "dataset tests: data set maker: %v\n%s", err, msg)
		return 1
	}
	if realSet, err = cub.Open(out); err != nil {
		fmt.Fprintln(os.Stderr, "dataset tests:", err)
		return 1
	}
	return m.Run()
}

func model(t *testing.T, name string) *catalog.Model {
	t.Helper()
	m, ok := cat.Get(name)
	if !ok {
		t.Fatalf("no model %s in the sample models", name)
	}
	return m
}
