package datasetspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/textenc"
)

func TestSafeName(t *testing.T) {
	long := strings.Repeat("Very_long_name_", 20)
	cases := []struct{ in, want string }{
		{"001.Red_crowned_Hookbill", "001_Red_crowned_Hookbill"},
		{"Black-capped Chickadee", "Black-capped_Chickadee"},
		{"../../etc/passwd", "etc_passwd"},
		{"a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j"},
		{"Rotkehlchen (Erithacus rubecula)", "Rotkehlchen_Erithacus_rubecula"},
		{"Grünfink", "Gr_nfink"},
		{"  ", "class"},
		{"...", "class"},
		{"-rf", "rf"},
		{"CON", "CON_"},
		{"nul", "nul_"},
		{"tab\there\nnewline", "tab_here_newline"},
	}
	for _, c := range cases {
		if got := SafeName(c.in); got != c.want {
			t.Errorf("SafeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	a, b := SafeName(long+"A"), SafeName(long+"B")
	if len(a) > maxNameBytes || a == b {
		t.Errorf("long names: %q (%d bytes) and %q", a, len(a), b)
	}
	// Every safe name is a file name here, without special characters.
	dir := t.TempDir()
	for _, c := range cases {
		s := SafeName(c.in)
		if strings.ContainsAny(s, "./\\ ") || strings.HasPrefix(s, "-") {
			t.Errorf("%q has a special character", s)
		}
		if err := os.WriteFile(filepath.Join(dir, s+".png"), nil, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func TestSafeNamesStayDistinct(t *testing.T) {
	got := safeNames([]string{"Blue Jay", "blue_jay", "Blue.Jay", "Robin"})
	seen := map[string]bool{}
	for in, s := range got {
		k := strings.ToLower(s)
		if seen[k] {
			t.Errorf("%q → %q collides (without case) with another class", in, s)
		}
		seen[k] = true
	}
	if got["Blue Jay"] != "Blue_Jay" || got["Robin"] != "Robin" {
		t.Errorf("names %v", got)
	}
}

// TestAttributePrompts describes every class of the sample models: at
// most 18 words, every word in the text model's vocabulary, the part
// that best tells the class from its nearest classes in every description, and
// every attribute named by some description.
func TestAttributePrompts(t *testing.T) {
	dir := filepath.Join("..", "..", "samples", "models")
	if d := os.Getenv("STUDIO_TEST_MODELS"); d != "" {
		dir = d
	}
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := cat.Get("attngan-birds")
	if !ok {
		t.Fatalf("no attngan-birds in %s", dir)
	}
	v, err := textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, w := range v.Words() {
		known[w] = true
	}
	cls, err := m.ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cls.Classes {
		ps := AttributePrompts(c, cls.Classes, 10)
		if len(ps) < 5 {
			t.Errorf("%s: %d descriptions", c.Name, len(ps))
		}
		must := distinguishingUnits(c, cls.Classes)
		named := map[string]bool{}
		for _, p := range ps {
			words := textenc.Split(p)
			if len(words) > maxPromptWords {
				t.Errorf("%s: %d words: %q", c.Name, len(words), p)
			}
			for _, w := range words {
				if !known[w] {
					t.Errorf("%s: %q not in the vocabulary (%q)", c.Name, w, p)
				}
			}
			for _, u := range units {
				if ph := phrase(u.name, c.Attributes); ph != "" && strings.Contains(p, ph) {
					named[u.name] = true
				}
			}
			lead := 0
			for _, u := range must {
				if u == "size" || lead == 1 {
					continue
				}
				lead++
				if !strings.Contains(p, phrase(u, c.Attributes)) {
					t.Errorf("%s: %q lacks the distinguishing %s", c.Name, p, u)
				}
			}
		}
		for _, u := range units {
			if u.name != "size" && !named[u.name] {
				t.Errorf("%s: no description names its %s: %q", c.Name, u.name, ps)
			}
		}
	}
	if AttributePrompts(catalog.Class{Name: "x"}, nil, 3) != nil {
		t.Error("a class without attributes was described")
	}
}
