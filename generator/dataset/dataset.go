// Package dataset makes synthetic training sets with the studio's
// generators: per class, k images that pass the fidelity scorer and are
// not near-copies of real training images, written as a torchvision
// ImageFolder, a Hugging Face imagefolder (metadata.jsonl) and WebDataset
// tar shards, with a manifest holding the sha256 of every file.
//
// The work is one library call, Make, which the CLI (studio dataset make)
// runs in-process and the API can run as a job:
//
//	spec := dataset.Spec{Model: "attngan-birds", Classes: []string{"heldout"}, PerClass: 100, MinFidelity: 0.5}
//	rep, err := dataset.Make(ctx, svc, model, spec, dir, dataset.Options{
//		Reference: ref,                          // dataset.BuildReference, or nil: no novelty check
//		Progress:  func(p dataset.Progress) {...}, // after every batch: publish as a job event
//	})
//
// Make is resumable: every attempt is journalled (attempts.jsonl) after its
// image is on disk, attempt k of a class always uses the same seed and
// prompt, and the images of a class are its first PerClass accepted
// attempts — so a job that is killed and run again with the same spec
// continues where it stopped and ends with exactly PerClass images per
// class, byte for byte what one uninterrupted run makes. Cancelling ctx
// stops after the current batch; run Make again to continue. Two runs on
// one directory at once are refused (ErrBusy).
//
// For the API (POST /v1/datasets, GET /v1/datasets/{id}, cancel,
// download), a worker job would:
//   - decode the request body into a Spec (its JSON field names are the
//     API's) and call Make with dir = <datasets root>/<job id>; a retried
//     or re-claimed job calls Make again on the same dir and continues;
//   - build the Reference once per worker process (BuildReference scores
//     every real image: seconds to minutes) and share it between jobs;
//   - publish each Progress (JSON-ready: phase, accepted/target,
//     attempts, rates, eta_ns) as a job progress event, and cancel ctx on
//     DELETE: Make returns an error wrapping context.Canceled after the
//     batch in flight, and the directory stays resumable;
//   - map errors: a *SpecError (errors.Is ErrSpec, Field names the
//     field) → 400 with that field; ErrSpecChanged, ErrNotEmpty, ErrBusy
//     → 409; anything else is a job failure to retry;
//   - store the Report (report.json) as the job result; Report.Short
//     non-empty means some classes ran out of budget;
//   - serve downloads from the finished directory: manifest.json lists
//     every file with its sha256, webdataset/*.tar are ready-made
//     archives, Verify re-checks a directory before serving it.
package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"fgstudio/catalog"
	"fgstudio/generator"
)

// Errors of Make. A *SpecError wraps ErrSpec and names the field.
var (
	ErrSpec        = errors.New("invalid data set spec")
	ErrSpecChanged = errors.New("directory holds a data set made with another spec")
	ErrNotEmpty    = errors.New("directory is not empty and holds no data set")
	ErrBusy        = errors.New("another process is making this data set")
)

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
	// Measure picks the fidelity measure (generator.Fidelity* constants);
	// empty = the scorer's own choice: class probability for classes the
	// classifier knows, attribute match for held-out ones, DAMSM text
	// similarity for prompts without a class.
	Measure string `json:"fidelity_measure,omitempty"`
	// MaxAttempts bounds the regeneration budget: at most MaxAttempts ×
	// PerClass images are made per class (default 4).
	MaxAttempts int `json:"max_attempts"`
	// MinNovelty rejects an image whose nearest real training image, in the
	// classifier's feature space, is closer than this (a near-copy); 0
	// keeps every image (distances are recorded whenever a reference is
	// given).
	MinNovelty float64 `json:"min_novelty"`
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

func (s Spec) withDefaults() Spec {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 4
	}
	if s.ShardSize == 0 {
		s.ShardSize = 1000
	}
	return s
}

func (s Spec) check() error {
	switch {
	case s.Model == "":
		return &SpecError{"model", "a model is required"}
	case s.PerClass < 1 || s.PerClass > 1_000_000:
		return &SpecError{"per_class", fmt.Sprintf("want 1 to 1000000, got %d", s.PerClass)}
	case !(s.MinFidelity >= 0 && s.MinFidelity <= 1):
		return &SpecError{"min_fidelity", fmt.Sprintf("want 0 to 1, got %v", s.MinFidelity)}
	case s.MaxAttempts < 1 || s.MaxAttempts > 1000:
		return &SpecError{"max_attempts", fmt.Sprintf("want 1 to 1000, got %d", s.MaxAttempts)}
	case !(s.MinNovelty >= 0) || math.IsInf(s.MinNovelty, 0):
		return &SpecError{"min_novelty", fmt.Sprintf("want a distance ≥ 0, got %v", s.MinNovelty)}
	case s.ShardSize < 1:
		return &SpecError{"shard_size", fmt.Sprintf("want at least 1, got %d", s.ShardSize)}
	}
	switch s.Measure {
	case "", generator.FidelityClassProb, generator.FidelityAttributeMatch, generator.FidelityTextSimilarity:
	default:
		return &SpecError{"fidelity_measure", fmt.Sprintf("%q: want %s, %s or %s", s.Measure,
			generator.FidelityClassProb, generator.FidelityAttributeMatch, generator.FidelityTextSimilarity)}
	}
	return nil
}

