// Package datasetspec is what the API and the worker share about a
// synthetic data set (generator/dataset.Make) without running anything:
// the Spec a job asks for, its defaults and validation against the model
// catalogue (Check, Plan: class resolution, safe names, attribute
// prompts), and the directory's on-disk format — manifest, records,
// report — with Verify, which re-checks a finished directory against its
// manifest. It imports no generator and no ONNX Runtime, so the API
// (studio) validates dataset requests and serves downloads from it alone;
// generator/dataset re-exports all of it.
package datasetspec

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// Fidelity measures a spec can ask for (Spec.Measure). They are the
// generator's own (generator.FidelityClassProbability, …), repeated here
// so that this package does not import the generator; a test of
// generator/dataset keeps them equal.
const (
	FidelityClassProbability   = "class_probability"
	FidelityAttributeAgreement = "attribute_agreement"
	FidelityDAMSMSimilarity    = "damsm_similarity"
)

// Measure names of the first scorer.
//
// Deprecated: they hold the new names; use FidelityClassProbability,
// FidelityAttributeAgreement and FidelityDAMSMSimilarity.
const (
	FidelityClassProb      = FidelityClassProbability
	FidelityAttributeMatch = FidelityAttributeAgreement
	FidelityTextSimilarity = FidelityDAMSMSimilarity
)

// legacyMeasures maps the first scorer's measure names, still accepted in
// a spec, to the measures that replace them.
var legacyMeasures = map[string]string{
	"class_prob":      FidelityClassProbability,
	"attribute_match": FidelityAttributeAgreement,
	"text_similarity": FidelityDAMSMSimilarity,
}

// CanonicalMeasure is the measure a spec's fidelity_measure names: the
// first scorer's names (class_prob, attribute_match, text_similarity) map
// to their successors; anything else is returned as it is.
func CanonicalMeasure(m string) string {
	if c, ok := legacyMeasures[m]; ok {
		return c
	}
	return m
}

// ErrSpec is wrapped by every *SpecError.
var ErrSpec = errors.New("invalid data set spec")

// SpecError is an invalid spec, with the field at fault.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Msg }
func (e *SpecError) Unwrap() error { return ErrSpec }

// Spec says what to make. It is saved as spec.json in the directory; a
// run on a directory that holds another spec is refused.
type Spec struct {
	// Model is the generator: cvaegan (seen classes) or attngan (any class
	// that can be described).
	Model string `json:"model"`
	// Classes are class names, ids or labels, or "seen", "heldout", "all";
	// empty means every class the model can make. Make stores them
	// resolved to the catalog's names.
	Classes []string `json:"classes"`
	// PerClass is the number of images kept per class.
	PerClass int `json:"per_class"`
	// MinFidelity (0–1): keep an image only when its fidelity reaches it.
	MinFidelity float64 `json:"min_fidelity"`
	// Measure picks the fidelity measure (the Fidelity* constants, the
	// generator's own; the first scorer's names are read as their
	// successors); empty = the scorer's own choice: class_probability for
	// classes the classifier knows, attribute_agreement over the class's
	// attributes for held-out ones, and for prompts without a class
	// attribute_agreement over the attributes the prompt names, else
	// damsm_similarity.
	Measure string `json:"fidelity_measure,omitempty"`
	// MaxAttempts bounds the regeneration budget: at most MaxAttempts ×
	// PerClass images are made per class (default 4).
	MaxAttempts int `json:"max_attempts"`
	// MinNovelty rejects an image whose nearest real training image, in the
	// classifier's feature space, is closer than this (a near-copy); 0
	// keeps every image (distances are recorded whenever a reference is
	// given).
	MinNovelty float64 `json:"min_novelty"`
	// MinNoveltyAuto sets MinNovelty from the real training images: closer
	// to its nearest real training image than 99 % of them are to theirs
	// (a near-copy); a data set being continued keeps the threshold it
	// started with. Make stores the threshold it used in MinNovelty.
	MinNoveltyAuto bool `json:"min_novelty_auto,omitempty"`
	// Seed: attempt k of class c uses seed hash(Seed, c) + k.
	Seed uint64 `json:"seed"`
	// Prompts are the descriptions per class for text models, used in
	// turn; a class without any is described from its attributes
	// (AttributePrompts). PromptSource says where they came from.
	Prompts      map[string][]string `json:"prompts,omitempty"`
	PromptSource string              `json:"prompt_source,omitempty"`
	// ShardSize is the number of samples per WebDataset shard (default 1000).
	ShardSize int `json:"shard_size"`
}

