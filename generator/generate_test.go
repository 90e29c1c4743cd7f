//go:build !unit

package generator_test

import (
	"bytes"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/textenc"
)

func loadService(t *testing.T, cat *catalog.Catalog, cfg generator.Config) *generator.Service {
	t.Helper()
	svc := generator.Load(rt, cat, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(svc.Close)
	for name, err := range svc.Failed() {
		t.Errorf("model %s failed to load: %v", name, err)
	}
	if len(svc.Loaded()) == 0 {
		t.Fatal("no generator model loaded")
	}
	return svc
}

// exampleRequest builds a valid request for a model from its own data:
// a prompt of vocabulary words, or its first trained class.
func exampleRequest(t testing.TB, m *catalog.Model, variant int) generator.Request {
	t.Helper()
	switch m.Manifest.Kind {
	case catalog.KindAttnGAN:
		v, err := textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab))
		if err != nil {
			t.Fatal(err)
		}
		w := v.Words()
		n := 3 + variant%5
		prompt := ""
		for i := 0; i < n; i++ {
			prompt += w[(variant*7+i*3)%len(w)] + " "
		}
		return generator.Request{Prompt: prompt, N: 1}
	case catalog.KindCVAEGAN:
		cls, err := m.ReadClasses()
		if err != nil {
			t.Fatal(err)
		}
		tr := cls.Trained()
		return generator.Request{Class: tr[variant%len(tr)].Name, N: 1}
	}
	t.Fatalf("kind %s", m.Manifest.Kind)
	return generator.Request{}
}

func generators(cat *catalog.Catalog) []*catalog.Model {
	var res []*catalog.Model
	for _, m := range cat.Models() {
		if m.Manifest.Kind == catalog.KindAttnGAN || m.Manifest.Kind == catalog.KindCVAEGAN {
			res = append(res, m)
		}
	}
	return res
}

// TestSameSeedSameBytes: an image depends on its model, request and seed,
// never on the batch it ran in.
func TestSameSeedSameBytes(t *testing.T) {
	cat := sampleCatalog(t)
	for _, m := range generators(cat) {
		t.Run(m.Manifest.Name, func(t *testing.T) {
			alone := map[int][]byte{}
			for _, batch := range []int{1, 8, 32} {
				svc := loadService(t, cat, generator.Config{MaxBatch: batch, MaxImages: 64})
				// 32 images: 8 requests of 4 images with different prompts
				// or classes and seeds; image k of request r has seed 100r+k.
				var reqs []generator.Request
				for r := 0; r < 8; r++ {
					req := exampleRequest(t, m, r)
					req.N, req.Seed = 4, uint64(100*r)
					reqs = append(reqs, req)
				}
				out, err := svc.Generate(t.Context(), m.Manifest.Name, reqs)
				if err != nil {
					t.Fatal(err)
				}
				for r := range reqs {
					if len(out[r]) != 4 {
						t.Fatalf("request %d: %d images", r, len(out[r]))
					}
					for k, img := range out[r] {
						key := r*4 + k
						if img.Seed != uint64(100*r+k) {
							t.Fatalf("request %d image %d has seed %d", r, k, img.Seed)
						}
						if prev, ok := alone[key]; ok && !bytes.Equal(prev, img.PNG) {
							t.Fatalf("batch %d: request %d image %d differs from the first run", batch, r, k)
						}
						alone[key] = img.PNG
					}
				}
				svc.Close()
			}
			// And distinct seeds give distinct images.
			if bytes.Equal(alone[0], alone[1]) {
				t.Fatal("seeds 0 and 1 gave the same image")
			}
		})
	}
}

func TestImagesCarryProvenance(t *testing.T) {
	cat := sampleCatalog(t)
	svc := loadService(t, cat, generator.Config{})
	for _, m := range generators(cat) {
		req := exampleRequest(t, m, 0)
		req.N, req.Seed = 2, 42
		out, err := svc.Generate(t.Context(), m.Manifest.Name, []generator.Request{req})
		if err != nil {
			t.Fatal(err)
		}
		img := out[0][1]
		dec, err := png.Decode(bytes.NewReader(img.PNG))
		if err != nil {
			t.Fatal(err)
		}
		if b := dec.Bounds(); b.Dx() != img.Size || b.Dy() != img.Size {
			t.Fatalf("%s: %v, want %d square", m.Manifest.Name, b, img.Size)
		}
		p, err := generator.ReadProvenance(img.PNG)
		if err != nil {
			t.Fatal(err)
		}
		if p.Model != m.Manifest.Name || p.Seed != 43 || p.Prompt != req.Prompt || len(p.GraphSHA256) != 64 || p.Runtime == "" {
			t.Fatalf("%s: provenance %+v", m.Manifest.Name, p)
		}
		// Re-made from its own provenance: same bytes.
		again, err := svc.Generate(t.Context(), p.Model, []generator.Request{{Prompt: p.Prompt, Class: req.Class, N: 1, Seed: p.Seed}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again[0][0].PNG, img.PNG) {
			t.Fatalf("%s: image not re-made from its provenance", m.Manifest.Name)
		}
	}
}

func TestBadRequests(t *testing.T) {
	cat := sampleCatalog(t)
	svc := loadService(t, cat, generator.Config{MaxImages: 16})
	for _, m := range generators(cat) {
		name := m.Manifest.Name
		good := exampleRequest(t, m, 0)
		cases := []struct {
			what  string
			model string
			req   generator.Request
			want  error
			field string
		}{
			{"unknown model", "no-such-model", good, generator.ErrUnknownModel, "model"},
			{"n zero", name, with(good, func(r *generator.Request) { r.N = 0 }), generator.ErrTooMany, "n"},
			{"n over limit", name, with(good, func(r *generator.Request) { r.N = 17 }), generator.ErrTooMany, "n"},
		}
		switch m.Manifest.Kind {
		case catalog.KindAttnGAN:
			cases = append(cases,
				struct {
					what, model string
					req         generator.Request
					want        error
					field       string
				}{"empty prompt", name, generator.Request{Prompt: "  ", N: 1}, generator.ErrEmptyPrompt, "prompt"},
				struct {
					what, model string
					req         generator.Request
					want        error
					field       string
				}{"no known word", name, generator.Request{Prompt: "zzqx qqqv", N: 1}, generator.ErrNoKnownWord, "prompt"},
				struct {
					what, model string
					req         generator.Request
					want        error
					field       string
				}{"punctuation only", name, generator.Request{Prompt: "?!...", N: 1}, generator.ErrEmptyPrompt, "prompt"},
			)
		case catalog.KindCVAEGAN:
			cases = append(cases,
				struct {
					what, model string
					req         generator.Request
					want        error
					field       string
				}{"unknown class", name, generator.Request{Class: "999.Dodo", N: 1}, generator.ErrUnknownClass, "class"},
				struct {
					what, model string
					req         generator.Request
					want        error
					field       string
				}{"no class", name, generator.Request{N: 1}, generator.ErrUnknownClass, "class"},
			)
		}
		for _, c := range cases {
			t.Run(name+"/"+c.what, func(t *testing.T) {
				_, err := svc.Generate(t.Context(), c.model, []generator.Request{c.req})
				var fe *generator.FieldError
				if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Field != c.field {
					t.Fatalf("err = %v, want %v on field %s", err, c.want, c.field)
				}
			})
		}
	}
}

func with(r generator.Request, f func(*generator.Request)) generator.Request {
	f(&r)
	return r
}
