//go:build !unit

package browser

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/fgstudio/fgstudio/frontend"
	"github.com/fgstudio/fgstudio/studio/api"
)

// stubAPI answers the studio's REST API from memory, with the JSON shapes
// of package studio/api, and can be told to fail: a test of the web
// studio, the layer above the API. The page's own files come from the
// real frontend handler (with its headers).
type stubAPI struct {
	URL string

	mu       sync.Mutex
	key      string        // when set, /v1 wants "Authorization: Bearer key"
	notReady string        // when set, /readyz says the models check fails with it
	noModels bool          // /v1/models lists nothing
	fail     []stubFailure // the next POST /v1/generations answer these, in order
	jobs     map[string]*stubJob
	seq      int
	auth     map[string]int // "with key"/"without key" → /v1 requests seen
	streams  int            // event streams opened
	jobGets  int            // GET /v1/generations/{id} answered
	posted   []map[string]any
	// measures names the fidelity measures of the images: "" the first
	// scorer's (class_prob, text_similarity), "new" today's
	// (class_probability, attribute_agreement with per-attribute detail,
	// damsm_similarity), "unknown" a name no page knows yet.
	measures string
	// attnStages is the number of attentional stages (default 1); noPeaks
	// leaves the peaks out (an older server).
	attnStages int
	noPeaks    bool
	// hold keeps new jobs queued (0) or running with 1 image (1) until
	// released: hold is -1 for normal progress.
	hold      int
	datasets  map[string]*stubDataset
	noJobList bool          // GET /v1/jobs answers 404, as a server from before it
	pngDelay  time.Duration // each image PNG answers this late
}

type stubFailure struct {
	status     int
	slug       string
	field      string
	detail     string
	retryAfter int
}

type stubJob struct {
	id       string
	kind     string
	model    string
	req      api.Request
	n        int
	created  time.Time
	cancel   bool
	hold     int // -1: none; else the images done while held
	measures string
	stages   int
	noPeaks  bool
}

// stubStep is how long each stub image takes.
const stubStep = 120 * time.Millisecond

func newStub(t *testing.T) *stubAPI {
	t.Helper()
	s := &stubAPI{jobs: map[string]*stubJob{}, auth: map[string]int{}, hold: -1, datasets: map[string]*stubDataset{}}
	assets := fiber.New(fiber.Config{DisableStartupMessage: true})
	assets.Use(frontend.Handler())
	assets.Use(func(c *fiber.Ctx) error { return c.Status(404).SendString("not found") })
	files := adaptor.FiberApp(assets)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/v1/", s.v1)
	mux.Handle("/", files)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *stubAPI) set(f func(s *stubAPI)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, f stubFailure) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	if f.status == 401 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fgstudio"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Request-ID", "req-stub-1")
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: api.TypeBase + f.slug, Title: http.StatusText(f.status),
		Status: f.status, Detail: f.detail, Field: f.field, RequestID: "req-stub-1"})
}

func (s *stubAPI) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	nr := s.notReady
	s.mu.Unlock()
	if nr != "" {
		writeJSON(w, 503, map[string]any{"status": "not ready", "checks": map[string]string{"queue": "ok", "models": nr}})
		return
	}
	writeJSON(w, 200, map[string]any{"status": "ready", "checks": map[string]string{"queue": "ok", "models": "ok"}})
}

var stubVocab = strings.Fields("a bird with small red blue yellow crown hooked cone bill wings breast streaked eye ring and the black white tail long this has grey")

var stubAttributes = []string{
	"has_crown_color::red", "has_crown_color::blue", "has_crown_color::yellow",
	"has_bill_shape::hooked", "has_bill_shape::cone", "has_bill_shape::needle",
	"has_wing_color::blue", "has_wing_color::black",
	"has_breast_pattern::streaked", "has_eye_ring::yes", "has_size::small",
}

