// Package deploy checks the container image, the compose file, the Kubernetes
// manifests and the operator docs against the code, with what this machine
// has (no Docker daemon, no cluster): the option table of cmd/studio, the
// metrics the code registers, `go list`, Debian's apt and dpkg, bash.
//
// Regenerate the generated parts of docs/ after changing options or metrics:
//
//	go test ./test/deploy -run 'Reference' -update
package deploy

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/internal/ort"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/ from the code")

// root is the repository root (this package lives in test/deploy).
func root(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readRepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

// option is one row of the options() table in cmd/studio/config.go.
type option struct {
	Name, Env, Def, Usage string
	Cmds                  []string
}

// knownCalls renders the defaults that config.go computes instead of
// spelling out. A new call here fails the test until it is added.
var knownCalls = map[string]func() string{
	"ort.DefaultLibraryPath()": ort.DefaultLibraryPath,
}

var (
	optionsOnce sync.Once
	optionsList []option
	optionsErr  error
)

// options parses cmd/studio/config.go: the binary's settings as the binary
// itself defines them (package main cannot be imported).
func options(t testing.TB) []option {
	t.Helper()
	optionsOnce.Do(func() { optionsList, optionsErr = parseOptions(root(t)) })
	if optionsErr != nil {
		t.Fatalf("cmd/studio/config.go: %v", optionsErr)
	}
	return optionsList
}

func parseOptions(repo string) ([]option, error) {
	path := filepath.Join(repo, "cmd", "studio", "config.go")
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return nil, err
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "options" && d.Recv == nil {
			fn = d
		}
	}
	if fn == nil {
		return nil, fmt.Errorf("no func options()")
	}
	expr := func(e ast.Expr) string {
		return string(src[fset.Position(e.Pos()).Offset:fset.Position(e.End()).Offset])
	}
	locals := map[string]ast.Expr{} // name := value in the function body
	var table *ast.CompositeLit
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if id, ok := l.(*ast.Ident); ok && i < len(n.Rhs) {
					locals[id.Name] = n.Rhs[i]
				}
			}
		case *ast.ReturnStmt:
			if len(n.Results) == 1 {
				if cl, ok := n.Results[0].(*ast.CompositeLit); ok {
					table = cl
				}
			}
		}
		return true
	})
	if table == nil {
		return nil, fmt.Errorf("options() does not return a composite literal")
	}
	var str func(e ast.Expr) (string, error)
	str = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return strconv.Unquote(e.Value)
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, err := str(e.X)
				if err != nil {
					return "", err
				}
				b, err := str(e.Y)
				return a + b, err
			}
		case *ast.CallExpr:
			if f, ok := knownCalls[expr(e)]; ok {
				return f(), nil
			}
		case *ast.Ident:
			if v, ok := locals[e.Name]; ok {
				return str(v)
			}
		}
		return "", fmt.Errorf("cannot evaluate %s: add it to knownCalls in test/deploy", expr(e))
	}
	strs := func(e ast.Expr) ([]string, error) {
		if id, ok := e.(*ast.Ident); ok {
			e = locals[id.Name]
		}
		cl, ok := e.(*ast.CompositeLit)
		if !ok {
			return nil, fmt.Errorf("cmds is not a []string literal")
		}
		var out []string
		for _, el := range cl.Elts {
			s, err := str(el)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	var opts []option
	for _, el := range table.Elts {
		if u, ok := el.(*ast.UnaryExpr); ok {
			el = u.X
		}
		cl, ok := el.(*ast.CompositeLit)
		if !ok {
			return nil, fmt.Errorf("option %s is not a composite literal", expr(el))
		}
		var o option
		for _, kv := range cl.Elts {
			kv, ok := kv.(*ast.KeyValueExpr)
			if !ok {
				return nil, fmt.Errorf("option %s: fields must be keyed", expr(cl))
			}
			key := kv.Key.(*ast.Ident).Name
			var err error
			switch key {
			case "name":
				o.Name, err = str(kv.Value)
			case "env":
				o.Env, err = str(kv.Value)
			case "def":
				o.Def, err = str(kv.Value)
			case "usage":
				o.Usage, err = str(kv.Value)
			case "cmds":
				o.Cmds, err = strs(kv.Value)
			}
			if err != nil {
				return nil, fmt.Errorf("option field %s: %w", key, err)
			}
		}
		if o.Name == "" || o.Env == "" || len(o.Cmds) == 0 {
			return nil, fmt.Errorf("option %s lacks a name, env or cmds", expr(cl))
		}
		opts = append(opts, o)
	}
	if len(opts) == 0 {
		return nil, fmt.Errorf("options() lists no option")
	}
	return opts, nil
}

// envOptions indexes the options by environment variable.
func envOptions(t testing.TB) map[string]option {
	m := map[string]option{}
	for _, o := range options(t) {
		m[o.Env] = o
	}
	return m
}

func optionNamed(t testing.TB, name string) option {
	t.Helper()
	for _, o := range options(t) {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("cmd/studio/config.go has no option %q", name)
	return option{}
}

// effective is what the binary of cmd would use for an option, given the
// environment env (flags are not used by these deployments).
func effective(t testing.TB, name, cmd string, env map[string]string) string {
	t.Helper()
	o := optionNamed(t, name)
	if !contains(o.Cmds, cmd) {
		t.Fatalf("option %s is not read by %s", name, cmd)
	}
	if v, ok := env[o.Env]; ok && v != "" {
		return v
	}
	return o.Def
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

func durationOf(t testing.TB, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// metric is one metric family that the code registers.
type metric struct {
	Name, Type, Help, Pkg string
	Labels                []string
}

var (
	metricsOnce sync.Once
	metricsList []metric
	collectors  map[string]bool // "go", "process": standard collectors registered
	metricsErr  error
)

// metrics finds every metric the code defines, by reading it: the
// prometheus.*Opts literals and prometheus.NewDesc calls of the non-test
// Go files of the module.
func metrics(t testing.TB) ([]metric, map[string]bool) {
	t.Helper()
	metricsOnce.Do(func() { metricsList, collectors, metricsErr = scanMetrics(root(t)) })
	if metricsErr != nil {
		t.Fatal(metricsErr)
	}
	return metricsList, collectors
}

func metricIndex(t testing.TB) map[string]metric {
	ms, _ := metrics(t)
	m := map[string]metric{}
	for _, x := range ms {
		m[x.Name] = x
	}
	return m
}

var skipDirs = map[string]bool{".git": true, ".deps": true, "bin": true, "data": true, "training": true,
	"test": true, "testdata": true, "node_modules": true}

func scanMetrics(repo string) ([]metric, map[string]bool, error) {
	var out []metric
	std := map[string]bool{}
	seen := map[string]string{}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != repo && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(repo, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		ms, cs, err := scanFile(path, pkg)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, m := range ms {
			if prev, ok := seen[m.Name]; ok {
				return fmt.Errorf("metric %s is defined in %s and in %s", m.Name, prev, rel)
			}
			seen[m.Name] = rel
		}
		out = append(out, ms...)
		for _, c := range cs {
			std[c] = true
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, std, err
}

const promPath = "github.com/prometheus/client_golang/prometheus"

func scanFile(path, pkg string) ([]metric, []string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{} // local import name → path
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		n := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			n = im.Name.Name
		}
		names[n] = p
	}
	// sel reports X.Sel where X is an import of path p.
	sel := func(e ast.Expr, p string) (string, bool) {
		s, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		x, ok := s.X.(*ast.Ident)
		if !ok || names[x.Name] != p {
			return "", false
		}
		return s.Sel.Name, true
	}
	var str func(e ast.Expr) (string, error)
	str = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return strconv.Unquote(e.Value)
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, err := str(e.X)
				if err != nil {
					return "", err
				}
				b, err := str(e.Y)
				return a + b, err
			}
		}
		return "", fmt.Errorf("line %d: metric names, help and labels must be string literals for the docs", fset.Position(e.Pos()).Line)
	}
	labels := func(e ast.Expr) ([]string, error) {
		if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
			return nil, nil
		}
		cl, ok := e.(*ast.CompositeLit)
		if !ok {
			return nil, fmt.Errorf("line %d: labels must be a []string literal", fset.Position(e.Pos()).Line)
		}
		var out []string
		for _, el := range cl.Elts {
			s, err := str(el)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}

	var out []metric
	var std []string
	descs := map[string]int{}        // field or variable name → index in out, for NewDesc
	descTypes := map[string]string{} // same name → type from MustNewConstMetric
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if fn, ok := sel(n.Fun, promPath+"/collectors"); ok {
				switch fn {
				case "NewGoCollector":
					std = append(std, "go")
				case "NewProcessCollector":
					std = append(std, "process")
				}
			}
			fn, ok := sel(n.Fun, promPath)
			if !ok {
				if fn, ok = sel(n.Fun, promPath+"/promauto"); !ok {
					return true
				}
			}
			switch {
			case strings.HasPrefix(fn, "New") && fn != "NewDesc" && len(n.Args) > 0:
				if lit, ok := n.Args[0].(*ast.CompositeLit); ok {
					opts, ok := sel(lit.Type, promPath)
					if !ok || !strings.HasSuffix(opts, "Opts") {
						return true
					}
					m := metric{Type: strings.ToLower(strings.TrimSuffix(opts, "Opts")), Pkg: pkg}
					var ns, sub string
					for _, kv := range lit.Elts {
						kv, ok := kv.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						var err error
						switch kv.Key.(*ast.Ident).Name {
						case "Name":
							m.Name, err = str(kv.Value)
						case "Namespace":
							ns, err = str(kv.Value)
						case "Subsystem":
							sub, err = str(kv.Value)
						case "Help":
							m.Help, err = str(kv.Value)
						}
						if err != nil {
							fail(err)
						}
					}
					m.Name = strings.Join(nonEmpty(ns, sub, m.Name), "_")
					if strings.HasSuffix(fn, "Vec") && len(n.Args) > 1 {
						var err error
						if m.Labels, err = labels(n.Args[1]); err != nil {
							fail(err)
						}
					}
					out = append(out, m)
				}
			case fn == "NewDesc" && len(n.Args) >= 3:
				name, err := str(n.Args[0])
				if err != nil {
					fail(err)
				}
				help, err := str(n.Args[1])
				if err != nil {
					fail(err)
				}
				ls, err := labels(n.Args[2])
				if err != nil {
					fail(err)
				}
				out = append(out, metric{Name: name, Help: help, Labels: ls, Pkg: pkg, Type: "untyped"})
			case (fn == "MustNewConstMetric" || fn == "NewConstMetric") && len(n.Args) >= 2:
				if v, ok := sel(n.Args[1], promPath); ok {
					descTypes[lastName(n.Args[0])] = strings.ToLower(strings.TrimSuffix(v, "Value"))
				}
			case (fn == "MustNewConstHistogram" || fn == "NewConstHistogram") && len(n.Args) >= 1:
				descTypes[lastName(n.Args[0])] = "histogram"
			}
		case *ast.KeyValueExpr:
			if call, ok := n.Value.(*ast.CallExpr); ok {
				if fn, ok := sel(call.Fun, promPath); ok && fn == "NewDesc" {
					descs[lastName(n.Key)] = len(out) // the Inspect visits the call next
				}
			}
		case *ast.AssignStmt:
			next := len(out) // the Inspect visits the right-hand calls next, in order
			for i, r := range n.Rhs {
				if call, ok := r.(*ast.CallExpr); ok && i < len(n.Lhs) {
					if fn, ok := sel(call.Fun, promPath); ok && fn == "NewDesc" {
						descs[lastName(n.Lhs[i])] = next
						next++
					}
				}
			}
		}
		return true
	})
	for name, i := range descs {
		if typ, ok := descTypes[name]; ok && i < len(out) {
			out[i].Type = typ
		}
	}
	return out, std, firstErr
}

