package studio

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/textenc"
)

// maxCardBytes bounds the model card served with a model.
const maxCardBytes = 64 << 10

// modelEntry is one model as the API sees it: its manifest, classes and
// vocabulary, read once per (re)load; no graph is loaded.
type modelEntry struct {
	m       *catalog.Model
	classes *catalog.Classes
	vocab   *textenc.Vocab // text models only
	card    string
	// fileErr is what the catalogue knows against serving the model: a
	// graph file missing or unreadable, a scorer not in the folder.
	fileErr error
	// examples are the example images of the classes, by class id.
	examples map[int]string
}

// modelIndex is an immutable snapshot of the models folder; a reload
// swaps in a new one.
type modelIndex struct {
	cat         *catalog.Catalog
	examplesDir string
	byName      map[string]*modelEntry
	names       []string
	problems    []string
}

// newModelIndex reads the classes, vocabulary and card of every model of
// cat, and finds the classes' example images in examplesDir. A model whose
// files cannot be read is left out and reported. Evaluation networks (kind
// evaluator) are left out: they grade generators offline and serve nothing.
func newModelIndex(cat *catalog.Catalog, examplesDir string, log *slog.Logger) *modelIndex {
	idx := &modelIndex{cat: cat, examplesDir: examplesDir, byName: map[string]*modelEntry{}}
	for _, p := range cat.Problems() {
		idx.problems = append(idx.problems, p.Error())
	}
	for _, m := range cat.Models() {
		if m.Manifest.Kind == catalog.KindEvaluator {
			continue // the judge of `studio eval`: neither served nor offered
		}
		e, err := readEntry(m, examplesDir)
		if err != nil {
			log.Warn("model left out of the API", "model", m.Manifest.Name, "err", err)
			idx.problems = append(idx.problems, err.Error())
			continue
		}
		idx.byName[m.Manifest.Name] = e
		idx.names = append(idx.names, m.Manifest.Name)
	}
	sort.Strings(idx.names)
	for _, e := range idx.byName {
		if sc := e.m.Manifest.Scorer; sc != "" && e.fileErr == nil {
			if s, ok := idx.byName[sc]; !ok {
				e.fileErr = fmt.Errorf("scorer %q is not in the models folder", sc)
			} else if s.fileErr != nil {
				e.fileErr = fmt.Errorf("scorer %q: %v", sc, s.fileErr)
			}
		}
	}
	return idx
}

func readEntry(m *catalog.Model, examplesDir string) (*modelEntry, error) {
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, err
	}
	e := &modelEntry{m: m, classes: cls, fileErr: graphFilesErr(m), examples: findExamples(cls, examplesDir)}
	if m.Manifest.Vocab != "" {
		if e.vocab, err = m.ReadVocab(); err != nil {
			return nil, err
		}
	}
	if card, err := os.ReadFile(filepath.Join(m.Dir, "MODEL_CARD.md")); err == nil {
		if len(card) > maxCardBytes {
			card = card[:maxCardBytes]
		}
		e.card = string(card)
	}
	return e, nil
}

// graphFilesErr checks, without loading them, that the model's graph files
// can be opened.
func graphFilesErr(m *catalog.Model) error {
	roles := make([]string, 0, len(m.Manifest.Graphs))
	for r := range m.Manifest.Graphs {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		f, err := os.Open(filepath.Join(m.Dir, m.Manifest.Graphs[r].File))
		if err != nil {
			return fmt.Errorf("%s graph: %w", r, err)
		}
		f.Close()
	}
	return nil
}

// findExamples maps class ids to their example image in dir: the file
// named after the class (its data set directory name) with .png.
func findExamples(cls *catalog.Classes, dir string) map[int]string {
	if dir == "" {
		return nil
	}
	res := map[int]string{}
	for _, c := range cls.Classes {
		if c.Name == "" || c.Name != filepath.Base(c.Name) || strings.HasPrefix(c.Name, ".") {
			continue
		}
		p := filepath.Join(dir, c.Name+".png")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			res[c.ID] = p
		}
	}
	return res
}

