package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// Class is one class of a model's data set. Index is its position in the
// model's outputs or one-hot input, -1 for a class the model was not
// trained on (held out), which can still be described.
type Class struct {
	Index      int               `json:"index"`
	ID         int               `json:"id"`
	Name       string            `json:"name"`
	Label      string            `json:"label"`
	Seen       bool              `json:"seen"`
	Attributes map[string]string `json:"attributes"`
}

// Classes is classes.json.
type Classes struct {
	// Attributes are the attribute head's outputs, "group::value", in
	// output order.
	Attributes []string `json:"attributes"`
	Classes    []Class  `json:"classes"`
	// Lexicon is the caption rules of the data set the model was trained
	// on (optional: models of the first sample world have none); the
	// scorer reads the attributes a prompt names with it.
	Lexicon *lexicon.Lexicon `json:"lexicon,omitempty"`
}

// ReadClasses reads the model's classes.json; a model without one has none.
func (m *Model) ReadClasses() (*Classes, error) {
	if m.Manifest.Classes == "" {
		return &Classes{}, nil
	}
	raw, err := os.ReadFile(filepath.Join(m.Dir, m.Manifest.Classes))
	if err != nil {
		return nil, fmt.Errorf("classes of %s: %w", m.Manifest.Name, err)
	}
	var c Classes
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("classes of %s: %w", m.Manifest.Name, err)
	}
	return &c, nil
}

// Lookup finds a class by any name the data set's folders use: its
// name ("005.Red_crowned_Hookbill"), that name as a safe folder name
// ("005_Red_crowned_Hookbill"), its label ("Red crowned Hookbill", any
// case, spaces or underscores), or its id, with or without leading zeros
// ("5", "005").
func (c *Classes) Lookup(key string) (Class, bool) {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		return strings.Join(strings.Fields(strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(s)), " ")
	}
	k := norm(key)
	id, idErr := strconv.Atoi(strings.TrimSpace(key))
	for _, cl := range c.Classes {
		if cl.Name == key || norm(cl.Label) == k || norm(cl.Name) == k || (idErr == nil && id == cl.ID) {
			return cl, true
		}
		if _, rest, ok := strings.Cut(cl.Name, "."); ok && norm(rest) == k {
			return cl, true
		}
	}
	return Class{}, false
}

// Trained lists the classes with an output index, ordered by index.
func (c *Classes) Trained() []Class {
	n := 0
	for _, cl := range c.Classes {
		if cl.Index >= 0 {
			n++
		}
	}
	res := make([]Class, n)
	for _, cl := range c.Classes {
		if cl.Index >= 0 && cl.Index < n {
			res[cl.Index] = cl
		}
	}
	return res
}

// Size reads an integer from the manifest's sizes, or def when absent.
func (m *Manifest) Size(key string, def int) int {
	if v, ok := m.Sizes[key].(float64); ok {
		return int(v)
	}
	return def
}