// The largest per_class and max_attempts a spec may ask for.
const (
	MaxPerClass = 1_000_000
	MaxAttempts = 1000
)

// WithDefaults fills the defaults of the fields left zero.
func (s Spec) WithDefaults() Spec {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 4
	}
	if s.ShardSize == 0 {
		s.ShardSize = 1000
	}
	s.Measure = CanonicalMeasure(s.Measure)
	return s
}

// Validate checks the fields that need no model; errors are *SpecError.
func (s Spec) Validate() error {
	switch {
	case s.Model == "":
		return &SpecError{"model", "a model is required"}
	case s.PerClass < 1 || s.PerClass > MaxPerClass:
		return &SpecError{"per_class", fmt.Sprintf("want 1 to %d, got %d", MaxPerClass, s.PerClass)}
	case !(s.MinFidelity >= 0 && s.MinFidelity <= 1):
		return &SpecError{"min_fidelity", fmt.Sprintf("want 0 to 1, got %v", s.MinFidelity)}
	case s.MaxAttempts < 1 || s.MaxAttempts > MaxAttempts:
		return &SpecError{"max_attempts", fmt.Sprintf("want 1 to %d, got %d", MaxAttempts, s.MaxAttempts)}
	case !(s.MinNovelty >= 0) || math.IsInf(s.MinNovelty, 0):
		return &SpecError{"min_novelty", fmt.Sprintf("want a distance ≥ 0, got %v", s.MinNovelty)}
	case s.ShardSize < 1:
		return &SpecError{"shard_size", fmt.Sprintf("want at least 1, got %d", s.ShardSize)}
	}
	switch CanonicalMeasure(s.Measure) {
	case "", FidelityClassProbability, FidelityAttributeAgreement, FidelityDAMSMSimilarity:
	default:
		return &SpecError{"fidelity_measure", fmt.Sprintf("%q: want %s, %s or %s", s.Measure,
			FidelityClassProbability, FidelityAttributeAgreement, FidelityDAMSMSimilarity)}
	}
	return nil
}

// Check validates spec against model m without running anything (no
// graph, no directory): the checks Make does first. It returns the spec
// with its defaults filled and its classes resolved to the catalog's
// names (and, for text models, its prompts written), which is what Make
// stores; errors are *SpecError naming the field.
func Check(m *catalog.Model, spec Spec) (Spec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	if m == nil || m.Manifest.Name != spec.Model {
		return spec, &SpecError{"model", fmt.Sprintf("no model %q", spec.Model)}
	}
	if _, err := Plan(m, &spec); err != nil {
		return spec, err
	}
	return spec, nil
}

// ClassPlan is one class of a job.
type ClassPlan struct {
	Class catalog.Class
	Dir   string // safe name: folder, file stem and key prefix
	// Label is the class's global label: its place (from 0) among all the
	// classes of the model's data set ordered by id (GlobalLabels), the
	// same in every data set of that world whatever classes it holds.
	Label   int
	Prompts []string
	Seed    uint64 // seed of attempt 0; attempt k uses Seed + k
}

