//go:build !unit

package deploy

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/ort"
)

// The checks of this file ask this machine: its Debian release, apt and
// dpkg, the ONNX Runtime library that scripts/setup.sh installed. They are
// left out of the unit tier (`go test -tags unit`).

func osRelease(t testing.TB, key string) string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("/etc/os-release has no %s", key)
	return ""
}

// TestDockerfileBases: the build stage uses go.mod's Go release, and both
// stages this machine's Debian release, so that the apt checks ask
// about the same packages the image gets.
func TestDockerfileBases(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile")
	codename := osRelease(t, "VERSION_CODENAME")
	build := d.stage(t, "build")
	if want := "golang:" + goDirective(t) + "-" + codename; build.Image != want {
		t.Errorf("build stage FROM %s, want %s (go.mod's Go, this machine's Debian)", build.Image, want)
	}
	rt := d.final()
	if want := "debian:" + codename + "-slim"; rt.Image != want {
		t.Errorf("runtime stage FROM %s, want %s", rt.Image, want)
	}
	if rt.Name != "runtime" {
		t.Errorf("last stage is %q, want runtime", rt.Name)
	}
}

// TestDockerfileArtifacts: what the runtime stage takes from the build
// stage is what the build stage makes, and the environment points at it.
func TestDockerfileArtifacts(t *testing.T) {
	repo := root(t)
	d := parseDockerfile(t, "Dockerfile")
	build, rt := d.stage(t, "build"), d.final()
	workdir := build.one(t, "WORKDIR").Args[0]

	// scripts/setup.sh, run from the build stage's WORKDIR as from the
	// repository root here, installs ONNX Runtime where `make run` has it.
	var runsSetup bool
	var outputs []string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.Raw, "scripts/setup.sh run") {
			runsSetup = true
		}
		if m := regexp.MustCompile(`go build .*-o (\S+)`).FindStringSubmatch(in.Raw); m != nil {
			outputs = append(outputs, m[1])
		}
	}
	if !runsSetup {
		t.Error("the build stage does not run scripts/setup.sh run (ONNX Runtime as make run gets it)")
	}
	ortDir := path.Dir(filepath.ToSlash(ort.DefaultLibraryPath()))
	lib := filepath.Join(repo, filepath.FromSlash(ort.DefaultLibraryPath()))
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("ONNX Runtime is not installed here (run scripts/setup.sh): %v", err)
	}

	var binDest, ortDest string
	for _, c := range rt.copies() {
		switch c.From {
		case "":
		case "build":
			src := strings.TrimSuffix(c.Src, "/")
			switch {
			case contains(outputs, src):
				binDest = c.Dest
			case src == path.Join(workdir, ortDir):
				ortDest = c.Dest
			default:
				t.Errorf("Dockerfile:%d: COPY --from=build %s: the build stage makes no such path (go build -o %v, setup.sh → %s)",
					c.Line, c.Src, outputs, path.Join(workdir, ortDir))
			}
		default:
			t.Errorf("Dockerfile:%d: COPY --from=%s: unknown stage", c.Line, c.From)
		}
	}
	if binDest == "" || ortDest == "" {
		t.Fatalf("the runtime stage lacks the binary (%q) or the ONNX Runtime folder (%q)", binDest, ortDest)
	}

	env := rt.env(t)
	if got, want := env["ORT_LIB_PATH"], path.Join(ortDest, path.Base(filepath.ToSlash(ort.DefaultLibraryPath()))); got != want {
		t.Errorf("ENV ORT_LIB_PATH=%s, want %s (the library that setup.sh installs, where the runtime stage puts it)", got, want)
	}
	models, ok := rt.produced(env["STUDIO_MODELS_DIR"])
	if !ok || models.Src != "samples/models" {
		t.Errorf("ENV STUDIO_MODELS_DIR=%s is not where the runtime stage copies samples/models", env["STUDIO_MODELS_DIR"])
	}
	manifests, _ := filepath.Glob(filepath.Join(repo, "samples", "models", "*", "model.json"))
	if len(manifests) == 0 {
		t.Error("samples/models has no model directory (model.json): the image would ship no model")
	}
	known := envOptions(t)
	for k := range env {
		if _, ok := known[k]; !ok {
			t.Errorf("ENV %s: not a setting of cmd/studio/config.go", k)
		}
	}

	ep := rt.one(t, "ENTRYPOINT")
	if !ep.JSON || len(ep.Args) != 1 || ep.Args[0] != binDest {
		t.Errorf("ENTRYPOINT %s, want [%q] (exec form: the binary gets the signals)", ep.Raw, binDest)
	}
	if cmd := rt.one(t, "CMD"); len(cmd.Args) != 1 || !contains([]string{"serve", "worker"}, cmd.Args[0]) {
		t.Errorf("CMD %s, want serve or worker", cmd.Raw)
	}
	var exposed []int
	for _, in := range rt.all("EXPOSE") {
		for _, a := range in.Args {
			n, err := strconv.Atoi(strings.TrimSuffix(a, "/tcp"))
			if err != nil {
				t.Fatalf("EXPOSE %s", a)
			}
			exposed = append(exposed, n)
		}
	}
	api, admin := portOf(t, optionNamed(t, "addr").Def), portOf(t, optionNamed(t, "admin-addr").Def)
	if len(exposed) != 2 || exposed[0] != api || exposed[1] != admin {
		t.Errorf("EXPOSE %v, want [%d %d] (the defaults of --addr and --admin-addr)", exposed, api, admin)
	}
}

