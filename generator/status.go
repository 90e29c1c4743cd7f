package generator

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fgstudio/fgstudio/internal/ort"
)

// ErrNotLoaded: the model was not in the catalog this Service loaded (it
// was added to the models folder later; reload the models).
var ErrNotLoaded = errors.New("not in the models folder when the models were loaded")

// Status reports whether the model named serves from this Service: a
// generator model, or a classifier loaded as a fidelity scorer. When it
// does not, err says why (its load error, or ErrNotLoaded).
func (s *Service) Status(name string) (loaded bool, err error) {
	if _, ok := s.models[name]; ok {
		return true, nil
	}
	if _, ok := s.scorers[name]; ok {
		return true, nil
	}
	if err, ok := s.failed[name]; ok {
		return false, err
	}
	return false, fmt.Errorf("model %q: %w", name, ErrNotLoaded)
}

// Provider is the execution provider that this Service's sessions run on:
// it takes a session of one loaded graph (a scorer's classifier when there
// is one, the smallest graph) and reports what ONNX Runtime gave it, so a
// CUDA request that fell back to CPU answers ort.CPU. The session stays in
// its pool for the jobs that follow. It fails when no model is loaded.
func (s *Service) Provider(ctx context.Context) (ort.Provider, error) {
	g := s.anyGraph()
	if g == nil {
		return "", errNoModels
	}
	sess, err := g.pool.acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: %w", g.name, err)
	}
	defer g.pool.release(sess)
	return sess.Provider(), nil
}

// anyGraph picks the graph Provider opens: a scorer's classifier, else a
// generator's, by model name so that the choice is stable.
func (s *Service) anyGraph() *graph {
	for _, n := range sortedKeys(s.scorers) {
		return s.scorers[n].classifier
	}
	for _, n := range sortedKeys(s.models) {
		switch m := s.models[n].(type) {
		case *attnGAN:
			return m.gen
		case *cvaeGAN:
			return m.gen
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