// lastName is the identifier at the end of x, c.x or &c.x.
func lastName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.UnaryExpr:
		return lastName(e.X)
	}
	return ""
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// TestSourcesParse keeps the two readers above honest: they must find the
// options and metrics that are known to exist.
func TestSourcesParse(t *testing.T) {
	opts := options(t)
	if addr := optionNamed(t, "addr"); addr.Env != "STUDIO_ADDR" || portOf(t, addr.Def) == 0 {
		t.Errorf("option addr = %+v", addr)
	}
	if lib := optionNamed(t, "ort-lib"); lib.Def != ort.DefaultLibraryPath() {
		t.Errorf("ort-lib default %q, want %q", lib.Def, ort.DefaultLibraryPath())
	}
	ms, std := metrics(t)
	idx := metricIndex(t)
	if m, ok := idx["studio_http_requests_total"]; !ok || m.Type != "counter" || strings.Join(m.Labels, ",") != "method,route,code" {
		t.Errorf("studio_http_requests_total = %+v (found %d metrics)", m, len(ms))
	}
	if m, ok := idx["studio_queue_depth"]; !ok || m.Type != "gauge" || strings.Join(m.Labels, ",") != "lane" {
		t.Errorf("studio_queue_depth = %+v", m)
	}
	if !std["go"] || !std["process"] {
		t.Errorf("standard collectors found: %v", std)
	}
	t.Logf("%d options, %d metrics", len(opts), len(ms))
}
