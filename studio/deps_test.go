package studio_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestAPIDoesNotLinkTheGenerator keeps the API off the generator and ONNX
// Runtime (ARCHITECTURE.md): studio imports only the leaves (catalog,
// textenc, queue, generator/jobspec, generator/dataset/datasetspec), so
// an API replica builds and runs without the runtime library.
func TestAPIDoesNotLinkTheGenerator(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		gobin = "go"
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "fgstudio/generator" || (strings.HasPrefix(pkg, "fgstudio/generator/") && !allowedGeneratorLeaf[pkg]) ||
			pkg == "fgstudio/ort" || strings.Contains(pkg, "onnxruntime") {
			t.Errorf("studio depends on %s", pkg)
		}
	}
}

// allowedGeneratorLeaf are the packages under generator/ that import
// neither the generator nor ONNX Runtime.
var allowedGeneratorLeaf = map[string]bool{
	"fgstudio/generator/jobspec":             true,
	"fgstudio/generator/dataset/datasetspec": true,
}
