package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instr is one Dockerfile instruction, continuation lines joined.
type instr struct {
	Cmd   string // upper case: FROM, COPY, RUN, ...
	Flags map[string]string
	Args  []string // shell words, or the JSON array of the exec form
	Raw   string   // everything after the instruction word
	JSON  bool
	Line  int
}

type stage struct {
	Name, Image string // Image with ARGs substituted
	Instrs      []instr
}

type dockerfile struct {
	Path   string
	Args   map[string]string // ARG defaults (global and per stage, last wins)
	Stages []*stage
}

func (d *dockerfile) stage(t testing.TB, name string) *stage {
	t.Helper()
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s: no stage %q", d.Path, name)
	return nil
}

// final is the stage `docker build` builds without --target.
func (d *dockerfile) final() *stage { return d.Stages[len(d.Stages)-1] }

func (s *stage) all(cmd string) []instr {
	var out []instr
	for _, in := range s.Instrs {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s *stage) one(t testing.TB, cmd string) instr {
	t.Helper()
	all := s.all(cmd)
	if len(all) != 1 {
		t.Fatalf("stage %s: %d %s instructions, want 1", s.Name, len(all), cmd)
	}
	return all[0]
}

// env is the stage's ENV, ARG substituted.
func (s *stage) env(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, w := range in.Args {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("line %d: ENV %s: use the KEY=value form", in.Line, in.Raw)
			}
			m[k] = v
		}
	}
	return m
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func (d *dockerfile) subst(s string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := argRef.FindStringSubmatch(m)[1]
		if v, ok := d.Args[name]; ok {
			return v
		}
		return m
	})
}

func parseDockerfile(t testing.TB, rel string) *dockerfile {
	t.Helper()
	d := &dockerfile{Path: rel, Args: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(readRepoFile(t, rel)))
	var cur strings.Builder
	start, n := 0, 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		word, rest, _ := strings.Cut(text, " ")
		in := instr{Cmd: strings.ToUpper(word), Flags: map[string]string{}, Line: start}
		rest = strings.TrimSpace(rest)
		// --flags of FROM, COPY, RUN and HEALTHCHECK come first.
		for strings.HasPrefix(rest, "--") {
			f, r, _ := strings.Cut(rest, " ")
			k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			in.Flags[k] = v
			rest = strings.TrimSpace(r)
		}
		if in.Cmd == "HEALTHCHECK" {
			w, r, _ := strings.Cut(rest, " ")
			if strings.ToUpper(w) == "CMD" {
				rest = strings.TrimSpace(r)
			}
		}
		in.Raw = rest
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &in.Args); err != nil {
				t.Fatalf("%s:%d: %s: bad exec form: %v", rel, start, in.Cmd, err)
			}
			in.JSON = true
		} else {
			in.Args = strings.Fields(rest)
		}
		switch in.Cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.Args[0], "=")
			if _, seen := d.Args[k]; !seen || v != "" {
				d.Args[k] = d.subst(v)
			}
		case "FROM":
			s := &stage{Image: d.subst(in.Args[0])}
			if len(in.Args) == 3 && strings.EqualFold(in.Args[1], "AS") {
				s.Name = in.Args[2]
			}
			d.Stages = append(d.Stages, s)
		}
		if len(d.Stages) > 0 {
			st := d.Stages[len(d.Stages)-1]
			st.Instrs = append(st.Instrs, in)
		}
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments and parser directives, also inside continuations
		}
		if cur.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(d.Stages) == 0 {
		t.Fatalf("%s: no FROM", rel)
	}
	return d
}

// copied is one source of a COPY instruction and where it goes.
type copied struct {
	From, Src, Dest string
	Line            int
}

func (s *stage) copies() []copied {
	var out []copied
	for _, in := range s.all("COPY") {
		srcs, dest := in.Args[:len(in.Args)-1], in.Args[len(in.Args)-1]
		for _, src := range srcs {
			out = append(out, copied{From: in.Flags["from"], Src: src, Dest: dest, Line: in.Line})
		}
	}
	return out
}

// produced reports whether path p is in what COPY instructions of s put
// into the image: a destination, something below one, or dest/base(src)
// when dest ends in a slash.
func (s *stage) produced(p string) (copied, bool) {
	p = strings.TrimSuffix(p, "/")
	for _, c := range s.copies() {
		dest := strings.TrimSuffix(c.Dest, "/")
		if p == dest || strings.HasPrefix(p, dest+"/") {
			return c, true
		}
		if strings.HasSuffix(c.Dest, "/") && p == dest+"/"+path.Base(c.Src) {
			return c, true
		}
	}
	return copied{}, false
}

