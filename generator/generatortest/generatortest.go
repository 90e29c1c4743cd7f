// Package generatortest opens the real ONNX Runtime and the sample models
// for the tests of the packages built on the generator. A missing library
// or model directory is an error, never a skip.
package generatortest

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// Open loads ONNX Runtime (ORT_LIB_PATH, else the project's copy under the
// repository root repo) with two intra-op threads, and every model of
// STUDIO_TEST_MODELS (else repo/samples/models). close releases both.
func Open(repo string, cfg generator.Config) (svc *generator.Service, cat *catalog.Catalog, close func(), err error) {
	lib := os.Getenv("ORT_LIB_PATH")
	if lib == "" {
		lib = filepath.Join(repo, ort.DefaultLibraryPath())
	}
	rt, err := ort.Open(ort.Config{LibraryPath: lib, IntraOpThreads: 2, InterOpThreads: 1}, slog.Default())
	if err != nil {
		return nil, nil, nil, err
	}
	models := os.Getenv("STUDIO_TEST_MODELS")
	if models == "" {
		models = filepath.Join(repo, "samples", "models")
	}
	if cat, err = catalog.Open(models); err != nil || len(cat.Models()) == 0 {
		rt.Close()
		return nil, nil, nil, fmt.Errorf("no sample models in %s (%v)", models, err)
	}
	svc = generator.Load(rt, cat, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if f := svc.Failed(); len(f) > 0 {
		svc.Close()
		rt.Close()
		return nil, nil, nil, fmt.Errorf("models failed to load: %v", f)
	}
	return svc, cat, func() { svc.Close(); rt.Close() }, nil
}
