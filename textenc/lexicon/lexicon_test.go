package lexicon_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/textenc"
	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// golden is the test vectors that the Python parser writes
// (`python3 -m samples.cubmaker.tests.test_lexicon`).
const golden = "../../samples/cubmaker/testdata/lexicon.json"

func load(t *testing.T) *lexicon.Lexicon {
	t.Helper()
	l, err := lexicon.Read(golden)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestGoldenCases(t *testing.T) {
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Lexicon json.RawMessage `json:"lexicon"`
		Cases   []struct {
			Caption string            `json:"caption"`
			Named   map[string]string `json:"named"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	l, err := lexicon.Parse(g.Lexicon)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 20 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	for _, c := range g.Cases {
		got := l.Named(c.Caption)
		if !maps.Equal(got, c.Named) {
			t.Errorf("Named(%q)\n got  %v\n want %v", c.Caption, got, c.Named)
		}
		// The token index points at a word that is in the lexicon.
		toks := textenc.Split(c.Caption)
		for g, n := range l.Parse(c.Caption) {
			if n.Token < 0 || n.Token >= len(toks) {
				t.Errorf("%q: %s token %d out of range", c.Caption, g, n.Token)
			}
		}
	}
}

// TestEdits compares Edit with the Python parser's edit on the vectors in
// testdata/edits.json (written by training/fgtrain/lexicon.py).
func TestEdits(t *testing.T) {
	l := load(t)
	raw, err := os.ReadFile(filepath.Join("testdata", "edits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text, Group, Value string
			Want               *string
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		got, ok := l.Edit(c.Text, c.Group, c.Value)
		switch {
		case c.Want == nil && ok:
			t.Errorf("Edit(%q, %s, %s) = %q, want no edit", c.Text, c.Group, c.Value, got)
		case c.Want != nil && (!ok || got != *c.Want):
			t.Errorf("Edit(%q, %s, %s) = %q, %v; want %q", c.Text, c.Group, c.Value, got, ok, *c.Want)
		}
	}
}

func TestEditChangesTheNamedGroupOnly(t *testing.T) {
	l := load(t)
	text := "this small bird has a red crown, a streaked white chest and a hooked black beak"
	want := map[string]string{"has_size": "small", "has_crown_color": "red", "has_breast_pattern": "streaked",
		"has_breast_color": "white", "has_bill_shape": "hooked", "has_bill_color": "black"}
	before := l.Named(text)
	if !maps.Equal(before, want) {
		t.Fatalf("Named = %v, want %v", before, want)
	}
	edited, ok := l.Edit(text, "has_crown_color", "blue")
	if !ok {
		t.Fatal("no edit")
	}
	after := l.Named(edited)
	if after["has_crown_color"] != "blue" {
		t.Fatalf("edited %q reads crown %q", edited, after["has_crown_color"])
	}
	delete(after, "has_crown_color")
	delete(before, "has_crown_color")
	if !maps.Equal(after, before) {
		t.Fatalf("edit changed other groups: %v vs %v", after, before)
	}
	if _, ok := l.Edit(text, "has_tail_shape", "rounded"); ok {
		t.Fatal("edited a group the text does not name")
	}
}

func TestMarksAndTokens(t *testing.T) {
	l := load(t)
	cases := map[string]map[string]string{
		"green wings with white wing bars": {"has_wing_color": "green", "has_wing_pattern": "wingbars"},
		"a chest with black spots":         {"has_breast_pattern": "spotted"},
		"plain eyes without a ring":        {"has_eye_ring": "no"},
		"white rings around its eyes":      {"has_eye_ring": "yes"},
		"A RED-crowned bird!":              {}, // "crowned" is not a part noun
		"":                                 {},
	}
	for text, want := range cases {
		if got := l.Named(text); !maps.Equal(got, want) {
			t.Errorf("Named(%q) = %v, want %v", text, got, want)
		}
	}
	p := l.Parse("a bird with a Red crown")
	if p["has_crown_color"] != (lexicon.Named{Value: "red", Token: 4}) {
		t.Fatalf("Parse = %v", p)
	}
}

func TestReadForms(t *testing.T) {
	l := load(t)
	dir := t.TempDir()
	bare, _ := json.Marshal(l)
	if err := os.WriteFile(filepath.Join(dir, "bare.json"), bare, 0o644); err != nil {
		t.Fatal(err)
	}
	l2, err := lexicon.Read(filepath.Join(dir, "bare.json"))
	if err != nil {
		t.Fatal(err)
	}
	text := "a small bird with a hooked orange beak and wings with white bars"
	if !maps.Equal(l.Named(text), l2.Named(text)) || len(l2.Named(text)) != 4 {
		t.Fatalf("bare lexicon reads %v, want %v", l2.Named(text), l.Named(text))
	}
	if len(l.AttributeGroups()) != 11 {
		t.Fatalf("AttributeGroups = %v", l.AttributeGroups())
	}
	for _, bad := range []string{`{"version": 2, "parts": {"a": "b"}, "part_groups": {"b": {}}}`,
		`{"version": 1, "parts": {"bill": "beak"}, "part_groups": {"bill": {}}}`,
		`{"version": 1}`, `[]`} {
		if _, err := lexicon.Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "lexicon") {
			t.Errorf("Parse(%s) = %v, want an error", bad, err)
		}
	}
}