func (idx *modelIndex) get(name string) (*modelEntry, bool) {
	e, ok := idx.byName[name]
	return e, ok
}

// generators lists the names of the models that generate images.
func (idx *modelIndex) generators() []string {
	var res []string
	for _, n := range idx.names {
		if idx.byName[n].input() != "" {
			res = append(res, n)
		}
	}
	return res
}

// class finds a class by its id.
func (e *modelEntry) class(id int) (catalog.Class, bool) {
	for _, c := range e.classes.Classes {
		if c.ID == id {
			return c, true
		}
	}
	return catalog.Class{}, false
}

func (e *modelEntry) name() string { return e.m.Manifest.Name }
func (e *modelEntry) kind() string { return e.m.Manifest.Kind }

// input is what the model generates from.
func (e *modelEntry) input() string {
	switch e.kind() {
	case catalog.KindAttnGAN:
		return "prompt"
	case catalog.KindCVAEGAN:
		return "class"
	}
	return ""
}

// canMorph: a class model with an encoder graph.
func (e *modelEntry) canMorph() bool {
	_, ok := e.m.Manifest.Graphs["encoder"]
	return e.kind() == catalog.KindCVAEGAN && ok
}

func (e *modelEntry) imageSize() int { return e.m.Manifest.Size("image_size", 64) }

// trainedClass resolves a class name the way the generator does and
// refuses held-out classes.
func (e *modelEntry) trainedClass(field, name string) (catalog.Class, error) {
	cl, ok := e.classes.Lookup(name)
	if !ok {
		return cl, problem(fiber.StatusUnprocessableEntity, api.TypeUnknownClass, field,
			"no class %q in %s (GET /v1/models/%s lists them)", clip(name, 80), e.name(), e.name())
	}
	if cl.Index < 0 {
		return cl, problem(fiber.StatusUnprocessableEntity, api.TypeUnknownClass, field,
			"class %q is held out: %s was not trained on it (describe it to a text model instead)", cl.Name, e.name())
	}
	return cl, nil
}

func (e *modelEntry) link() string { return "/v1/models/" + e.name() }

// summary describes the model; loads is the in-process generator, if any.
func (e *modelEntry) summary(loads LoadStatus) api.ModelSummary {
	mf := e.m.Manifest
	res := api.ModelSummary{Name: mf.Name, Kind: mf.Kind, Version: mf.Version, Description: mf.Description,
		ImageSize: e.imageSize(), Input: e.input(), Link: e.link()}
	var err error
	if loads != nil {
		res.LoadCheck = api.LoadCheckGenerator
		res.Loaded, err = loads.Status(mf.Name)
	} else {
		res.LoadCheck = api.LoadCheckCatalog
		res.Loaded, err = e.fileErr == nil, e.fileErr
	}
	if !res.Loaded && err != nil {
		res.LoadError = err.Error()
	}
	return res
}

// exampleLink is the URL of a class's example image.
func (e *modelEntry) exampleLink(id int) string {
	return fmt.Sprintf("%s/classes/%d/example.png", e.link(), id)
}

func (e *modelEntry) detail(loads LoadStatus) api.Model {
	mf := e.m.Manifest
	d := api.Model{ModelSummary: e.summary(loads), Scorer: mf.Scorer, Sizes: mf.Sizes, Morph: e.canMorph(),
		Attributes: e.classes.Attributes, Classes: make([]api.Class, 0, len(e.classes.Classes)), Card: e.card}
	if d.Sizes == nil {
		d.Sizes = map[string]any{}
	}
	if d.Attributes == nil {
		d.Attributes = []string{}
	}
	if e.vocab != nil {
		d.VocabularySize, d.MaxWords = e.vocab.Size()-1, e.vocab.MaxWords()
	}
	for _, c := range e.classes.Classes {
		ac := api.Class{ID: c.ID, Name: c.Name, Label: c.Label, Trained: c.Index >= 0, Attributes: c.Attributes}
		if _, ok := e.examples[c.ID]; ok {
			ac.Example = e.exampleLink(c.ID)
		}
		d.Classes = append(d.Classes, ac)
	}
	return d
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