// Service is what Make needs of the generation service
// (*generator.Service has it).
type Service interface {
	Generate(ctx context.Context, model string, reqs []generator.Request) ([][]generator.Image, error)
	ImageScorer
}

// Options are how Make runs, not what it makes.
type Options struct {
	// Reference holds the real training images for novelty; nil makes
	// no novelty check (and MinNovelty > 0 is then an error).
	Reference *Reference
	// Batch is the number of images per Generate call (default 64).
	Batch int
	// Progress, if set, is called after every batch and at each phase.
	Progress func(Progress)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Progress is where a Make call stands.
type Progress struct {
	// Phase: "generating", "writing" (layouts and manifest) or "done".
	Phase    string `json:"phase"`
	Accepted int    `json:"accepted"` // images kept, all classes
	Target   int    `json:"target"`   // PerClass × classes
	Attempts int    `json:"attempts"` // images made, kept or not
	// Resumed is how many of Accepted an earlier run had made.
	Resumed     int    `json:"resumed"`
	ClassesDone int    `json:"classes_done"`
	Classes     int    `json:"classes"`
	Class       string `json:"class,omitempty"` // the last class worked on
	// Rates of this run; ETA is -1 while unknown.
	Elapsed        time.Duration `json:"elapsed_ns"`
	AcceptedPerSec float64       `json:"accepted_per_sec"`
	AttemptsPerSec float64       `json:"attempts_per_sec"`
	ETA            time.Duration `json:"eta_ns"`
}

// Fraction is the share of the target reached, 0–1.
func (p Progress) Fraction() float64 {
	if p.Target == 0 {
		return 0
	}
	return float64(p.Accepted) / float64(p.Target)
}

// Check validates spec against model m without running anything (no
// graph, no directory): the checks Make does first. It returns the spec
// with its defaults filled and its classes resolved to the catalog's
// names (and, for text models, its prompts written), which is what Make
// stores; errors are *SpecError naming the field.
func Check(m *catalog.Model, spec Spec) (Spec, error) {
	spec = spec.withDefaults()
	if err := spec.check(); err != nil {
		return spec, err
	}
	if m == nil || m.Manifest.Name != spec.Model {
		return spec, &SpecError{"model", fmt.Sprintf("no model %q", spec.Model)}
	}
	if _, err := resolve(m, &spec); err != nil {
		return spec, err
	}
	return spec, nil
}

// classPlan is one class of a job.
type classPlan struct {
	class   catalog.Class
	dir     string // safe name: folder, file stem and key prefix
	label   int    // index in the sorted safe names (torchvision's order)
	prompts []string
	seed    uint64
}

// resolve turns the spec's class keys into the model's classes, checks
// that the model can make each one, and fills in prompts.
func resolve(m *catalog.Model, spec *Spec) ([]classPlan, error) {
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
	var sorted []string
	for _, n := range names {
		sorted = append(sorted, safe[n])
	}
	sort.Strings(sorted)
	label := map[string]int{}
	for i, s := range sorted {
		label[s] = i
	}
	prompts := map[string][]string{}
	plans := make([]classPlan, len(picked))
	for i, c := range picked {
		p := classPlan{class: c, dir: safe[c.Name], label: label[safe[c.Name]], seed: classSeed(spec.Seed, c.Name)}
		if text {
			p.prompts = spec.Prompts[c.Name]
			for _, alias := range []string{c.Label, fmt.Sprint(c.ID)} {
				if len(p.prompts) == 0 {
					p.prompts = spec.Prompts[alias]
				}
			}
			if len(p.prompts) == 0 {
				p.prompts = AttributePrompts(c, cls.Classes, 10)
			}
			if len(p.prompts) == 0 {
				return nil, &SpecError{"prompts", fmt.Sprintf("class %q has neither descriptions nor attributes to describe it", c.Name)}
			}
			prompts[c.Name] = p.prompts
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

// classSeed is the first seed of a class: a hash of the job seed and the
// class name, so that classes never share seeds.
func classSeed(seed uint64, class string) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("fgstudio-dataset/%d/%s", seed, class)))
	return binary.LittleEndian.Uint64(h[:8]) >> 1 // room for + attempt without wrapping
}
