package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Model is one model directory with a valid manifest.
type Model struct {
	Dir      string
	Manifest *Manifest
}

// Catalog is the set of model directories found under one folder. Bad
// directories are recorded, not fatal: the others keep serving.
type Catalog struct {
	dir      string
	models   map[string]*Model
	problems []error
}

// Open scans the immediate subdirectories of dir that hold a model.json.
// A missing dir gives an empty catalog.
func Open(dir string) (*Catalog, error) {
	c := &Catalog{dir: dir, models: map[string]*Model{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("models dir: %w", err)
	}
	for _, e := range entries {
		sub := filepath.Join(dir, e.Name())
		if st, err := os.Stat(sub); err != nil || !st.IsDir() { // follows symlinks
			continue
		}
		if _, err := os.Stat(filepath.Join(sub, "model.json")); err != nil {
			continue
		}
		m, err := ReadManifest(sub)
		if err != nil {
			c.problems = append(c.problems, err)
			continue
		}
		if prev, dup := c.models[m.Name]; dup {
			c.problems = append(c.problems, fmt.Errorf("%w: model %q in both %s and %s", ErrManifest, m.Name, prev.Dir, sub))
			continue
		}
		c.models[m.Name] = &Model{Dir: sub, Manifest: m}
	}
	return c, nil
}

// Dir is the folder the catalog was read from.
func (c *Catalog) Dir() string { return c.dir }

// Models lists the valid models by name.
func (c *Catalog) Models() []*Model {
	res := make([]*Model, 0, len(c.models))
	for _, m := range c.models {
		res = append(res, m)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Manifest.Name < res[j].Manifest.Name })
	return res
}

// Get finds a model by name.
func (c *Catalog) Get(name string) (*Model, bool) {
	m, ok := c.models[name]
	return m, ok
}

// Problems lists the directories that were skipped, and why.
func (c *Catalog) Problems() []error { return append([]error(nil), c.problems...) }

// Evaluator finds the evaluation network: the model named name (which
// must be of kind evaluator), or, with name empty, the only evaluator of
// the folder.
func (c *Catalog) Evaluator(name string) (*Model, error) {
	if name != "" {
		m, ok := c.models[name]
		if !ok {
			return nil, fmt.Errorf("no model %q in %s", name, c.dir)
		}
		if m.Manifest.Kind != KindEvaluator {
			return nil, fmt.Errorf("model %q is a %s, not an evaluator", name, m.Manifest.Kind)
		}
		return m, nil
	}
	var found []*Model
	for _, m := range c.Models() {
		if m.Manifest.Kind == KindEvaluator {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no evaluator model (kind %q) in %s", KindEvaluator, c.dir)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, m := range found {
		names[i] = m.Manifest.Name
	}
	return nil, fmt.Errorf("%d evaluators in %s (%v): name one", len(found), c.dir, names)
}
