// Package lexicon reads the attributes a prompt names ("a red crown",
// "wings with white bars") with the sample world's caption rules, so that
// the fidelity scorer can ask the classifier's attribute head about exactly
// those attributes, and the evaluation can change one of them in place.
//
// It is a port of samples/cubmaker/lexicon.py. The rules are data: the
// `lexicon` object that the sample-world maker writes into dataset.json and
// the model export copies into a classifier's classes.json. Golden vectors
// written by the Python side (samples/cubmaker/testdata/lexicon.json) keep
// both parsers identical.
//
// The parser: a caption says each attribute as modifiers before a part noun
// ("a thick conical black bill") or as a mark after it ("a chest with
// streaks"). Modifiers seen since the last part noun go to the next part
// noun; a mark noun (streaks, spots, stripes, bars, "wing bars") sets the
// pattern of the last part that has one and drops the modifiers before it
// (the colour of the marks, not of the part). Unknown words are skipped; a
// later mention of a group overrides an earlier one.
//
// Words are the contract tokenizer's (textenc.Split: non-ASCII dropped,
// lower case, runs of [a-z0-9_]). The package links no ONNX Runtime and
// nothing of package generator.
package lexicon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/textenc"
)

// Version is the lexicon format this package reads.
const Version = 1

// Aspects of a part that modifiers and marks can set.
const (
	AspectColor   = "color"
	AspectPattern = "pattern"
	AspectShape   = "shape"
	AspectSize    = "size"
	AspectRing    = "ring"
)

// Named is one attribute a prompt names: the value, and the index (in
// textenc.Split(text)) of the word that said it.
type Named struct {
	Value string `json:"value"`
	Token int    `json:"token"`
}

// Lexicon is the caption rules, as JSON (the `lexicon` object of
// dataset.json and classes.json). The parser does not check a value
// against the attribute groups of a model ("a chest with bars" names
// has_breast_pattern = wingbars); the scorer does.
type Lexicon struct {
	Version int `json:"version"`
	// Parts: part noun → part ("beak" → "bill").
	Parts map[string]string `json:"parts"`
	// PartGroups: part → aspect → attribute group.
	PartGroups map[string]map[string]string `json:"part_groups"`
	// Modifiers: word → [aspect, value].
	Modifiers map[string][2]string `json:"modifiers"`
	// Shapes: part → shape word → value (shape words depend on the part).
	Shapes map[string]map[string]string `json:"shapes"`
	// Marks: mark noun after a part → its pattern.
	Marks map[string]string `json:"marks"`
	// EditWords: group → value → the one word that says it, for edits.
	EditWords map[string]map[string]string `json:"edit_words"`

	shapeWords map[string]bool
}

// Parse reads a lexicon object and checks it.
func Parse(raw []byte) (*Lexicon, error) {
	var l Lexicon
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// UnmarshalJSON reads and checks a lexicon object, so that a Lexicon field
// of a larger document (classes.json) is ready to use.
func (l *Lexicon) UnmarshalJSON(raw []byte) error {
	type plain Lexicon
	var p plain
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("lexicon: %w", err)
	}
	*l = Lexicon(p)
	return l.init()
}

