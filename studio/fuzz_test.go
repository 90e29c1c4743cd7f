package studio

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
)

// Fuzz tests of the decoders that face users: `go test` runs their seeds,
// `make test` fuzzes each briefly, `go test -fuzz FuzzX ./studio` longer.

func fuzzServer(f *testing.F) *Server {
	f.Helper()
	dir := os.Getenv("STUDIO_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "samples", "models")
	}
	cat, err := catalog.Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	if _, ok := cat.Get("attngan-birds"); !ok {
		f.Fatalf("sample models missing from %s (set STUDIO_TEST_MODELS)", dir)
	}
	return New(Config{}, Deps{Models: cat})
}

// refused checks that err is a client problem naming what went wrong.
func refused(t *testing.T, err error) {
	var p *Problem
	if !errors.As(err, &p) || p.Status < 400 || p.Status > 499 || p.Detail == "" || p.Type == "" {
		t.Fatalf("not a 4xx problem: %#v", err)
	}
}

func FuzzGenerationRequest(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{
		`{"model":"attngan-birds","prompt":"a small bird with a red crown","n":4,"seed":42}`,
		`{"model":"cvaegan-birds","class":"002.White_crowned_Black_billed_Spoonbill","min_fidelity":0.5,"max_attempts":3}`,
		`{"model":"cvaegan-birds","class":"2","n":64,"seed":18446744073709551615,"idempotency_key":"k"}`,
		`{"model":"cvaegan-birds","class":"2","n":3,"seed":9007199254740990,"min_fidelity":0.5}`,
		`{"model":"attngan-birds","prompt":"\u00e9\u00e9 bird","n":-1}`,
		`{"model":"attngan-birds","prompt":"bird","n":1e400}`,
		`{"model":"classifier-birds","prompt":"bird"}`, `[]`, `null`, `{"model":{}}`, "{\"prompt\":\"\xff\"}", ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.GenerationRequest
		if err := decodeJSON(body, &req); err != nil {
			refused(t, err)
			return
		}
		spec, err := s.generationSpec(req, "fuzz", req.IdempotencyKey)
		if err != nil {
			refused(t, err)
			return
		}
		raw, err := spec.Marshal()
		if err != nil {
			t.Fatalf("accepted a request whose spec is invalid: %v (%s)", err, body)
		}
		back, err := jobspec.Unmarshal(raw)
		if err != nil || back.Total() < 1 || back.Total() > jobspec.MaxN || back.Model != req.Model {
			t.Fatalf("spec %+v: %v", back, err)
		}
	})
}

func FuzzInterpolationRequest(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{
		`{"model":"cvaegan-birds","from":{"class":"2","seed":1},"to":{"class":"3"},"n":5}`,
		`{"model":"cvaegan-birds","from":{"class":"1"},"to":{"class":"3"}}`,
		`{"model":"cvaegan-birds","from":null,"to":{"class":"3"}}`, `{"from":{"seed":-1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.InterpolationRequest
		if err := decodeJSON(body, &req); err != nil {
			refused(t, err)
			return
		}
		// The handler's checks, without Fiber: model and ends.
		e, err := s.generator(req.Model)
		if err != nil {
			refused(t, err)
			return
		}
		for _, end := range []*api.Endpoint{req.From, req.To} {
			if end == nil || end.Class == "" {
				return
			}
			if _, err := e.trainedClass("from.class", end.Class); err != nil {
				refused(t, err)
			}
		}
	})
}

func FuzzUpload(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(3, 3, color.NRGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	png.Encode(&buf, img)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte("GIF89a"))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := normaliseUpload(data, "image", 64, 1<<20, 1<<20)
		if err != nil {
			refused(t, err)
			return
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != 64 || cfg.Height != 64 || len(out) > maxSpecImageBytes {
			t.Fatalf("normalised upload %dx%d, %d bytes: %v", cfg.Width, cfg.Height, len(out), err)
		}
	})
}