// Plan turns the spec's class keys into the model's classes, checks
// that the model can make each one, and fills in prompts: it rewrites
// spec.Classes to the catalog's names and, for text models, spec.Prompts
// (and PromptSource). spec must have its defaults and be valid
// (WithDefaults, Validate); errors are *SpecError.
func Plan(m *catalog.Model, spec *Spec) ([]ClassPlan, error) {
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, err
	}
	text := m.Manifest.Kind == catalog.KindAttnGAN
	if !text && m.Manifest.Kind != catalog.KindCVAEGAN {
		return nil, &SpecError{"model", fmt.Sprintf("%s is a %s model; a data set needs a generator (attngan or cvaegan)", m.Manifest.Name, m.Manifest.Kind)}
	}
	canMake := func(c catalog.Class) bool { return text || c.Index >= 0 }
	var picked []catalog.Class
	seen := map[string]bool{}
	add := func(c catalog.Class) {
		if !seen[c.Name] {
			seen[c.Name] = true
			picked = append(picked, c)
		}
	}
	keys := spec.Classes
	if len(keys) == 0 {
		keys = []string{"all"}
	}
	for _, k := range keys {
		switch kk := strings.ToLower(strings.TrimSpace(k)); kk {
		case "all", "seen", "heldout", "held-out":
			held := strings.HasPrefix(kk, "held")
			for _, c := range cls.Classes {
				if (kk == "all" && canMake(c)) || (kk == "seen" && c.Index >= 0) || (held && c.Index < 0) {
					if !canMake(c) {
						return nil, &SpecError{"classes", fmt.Sprintf("%s was not trained on the held-out classes (%s); describe them to a text model (attngan) instead", m.Manifest.Name, c.Name)}
					}
					add(c)
				}
			}
			continue
		}
		c, ok := cls.Lookup(k)
		if !ok {
			return nil, &SpecError{"classes", fmt.Sprintf("no class %q in %s", k, m.Manifest.Name)}
		}
		if !canMake(c) {
			return nil, &SpecError{"classes", fmt.Sprintf("class %q is held out: %s was not trained on it; describe it to a text model (attngan) instead", c.Name, m.Manifest.Name)}
		}
		add(c)
	}
	if len(picked) == 0 {
		return nil, &SpecError{"classes", "no class selected"}
	}
	names := make([]string, len(picked))
	for i, c := range picked {
		names[i] = c.Name
	}
	safe := safeNames(names)
	labels := GlobalLabels(cls)
	prompts := map[string][]string{}
	plans := make([]ClassPlan, len(picked))
	for i, c := range picked {
		p := ClassPlan{Class: c, Dir: safe[c.Name], Label: labels[c.Name], Seed: classSeed(spec.Seed, c.Name)}
		if text {
			p.Prompts = spec.Prompts[c.Name]
			for _, alias := range []string{c.Label, fmt.Sprint(c.ID)} {
				if len(p.Prompts) == 0 {
					p.Prompts = spec.Prompts[alias]
				}
			}
			if len(p.Prompts) == 0 {
				p.Prompts = AttributePrompts(c, cls.Classes, 10)
			}
			if len(p.Prompts) == 0 {
				return nil, &SpecError{"prompts", fmt.Sprintf("class %q has neither descriptions nor attributes to describe it", c.Name)}
			}
			prompts[c.Name] = p.Prompts
		}
		plans[i] = p
	}
	spec.Classes = names
	if text {
		spec.Prompts = prompts
		if spec.PromptSource == "" {
			spec.PromptSource = "attributes"
		}
	} else {
		spec.Prompts, spec.PromptSource = nil, ""
	}
	return plans, nil
}

// GlobalLabels gives every class of a model's data set its global label:
// its place, from 0, among the classes ordered by id (ties by name). For
// a data set in CUB's layout that is id − 1. Every data set made from
// models of the same world labels a class the same way; NamesFile lists
// them.
func GlobalLabels(cls *catalog.Classes) map[string]int {
	sorted := append([]catalog.Class(nil), cls.Classes...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].ID != sorted[j].ID {
			return sorted[i].ID < sorted[j].ID
		}
		return sorted[i].Name < sorted[j].Name
	})
	res := make(map[string]int, len(sorted))
	for i, c := range sorted {
		res[c.Name] = i
	}
	return res
}

// classSeed is the first seed of a class: a hash of the job seed and the
// class name, so that classes never share seeds. It keeps 52 bits, so
// that every seed of the class (at most MaxAttempts × MaxPerClass = 10^9
// < 2^30 attempts) stays within 0…2^53−1, the seed range that every client
// language reads exactly (jobspec.MaxSeed), without wrapping.
func classSeed(seed uint64, class string) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("fgstudio-dataset/%d/%s", seed, class)))
	return binary.LittleEndian.Uint64(h[:8]) >> 12
}
