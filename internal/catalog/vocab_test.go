package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// TestVocabMaxWordsAgreesWithManifest: sizes.max_words of model.json and
// max_words of vocab.json must agree; a manifest without it takes the
// vocabulary's.
func TestVocabMaxWordsAgreesWithManifest(t *testing.T) {
	vocab := `{"tokenizer": {"lowercase": true, "pattern": "[a-z0-9_]+", "ascii_only": true, "max_words": 18, "truncate": "first"},
		"padding_id": 0, "words": {"<pad>": 0, "red": 1, "bird": 2}}`
	cases := []struct {
		name  string
		sizes map[string]any
		want  string // error text; "" = accepted
	}{
		{"agree", map[string]any{"max_words": 18}, ""},
		{"manifest silent", map[string]any{"z_dim": 100}, ""},
		{"manifest says 25", map[string]any{"max_words": 25}, "sizes.max_words is 25 but vocab.json says max_words 18"},
		{"not a number", map[string]any{"max_words": "18"}, "they must agree"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeModel(t, root, "m", func(m map[string]any) { m["sizes"] = c.sizes; m["vocab"] = "vocab.json" })
			if err := os.WriteFile(filepath.Join(root, "m", "vocab.json"), []byte(vocab), 0o644); err != nil {
				t.Fatal(err)
			}
			cat, err := catalog.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := cat.Get("m")
			if !ok {
				t.Fatalf("model not read: %v", cat.Problems())
			}
			v, err := m.ReadVocab()
			switch {
			case c.want == "" && (err != nil || v.MaxWords() != 18):
				t.Fatalf("ReadVocab: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("ReadVocab: %v, want an error with %q", err, c.want)
			}
		})
	}
}
