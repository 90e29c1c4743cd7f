package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// dataSetError says why a data set did not open and what to do: the
// sample data set is made with `make data`; a real CUB-200-2011 folder is
// described in docs/real-cub.md; a partial download can be used with
// --skip-missing (the error says so).
func dataSetError(dir string, err error) error {
	var missing *cub.MissingError
	switch {
	case errors.As(err, &missing):
		return fmt.Errorf("data set %s: %w", dir, err)
	case filepath.Clean(dir) == filepath.Clean("data/birds"):
		return fmt.Errorf("data set %s: %w (the sample data set: make it with `make data`; for CUB-200-2011 pass --data, see docs/real-cub.md)", dir, err)
	}
	return fmt.Errorf("data set %s: %w (a CUB-200-2011 folder as downloaded, with or without Reed et al.'s captions: see docs/real-cub.md)", dir, err)
}

// onlyClassifier names the one scorer (classifier model) in a models
// folder, for commands that need features but were given no --scorer.
func onlyClassifier(cat *catalog.Catalog, dir string) (string, error) {
	var names []string
	for _, m := range cat.Models() {
		if m.Manifest.Kind == catalog.KindClassifier {
			names = append(names, m.Manifest.Name)
		}
	}
	sort.Strings(names)
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", &usageError{fmt.Sprintf("no classifier model in %s: export one (fgtrain export) or pass --models-dir", dir)}
	}
	return "", &usageError{fmt.Sprintf("--scorer is required: %s holds %d classifiers (%s)", dir, len(names), strings.Join(names, ", "))}
}
