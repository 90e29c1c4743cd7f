// Package layout keeps the import rules of the repository's rooms (README,
// "Layout"): each rule names folders, never single packages, so a new
// package inherits the rule of the folder it is put in.
package layout

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/fgstudio/fgstudio"

// rules: a package in a folder on the left may not depend (directly or
// through others) on any package in the folders on the right. "ort" is
// ONNX Runtime, ours and the cgo binding.
var rules = []struct {
	room   string
	denied []string
	why    string
}{
	{"studio", []string{"generator", "worker", "internal/ort", "ort"},
		"the API never links the graphs: an API replica builds and runs without the ONNX Runtime library"},
	{"contract", []string{"studio", "generator", "queue", "worker", "internal/ort", "ort"},
		"the contracts between API and worker import neither side"},
	{"textenc", []string{"studio", "generator", "queue", "worker", "internal/ort", "ort"},
		"the tokenizer is read by the API too"},
	{"queue", []string{"studio", "generator", "worker", "contract", "internal/ort", "ort"},
		"the queue carries opaque payloads"},
	{"generator", []string{"studio", "queue", "worker"},
		"the generator is graphs, scoring and metrics only"},
	{"worker", []string{"studio"},
		"the worker loop and the API are peers"},
	{"internal", []string{"studio", "generator", "queue", "worker"},
		"implementation packages never reach up into the rooms of the two processes"},
}

// deps lists every package of the module with its dependencies.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	res := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		res[f[0]] = f[1:]
	}
	return res
}

// folder is the module-relative folder of pkg ("ort" for the ONNX Runtime
// binding, "" for other packages outside the module).
func folder(pkg string) string {
	if strings.Contains(pkg, "onnxruntime") {
		return "ort"
	}
	if rel, ok := strings.CutPrefix(pkg, module+"/"); ok {
		return rel
	}
	return ""
}

func in(pkgFolder, room string) bool {
	return pkgFolder == room || strings.HasPrefix(pkgFolder, room+"/")
}

func TestImportRules(t *testing.T) {
	all := deps(t)
	if len(all) < 10 {
		t.Fatalf("go list found only %d packages", len(all))
	}
	for _, r := range rules {
		found := false
		for pkg, ds := range all {
			if !in(folder(pkg), r.room) {
				continue
			}
			found = true
			for _, d := range ds {
				for _, den := range r.denied {
					if f := folder(d); f != "" && in(f, den) {
						t.Errorf("%s depends on %s: %s", pkg, d, r.why)
					}
				}
			}
		}
		if !found {
			t.Errorf("no package in %s/: the rule for it checks nothing", r.room)
		}
	}
}

// TestRulesCanFail: the studio rule catches a package that links the
// generator, the folder test matches whole path elements only.
func TestRulesCanFail(t *testing.T) {
	if !in(folder(module+"/generator/dataset"), "generator") || !in(folder("github.com/yalue/onnxruntime_go"), "ort") {
		t.Error("folder rule misses a package in the folder")
	}
	if in(folder(module+"/generatorx"), "generator") || in(folder(module+"/internal/ortx"), "internal/ort") {
		t.Error("folder rule matches a sibling folder")
	}
}
