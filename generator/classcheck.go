package generator

import (
	"fmt"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// checkClasses refuses a generator whose trained classes its scorer does
// not know: served beside the wrong classifier, every fidelity score would
// be for some other class. A generator without trained classes (a
// random-weight reference model) is not checked.
func checkClasses(m *catalog.Model, sc *Scorer) error {
	cls, err := m.ReadClasses()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrModel, err)
	}
	gen := cls.Trained()
	if len(gen) == 0 {
		return nil
	}
	known := map[string]bool{}
	for _, c := range sc.trained {
		known[c.Name] = true
	}
	var unknown []string
	for _, c := range gen {
		if !known[c.Name] {
			unknown = append(unknown, c.Name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%w: generator %s does not match its scorer %s: %d of its %d classes are not among the scorer's %d (e.g. %s); export the generator with the name of a classifier trained on the same data set (fgtrain cvaegan|attngan --eval-only --scorer NAME), or serve the matching classifier",
		ErrModel, m.Manifest.Name, sc.name, len(unknown), len(gen), len(sc.trained), strings.Join(unknown[:min(3, len(unknown))], ", "))
}
