package studio_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// forBackends runs f on the embedded backend and, outside the unit tier,
// on the real ones (realparts_test.go).
func forBackends(t *testing.T, f func(t *testing.T, backend string)) {
	t.Run("embedded", func(t *testing.T) { f(t, "embedded") })
	for _, b := range realBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b.name) })
	}
}

// trainedClass is a class the class model can generate.
func trainedClass(t testing.TB, e *env) string {
	t.Helper()
	resp, body := e.do("GET", "/v1/models/"+classModel, nil, bearer(testAdminToken))
	for _, c := range decode[api.Model](t, resp, body, 200).Classes {
		if c.Trained {
			return c.Name
		}
	}
	t.Fatal("no trained class")
	return ""
}

func heldOutClass(t testing.TB, e *env) string {
	t.Helper()
	resp, body := e.do("GET", "/v1/models/"+classModel, nil, bearer(testAdminToken))
	for _, c := range decode[api.Model](t, resp, body, 200).Classes {
		if !c.Trained {
			return c.Name
		}
	}
	t.Fatal("no held-out class")
	return ""
}

func knownWords(t testing.TB, e *env) string {
	t.Helper()
	resp, body := e.do("GET", "/v1/models/"+textModel+"/vocabulary?limit=3", nil, bearer(testAdminToken))
	return strings.Join(decode[api.Vocabulary](t, resp, body, 200).Words, " ")
}

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeWork plays a worker for one claimed job: it stores a result per
// index (a PNG with scores and, for prompts, attention maps), pausing
// between them, and acks.
func (e *env) fakeWork(pause time.Duration) queue.Lease {
	e.t.Helper()
	ls, err := e.q.Claim(e.t.Context(), "fake-worker", 1, 5*time.Second)
	if err != nil || len(ls) != 1 {
		e.t.Fatalf("claim: %v %v", ls, err)
	}
	l := ls[0]
	spec, err := jobspec.Unmarshal(l.Job.Spec)
	if err != nil {
		e.t.Fatalf("the API queued an invalid spec: %v", err)
	}
	for k := range l.Job.Total {
		time.Sleep(pause)
		meta := jobspec.ImageMeta{Index: k, Seed: spec.Seed + uint64(k), Size: 64, Attempts: 1, Fidelity: 0.5, FidelityMeasure: "class_probability",
			Scores: json.RawMessage(`{"class":"x","class_prob":0.5,"class_rank":1,"top":[{"label":"x","prob":0.5}]}`)}
		// Attention maps travel as parts (as the worker stores them); odd
		// images keep them inline, as results stored by older workers do.
		var parts [][]byte
		if spec.Prompt != "" {
			for _, w := range strings.Fields(spec.Prompt) {
				if k%2 == 0 {
					meta.Attention = append(meta.Attention, jobspec.WordMap{Word: w})
					parts = append(parts, testPNG(e.t, 16, 16))
				} else {
					meta.Attention = append(meta.Attention, jobspec.WordMap{Word: w, PNG: testPNG(e.t, 16, 16)})
				}
			}
		}
		raw, _ := json.Marshal(meta)
		if err := e.q.PutResult(e.t.Context(), l, queue.Result{Index: k, Data: testPNG(e.t, 64, 64), Meta: raw, Parts: parts}); err != nil {
			e.t.Fatalf("put result: %v", err)
		}
	}
	if err := e.q.Ack(e.t.Context(), l); err != nil {
		e.t.Fatalf("ack: %v", err)
	}
	return l
}

// fakeWorkAsync runs fakeWork in the background; the returned func waits
// for it (call it before the test ends).
func (e *env) fakeWorkAsync(pause time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.fakeWork(pause)
	}()
	return func() { <-done }
}

