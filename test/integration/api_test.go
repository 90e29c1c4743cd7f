//go:build !unit

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

const adminToken = "integration-admin-token-42"

// waitReady polls /readyz until the server is ready.
func waitReady(t *testing.T, p *studiotest.Process, base string) {
	t.Helper()
	p.WaitStatus(t, base+"/readyz", 200, 60*time.Second)
}

func newKey(t *testing.T, base string) string {
	t.Helper()
	body, _ := json.Marshal(api.KeyRequest{Name: "e2e", Scopes: []string{"generate"}})
	req, _ := http.NewRequest("POST", base+"/v1/admin/keys", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k api.CreatedKey
	if resp.StatusCode != 201 || json.NewDecoder(resp.Body).Decode(&k) != nil {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	return k.Token
}

// TestAPIEndToEnd: an API replica and a worker, as processes sharing a
// real Redis, with authentication on. A prompt generation goes through
// HTTP: submit → live progress over SSE → PNGs of the model's size whose
// provenance chunk names the request → scores and attention maps. Then
// `studio generate --server` does the same for a class model.
func TestAPIEndToEnd(t *testing.T) {
	models, classModel, class := testModels(t)
	cat, err := catalog.Open(models)
	if err != nil {
		t.Fatal(err)
	}
	const textModel = "attngan-birds"
	tm, ok := cat.Get(textModel)
	if !ok {
		t.Fatalf("no %s in %s", textModel, models)
	}
	size := tm.Manifest.Size("image_size", 0)
	redis := redistest.Start(t, redistest.Options{})
	common := []string{"REDIS_URL=" + redis.URL(), "STUDIO_MODELS_DIR=" + models, "STUDIO_THREADS=1"}
	worker := start(t, append(common, "STUDIO_ADMIN_ADDR="+studiotest.FreeAddr(t)), "worker")
	addr := studiotest.FreeAddr(t)
	server := start(t, append(common, "STUDIO_ADDR="+addr, "STUDIO_REQUIRE_AUTH=true", "STUDIO_ADMIN_TOKEN="+adminToken), "serve")
	base := "http://" + addr
	waitReady(t, server, base)
	token := newKey(t, base)
	c, err := client.New(base, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	prompt := "this bird has a red crown and black wings with a short pointed bill"
	job, err := c.Generate(ctx, api.GenerationRequest{Model: textModel, Prompt: prompt, N: ptr(3), Seed: ptr(uint64(21))})
	if err != nil {
		t.Fatal(err)
	}
	var events []api.Event
	done, err := c.Wait(ctx, job.ID, func(ev api.Event) { events = append(events, ev) })
	if err != nil {
		t.Fatalf("wait: %v; worker log:\n%s", err, worker.Logs())
	}
	if done.State != "succeeded" || len(done.Images) != 3 {
		t.Fatalf("job %+v; worker log:\n%s", done, worker.Logs())
	}
	images, progress := 0, 0
	for _, ev := range events {
		switch ev.Type {
		case api.EventImage:
			images++
		case api.EventProgress:
			progress++
		}
	}
	if images != 3 || progress != 3 || events[len(events)-1].Type != api.EventFinished {
		t.Fatalf("events %+v", events)
	}
	for _, img := range done.Images {
		data, err := c.Image(ctx, job.ID, img.Index)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width != size || cfg.Height != size {
			t.Fatalf("image %d: %dx%d, want %d: %v", img.Index, cfg.Width, cfg.Height, size, err)
		}
		prov, err := generator.ReadProvenance(data)
		if err != nil || prov.Model != textModel || prov.Prompt != prompt || prov.Seed != img.Seed || prov.Seed < 21 || prov.Scores == nil {
			t.Fatalf("provenance of image %d: %+v %v", img.Index, prov, err)
		}
		var sc generator.Scores
		// The prompt names attributes, so its measure is attribute_agreement
		// (the worker skips the DAMSM encoder that only damsm_similarity needs).
		if err := json.Unmarshal(img.Scores, &sc); err != nil || len(sc.Top) == 0 || img.FidelityMeasure != "attribute_agreement" ||
			sc.AttributeAgreement == nil || img.Fidelity != *sc.AttributeAgreement {
			t.Fatalf("scores of image %d: %s %v (measure %q)", img.Index, img.Scores, err, img.FidelityMeasure)
		}
		att, err := c.Attention(ctx, job.ID, img.Index)
		if err != nil || len(att.Maps) == 0 || len(att.Maps) != len(img.Words) {
			t.Fatalf("attention of image %d: %+v %v", img.Index, att, err)
		}
		m, err := c.Get(ctx, att.Maps[0].PNG)
		if _, perr := png.DecodeConfig(bytes.NewReader(m)); err != nil || perr != nil {
			t.Fatalf("attention map: %v %v", err, perr)
		}
	}

	// The CLI against the server, for a class model.
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, studiotest.Studio(t), "generate", "--server", base, "--model", classModel, "--class", class,
		"--n", "2", "--seed", "5", "--out", out)
	cmd.Env = append(os.Environ(), "STUDIO_API_KEY="+token)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "2/2 images") {
		t.Fatalf("studio generate --server: %v\n%s", err, b)
	}
	var rows []struct {
		File   string          `json:"file"`
		Scores json.RawMessage `json:"scores"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "scores.json"))
	if err != nil || json.Unmarshal(raw, &rows) != nil || len(rows) != 2 {
		t.Fatalf("scores.json: %v %s", err, raw)
	}
	for _, r := range rows {
		data, err := os.ReadFile(filepath.Join(out, r.File))
		if err != nil {
			t.Fatal(err)
		}
		if prov, err := generator.ReadProvenance(data); err != nil || prov.Model != classModel || prov.Class == "" || len(r.Scores) == 0 {
			t.Fatalf("%s: %+v %v", r.File, prov, err)
		}
	}
	for _, p := range []*studiotest.Process{server, worker} {
		if code := p.Stop(t); code != 0 {
			t.Fatalf("exit %d; log:\n%s", code, p.Logs())
		}
	}
	if !strings.Contains(server.Logs(), "authentication required") || strings.Contains(server.Logs(), token) || strings.Contains(server.Logs(), adminToken) {
		t.Fatalf("server log must say auth is on and never show a token:\n%s", server.Logs())
	}
}

// TestServeEmbeddedGenerates: `make run`'s shape — API and worker in one
// process on the embedded queue, no key needed from this machine.
func TestServeEmbeddedGenerates(t *testing.T) {
	models, classModel, class := testModels(t)
	addr := studiotest.FreeAddr(t)
	p := start(t, []string{"STUDIO_ADDR=" + addr, "STUDIO_MODELS_DIR=" + models, "STUDIO_THREADS=1"}, "serve")
	base := "http://" + addr
	waitReady(t, p, base)
	c, err := client.New(base, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	job, err := c.Generate(ctx, api.GenerationRequest{Model: classModel, Class: class, N: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Wait(ctx, job.ID, nil)
	if err != nil || done.State != "succeeded" || len(done.Images) != 2 || len(done.Images[1].Scores) == 0 {
		t.Fatalf("%+v %v; log:\n%s", done, err, p.Logs())
	}
	if code := p.Stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), "authentication is off") {
		t.Fatalf("the log must say that authentication is off:\n%s", p.Logs())
	}
}

func ptr[T any](v T) *T { return &v }
