package catalog_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

func writeClasses(t *testing.T, body string) *catalog.Model {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "classes.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &catalog.Model{Dir: dir, Manifest: &catalog.Manifest{Name: "c", Classes: "classes.json"}}
}

func TestClassesLexicon(t *testing.T) {
	golden, err := os.ReadFile("../../samples/cubmaker/testdata/lexicon.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Lexicon json.RawMessage `json:"lexicon"`
	}
	if err := json.Unmarshal(golden, &g); err != nil {
		t.Fatal(err)
	}
	attrs := `"attributes": ["has_crown_color::red", "has_crown_color::black"], "classes": []`

	cls, err := writeClasses(t, `{`+attrs+`, "lexicon": `+string(g.Lexicon)+`}`).ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	if cls.Lexicon == nil {
		t.Fatal("lexicon not read")
	}
	if got := cls.Lexicon.Named("a bird with a red cap"); got["has_crown_color"] != "red" || len(got) != 1 {
		t.Fatalf("lexicon reads %v", got)
	}

	cls, err = writeClasses(t, `{`+attrs+`}`).ReadClasses()
	if err != nil || cls.Lexicon != nil {
		t.Fatalf("no lexicon: %v, %v", cls.Lexicon, err)
	}

	_, err = writeClasses(t, `{`+attrs+`, "lexicon": {"version": 9}}`).ReadClasses()
	if err == nil || !strings.Contains(err.Error(), "lexicon") {
		t.Fatalf("bad lexicon: %v", err)
	}
}
