package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/fgstudio/fgstudio/generator"
)

// fakeGen stands in for generator.Service: an image is a few bytes that
// name its model, request and seed, so results can be checked exactly.
type fakeGen struct {
	// fidelity scores an image from its seed (class probability); nil
	// leaves images unscored.
	fidelity func(seed uint64) float64
	// gate, when set, holds every Generate call until a token comes (or
	// its context ends).
	gate chan struct{}
	// failFirst makes the first failFirst calls fail (internal error).
	failFirst int

	mu      sync.Mutex
	calls   [][]generator.Request
	models  []string      // model of each call
	entered chan struct{} // one value per call, buffered
}

func newFake() *fakeGen { return &fakeGen{entered: make(chan struct{}, 1000)} }

var errBoom = errors.New("graph run failed")

func fakePNG(model string, r generator.Request, seed uint64) []byte {
	return fmt.Appendf(nil, "png|%s|%s|%s|%d", model, r.Prompt, r.Class, seed)
}

func (f *fakeGen) Validate(model string, r generator.Request) error {
	if !strings.HasPrefix(model, "m") {
		return &generator.FieldError{Field: "model", Err: generator.ErrUnknownModel, Msg: fmt.Sprintf("no model %q", model)}
	}
	if r.Class == "nope" {
		return &generator.FieldError{Field: "class", Err: generator.ErrUnknownClass, Msg: "no class \"nope\" in " + model}
	}
	return nil
}

func (f *fakeGen) Generate(ctx context.Context, model string, reqs []generator.Request) ([][]generator.Image, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]generator.Request(nil), reqs...))
	f.models = append(f.models, model)
	n := len(f.calls)
	f.mu.Unlock()
	f.entered <- struct{}{}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if n <= f.failFirst {
		return nil, errBoom
	}
	out := make([][]generator.Image, len(reqs))
	for i, r := range reqs {
		if err := f.Validate(model, r); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		if r.Prompt == "boom" {
			return nil, errBoom
		}
		for k := range r.N {
			seed := r.Seed + uint64(k)
			img := generator.Image{Seed: seed, PNG: fakePNG(model, r, seed), Size: 64}
			if f.fidelity != nil {
				p := f.fidelity(seed)
				img.Scores = generator.Scores{Class: r.Class, ClassProb: &p}
			}
			out[i] = append(out[i], img)
		}
	}
	return out, nil
}

func (f *fakeGen) Morph(ctx context.Context, model string, data []byte, target string) (generator.Image, error) {
	return generator.Image{PNG: append([]byte("morph|"+target+"|"), data...), Size: 64}, nil
}

func (f *fakeGen) Interpolate(ctx context.Context, model string, from, to generator.Endpoint, steps int) ([]generator.Image, error) {
	var out []generator.Image
	for i := range steps {
		out = append(out, generator.Image{Seed: from.Seed, PNG: fmt.Appendf(nil, "lerp|%s|%s|%d", from.Class, to.Class, i), Size: 64})
	}
	return out, nil
}

// batches is the number of images of each Generate call so far.
func (f *fakeGen) batches() [][]generator.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]generator.Request(nil), f.calls...)
}

// callModels is the model of each Generate call so far.
func (f *fakeGen) callModels() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.models...)
}

func images(reqs []generator.Request) int {
	n := 0
	for _, r := range reqs {
		n += r.N
	}
	return n
}
