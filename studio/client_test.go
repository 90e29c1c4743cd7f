package studio_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

// checkingTransport checks every exchange of the Go client against the
// OpenAPI document too.
type checkingTransport struct{ t testing.TB }

func (ct checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	checkAgainstDoc(ct.t, req, body, resp, out)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

func TestClient(t *testing.T) {
	e := newEnv(t, envOpts{backend: productionBackend(), requireAuth: true, limits: studio.Limits{MaxActiveJobs: 1}})
	k := e.createKey("client", "generate")
	ctx := t.Context()
	hc := &http.Client{Transport: checkingTransport{t}}
	if _, err := client.New("ftp://x", "", nil); err == nil {
		t.Fatal("ftp URL accepted")
	}
	c, err := client.New(e.url+"/", k.Token, hc)
	if err != nil {
		t.Fatal(err)
	}
	models, err := c.Models(ctx)
	if err != nil || len(models) != 3 {
		t.Fatalf("%v %v", models, err)
	}
	m, err := c.Model(ctx, textModel)
	if err != nil || m.Name != textModel {
		t.Fatalf("%+v %v", m, err)
	}
	tok, err := c.Tokenize(ctx, textModel, knownWords(t, e)+" qqxyzzy")
	if err != nil || !tok.Usable || len(tok.Unknown) != 1 {
		t.Fatalf("%+v %v", tok, err)
	}
	j, err := c.Generate(ctx, api.GenerationRequest{Model: textModel, Prompt: knownWords(t, e), N: ptr(2), Seed: ptr(uint64(5))})
	if err != nil || j.State != "queued" {
		t.Fatalf("%+v %v", j, err)
	}
	// The quota of 1 refuses a second job with a Retry-After.
	_, err = c.Generate(ctx, api.GenerationRequest{Model: textModel, Prompt: "bird"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 429 || ce.Slug() != api.TypeQuotaExceeded || ce.RetryAfter < time.Second {
		t.Fatalf("quota: %v", err)
	}
	defer e.fakeWorkAsync(20 * time.Millisecond)()
	var seen []string
	done, err := c.Wait(ctx, j.ID, func(ev api.Event) { seen = append(seen, ev.Type) })
	if err != nil || done.State != "succeeded" || len(done.Images) != 2 || seen[len(seen)-1] != "finished" {
		t.Fatalf("wait: %+v %v (events %v)", done, err, seen)
	}
	png, err := c.Image(ctx, j.ID, 1)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("image: %v", err)
	}
	att, err := c.Attention(ctx, j.ID, 0)
	if err != nil || len(att.Maps) == 0 {
		t.Fatalf("attention: %+v %v", att, err)
	}
	if b, err := c.Get(ctx, att.Maps[0].PNG); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("attention map: %v", err)
	}
	if _, err := c.Image(ctx, j.ID, 7); !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("missing image: %v", err)
	}
	mj, err := c.Morph(ctx, classModel, trainedClass(t, e), testPNG(t, 80, 80))
	if err != nil || mj.Kind != "morph" {
		t.Fatalf("morph: %+v %v", mj, err)
	}
	if cj, err := c.Cancel(ctx, mj.ID); err != nil || cj.State != "cancelled" {
		t.Fatalf("cancel: %+v %v", cj, err)
	}
	ij, err := c.Interpolate(ctx, api.InterpolationRequest{Model: classModel, From: &api.Endpoint{Class: trainedClass(t, e)}, To: &api.Endpoint{Class: trainedClass(t, e)}, N: ptr(3)})
	if err != nil || ij.Progress.Total != 3 {
		t.Fatalf("interpolate: %+v %v", ij, err)
	}
	bad, _ := client.New(e.url, "fgs_"+string(bytes.Repeat([]byte("a"), 43)), hc)
	if _, err := bad.Models(ctx); !errors.As(err, &ce) || ce.Status != 401 || ce.Field != "Authorization" {
		t.Fatalf("bad key: %v", err)
	}
}
