package generator_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"fgstudio/catalog"
	"fgstudio/ort"
)

// rt is the process's ONNX Runtime, shared by the tests of this package.
var rt *ort.Runtime

func TestMain(m *testing.M) {
	lib := os.Getenv("ORT_LIB_PATH")
	if lib == "" {
		lib = filepath.Join("..", ort.DefaultLibraryPath())
	}
	var err error
	rt, err = ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 2, InterOpThreads: 1}, slog.Default())
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
