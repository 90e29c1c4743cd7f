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

// TestLookupTakesEveryFormTheFoldersUse: a class is found by its id with
// or without leading zeros, its name, its name as a safe folder name, and
// its label in any case.
func TestLookupTakesEveryFormTheFoldersUse(t *testing.T) {
	cls := &catalog.Classes{Classes: []catalog.Class{
		{Index: 0, ID: 4, Name: "004.Red_crowned_Hookbill", Label: "Red crowned Hookbill"},
		{Index: -1, ID: 5, Name: "005.Blue_crowned_Spoonbill", Label: "Blue crowned Spoonbill"},
		{Index: 1, ID: 50, Name: "050.Grey_crowned_Spoonbill", Label: "Grey crowned Spoonbill"},
	}}
	for key, want := range map[string]int{
		"5": 5, "005": 5, "0005": 5, " 5 ": 5, "005.Blue_crowned_Spoonbill": 5, "005_Blue_crowned_Spoonbill": 5,
		"Blue crowned Spoonbill": 5, "blue_crowned_spoonbill": 5, "BLUE-CROWNED-SPOONBILL": 5,
		"50": 50, "050": 50, "4": 4, "004.red_crowned_hookbill": 4,
	} {
		c, ok := cls.Lookup(key)
		if !ok || c.ID != want {
			t.Errorf("Lookup(%q) = %d, %v; want class %d", key, c.ID, ok, want)
		}
	}
	for _, key := range []string{"6", "-5", "05x", "Blue crowned", "006.Blue_crowned_Spoonbill", ""} {
		if c, ok := cls.Lookup(key); ok {
			t.Errorf("Lookup(%q) found %s", key, c.Name)
		}
	}
}
