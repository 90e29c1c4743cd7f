//go:build !unit

package dataset_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/generatortest"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
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
	repo := filepath.Join("..", "..")
	var closeAll func()
	var err error
	svc, cat, closeAll, err = generatortest.Open(repo, generator.Config{MaxBatch: 16})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataset tests:", err)
		return 1
	}
	defer closeAll()
	tmp, err := os.MkdirTemp("", "dataset-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// Ten classes of four images: enough training images for novelty,
	// made in about two seconds.
	if realSet, err = cubtest.Make(repo, filepath.Join(tmp, "birds"), "--classes", "10", "--per-class", "4", "--size", "64"); err != nil {
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