func TestGenerationLifecycle(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend})
		prompt := knownWords(t, e)
		j := e.submit(api.GenerationRequest{Model: textModel, Prompt: prompt, N: ptr(2), Seed: ptr(uint64(7)), MinFidelity: ptr(0.25), MaxAttempts: ptr(2)})
		if j.State != "queued" || j.Kind != "generate" || j.Progress != (api.Progress{Done: 0, Total: 2}) ||
			j.Request.Prompt != prompt || j.Request.Seed != 7 || j.Request.MinFidelity != 0.25 || j.Request.MaxAttempts != 2 || len(j.Images) != 0 {
			t.Fatalf("submitted %+v", j)
		}
		resp, body := e.do("GET", j.Links.Self, nil)
		if got := decode[api.Job](t, resp, body, 200); got.ID != j.ID || got.State != "queued" {
			t.Fatalf("%+v", got)
		}
		if resp, _ := e.do("GET", imgPath(j.ID, 0), nil); resp.StatusCode != 404 {
			t.Fatalf("unfinished image: %d", resp.StatusCode)
		}

		e.fakeWork(0)
		resp, body = e.do("GET", j.Links.Self, nil)
		done := decode[api.Job](t, resp, body, 200)
		if done.State != "succeeded" || done.Progress.Done != 2 || len(done.Images) != 2 || done.FinishedAt.IsZero() {
			t.Fatalf("finished %+v", done)
		}
		for k, img := range done.Images {
			var sc map[string]any
			if img.Index != k || img.Seed != 7+uint64(k) || img.Size != 64 || json.Unmarshal(img.Scores, &sc) != nil ||
				sc["class_prob"] != 0.5 || img.FidelityMeasure != "class_probability" || len(img.Words) != 3 || img.Links.PNG != imgPath(j.ID, k) {
				t.Fatalf("image %d: %+v", k, img)
			}
			resp, body := e.do("GET", img.Links.PNG, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(body, []byte("\x89PNG")) {
				t.Fatalf("png: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			resp, body = e.do("GET", img.Links.Attention, nil)
			att := decode[api.Attention](t, resp, body, 200)
			if len(att.Maps) != 3 || att.Maps[1].Word != img.Words[1] {
				t.Fatalf("attention %+v", att)
			}
			resp, body = e.do("GET", att.Maps[2].PNG, nil)
			if cfg, err := png.DecodeConfig(bytes.NewReader(body)); resp.StatusCode != 200 || err != nil || cfg.Width != 16 {
				t.Fatalf("attention map: %d %v", resp.StatusCode, err)
			}
		}
		for _, p := range []string{imgPath(j.ID, 2), imgPath(j.ID, 9999999), j.Links.Self + "/images/01.png", j.Links.Self + "/images/-1.png",
			j.Links.Self + "/images/0/attention/3.png", j.Links.Self + "/images/x/attention"} {
			if resp, body := e.do("GET", p, nil); resp.StatusCode != 404 {
				t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
		// Cancelling a finished job changes nothing.
		resp, body = e.do("DELETE", j.Links.Self, nil)
		if got := decode[api.Job](t, resp, body, 200); got.State != "succeeded" {
			t.Fatalf("cancel finished: %+v", got)
		}
		// The stream of a finished job is its final event.
		evs := e.events(j.Links.Events)
		if len(evs) != 1 || evs[0].Type != "finished" || evs[0].State != "succeeded" || evs[0].Done != 2 {
			t.Fatalf("events of a finished job: %+v", evs)
		}
	})
}

func imgPath(id string, k int) string { return fmt.Sprintf("/v1/generations/%s/images/%d.png", id, k) }

func TestClassGenerationAndCancel(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend})
		cl := trainedClass(t, e)
		// Classes resolve by name, label or id; the job records the name.
		short := cl[strings.Index(cl, ".")+1:]
		j := e.submit(api.GenerationRequest{Model: classModel, Class: strings.ToLower(strings.ReplaceAll(short, "_", " "))})
		if j.Request.Class != cl || j.Request.N != 1 || j.Request.Seed > 1<<53 {
			t.Fatalf("%+v", j.Request)
		}
		resp, body := e.do("DELETE", j.Links.Self, nil)
		if got := decode[api.Job](t, resp, body, 200); got.State != "cancelled" {
			t.Fatalf("cancel queued: %+v", got)
		}
		if evs := e.events(j.Links.Events); len(evs) != 1 || evs[0].State != "cancelled" {
			t.Fatalf("%+v", evs)
		}
	})
}

// events reads a whole event stream (it ends with the job) and checks it
// against the document.
func (e *env) events(path string, opts ...opt) []api.Event {
	e.t.Helper()
	resp, body := e.do("GET", path, nil, opts...)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return parseSSE(e.t, bytes.NewReader(body), nil)
}

// parseSSE reads events until the stream ends, sending each to ch if set.
func parseSSE(t testing.TB, r io.Reader, ch chan<- api.Event) []api.Event {
	var evs []api.Event
	sc := bufio.NewScanner(r)
	var name, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			var ev api.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Type != name {
				t.Errorf("event %q: %v %s", name, err, data)
			}
			// The stream's body is text to the document; each event's data
			// must still be an Event as the document describes it.
			var v any
			_ = json.Unmarshal([]byte(data), &v)
			if err := oaDoc.Components.Schemas["Event"].Value.VisitJSON(v); err != nil {
				t.Errorf("event %q breaks the Event schema of openapi.json: %v\n%s", name, err, data)
			}
			evs = append(evs, ev)
			if ch != nil {
				ch <- ev
			}
			name, data = "", ""
		}
	}
	return evs
}

