package generator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// TestGeneratorOfOtherClassesIsRefused: a generator is not served with a
// scorer that does not know its classes, and the error names both.
func TestGeneratorOfOtherClassesIsRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) *catalog.Model {
		if err := os.WriteFile(filepath.Join(dir, "classes.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return &catalog.Model{Dir: dir, Manifest: &catalog.Manifest{Name: "cvaegan-cub", Classes: "classes.json"}}
	}
	sc := &Scorer{name: "classifier-birds", trained: []catalog.Class{{Index: 0, Name: "001.Red_crowned_Hookbill"}, {Index: 1, Name: "002.Blue_Finch"}}}
	ok := write(`{"classes": [{"index": 0, "name": "002.Blue_Finch"}, {"index": -1, "name": "009.Other"}]}`)
	if err := checkClasses(ok, sc); err != nil {
		t.Fatalf("a generator of the scorer's classes: %v", err)
	}
	bad := write(`{"classes": [{"index": 0, "name": "001.Black_footed_Albatross"}, {"index": 1, "name": "002.Blue_Finch"}]}`)
	err := checkClasses(bad, sc)
	if !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), "cvaegan-cub") || !strings.Contains(err.Error(), "classifier-birds") ||
		!strings.Contains(err.Error(), "001.Black_footed_Albatross") {
		t.Fatalf("got %v", err)
	}
	none := write(`{"classes": []}`)
	if err := checkClasses(none, sc); err != nil {
		t.Fatalf("a generator without classes: %v", err)
	}
}