var stubClasses = []api.Class{
	{ID: 1, Name: "001.Red_crowned_Hookbill", Label: "Red crowned Hookbill", Trained: true, Attributes: map[string]string{
		"has_crown_color": "red", "has_bill_shape": "hooked", "has_wing_color": "black", "has_breast_color": "yellow",
		"has_upperparts_color": "grey", "has_breast_pattern": "streaked", "has_eye_ring": "yes", "has_tail_shape": "notched", "has_size": "small"}},
	{ID: 2, Name: "002.Blue_crowned_Conebill", Label: "Blue crowned Conebill", Trained: true, Attributes: map[string]string{
		"has_crown_color": "blue", "has_bill_shape": "cone", "has_wing_color": "blue", "has_breast_color": "white",
		"has_upperparts_color": "brown", "has_wing_pattern": "wingbars", "has_tail_shape": "rounded", "has_size": "medium"}},
	{ID: 3, Name: "003.Yellow_crowned_Spoonbill", Label: "Yellow crowned Spoonbill", Trained: true, Attributes: map[string]string{
		"has_crown_color": "yellow", "has_bill_shape": "spatulate", "has_wing_color": "white", "has_breast_color": "red",
		"has_upperparts_color": "white", "has_tail_shape": "fan-shaped", "has_size": "large"}},
	{ID: 4, Name: "004.Black_crowned_Needlebill", Label: "Black crowned Needlebill", Trained: false, Attributes: map[string]string{
		"has_crown_color": "black", "has_bill_shape": "needle"}},
	{ID: 5, Name: "005.White_crowned_Red_breasted_Long_tailed_Warbler", Label: "White crowned Red breasted Long tailed Warbler", Trained: true, Attributes: map[string]string{
		"has_crown_color": "white", "has_bill_shape": "needle", "has_breast_color": "red", "has_tail_shape": "pointed", "has_size": "small"}},
}

// stubExampleClass is the one class with an example image.
const stubExampleClass = 2

// stubModels are the models; notLoaded, when set, is the load error of
// the text model (the server lists it but could not load it).
func stubModels(notLoaded string) []api.Model {
	classes := func(model string) []api.Class {
		out := append([]api.Class(nil), stubClasses...)
		for i := range out {
			if out[i].ID == stubExampleClass {
				out[i].Example = fmt.Sprintf("/v1/models/%s/classes/%d/example.png", model, out[i].ID)
			}
		}
		return out
	}
	text := api.Model{ModelSummary: api.ModelSummary{Name: "attngan-stub", Kind: "attngan", Version: "0.0.1",
		Description: "A stub text model.", ImageSize: 64, Input: "prompt", Link: "/v1/models/attngan-stub",
		Loaded: notLoaded == "", LoadCheck: api.LoadCheckGenerator, LoadError: notLoaded},
		Sizes: map[string]any{"image_size": 64}, VocabularySize: len(stubVocab), MaxWords: 18,
		Attributes: stubAttributes, Classes: classes("attngan-stub")}
	class := api.Model{ModelSummary: api.ModelSummary{Name: "cvaegan-stub", Kind: "cvaegan", Version: "0.0.1",
		Description: "A stub class model.", ImageSize: 64, Input: "class", Link: "/v1/models/cvaegan-stub",
		Loaded: true, LoadCheck: api.LoadCheckGenerator},
		Sizes: map[string]any{"image_size": 64}, Morph: true, Attributes: stubAttributes, Classes: classes("cvaegan-stub")}
	return []api.Model{text, class}
}

// notLoaded is the text model's load error while the stub is not ready.
func (s *stubAPI) notLoaded() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notReady
}