// TestEventsFollowProgress: a client that subscribes while the job is
// queued sees every step live, in order, and the stream ends with it.
func TestEventsFollowProgress(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend})
		j := e.submit(api.GenerationRequest{Model: classModel, Class: trainedClass(t, e), N: ptr(3)})
		req, _ := http.NewRequest("GET", e.url+j.Links.Events, nil)
		resp, err := e.hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		defer resp.Body.Close()
		ch := make(chan api.Event, 32)
		var raw bytes.Buffer
		go func() {
			defer close(ch)
			parseSSE(t, io.TeeReader(resp.Body, &raw), ch)
		}()
		if ev := <-ch; ev.Type != "queued" {
			t.Fatalf("first event %+v", ev)
		}
		defer e.fakeWorkAsync(30 * time.Millisecond)()
		var types []string
		for ev := range ch {
			s := ev.Type
			if ev.Type == "image" {
				s = fmt.Sprintf("image%d", *ev.Index)
				if ev.PNG != imgPath(j.ID, *ev.Index) {
					t.Errorf("image link %q", ev.PNG)
				}
				// The image's scores come with the event: no read of the
				// job is needed per image.
				img := ev.Image
				if img == nil || img.Index != *ev.Index || img.Fidelity != 0.5 || img.FidelityMeasure != "class_probability" ||
					!strings.Contains(string(img.Scores), `"class_prob":0.5`) || img.Links.PNG != ev.PNG || img.Seed != j.Request.Seed+uint64(*ev.Index) {
					t.Errorf("image event %d carries %+v", *ev.Index, img)
				}
			}
			if ev.Type == "progress" {
				s = fmt.Sprintf("progress%d/%d", ev.Done, ev.Total)
			}
			if ev.Type == "finished" {
				s += ":" + ev.State
			}
			types = append(types, s)
		}
		want := "started image0 progress1/3 image1 progress2/3 image2 progress3/3 finished:succeeded"
		if got := strings.Join(types, " "); got != want {
			t.Fatalf("events\n got %s\nwant %s", got, want)
		}
		checkAgainstDoc(t, req, nil, resp, raw.Bytes())
	})
}

func TestInterpolation(t *testing.T) {
	e := newEnv(t, envOpts{backend: productionBackend()})
	cl := trainedClass(t, e)
	resp, body := e.do("POST", "/v1/interpolations", api.InterpolationRequest{Model: classModel,
		From: &api.Endpoint{Class: cl}, To: &api.Endpoint{Class: cl, Seed: ptr(uint64(3))}, N: ptr(5)})
	j := decode[api.Job](t, resp, body, 202)
	if j.Kind != "interpolate" || j.Progress.Total != 5 || j.Request.From == nil || j.Request.To.Seed != 3 || j.Request.From.Class != cl {
		t.Fatalf("%+v", j)
	}
	resp, body = e.do("POST", "/v1/interpolations", api.InterpolationRequest{Model: classModel, From: &api.Endpoint{Class: cl}, To: &api.Endpoint{Class: cl}})
	j = decode[api.Job](t, resp, body, 202)
	if j.Progress.Total != 8 || j.Request.From.Seed != j.Request.To.Seed {
		t.Fatalf("defaults: %+v", j.Request)
	}
}

// TestIdempotency: a retried submission returns the first job; the key
// may come as a header; reusing it for another request is refused.
func TestIdempotency(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend})
		req := api.GenerationRequest{Model: classModel, Class: trainedClass(t, e), N: ptr(2), IdempotencyKey: "order-17"}
		first := e.submit(req)
		resp, body := e.do("POST", "/v1/generations", req)
		again := decode[api.Job](t, resp, body, 200)
		if again.ID != first.ID || resp.Header.Get("Idempotent-Replayed") != "true" || again.Request.Seed != first.Request.Seed {
			t.Fatalf("retry made %+v (first %+v)", again, first)
		}
		req.IdempotencyKey = ""
		resp, body = e.do("POST", "/v1/generations", req, header("Idempotency-Key", "order-17"))
		if got := decode[api.Job](t, resp, body, 200); got.ID != first.ID {
			t.Fatalf("header key: %s vs %s", got.ID, first.ID)
		}
		req.N = ptr(3)
		resp, body = e.do("POST", "/v1/generations", req, header("Idempotency-Key", "order-17"))
		if p := problemOf(t, body); resp.StatusCode != 422 || p.Slug() != api.TypeIdempotency || p.Field != "idempotency_key" {
			t.Fatalf("reused key: %d %s", resp.StatusCode, body)
		}
		// No key: two jobs.
		if a, b := e.submit(req), e.submit(req); a.ID == b.ID {
			t.Fatal("two submissions without a key made one job")
		}
	})
}
