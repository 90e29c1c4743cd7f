package studio

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"fgstudio/catalog"
	"fgstudio/studio/api"
	"fgstudio/textenc"
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
}

// modelIndex is an immutable snapshot of the models folder; a reload
// swaps in a new one.
type modelIndex struct {
	cat      *catalog.Catalog
	byName   map[string]*modelEntry
	names    []string
	problems []string
}

// newModelIndex reads the classes, vocabulary and card of every model of
// cat. A model whose files cannot be read is left out and reported.
func newModelIndex(cat *catalog.Catalog, log *slog.Logger) *modelIndex {
	idx := &modelIndex{cat: cat, byName: map[string]*modelEntry{}}
	for _, p := range cat.Problems() {
		idx.problems = append(idx.problems, p.Error())
	}
	for _, m := range cat.Models() {
		e, err := readEntry(m)
		if err != nil {
			log.Warn("model left out of the API", "model", m.Manifest.Name, "err", err)
			idx.problems = append(idx.problems, err.Error())
			continue
		}
		idx.byName[m.Manifest.Name] = e
		idx.names = append(idx.names, m.Manifest.Name)
	}
	sort.Strings(idx.names)
	return idx
}

func readEntry(m *catalog.Model) (*modelEntry, error) {
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, err
	}
	e := &modelEntry{m: m, classes: cls}
	if m.Manifest.Vocab != "" {
		if e.vocab, err = textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab)); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Manifest.Name, err)
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

func (e *modelEntry) summary() api.ModelSummary {
	mf := e.m.Manifest
	return api.ModelSummary{Name: mf.Name, Kind: mf.Kind, Version: mf.Version, Description: mf.Description,
		ImageSize: e.imageSize(), Input: e.input(), Link: "/v1/models/" + mf.Name}
}

func (e *modelEntry) detail() api.Model {
	mf := e.m.Manifest
	d := api.Model{ModelSummary: e.summary(), Scorer: mf.Scorer, Sizes: mf.Sizes, Morph: e.canMorph(),
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
		d.Classes = append(d.Classes, api.Class{ID: c.ID, Name: c.Name, Label: c.Label, Trained: c.Index >= 0, Attributes: c.Attributes})
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