func goDirective(t testing.TB) string {
	t.Helper()
	for _, l := range strings.Split(readRepoFile(t, "go.mod"), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			parts := strings.Split(strings.TrimSpace(v), ".")
			return parts[0] + "." + parts[1]
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// TestDockerfileBuildInputs: every path COPYed from the context exists and
// is not left out by .dockerignore, and the build stage holds every file
// that `go build ./cmd/studio` reads (sources and embedded files).
func TestDockerfileBuildInputs(t *testing.T) {
	t.Parallel()
	repo := root(t)
	ign := loadDockerignore(t)
	d := parseDockerfile(t, "Dockerfile")
	for _, s := range d.Stages {
		for _, c := range s.copies() {
			if c.From != "" {
				continue
			}
			st, err := os.Stat(filepath.Join(repo, filepath.FromSlash(c.Src)))
			if err != nil {
				t.Errorf("Dockerfile:%d: COPY %s: %v", c.Line, c.Src, err)
				continue
			}
			if ign.excluded(c.Src) {
				t.Errorf("Dockerfile:%d: COPY %s: .dockerignore leaves it out of the context", c.Line, c.Src)
			}
			if st.IsDir() && len(contextFiles(t, ign, c.Src)) == 0 {
				t.Errorf("Dockerfile:%d: COPY %s: no file of it is in the context", c.Line, c.Src)
			}
		}
	}

	build := d.stage(t, "build")
	var srcs []string
	for _, c := range build.copies() {
		if c.From == "" {
			srcs = append(srcs, strings.TrimSuffix(c.Src, "/"))
		}
	}
	under := func(f string) bool {
		for _, s := range srcs {
			if f == s || strings.HasPrefix(f, s+"/") {
				return true
			}
		}
		return false
	}
	needed := []string{"go.mod", "go.sum"}
	for _, p := range goListDeps(t, "./cmd/studio") {
		dir, err := filepath.Rel(repo, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, group := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.HFiles, p.SFiles, p.EmbedFiles} {
			for _, f := range group {
				needed = append(needed, filepath.ToSlash(filepath.Join(dir, f)))
			}
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if !under(f) {
			t.Errorf("the build stage does not COPY %s (needed by go build ./cmd/studio)", f)
		}
		if ign.excluded(f) {
			t.Errorf(".dockerignore leaves out %s (needed by go build ./cmd/studio)", f)
		}
	}
}

type goPackage struct {
	ImportPath, Dir                                       string
	GoFiles, CgoFiles, CFiles, HFiles, SFiles, EmbedFiles []string
	Module                                                *struct{ Path string }
	Error                                                 *struct{ Err string }
}

// goListDeps lists the module's own packages that pkg needs to build.
func goListDeps(t testing.TB, pkg string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,CFiles,HFiles,SFiles,EmbedFiles,Module,Error", pkg)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []goPackage
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Module != nil && p.Module.Path == "github.com/fgstudio/fgstudio" {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

var userFlag = regexp.MustCompile(`useradd .*--uid (\d+)`)

// imageUser is the numeric uid the runtime stage runs as, checked to be the
// user it creates and not root.
func imageUser(t testing.TB, d *dockerfile) int {
	t.Helper()
	rt := d.final()
	u := rt.one(t, "USER").Args[0]
	uid, gid, _ := strings.Cut(u, ":")
	n, err := strconv.Atoi(uid)
	if err != nil || n == 0 || gid == "" {
		t.Fatalf("%s: USER %s: want a numeric, non-root uid:gid (runAsNonRoot needs numbers)", d.Path, u)
	}
	var created bool
	for _, in := range rt.all("RUN") {
		if m := userFlag.FindStringSubmatch(in.Raw); m != nil && m[1] == uid {
			created = true
		}
	}
	if !created {
		t.Errorf("%s: USER %s is not created by useradd --uid %s in the runtime stage", d.Path, u, uid)
	}
	return n
}

func TestDockerfileUser(t *testing.T) {
	for _, f := range []string{"Dockerfile", "Dockerfile.cuda"} {
		t.Run(f, func(t *testing.T) { imageUser(t, parseDockerfile(t, f)) })
	}
}

// aptPackages lists the packages of the apt-get install commands of s.
func aptPackages(s *stage) []string {
	var out []string
	for _, in := range s.all("RUN") {
		for _, cmd := range shellCommands(in.Raw) {
			w := strings.Fields(cmd)
			for i := 0; i+1 < len(w); i++ {
				if strings.HasSuffix(w[i], "apt-get") {
					for j := i + 1; j < len(w); j++ {
						if w[j] == "install" {
							for _, p := range w[j+1:] {
								if !strings.HasPrefix(p, "-") {
									out = append(out, p)
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

// shellCommands splits a RUN line at && ; || and |.
func shellCommands(s string) []string {
	return regexp.MustCompile(`&&|\|\||;|\|`).Split(s, -1)
}

// TestHealthcheckInstruction: HEALTHCHECK runs the image's own binary
// (`studio health`, exec form, so no shell is needed), the one that
// ENTRYPOINT runs, with arguments the binary accepts (TestHealthSubcommand
// runs them). It asks either address, since one image runs serve or
// worker.
func TestHealthcheckInstruction(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"Dockerfile", "Dockerfile.cuda"} {
		t.Run(f, func(t *testing.T) {
			d := parseDockerfile(t, f)
			hc := d.final().one(t, "HEALTHCHECK")
			if !hc.JSON || len(hc.Args) == 0 {
				t.Fatalf("HEALTHCHECK CMD %s: want the exec form", hc.Raw)
			}
			for _, k := range []string{"interval", "timeout", "start-period", "retries"} {
				if hc.Flags[k] == "" {
					t.Errorf("HEALTHCHECK without --%s", k)
				}
			}
			ep := d.final().one(t, "ENTRYPOINT")
			if len(ep.Args) != 1 || hc.Args[0] != ep.Args[0] {
				t.Errorf("HEALTHCHECK runs %s, ENTRYPOINT %v: want the studio binary", hc.Args[0], ep.Args)
			}
			if _, ok := d.final().produced(hc.Args[0]); !ok {
				t.Errorf("%s: %s is not copied into the image", f, hc.Args[0])
			}
			if got := strings.Join(hc.Args[1:], " "); got != "health --any" {
				t.Errorf("HEALTHCHECK arguments %q, want \"health --any\" (serve or worker, whichever this container runs)", got)
			}
		})
	}
}

// TestDockerfileCUDA: the GPU variant takes only what the CPU image has,
// pins the ONNX Runtime version of scripts/setup.sh, and selects CUDA.
func TestDockerfileCUDA(t *testing.T) {
	cpu := parseDockerfile(t, "Dockerfile")
	d := parseDockerfile(t, "Dockerfile.cuda")
	if s := d.stage(t, "cpu"); s.Image != "fgstudio:latest" {
		t.Errorf("stage cpu FROM %s, want the CPU image (ARG CPU_IMAGE, default fgstudio:latest)", s.Image)
	}
	if d.Args["DEBIAN_RELEASE"] != cpu.Args["DEBIAN_RELEASE"] {
		t.Errorf("DEBIAN_RELEASE %s, Dockerfile has %s", d.Args["DEBIAN_RELEASE"], cpu.Args["DEBIAN_RELEASE"])
	}
	m := regexp.MustCompile(`(?m)^ORT_VERSION=(\S+)$`).FindStringSubmatch(readRepoFile(t, "scripts/setup.sh"))
	if m == nil || d.Args["ORT_VERSION"] != m[1] {
		t.Errorf("ORT_VERSION %q, scripts/setup.sh installs %v", d.Args["ORT_VERSION"], m)
	}
	rt := d.final()
	for _, c := range rt.copies() {
		switch c.From {
		case "cpu":
			if _, ok := cpu.final().produced(c.Src); !ok {
				t.Errorf("Dockerfile.cuda:%d: COPY --from=cpu %s: the CPU image has no such path", c.Line, c.Src)
			}
		case "providers":
			var made bool
			for _, in := range d.stage(t, "providers").all("RUN") {
				made = made || strings.Contains(in.Raw, "-d "+strings.TrimSuffix(c.Src, "/"))
			}
			if !made {
				t.Errorf("Dockerfile.cuda:%d: COPY --from=providers %s: not where the providers stage unpacks", c.Line, c.Src)
			}
		default:
			t.Errorf("Dockerfile.cuda:%d: COPY from %q", c.Line, c.From)
		}
	}
	env := rt.env(t)
	known := envOptions(t)
	for k := range env {
		if _, ok := known[k]; !ok && !strings.HasPrefix(k, "NVIDIA_") { // NVIDIA_*: the container toolkit's
			t.Errorf("ENV %s: not a setting of cmd/studio/config.go", k)
		}
	}
	cpuEnv := cpu.final().env(t)
	for _, k := range []string{"ORT_LIB_PATH", "STUDIO_MODELS_DIR"} {
		if env[k] != cpuEnv[k] {
			t.Errorf("ENV %s=%s, the CPU image has %s", k, env[k], cpuEnv[k])
		}
	}
	var nextToCore bool
	for _, c := range rt.copies() {
		nextToCore = nextToCore || c.From == "providers" && strings.TrimSuffix(c.Dest, "/") == path.Dir(env["ORT_LIB_PATH"])
	}
	if !nextToCore {
		t.Errorf("the CUDA provider libraries are not copied next to %s (ONNX Runtime loads them from its own folder)", env["ORT_LIB_PATH"])
	}
	if env["STUDIO_PROVIDER"] != "cuda" {
		t.Errorf("ENV STUDIO_PROVIDER=%q, want cuda", env["STUDIO_PROVIDER"])
	}
	if cmd := rt.one(t, "CMD"); len(cmd.Args) != 1 || cmd.Args[0] != "worker" {
		t.Errorf("CMD %s, want worker", cmd.Raw)
	}
	if a, b := imageUser(t, d), imageUser(t, cpu); a != b {
		t.Errorf("uid %d, the CPU image runs as %d", a, b)
	}
}
