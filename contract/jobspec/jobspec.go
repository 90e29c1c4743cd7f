// Package jobspec is the contract between the API, which enqueues work, and
// the worker, which does it: what a queued job asks for (the JSON in
// queue.Job.Spec) and what each stored result carries besides its PNG (the
// JSON in queue.Result.Meta). It imports nothing of ONNX Runtime, so the
// API validates and answers from it without loading a graph.
package jobspec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Kind is the operation a job asks for.
type Kind string

const (
	// Generate makes N images from a prompt (AttnGAN) or a class (CVAE-GAN).
	Generate Kind = "generate"
	// Morph re-draws an uploaded image as another class (CVAE-GAN encoder +
	// generator); one result.
	Morph Kind = "morph"
	// Interpolate walks from one (class, seed) to another in N steps
	// (CVAE-GAN).
	Interpolate Kind = "interpolate"
	// Dataset makes a synthetic data set (generator/dataset.Make) on the
	// batch lane: Dataset holds its dataset.Spec as JSON, with the classes
	// already resolved by the API, and N is the number of classes. It has
	// N+1 results: index i < N is stored when the i-th class is finished
	// (DatasetClass), index N is the report (DatasetReport).
	Dataset Kind = "dataset"
)

// MaxDatasetClasses bounds the classes of one dataset job.
const MaxDatasetClasses = 1000

// Limits that hold for every spec, whatever the model.
const (
	MaxN           = 64
	MaxPromptBytes = 2000
	MaxAttempts    = 8
	// MaxSeed is the largest seed, 2^53−1: every seed a job uses (its
	// images' and their retries') is an integer that JSON numbers keep
	// exactly in every client language (a JavaScript number, a float64,
	// an int64), and seeds never wrap around.
	MaxSeed = 1<<53 - 1
)

// Spec is one job. Fields not used by its Kind must be empty.
type Spec struct {
	Kind  Kind   `json:"kind"`
	Model string `json:"model"`
	// Generate: exactly one of Prompt and Class.
	Prompt string `json:"prompt,omitempty"`
	Class  string `json:"class,omitempty"`
	// N is the number of results (Generate: images; Interpolate: steps).
	N int `json:"n"`
	// Seed of the first image; image k uses Seed+k (retries go on past N).
	Seed uint64 `json:"seed"`
	// MinFidelity in [0,1]: an image scoring below it is generated again
	// with a new seed, up to MaxAttempts tries per image; the best try is
	// kept and marked as below the bar.
	MinFidelity float64 `json:"min_fidelity,omitempty"`
	MaxAttempts int     `json:"max_attempts,omitempty"`
	// Morph: the uploaded PNG or JPEG, re-drawn as Class.
	Image []byte `json:"image,omitempty"`
	// Interpolate: the two ends.
	From *Endpoint `json:"from,omitempty"`
	To   *Endpoint `json:"to,omitempty"`
	// Dataset: the dataset.Spec, as JSON (its field names are the API's).
	Dataset json.RawMessage `json:"dataset,omitempty"`
}

// Endpoint is one end of an interpolation.
type Endpoint struct {
	Class string `json:"class"`
	Seed  uint64 `json:"seed"`
}

// FieldError names the spec field at fault.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ErrInvalid is matched by every FieldError (errors.Is).
var ErrInvalid = errors.New("invalid job spec")

func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Total is the number of results the job produces (queue.NewJob.Total).
func (s Spec) Total() int {
	switch s.Kind {
	case Morph:
		return 1
	case Dataset:
		return s.N + 1
	}
	return s.N
}

