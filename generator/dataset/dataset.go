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
//     field) → 422 with that field; ErrSpecChanged, ErrNotEmpty, ErrBusy
//     → 409; anything else is a job failure to retry;
//   - store the Report (report.json) as the job result; Report.Short
//     non-empty means some classes ran out of budget;
//   - serve downloads from the finished directory: manifest.json lists
//     every file with its sha256, webdataset/*.tar are ready-made
//     archives, Verify re-checks a directory before serving it.
package dataset

import (
	"context"
	"errors"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// Errors of Make. A *SpecError wraps ErrSpec and names the field.
var (
	ErrSpec        = datasetspec.ErrSpec
	ErrSpecChanged = errors.New("directory holds a data set made with another spec")
	ErrNotEmpty    = errors.New("directory is not empty and holds no data set")
	ErrBusy        = errors.New("another process is making this data set")
)

// The spec and its checks live in datasetspec (the API uses them without
// linking the generator); these are the same types.
type (
	// Spec says what to make (datasetspec.Spec).
	Spec = datasetspec.Spec
	// SpecError is an invalid spec, with the field at fault.
	SpecError = datasetspec.SpecError
	classPlan = datasetspec.ClassPlan
)

// Check validates spec against model m without running anything
// (datasetspec.Check).
func Check(m *catalog.Model, spec Spec) (Spec, error) { return datasetspec.Check(m, spec) }

// SafeName is datasetspec.SafeName.
func SafeName(name string) string { return datasetspec.SafeName(name) }

// AttributePrompts is datasetspec.AttributePrompts.
func AttributePrompts(c catalog.Class, all []catalog.Class, n int) []string {
	return datasetspec.AttributePrompts(c, all, n)
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