// Read reads a lexicon from a JSON file: a bare lexicon object, or a file
// holding one under the top-level key "lexicon" (dataset.json,
// classes.json, the golden vectors).
func Read(path string) (*Lexicon, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	var f struct {
		Lexicon json.RawMessage `json:"lexicon"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("lexicon %s: %w", path, err)
	}
	if len(f.Lexicon) == 0 || string(f.Lexicon) == "null" {
		l, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return l, nil
	}
	l, err := Parse(f.Lexicon)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

func (l *Lexicon) init() error {
	if l.Version > Version || l.Version < 0 {
		return fmt.Errorf("lexicon: version %d, this studio reads version %d", l.Version, Version)
	}
	if len(l.Parts) == 0 || len(l.PartGroups) == 0 {
		return errors.New("lexicon: no parts")
	}
	for w, p := range l.Parts {
		if _, ok := l.PartGroups[p]; !ok {
			return fmt.Errorf("lexicon: part word %q names part %q, which has no groups", w, p)
		}
	}
	for p := range l.Shapes {
		if _, ok := l.PartGroups[p][AspectShape]; !ok {
			return fmt.Errorf("lexicon: shape words for part %q, which has no shape group", p)
		}
	}
	l.shapeWords = map[string]bool{}
	for _, words := range l.Shapes {
		for w := range words {
			l.shapeWords[w] = true
		}
	}
	return nil
}

type pendingWord struct {
	word string
	tok  int
}

// Parse returns group → named value for every attribute the text names.
func (l *Lexicon) Parse(text string) map[string]Named {
	return l.parseTokens(textenc.Split(text))
}

func (l *Lexicon) parseTokens(toks []string) map[string]Named {
	out := map[string]Named{}
	var pending []pendingWord
	lastPart := ""
	for i, w := range toks {
		part, isPart := l.Parts[w]
		if isPart && i+1 < len(toks) {
			if _, mark := l.Marks[toks[i+1]]; mark {
				continue // "wing bars": one mark noun
			}
		}
		mark, isMark := l.Marks[w]
		switch {
		case isPart:
			groups := l.PartGroups[part]
			shapes := l.Shapes[part]
			for _, p := range pending {
				if v, ok := shapes[p.word]; ok {
					out[groups[AspectShape]] = Named{v, p.tok}
					continue
				}
				m, ok := l.Modifiers[p.word]
				if !ok || m[0] == AspectRing {
					continue
				}
				if g, ok := groups[m[0]]; ok {
					out[g] = Named{m[1], p.tok}
				}
			}
			if g, ok := groups[AspectRing]; ok {
				negated := -1
				for _, p := range pending {
					if m, ok := l.Modifiers[p.word]; ok && m[0] == AspectRing {
						negated = p.tok
					}
				}
				if negated >= 0 {
					out[g] = Named{"no", negated}
				} else {
					out[g] = Named{"yes", i}
				}
			}
			pending, lastPart = nil, part
		case isMark:
			if lastPart != "" {
				if g, ok := l.PartGroups[lastPart][AspectPattern]; ok {
					out[g] = Named{mark, i}
				}
			}
			pending = nil // the colour before a mark is the mark's, not the part's
		default:
			if _, ok := l.Modifiers[w]; ok || l.shapeWords[w] {
				pending = append(pending, pendingWord{w, i})
			}
		}
	}
	return out
}

// Named returns group → value for every attribute the text names.
func (l *Lexicon) Named(text string) map[string]string {
	res := map[string]string{}
	for g, n := range l.Parse(text) {
		res[g] = n.Value
	}
	return res
}

// Edit returns the text with the word that names group replaced by the one
// word that says value (EditWords), written as the tokenizer's words
// joined by single spaces; false when the text does not name the group,
// the lexicon has no word for the value, or the replacement does not read
// back as group = value.
func (l *Lexicon) Edit(text, group, value string) (string, bool) {
	toks := textenc.Split(text)
	found, ok := l.parseTokens(toks)[group]
	word, known := l.EditWords[group][value]
	if !ok || !known {
		return "", false
	}
	toks[found.Token] = word
	edited := strings.Join(toks, " ")
	if l.Parse(edited)[group].Value != value {
		return "", false
	}
	return edited, true
}

// AttributeGroups lists every attribute group the lexicon can name, sorted.
func (l *Lexicon) AttributeGroups() []string {
	seen := map[string]bool{}
	for _, aspects := range l.PartGroups {
		for _, g := range aspects {
			seen[g] = true
		}
	}
	res := make([]string, 0, len(seen))
	for g := range seen {
		res = append(res, g)
	}
	sort.Strings(res)
	return res
}
