// Package generator runs the graphs: AttnGAN (prompt → images with word
// attention), CVAE-GAN (class → images, morphs, interpolations) and the
// fidelity scorer on every output. It loads model directories through
// the catalog, checks every graph against its manifest, batches requests
// into as few graph runs as possible, and writes PNGs that carry their
// own provenance.
package generator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// Config bounds the work of a Service.
type Config struct {
	// PoolSize is the number of sessions per graph (concurrent runs).
	PoolSize int
	// MaxBatch is the largest number of images in one graph run.
	MaxBatch int
	// MaxImages is the largest n of one request.
	MaxImages int
	// NoScore skips the fidelity scorer (benchmarks measure its cost).
	NoScore bool
	// Warm makes Load create the sessions of every generator (and of the
	// scorer it uses) and run each once, PoolSize images at once, before
	// the model is reported loaded: the first job pays neither the session
	// creation nor ONNX Runtime's first-run allocations (seconds for a
	// large graph); Load takes that much longer. The morph encoder is
	// left cold.
	Warm bool
	// ParallelScoring runs the scorer's DAMSM encoders beside its
	// classifier: 0 when the machine has cores for both runs' intra-op
	// threads (NumCPU ≥ 2 × IntraOpThreads), 1 always, -1 never.
	ParallelScoring int
}

func (c Config) withDefaults() Config {
	if c.PoolSize < 1 {
		c.PoolSize = 1
	}
	if c.MaxBatch < 1 {
		c.MaxBatch = 32
	}
	if c.MaxImages < 1 {
		c.MaxImages = 64
	}
	return c
}

// Request asks for N images of one prompt or class. Image k uses seed
// Seed+k, so "vary" is a neighbouring seed and any image can be made
// again alone from its own seed.
type Request struct {
	Prompt string `json:"prompt,omitempty"`
	Class  string `json:"class,omitempty"`
	N      int    `json:"n"`
	Seed   uint64 `json:"seed"`
	// FidelityOnly scores each image by its fidelity measure alone: the
	// DAMSM image encoder runs only for images whose measure is
	// damsm_similarity (a prompt that names no attribute the classifier's
	// head judges), so the others carry no damsm_similarity,
	// text_similarity or Code. A batch mixing requests with and without it
	// scores every image fully.
	FidelityOnly bool `json:"fidelity_only,omitempty"`
}

// Image is one generated image with its scores.
type Image struct {
	Seed   uint64 `json:"seed"`
	PNG    []byte `json:"-"`
	Size   int    `json:"size"`
	Scores Scores `json:"scores"`
	// Stages are the lower-resolution stage outputs (AttnGAN), smallest first.
	Stages [][]byte `json:"-"`
	// Attention holds a map per kept word of the prompt (AttnGAN), from
	// the finest attentional stage; CoarseAttention the same for each
	// earlier attentional stage, coarsest first, when there are several.
	Attention       []WordMap `json:"-"`
	CoarseAttention []WordMap `json:"-"`
}

// WordMap is the attention of one attentional stage to one word, as a
// grayscale PNG normalised to its own maximum, Peak: the largest share of
// a region's attention the word got (the softmax over words, so 0–1), by
// which maps of different words compare on one scale. Stage counts the
// attentional stages from the coarsest (0).
type WordMap struct {
	Word  string  `json:"word"`
	PNG   []byte  `json:"-"`
	Peak  float32 `json:"peak"`
	Stage int     `json:"stage"`
}

// model is what every kind of generator model does.
type model interface {
	generate(ctx context.Context, reqs []Request) ([][]Image, error)
	validate(r Request) error
	// warmRequest is a valid one-image request that runs every graph a
	// generation runs, at its largest shapes (the longest prompt).
	warmRequest() Request
	info() *catalog.Model
	close()
}

// Service holds the loaded models of one models folder.
type Service struct {
	cfg     Config
	log     *slog.Logger
	runtime string
	models  map[string]model
	scorers map[string]*Scorer
	failed  map[string]error
}

// Load loads every model of the catalog. A model that fails to load is
// logged and reported by Failed; the others serve.
func Load(rt Runtime, cat *catalog.Catalog, cfg Config, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, log: log, runtime: "onnxruntime " + rt.Version(),
		models: map[string]model{}, scorers: map[string]*Scorer{}, failed: map[string]error{}}
	// Scorers first: generators refer to them by name.
	for _, m := range cat.Models() {
		if m.Manifest.Kind != catalog.KindClassifier {
			continue
		}
		sc, err := loadScorer(rt, m, cfg.PoolSize)
		if err != nil {
			s.fail(m.Manifest.Name, err)
			continue
		}
		sc.parallel = cfg.ParallelScoring > 0 || (cfg.ParallelScoring == 0 && parallelScoring(rt))
		s.scorers[m.Manifest.Name] = sc
		log.Info("model loaded", "model", m.Manifest.Name, "kind", m.Manifest.Kind, "version", m.Manifest.Version)
	}
	for _, m := range cat.Models() {
		var (
			mod model
			err error
		)
		switch m.Manifest.Kind {
		case catalog.KindAttnGAN:
			mod, err = loadAttnGAN(rt, m, s)
		case catalog.KindCVAEGAN:
			mod, err = loadCVAEGAN(rt, m, s)
		default:
			continue
		}
		if err != nil {
			s.fail(m.Manifest.Name, err)
			continue
		}
		if cfg.Warm {
			start := time.Now()
			if err := warm(mod, cfg.PoolSize); err != nil {
				mod.close()
				s.fail(m.Manifest.Name, fmt.Errorf("%w: %s: warm-up run: %v", ErrModel, m.Manifest.Name, err))
				continue
			}
			log.Info("model warmed", "model", m.Manifest.Name, "sessions", cfg.PoolSize, "took", time.Since(start).Round(time.Millisecond))
		}
		s.models[m.Manifest.Name] = mod
		log.Info("model loaded", "model", m.Manifest.Name, "kind", m.Manifest.Kind, "version", m.Manifest.Version)
	}
	return s
}

