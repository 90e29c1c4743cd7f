package deploy

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ignorePattern is one line of .dockerignore.
type ignorePattern struct {
	re     *regexp.Regexp
	negate bool
	text   string
}

type dockerignore []ignorePattern

// parseDockerignore follows Docker's rules: patterns are relative to the
// context root, `*` and `?` stay within one path element, `**` spans any
// number of them, `!` re-includes, and the last matching line wins. A
// pattern that matches a parent folder matches everything below it.
func parseDockerignore(text string) dockerignore {
	var out dockerignore
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := ignorePattern{text: l}
		if strings.HasPrefix(l, "!") {
			p.negate = true
			l = strings.TrimSpace(l[1:])
		}
		l = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(l)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(l); i++ {
			switch c := l[i]; {
			case strings.HasPrefix(l[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(l[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		p.re = regexp.MustCompile(re.String())
		out = append(out, p)
	}
	return out
}

// excluded reports whether the context path rel (slash separated) is left
// out of the build context.
func (d dockerignore) excluded(rel string) bool {
	rel = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(rel)), "./")
	var parents []string
	for p := rel; strings.Contains(p, "/"); {
		p = p[:strings.LastIndex(p, "/")]
		parents = append(parents, p)
	}
	out := false
	for _, p := range d {
		match := p.re.MatchString(rel)
		for _, parent := range parents {
			match = match || p.re.MatchString(parent)
		}
		if match {
			out = !p.negate
		}
	}
	return out
}

func loadDockerignore(t testing.TB) dockerignore {
	t.Helper()
	d := parseDockerignore(readRepoFile(t, ".dockerignore"))
	if len(d) == 0 {
		t.Fatal(".dockerignore has no pattern")
	}
	return d
}

// contextFiles lists the files below rel that the build context keeps.
func contextFiles(t testing.TB, ign dockerignore, rel string) []string {
	t.Helper()
	repo := root(t)
	var out []string
	err := filepath.WalkDir(filepath.Join(repo, filepath.FromSlash(rel)), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, _ := filepath.Rel(repo, p)
		if !ign.excluded(filepath.ToSlash(r)) {
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDockerignoreMatcher pins the matcher to Docker's documented rules, so
// the Dockerfile checks that use it mean what Docker does.
func TestDockerignoreMatcher(t *testing.T) {
	ign := parseDockerignore("# comment\n.git\n*.md\n**/*_test.go\ndeploy\n!deploy/keep\n/bin\ntemp?\n")
	for _, c := range []struct {
		path string
		want bool
	}{
		{".git/config", true},
		{"README.md", true},
		{"samples/models/README.md", false}, // *.md is anchored at the root
		{"studio/server_test.go", true},
		{"studio/server.go", false},
		{"server_test.go", true},
		{"deploy/compose.yaml", true},
		{"deploy/keep/file.sh", false},
		{"bin/studio", true},
		{"binary", false},
		{"temp1", true},
		{"temp12", false},
	} {
		if got := ign.excluded(c.path); got != c.want {
			t.Errorf("excluded(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

// TestDockerignoreKeepsSecretsOut: local state and keys never reach the
// build context (and so never an image layer).
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	ign := loadDockerignore(t)
	for _, p := range []string{".git/HEAD", ".deps/onnxruntime/lib/libonnxruntime.so", "bin/studio", "data/birds/images.txt", ".env", "deploy/k8s/tls.key"} {
		if !ign.excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}
