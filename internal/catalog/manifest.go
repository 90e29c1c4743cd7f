// Package catalog reads model directories — model.json, classes.json,
// vocab.json — without loading any graph, so that the API can describe
// models and the worker can decide what to load.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Kinds of model the studio serves.
const (
	KindAttnGAN    = "attngan"
	KindCVAEGAN    = "cvaegan"
	KindClassifier = "classifier"
	// KindEvaluator is an evaluation network (the judge of `studio eval`):
	// a classifier graph that no generator trained against. It is read for
	// evaluation only, never loaded to serve or offered for generation.
	KindEvaluator = "evaluator"
)

// Generates reports whether the model makes images (a generator kind).
func (m *Manifest) Generates() bool { return m.Kind == KindAttnGAN || m.Kind == KindCVAEGAN }

// Manifest is model.json (see training/SPEC.md and the graph contract).
type Manifest struct {
	Schema      int    `json:"schema"`
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Scorer      string `json:"scorer,omitempty"`
	// Role says what a model is for beyond its kind ("evaluator").
	Role    string         `json:"role,omitempty"`
	Sizes   map[string]any `json:"sizes"`
	Vocab   string         `json:"vocab,omitempty"`
	Classes string         `json:"classes,omitempty"`
	// FeatureStats (classifiers) names a JSON file with the mean and
	// covariance of real images' features, for Fréchet distance.
	FeatureStats string           `json:"feature_stats,omitempty"`
	Graphs       map[string]Graph `json:"graphs"`
	Training     json.RawMessage  `json:"training,omitempty"`
}

// Graph is one .onnx file of a model and its tensors by role.
type Graph struct {
	File    string       `json:"file"`
	SHA256  string       `json:"sha256"`
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
}

// TensorSpec maps a contract role to the tensor's name in the graph.
// Shape entries are numbers or names of dynamic axes ("B", "T").
type TensorSpec struct {
	Role  string `json:"role"`
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []any  `json:"shape"`
}

// ErrManifest marks a model directory whose manifest is unusable.
var ErrManifest = errors.New("invalid model manifest")

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	shaRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ReadManifest reads and checks dir/model.json. It checks the manifest's
// own consistency and that the files it names exist; graph contents are
// checked by whoever loads them.
func ReadManifest(dir string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, filepath.Join(dir, "model.json"), err)
	}
	if err := m.check(dir); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, filepath.Join(dir, "model.json"), err)
	}
	return &m, nil
}

func (m *Manifest) check(dir string) error {
	if m.Schema != 1 {
		return fmt.Errorf("schema %d, want 1", m.Schema)
	}
	if !nameRe.MatchString(m.Name) {
		return fmt.Errorf("name %q: want lower-case letters, digits, '.', '_' or '-'", m.Name)
	}
	switch m.Kind {
	case KindAttnGAN, KindCVAEGAN, KindClassifier, KindEvaluator:
	default:
		return fmt.Errorf("kind %q: want attngan, cvaegan, classifier or evaluator", m.Kind)
	}
	if m.Version == "" {
		return errors.New("version is empty")
	}
	if len(m.Graphs) == 0 {
		return errors.New("no graphs")
	}
	for role, g := range m.Graphs {
		if err := checkFile(dir, g.File); err != nil {
			return fmt.Errorf("graph %s: %v", role, err)
		}
		if !shaRe.MatchString(g.SHA256) {
			return fmt.Errorf("graph %s: sha256 %q is not 64 lower-case hex digits", role, g.SHA256)
		}
		for _, t := range append(append([]TensorSpec(nil), g.Inputs...), g.Outputs...) {
			if t.Role == "" || t.Name == "" {
				return fmt.Errorf("graph %s: a tensor has no role or name", role)
			}
		}
	}
	for what, f := range map[string]string{"vocab": m.Vocab, "classes": m.Classes, "feature_stats": m.FeatureStats} {
		if f == "" {
			continue
		}
		if err := checkFile(dir, f); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
	}
	return nil
}

// checkFile accepts a plain file name inside dir.
func checkFile(dir, name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("file %q must be a plain file name inside the model directory", name)
	}
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("file %q: %v", name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("file %q is not a regular file", name)
	}
	return nil
}