// parallelScoring: the classifier and the DAMSM encoders may run at once
// when the machine has cores for both runs' intra-op threads.
func parallelScoring(rt Runtime) bool {
	c, ok := rt.(interface{ Config() ort.Config })
	if !ok {
		return false
	}
	t := c.Config().IntraOpThreads
	return t > 0 && runtime.NumCPU() >= 2*t
}

// warm runs sessions one-image generations at once, so that each pool
// holds that many sessions, each run once.
func warm(m model, sessions int) error {
	r := m.warmRequest()
	err := concurrently(sessions, func(i int) error {
		_, err := m.generate(context.Background(), []Request{{Prompt: r.Prompt, Class: r.Class, N: 1, Seed: uint64(i)}})
		return err
	})
	if err != nil {
		return err
	}
	if w, ok := m.(warmsMore); ok {
		return w.warmMore(context.Background(), sessions)
	}
	return nil
}

// concurrently runs f(0) … f(n−1) at once and joins their errors: n
// calls at once make a pool hold n sessions, each run once.
func concurrently(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// warmsMore is a model with graphs that a generation does not run (the
// CVAE-GAN encoder, which only morphs run); warmMore creates and runs
// sessions of each of them.
type warmsMore interface {
	warmMore(ctx context.Context, sessions int) error
}

func (s *Service) fail(name string, err error) {
	s.failed[name] = err
	s.log.Error("model not loaded", "model", name, "err", err)
}

// scorer finds the scorer a generator names; none is an error only if the
// manifest names one.
func (s *Service) scorer(m *catalog.Model) (*Scorer, error) {
	name := m.Manifest.Scorer
	if name == "" {
		return nil, nil
	}
	sc, ok := s.scorers[name]
	if !ok {
		if err, failed := s.failed[name]; failed {
			return nil, fmt.Errorf("%w: %s: scorer %q failed to load: %v", ErrModel, m.Manifest.Name, name, err)
		}
		return nil, fmt.Errorf("%w: %s: scorer %q not found", ErrModel, m.Manifest.Name, name)
	}
	if err := checkClasses(m, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

// Loaded lists the generator models that serve.
func (s *Service) Loaded() []string {
	var names []string
	for n := range s.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Failed reports the models that did not load, and why.
func (s *Service) Failed() map[string]error {
	res := make(map[string]error, len(s.failed))
	for k, v := range s.failed {
		res[k] = v
	}
	return res
}

// Validate checks a request against a model without running anything.
func (s *Service) Validate(modelName string, r Request) error {
	m, ok := s.models[modelName]
	if !ok {
		return s.unknownModel(modelName)
	}
	return s.validateCommon(m, r)
}

func (s *Service) validateCommon(m model, r Request) error {
	if r.N < 1 || r.N > s.cfg.MaxImages {
		return fieldErr("n", ErrTooMany, fmt.Sprintf("n must be between 1 and %d, got %d", s.cfg.MaxImages, r.N))
	}
	return m.validate(r)
}

func (s *Service) unknownModel(name string) error {
	if err, ok := s.failed[name]; ok {
		return fieldErr("model", ErrUnknownModel, fmt.Sprintf("model %q is not loaded: %v", name, err))
	}
	return fieldErr("model", ErrUnknownModel, fmt.Sprintf("no model %q (have: %s)", name, strings.Join(s.Loaded(), ", ")))
}

// Generate runs many requests for one model as few graph runs as possible
// and returns each request's images in order. Every request is validated
// before anything runs.
func (s *Service) Generate(ctx context.Context, modelName string, reqs []Request) ([][]Image, error) {
	m, ok := s.models[modelName]
	if !ok {
		return nil, s.unknownModel(modelName)
	}
	for i, r := range reqs {
		if err := s.validateCommon(m, r); err != nil {
			if len(reqs) > 1 {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
			return nil, err
		}
	}
	return m.generate(ctx, reqs)
}

// Close destroys every session of every model.
func (s *Service) Close() {
	for _, m := range s.models {
		m.close()
	}
	for _, sc := range s.scorers {
		sc.close()
	}
	s.models, s.scorers = nil, nil
}

var errNoModels = errors.New("no models loaded")

// Ready reports whether at least one generator model serves.
func (s *Service) Ready(context.Context) error {
	if len(s.models) == 0 {
		return errNoModels
	}
	return nil
}