func stubSplit(text string) []string {
	var words []string
	var cur strings.Builder
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x80 {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '_' {
			cur.WriteByte(c)
			continue
		}
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

func (s *stubAPI) v1(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	key := s.key
	got := r.Header.Get("Authorization")
	if got != "" {
		s.auth["with key"]++
	} else {
		s.auth["without key"]++
	}
	s.mu.Unlock()
	if key != "" && got != "Bearer "+key {
		detail := "an API key is required: send Authorization: Bearer <key>"
		if got != "" {
			detail = "the API key is not valid"
		}
		writeProblem(w, stubFailure{status: 401, slug: api.TypeUnauthorized, detail: detail})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	parts := strings.Split(path, "/")
	switch {
	case path == "models" && r.Method == "GET":
		s.mu.Lock()
		none := s.noModels
		s.mu.Unlock()
		list := api.ModelList{Models: []api.ModelSummary{}}
		if !none {
			for _, m := range stubModels(s.notLoaded()) {
				list.Models = append(list.Models, m.ModelSummary)
			}
		}
		writeJSON(w, 200, list)
	case len(parts) == 2 && parts[0] == "models":
		for _, m := range stubModels(s.notLoaded()) {
			if m.Name == parts[1] {
				writeJSON(w, 200, m)
				return
			}
		}
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no model"})
	case len(parts) == 5 && parts[0] == "models" && parts[2] == "classes" && parts[4] == "example.png":
		if parts[3] != strconv.Itoa(stubExampleClass) {
			writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no example image of this class"})
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(stubImage(&stubJob{req: api.Request{Seed: 200}}, 0))
	case len(parts) == 3 && parts[0] == "models" && parts[2] == "vocabulary":
		prefix := strings.Join(stubSplit(r.URL.Query().Get("prefix")), "")
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 {
			limit = 20
		}
		words := []string{}
		for _, v := range stubVocab {
			if strings.HasPrefix(v, prefix) && len(words) < limit {
				words = append(words, v)
			}
		}
		writeJSON(w, 200, api.Vocabulary{Model: parts[1], Prefix: prefix, Size: len(stubVocab), Words: words})
	case path == "tokenize" && r.Method == "POST":
		var req api.TokenizeRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		known := map[string]bool{}
		for _, v := range stubVocab {
			known[v] = true
		}
		t := api.Tokens{Model: req.Model, Words: []string{}, Unknown: []string{}, Dropped: []string{}, MaxWords: 18}
		for _, w := range stubSplit(req.Prompt) {
			switch {
			case !known[w]:
				t.Unknown = append(t.Unknown, w)
			case len(t.Words) < 18:
				t.Words = append(t.Words, w)
			default:
				t.Dropped = append(t.Dropped, w)
			}
		}
		t.Usable = len(t.Words) > 0
		if !t.Usable {
			t.Reason = "the model knows none of the prompt's words"
		}
		writeJSON(w, 200, t)
	case path == "generations" && r.Method == "POST":
		s.mu.Lock()
		var f *stubFailure
		if len(s.fail) > 0 {
			f = &s.fail[0]
			s.fail = s.fail[1:]
		}
		s.mu.Unlock()
		if f != nil {
			writeProblem(w, *f)
			return
		}
		var req api.GenerationRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		n := 1
		if req.N != nil {
			n = *req.N
		}
		var seed uint64 = 1234
		if req.Seed != nil {
			seed = *req.Seed
		}
		s.create(w, "generate", req.Model, api.Request{Prompt: req.Prompt, Class: req.Class, N: n, Seed: seed}, n)
	case path == "morphs" && r.Method == "POST":
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			writeProblem(w, stubFailure{status: 400, slug: api.TypeMalformed, detail: err.Error()})
			return
		}
		f, _, err := r.FormFile("image")
		if err != nil {
			writeProblem(w, stubFailure{status: 422, slug: api.TypeInvalidField, detail: "image is required"})
			return
		}
		data, _ := io.ReadAll(f)
		if _, _, err := image.DecodeConfig(bytes.NewReader(data)); err != nil {
			writeProblem(w, stubFailure{status: 422, slug: api.TypeInvalidImage, detail: "not a PNG or JPEG image"})
			return
		}
		s.create(w, "morph", r.FormValue("model"), api.Request{Class: r.FormValue("class"), N: 1}, 1)
	case path == "interpolations" && r.Method == "POST":
		var req api.InterpolationRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		n := 8
		if req.N != nil {
			n = *req.N
		}
		end := func(e *api.Endpoint) *api.JobEndpoint {
			je := &api.JobEndpoint{Class: e.Class, Seed: 99}
			if e.Seed != nil {
				je.Seed = *e.Seed
			}
			return je
		}
		s.create(w, "interpolate", req.Model, api.Request{N: n, From: end(req.From), To: end(req.To)}, n)
	case len(parts) >= 2 && parts[0] == "generations":
		s.generation(w, r, parts[1:])
	case path == "jobs" && r.Method == "GET":
		s.jobList(w)
	case path == "datasets" && r.Method == "POST":
		s.createDataset(w, r)
	case len(parts) >= 2 && parts[0] == "datasets":
		s.dataset(w, r, parts[1:])
	default:
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such resource: " + r.URL.Path})
	}
}

func (s *stubAPI) create(w http.ResponseWriter, kind, model string, req api.Request, n int) {
	s.mu.Lock()
	s.seq++
	j := &stubJob{id: fmt.Sprintf("job-%d", s.seq), kind: kind, model: model, req: req, n: n, created: time.Now(),
		hold: s.hold, measures: s.measures, stages: max(1, s.attnStages), noPeaks: s.noPeaks}
	s.jobs[j.id] = j
	body, _ := json.Marshal(req)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	s.posted = append(s.posted, m)
	s.mu.Unlock()
	w.Header().Set("Location", "/v1/generations/"+j.id)
	writeJSON(w, 202, s.view(j, time.Now()))
}

// done is how many images a job has finished at now.
func (j *stubJob) done(now time.Time) int {
	if j.cancel {
		return 0
	}
	if j.hold >= 0 {
		return min(j.n, j.hold)
	}
	return min(j.n, int(now.Sub(j.created)/stubStep))
}

func (j *stubJob) state(now time.Time) string {
	switch d := j.done(now); {
	case j.cancel:
		return "cancelled"
	case d >= j.n:
		return "succeeded"
	case j.hold == 0 || (j.hold < 0 && now.Sub(j.created) < stubStep/2):
		return "queued"
	default:
		return "running"
	}
}

// release lets held jobs run on from now.
func (s *stubAPI) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = -1
	for _, j := range s.jobs {
		if j.hold >= 0 {
			j.created = time.Now().Add(-time.Duration(j.hold) * stubStep)
			j.hold = -1
		}
	}
	for _, d := range s.datasets {
		if d.hold {
			d.created = time.Now()
			d.hold = false
		}
	}
}

func (s *stubAPI) view(j *stubJob, now time.Time) api.Job {
	v := api.Job{ID: j.id, Kind: j.kind, Model: j.model, State: j.state(now), Request: j.req, CreatedAt: j.created,
		Progress: api.Progress{Done: j.done(now), Total: j.n}, Images: []api.Image{},
		Links: api.JobLinks{Self: "/v1/generations/" + j.id, Events: "/v1/generations/" + j.id + "/events"}}
	for k := 0; k < j.done(now); k++ {
		img := api.Image{Index: k, Seed: j.req.Seed + uint64(k), Size: 64, Attempts: 1,
			Links: api.ImageLinks{PNG: fmt.Sprintf("/v1/generations/%s/images/%d.png", j.id, k)}}
		// Fidelity falls from high to low across a job, so every colour shows.
		p := []float64{0.83, 0.45, 0.12, 0.7}[k%4]
		top := []map[string]any{
			{"class": stubClasses[k%3].Name, "label": stubClasses[k%3].Label, "prob": p},
			{"class": stubClasses[(k+1)%3].Name, "label": stubClasses[(k+1)%3].Label, "prob": (1 - p) * 0.6},
			{"class": stubClasses[(k+2)%3].Name, "label": stubClasses[(k+2)%3].Label, "prob": (1 - p) * 0.4},
		}
		scores := map[string]any{"top": top, "attributes": map[string]string{"has_crown_color": "red"}}
		if j.req.Class != "" || j.kind != "generate" {
			scores["class"] = j.req.Class
			scores["class_prob"] = p
			scores["class_rank"] = 1
			img.FidelityMeasure = "class_prob"
			if j.measures != "" {
				scores["class_probability"] = p
				img.FidelityMeasure = "class_probability"
			}
		} else {
			scores["text_similarity"] = p
			img.FidelityMeasure = "text_similarity"
			if j.measures != "" {
				// Today's scorer: the attributes the prompt names, each
				// with what the classifier sees.
				scores["damsm_similarity"] = 0.31
				scores["attribute_agreement"] = p
				scores["attribute_basis"] = "prompt"
				scores["attribute_groups"] = []map[string]any{
					{"group": "has_crown_color", "named": "red", "word": "red", "prob": p, "sees": "red", "sees_prob": p},
					{"group": "has_bill_shape", "named": "hooked", "word": "hooked", "prob": 0.2, "sees": "cone", "sees_prob": 0.7},
				}
				img.FidelityMeasure = "attribute_agreement"
			}
		}
		if j.measures == "unknown" {
			img.FidelityMeasure = "plumage_sharpness_index"
		}
		img.Fidelity = p
		img.Scores, _ = json.Marshal(scores)
		if j.kind == "generate" && j.req.Prompt != "" {
			img.Links.Attention = fmt.Sprintf("/v1/generations/%s/images/%d/attention", j.id, k)
			for _, w := range stubSplit(j.req.Prompt) {
				if slicesContains(stubVocab, w) {
					img.Words = append(img.Words, w)
				}
			}
		}
		v.Images = append(v.Images, img)
	}
	return v
}

func slicesContains(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

func (s *stubAPI) job(id string) (*stubJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	return j, ok
}

func (s *stubAPI) generation(w http.ResponseWriter, r *http.Request, parts []string) {
	j, ok := s.job(parts[0])
	if !ok {
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such job"})
		return
	}
	now := time.Now()
	switch {
	case len(parts) == 1 && r.Method == "GET":
		s.mu.Lock()
		s.jobGets++
		s.mu.Unlock()
		writeJSON(w, 200, s.view(j, now))
	case len(parts) == 1 && r.Method == "DELETE":
		s.mu.Lock()
		if j.done(now) < j.n {
			j.cancel = true
		}
		s.mu.Unlock()
		writeJSON(w, 200, s.view(j, now))
	case len(parts) == 2 && parts[1] == "events":
		s.events(w, r, j)
	case len(parts) == 3 && parts[1] == "images" && strings.HasSuffix(parts[2], ".png"):
		k, _ := strconv.Atoi(strings.TrimSuffix(parts[2], ".png"))
		if k >= j.done(now) {
			writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "not finished"})
			return
		}
		s.mu.Lock()
		delay := s.pngDelay
		s.mu.Unlock()
		time.Sleep(delay)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(stubImage(j, k))
	case len(parts) == 4 && parts[1] == "images" && parts[3] == "attention":
		k, _ := strconv.Atoi(parts[2])
		maps := []api.WordMap{}
		words := s.view(j, now).Images[k].Words
		// The finest stage first, as the server lists them.
		for st := j.stages - 1; st >= 0; st-- {
			for i, w := range words {
				m := api.WordMap{Position: i, Word: w, Stage: st, PNG: fmt.Sprintf("/v1/generations/%s/images/%d/attention/%d.png", j.id, k, len(maps))}
				if !j.noPeaks {
					p := stubPeak(w)
					m.Peak = &p
				}
				maps = append(maps, m)
			}
		}
		writeJSON(w, 200, api.Attention{Index: k, Stages: j.stages, Maps: maps})
	case len(parts) == 5 && parts[1] == "images" && parts[3] == "attention":
		wi, _ := strconv.Atoi(strings.TrimSuffix(parts[4], ".png"))
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(stubAttention(wi))
	default:
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such resource"})
	}
}

func (s *stubAPI) events(w http.ResponseWriter, r *http.Request, j *stubJob) {
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl := w.(http.Flusher)
	id := 0
	send := func(typ, state string, done int, index *int) {
		id++
		ev := api.Event{Type: typ, JobID: j.id, State: state, Done: done, Total: j.n, Index: index, At: time.Now()}
		if index != nil {
			// As the real server: the image event carries the image.
			ev.PNG = fmt.Sprintf("/v1/generations/%s/images/%d.png", j.id, *index)
			if imgs := s.view(j, time.Now()).Images; *index < len(imgs) {
				ev.Image = &imgs[*index]
			}
		}
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, typ, data)
		fl.Flush()
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	sent := 0
	started := false
	send("queued", "queued", 0, nil)
	for {
		now := time.Now()
		s.mu.Lock()
		d, st := j.done(now), j.state(now)
		s.mu.Unlock()
		if st != "queued" && !started {
			started = true
			send("started", "running", sent, nil)
		}
		for ; sent < d; sent++ {
			k := sent
			send("image", "running", sent+1, &k)
			send("progress", "running", sent+1, nil)
		}
		if st == "succeeded" || st == "cancelled" || st == "failed" {
			send("finished", st, d, nil)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stubImage draws a small bird-ish picture whose colours follow the seed,
// with a tEXt provenance chunk as the real server writes.
func stubImage(j *stubJob, k int) []byte {
	seed := j.req.Seed + uint64(k)
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	hue := float64(seed%360) / 360
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			bg := color.NRGBA{R: uint8(180 + y), G: uint8(200 + y/2), B: 230, A: 255}
			dx, dy := float64(x-32)/20, float64(y-36)/13
			if dx*dx+dy*dy < 1 {
				bg = color.NRGBA{R: uint8(127 + 120*math.Sin(2*math.Pi*hue)), G: uint8(127 + 120*math.Sin(2*math.Pi*(hue+0.33))),
					B: uint8(127 + 120*math.Sin(2*math.Pi*(hue+0.66))), A: 255}
			}
			hx, hy := float64(x-46)/8, float64(y-24)/8
			if hx*hx+hy*hy < 1 {
				bg = color.NRGBA{R: 200, G: 40, B: 40, A: 255}
			}
			img.SetNRGBA(x, y, bg)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return insertText(buf.Bytes(), "fgstudio", fmt.Sprintf(`{"job":%q,"seed":%d}`, j.id, seed))
}

func stubAttention(w int) []byte {
	img := image.NewGray(image.Rect(0, 0, 17, 17))
	cx, cy := float64(3+(w*5)%11), float64(4+(w*3)%9)
	for y := 0; y < 17; y++ {
		for x := 0; x < 17; x++ {
			d := math.Hypot(float64(x)-cx, float64(y)-cy)
			img.SetGray(x, y, color.Gray{Y: uint8(255 * math.Exp(-d*d/18))})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// insertText adds a tEXt chunk right after IHDR.
func insertText(p []byte, key, text string) []byte {
	const ihdrEnd = 8 + 8 + 13 + 4
	body := append([]byte(key+"\x00"), text...)
	var chunk bytes.Buffer
	_ = binary.Write(&chunk, binary.BigEndian, uint32(len(body)))
	chunk.WriteString("tEXt")
	chunk.Write(body)
	crc := crc32.NewIEEE()
	crc.Write([]byte("tEXt"))
	crc.Write(body)
	_ = binary.Write(&chunk, binary.BigEndian, crc.Sum32())
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk.Bytes()...)
	return append(out, p[ihdrEnd:]...)
}