// Validate checks what can be checked without the model (shape, limits);
// the worker still checks names against the model it loads.
func (s Spec) Validate() error {
	if s.Model == "" {
		return bad("model", "is required")
	}
	if s.MinFidelity < 0 || s.MinFidelity > 1 {
		return bad("min_fidelity", "must be between 0 and 1")
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > MaxAttempts {
		return bad("max_attempts", "must be between 1 and %d", MaxAttempts)
	}
	if s.Kind != Dataset && len(s.Dataset) > 0 {
		return bad("dataset", "only a dataset job takes a dataset spec")
	}
	switch s.Kind {
	case Generate:
		if (s.Prompt == "") == (s.Class == "") {
			return bad("prompt", "give exactly one of prompt and class")
		}
		if len(s.Prompt) > MaxPromptBytes {
			return bad("prompt", "is longer than %d bytes", MaxPromptBytes)
		}
		if s.N < 1 || s.N > MaxN {
			return bad("n", "must be between 1 and %d", MaxN)
		}
		if len(s.Image) > 0 || s.From != nil || s.To != nil {
			return bad("kind", "generate takes no image, from or to")
		}
		if err := s.checkSeeds(); err != nil {
			return err
		}
	case Morph:
		if len(s.Image) == 0 {
			return bad("image", "is required")
		}
		if s.Class == "" {
			return bad("class", "is required (the target class)")
		}
		if s.Prompt != "" || s.From != nil || s.To != nil {
			return bad("kind", "morph takes an image and a class only")
		}
	case Interpolate:
		if s.From == nil || s.From.Class == "" {
			return bad("from.class", "is required")
		}
		if s.To == nil || s.To.Class == "" {
			return bad("to.class", "is required")
		}
		if s.N < 2 || s.N > MaxN {
			return bad("n", "must be between 2 and %d", MaxN)
		}
		if s.From.Seed > MaxSeed {
			return bad("from.seed", "must be at most %d (2^53−1)", uint64(MaxSeed))
		}
		if s.To.Seed > MaxSeed {
			return bad("to.seed", "must be at most %d (2^53−1)", uint64(MaxSeed))
		}
		if s.Prompt != "" || s.Class != "" || len(s.Image) > 0 {
			return bad("kind", "interpolate takes from, to and n only")
		}
	case Dataset:
		if len(s.Dataset) == 0 || !json.Valid(s.Dataset) {
			return bad("dataset", "a dataset spec (JSON object) is required")
		}
		if s.N < 1 || s.N > MaxDatasetClasses {
			return bad("classes", "must name 1 to %d classes", MaxDatasetClasses)
		}
		if s.Prompt != "" || s.Class != "" || len(s.Image) > 0 || s.From != nil || s.To != nil {
			return bad("kind", "dataset takes a dataset spec only")
		}
	default:
		return bad("kind", "must be generate, morph, interpolate or dataset")
	}
	return nil
}

// DefaultMaxAttempts is the tries per image when MinFidelity is set and
// MaxAttempts is not.
const DefaultMaxAttempts = 4

// Attempts is the most images generated per index: 1 without MinFidelity,
// else MaxAttempts or DefaultMaxAttempts.
func (s Spec) Attempts() int {
	switch {
	case s.MinFidelity <= 0:
		return 1
	case s.MaxAttempts > 0:
		return s.MaxAttempts
	}
	return DefaultMaxAttempts
}

// LastSeed is the largest seed a generate job may use: that of the last
// try of its last image, Seed + Attempts·N − 1.
func (s Spec) LastSeed() uint64 {
	return s.Seed + uint64(s.Attempts())*uint64(s.N) - 1
}

// checkSeeds holds every seed of a generate job within 0…MaxSeed, so that
// none wraps around to another job's.
func (s Spec) checkSeeds() error {
	if s.Seed > MaxSeed {
		return bad("seed", "must be at most %d (2^53−1)", uint64(MaxSeed))
	}
	if s.LastSeed() > MaxSeed {
		used := uint64(s.Attempts()) * uint64(s.N)
		why := fmt.Sprintf("n = %d images", s.N)
		if s.Attempts() > 1 {
			why += fmt.Sprintf(" with up to %d tries each", s.Attempts())
		}
		return bad("seed", "%s use seeds seed … seed+%d, which must stay at most %d (2^53−1): seed must be at most %d",
			why, used-1, uint64(MaxSeed), uint64(MaxSeed)-used+1)
	}
	return nil
}

// SeedFor is the seed of try (0-based) of image index: Seed+index first,
// then Seed + try·N + index, so that retries go on past N, never repeat a
// seed of the same job, and any image can be made again from its seed.
func (s Spec) SeedFor(index, try int) uint64 {
	return s.Seed + uint64(try)*uint64(s.N) + uint64(index)
}

// Marshal validates and encodes a spec for queue.NewJob.Spec.
func (s Spec) Marshal() (json.RawMessage, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Unmarshal decodes and validates a queued spec.
func Unmarshal(b []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return Spec{}, fmt.Errorf("decode job spec: %w", err)
	}
	return s, s.Validate()
}

// ImageMeta is stored with each result (queue.Result.Meta).
type ImageMeta struct {
	Index int    `json:"index"`
	Seed  uint64 `json:"seed"`
	Size  int    `json:"size"`
	// Attempts is how many images were generated for this index (min_fidelity).
	Attempts int `json:"attempts"`
	// Fidelity is the score compared with MinFidelity; BelowMin is set when
	// no attempt reached it and the best one was kept.
	Fidelity float64 `json:"fidelity"`
	BelowMin bool    `json:"below_min,omitempty"`
	// FidelityMeasure says what Fidelity is (generator.Fidelity*:
	// class_probability, attribute_agreement or damsm_similarity); empty when the image
	// could not be scored, and then MinFidelity is not applied.
	FidelityMeasure string `json:"fidelity_measure,omitempty"`
	// Scores is generator.Scores as JSON.
	Scores json.RawMessage `json:"scores,omitempty"`
	// Attention maps, one per kept prompt word and attentional stage
	// (AttnGAN). Their PNGs travel apart, as the result's parts (map w is
	// queue part w+1), so that the metadata carries no pixels; a result
	// stored before that has them inline in PNG.
	Attention []WordMap `json:"attention,omitempty"`
}

// WordMap is the attention of one attentional stage to one word: a
// grayscale PNG normalised to its own maximum, Peak that maximum (the
// word's largest share of a region's attention, 0–1; 0 when unknown), and
// Stage the attentional stage, from the coarsest (0).
type WordMap struct {
	Word  string  `json:"word"`
	PNG   []byte  `json:"png,omitempty"`
	Peak  float32 `json:"peak,omitempty"`
	Stage int     `json:"stage,omitempty"`
}

// DatasetClass is the result of one finished class of a dataset job
// (queue.Result.Meta; Data is empty): where the job stood when the class
// was done. Counts are for the whole job so far.
type DatasetClass struct {
	Class       string `json:"class"`
	ClassesDone int    `json:"classes_done"`
	Accepted    int    `json:"accepted"`
	Attempts    int    `json:"attempts"`
}