// TestRuntimePackages: the runtime stages' apt packages exist in this
// Debian release, and they (with glibc) provide every library that
// libonnxruntime.so links.
func TestRuntimePackages(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t, "Dockerfile")
	cuda := parseDockerfile(t, "Dockerfile.cuda")
	pkgs := aptPackages(d.final())
	if len(pkgs) == 0 {
		t.Fatal("the runtime stage installs no apt package")
	}
	all := append(append([]string{}, pkgs...), aptPackages(cuda.stage(t, "providers"))...)
	// One apt-cache call: each one reads the package lists anew.
	out, _ := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, all...)...).CombinedOutput()
	for _, p := range all {
		if !regexp.MustCompile(`(?m)^Package: ` + regexp.QuoteMeta(p) + `$`).Match(out) {
			t.Errorf("apt-cache show %s: no such package in this Debian (or run apt-get update)", p)
		}
	}

	lib := filepath.Join(root(t), filepath.FromSlash(ort.DefaultLibraryPath()))
	out, err := exec.Command("ldd", lib).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd %s: %v %s", lib, err, out)
	}
	var files []string
	for _, l := range strings.Split(string(out), "\n") {
		_, target, ok := strings.Cut(l, "=> ")
		if !ok {
			continue
		}
		if file := strings.Fields(target)[0]; file != "not" {
			files = append(files, file)
		} else {
			t.Errorf("libonnxruntime.so: %s", strings.TrimSpace(l))
		}
	}
	if len(files) == 0 {
		t.Fatalf("ldd %s: no library found in %s", lib, out)
	}
	owners := dpkgOwners(t, files...)
	for _, file := range files {
		if owner := owners[file]; owner != "libc6" && !contains(pkgs, owner) {
			t.Errorf("libonnxruntime.so needs %s from package %s, which the runtime stage does not install", file, owner)
		}
	}
}

// dpkgOwners maps each file to the package that holds it, whether dpkg
// knows it under /usr or not (merged /usr), in one dpkg call.
func dpkgOwners(t testing.TB, files ...string) map[string]string {
	t.Helper()
	variants := map[string]string{} // path dpkg may know → file asked for
	var args []string
	for _, f := range files {
		real, _ := filepath.EvalSymlinks(f)
		for _, v := range []string{f, real, strings.TrimPrefix(f, "/usr"), strings.TrimPrefix(real, "/usr"), "/usr" + f} {
			if _, dup := variants[v]; v != "" && !dup {
				variants[v] = f
				args = append(args, v)
			}
		}
	}
	out, _ := exec.Command("dpkg", append([]string{"-S"}, args...)...).Output() // exits 1 when a variant is unknown
	owners := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		pkgs, p, ok := strings.Cut(l, ": ")
		if !ok || strings.HasPrefix(pkgs, "diversion") {
			continue
		}
		if f, ok := variants[p]; ok {
			pkg, _, _ := strings.Cut(strings.Split(pkgs, ", ")[0], ":") // "libc6:amd64"
			owners[f] = pkg
		}
	}
	for _, f := range files {
		if owners[f] == "" {
			t.Fatalf("dpkg -S %s: no package holds it", f)
		}
	}
	return owners
}

// TestRuntimeCommands: the commands the slim runtime stage runs come from
// packages every Debian image has (Essential or Priority required). (The
// health check is the studio binary itself: no interpreter needed.)
func TestRuntimeCommands(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t, "Dockerfile")
	var cmds []string
	for _, in := range d.final().all("RUN") {
		for _, c := range shellCommands(in.Raw) {
			w := strings.Fields(c)
			for len(w) > 0 && strings.Contains(w[0], "=") { // VAR=value cmd
				w = w[1:]
			}
			if len(w) > 0 {
				cmds = append(cmds, w[0])
			}
		}
	}
	paths := map[string]string{}
	var files []string
	for _, c := range cmds {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Errorf("RUN %s: not on this machine: %v", c, err)
			continue
		}
		paths[c] = p
		files = append(files, p)
	}
	if len(files) == 0 {
		t.Fatal("the runtime stage runs no command")
	}
	owners := dpkgOwners(t, files...)
	for c, p := range paths {
		assertBasePackage(t, c, owners[p])
	}
}

func assertBasePackage(t testing.TB, what, pkg string) {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Essential} ${Priority}", pkg).Output()
	if err != nil {
		t.Fatalf("dpkg-query %s: %v", pkg, err)
	}
	if f := strings.Fields(string(out)); len(f) != 2 || (f[0] != "yes" && f[1] != "required") {
		t.Errorf("%s comes from %s (%s), which a slim Debian image may lack", what, pkg, out)
	}
}
