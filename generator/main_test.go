//go:build !unit

package generator_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// rt is the process's ONNX Runtime, shared by the tests of this package.
var rt *ort.Runtime

func TestMain(m *testing.M) {
	lib := os.Getenv("ORT_LIB_PATH")
	if lib == "" {
		lib = filepath.Join("..", ort.DefaultLibraryPath())
	}
	// Two intra-op threads unless STUDIO_TEST_THREADS says otherwise
	// (scripts/bench.sh sets it to the thread count PyTorch gets), and
	// idle threads sleep unless STUDIO_TEST_SPIN=1 (the bench measures both).
	threads := 2
	if n, err := strconv.Atoi(os.Getenv("STUDIO_TEST_THREADS")); err == nil && n > 0 {
		threads = n
	}
	var err error
	rt, err = ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: threads, InterOpThreads: 1,
		Spin: os.Getenv("STUDIO_TEST_SPIN") == "1"}, slog.Default())
	if err != nil {
		os.Stderr.WriteString("generator tests: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

// sampleModels is the committed sample models folder, or STUDIO_TEST_MODELS.
func sampleModels() string {
	if d := os.Getenv("STUDIO_TEST_MODELS"); d != "" {
		return d
	}
	return filepath.Join("..", "samples", "models")
}

func sampleCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Open(sampleModels())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cat.Problems() {
		t.Errorf("sample model problem: %v", p)
	}
	if len(cat.Models()) == 0 {
		t.Fatalf("no sample models in %s", sampleModels())
	}
	return cat
}
