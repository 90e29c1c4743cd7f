package studio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
)

func TestModels(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, body := e.do("GET", "/v1/models", nil)
	list := decode[api.ModelList](t, resp, body, 200)
	kinds := map[string]string{}
	for _, m := range list.Models {
		kinds[m.Name] = m.Kind + "/" + m.Input
	}
	if kinds[textModel] != "attngan/prompt" || kinds[classModel] != "cvaegan/class" || kinds[scorer] != "classifier/" {
		t.Fatalf("models %v", kinds)
	}

	resp, body = e.do("GET", "/v1/models/"+textModel, nil)
	m := decode[api.Model](t, resp, body, 200)
	if m.VocabularySize < 10 || m.MaxWords < 1 || len(m.Classes) == 0 || len(m.Attributes) == 0 || m.Morph ||
		m.Scorer != scorer || m.ImageSize < 32 || !strings.Contains(m.Card, "#") {
		t.Fatalf("text model %+v", m)
	}
	resp, body = e.do("GET", "/v1/models/"+classModel, nil)
	m = decode[api.Model](t, resp, body, 200)
	trained, held := 0, 0
	for _, c := range m.Classes {
		if c.Trained {
			trained++
		} else {
			held++
		}
	}
	if !m.Morph || m.VocabularySize != 0 || trained == 0 || held == 0 {
		t.Fatalf("class model: morph %v vocab %d trained %d held out %d", m.Morph, m.VocabularySize, trained, held)
	}

	resp, body = e.do("GET", "/v1/models/no-such-model", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "no-such-model") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestVocabulary(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, body := e.do("GET", "/v1/models/"+textModel+"/vocabulary?prefix=bl&limit=5", nil)
	v := decode[api.Vocabulary](t, resp, body, 200)
	if len(v.Words) == 0 || len(v.Words) > 5 || v.Size < 10 {
		t.Fatalf("%+v", v)
	}
	for _, w := range v.Words {
		if !strings.HasPrefix(w, "bl") {
			t.Errorf("%q does not start with bl", w)
		}
	}
	resp, body = e.do("GET", "/v1/models/"+textModel+"/vocabulary", nil)
	if v := decode[api.Vocabulary](t, resp, body, 200); len(v.Words) != 20 {
		t.Fatalf("default limit: %d words", len(v.Words))
	}
	resp, body = e.do("GET", "/v1/models/"+textModel+"/vocabulary?prefix=zzzzzz", nil)
	if v := decode[api.Vocabulary](t, resp, body, 200); len(v.Words) != 0 {
		t.Fatalf("no match: %v", v.Words)
	}
	for _, c := range []struct {
		path   string
		status int
		field  string
	}{
		{"/v1/models/" + classModel + "/vocabulary", 404, ""},
		{"/v1/models/nope/vocabulary", 404, ""},
		{"/v1/models/" + textModel + "/vocabulary?limit=0", 400, "limit"},
		{"/v1/models/" + textModel + "/vocabulary?limit=abc", 400, "limit"},
		{"/v1/models/" + textModel + "/vocabulary?limit=100000", 400, "limit"},
	} {
		resp, body := e.do("GET", c.path, nil)
		if resp.StatusCode != c.status || problemOf(t, body).Field != c.field {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}
}

func TestTokenize(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, body := e.do("GET", "/v1/models/"+textModel+"/vocabulary?limit=40", nil)
	words := decode[api.Vocabulary](t, resp, body, 200).Words
	known := words[0] + " " + words[1]
	resp, body = e.do("POST", "/v1/tokenize", api.TokenizeRequest{Model: textModel, Prompt: strings.ToUpper(known) + ", qqxyzzy!"})
	tok := decode[api.Tokens](t, resp, body, 200)
	if !tok.Usable || !slices.Equal(tok.Words, []string{words[0], words[1]}) || !slices.Equal(tok.Unknown, []string{"qqxyzzy"}) || len(tok.Dropped) != 0 {
		t.Fatalf("%+v", tok)
	}
	long := strings.Repeat(words[2]+" ", tok.MaxWords+3)
	resp, body = e.do("POST", "/v1/tokenize", api.TokenizeRequest{Model: textModel, Prompt: long})
	if tok := decode[api.Tokens](t, resp, body, 200); len(tok.Words) != tok.MaxWords || len(tok.Dropped) != 3 {
		t.Fatalf("truncation: %d kept, %d dropped", len(tok.Words), len(tok.Dropped))
	}
	resp, body = e.do("POST", "/v1/tokenize", api.TokenizeRequest{Model: textModel, Prompt: "qqxyzzy plugh"})
	if tok := decode[api.Tokens](t, resp, body, 200); tok.Usable || tok.Reason == "" || len(tok.Unknown) != 2 {
		t.Fatalf("no known word: %+v", tok)
	}
	resp, body = e.do("POST", "/v1/tokenize", api.TokenizeRequest{Model: textModel, Prompt: " ,.;"})
	if tok := decode[api.Tokens](t, resp, body, 200); tok.Usable || tok.Reason == "" {
		t.Fatalf("no words: %+v", tok)
	}
	resp, body = e.do("POST", "/v1/tokenize", api.TokenizeRequest{Model: classModel, Prompt: "a bird"})
	if resp.StatusCode != 422 || problemOf(t, body).Field != "model" {
		t.Fatalf("class model: %d %s", resp.StatusCode, body)
	}
}

// TestReloadModels: an admin reloads the models folder; a model that was
// removed stops being accepted, without a restart.
func TestReloadModels(t *testing.T) {
	src := sampleModels(t)
	dir := t.TempDir()
	for _, m := range []string{textModel, classModel, scorer} {
		abs, _ := filepath.Abs(filepath.Join(src, m))
		if err := os.Symlink(abs, filepath.Join(dir, m)); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, envOpts{models: dir, requireAuth: true, adminToken: testAdminToken})
	user := e.createKey("user", "generate")
	if resp, _ := e.do("POST", "/v1/admin/models/reload", nil, bearer(user.Token)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reload without admin scope: %d", resp.StatusCode)
	}
	e.submit(api.GenerationRequest{Model: classModel, Class: trainedClass(t, e)}, bearer(user.Token))
	if err := os.Remove(filepath.Join(dir, classModel)); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do("POST", "/v1/admin/models/reload", nil, bearer(testAdminToken))
	r := decode[api.Reload](t, resp, body, 200)
	if !slices.Equal(r.Models, []string{textModel, scorer}) || len(r.Problems) != 0 {
		t.Fatalf("%+v", r)
	}
	resp, body = e.do("POST", "/v1/generations", api.GenerationRequest{Model: classModel, Class: "x"}, bearer(user.Token))
	if p := problemOf(t, body); resp.StatusCode != 422 || p.Field != "model" || p.Slug() != api.TypeUnknownModel {
		t.Fatalf("removed model: %d %s", resp.StatusCode, body)
	}
}

// TestModelsLoadedFromCatalog: an API-only replica says what its catalogue
// knows. (A model with a missing file is not listed at all: the catalogue
// refuses it, and reload reports it.) A model whose scorer is gone is
// listed as not loaded, naming the scorer; so is one whose graph cannot
// be read.
func TestModelsLoadedFromCatalog(t *testing.T) {
	src := sampleModels(t)
	dir := t.TempDir()
	for _, m := range []string{textModel, classModel, scorer} {
		copyDir(t, filepath.Join(src, m), filepath.Join(dir, m))
	}
	e := newEnv(t, envOpts{models: dir})
	resp, body := e.do("GET", "/v1/models", nil)
	for _, m := range decode[api.ModelList](t, resp, body, 200).Models {
		if !m.Loaded || m.LoadCheck != api.LoadCheckCatalog || m.LoadError != "" {
			t.Errorf("%s: %+v", m.Name, m)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, scorer)); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 { // root reads any file
		if err := os.Chmod(filepath.Join(dir, classModel, "encoder.onnx"), 0); err != nil {
			t.Fatal(err)
		}
	}
	resp, body = e.do("POST", "/v1/admin/models/reload", nil, bearer(testAdminToken))
	r := decode[api.Reload](t, resp, body, 200)
	if !slices.Equal(r.Models, []string{textModel, classModel}) || len(r.Problems) != 2 {
		t.Errorf("reload: %+v", r)
	}
	for _, name := range []string{textModel, classModel} {
		resp, body = e.do("GET", "/v1/models/"+name, nil)
		m := decode[api.Model](t, resp, body, 200)
		want := `scorer "` + scorer + `"`
		if name == classModel && os.Getuid() != 0 {
			want = "encoder.onnx"
		}
		if m.Loaded || m.LoadCheck != api.LoadCheckCatalog || !strings.Contains(m.LoadError, want) {
			t.Errorf("%s: loaded %v, check %q, error %q; want an error naming %s", name, m.Loaded, m.LoadCheck, m.LoadError, want)
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeLoads plays the in-process generator of the one-process studio.
type fakeLoads map[string]error

func (f fakeLoads) Status(model string) (bool, error) {
	err, ok := f[model]
	if !ok {
		return false, errors.New("not in the models folder when the models were loaded")
	}
	return err == nil, err
}

// TestModelsLoadedByGenerator: in the one-process studio the API reports
// what its generator loaded, and why a model did not load.
func TestModelsLoadedByGenerator(t *testing.T) {
	loads := fakeLoads{textModel: errors.New("attngan-birds/generator: open generator.onnx: permission denied"), classModel: nil, scorer: nil}
	reloaded := 0
	e := newEnv(t, envOpts{loads: loads, onReload: func(context.Context, *catalog.Catalog) error { reloaded++; return nil }})
	resp, body := e.do("GET", "/v1/models", nil)
	got := map[string]api.ModelSummary{}
	for _, m := range decode[api.ModelList](t, resp, body, 200).Models {
		got[m.Name] = m
	}
	if m := got[textModel]; m.Loaded || m.LoadCheck != api.LoadCheckGenerator || !strings.Contains(m.LoadError, "permission denied") {
		t.Errorf("%s: %+v", textModel, m)
	}
	for _, n := range []string{classModel, scorer} {
		if m := got[n]; !m.Loaded || m.LoadCheck != api.LoadCheckGenerator || m.LoadError != "" {
			t.Errorf("%s: %+v", n, m)
		}
	}
	resp, body = e.do("GET", "/v1/models/"+textModel, nil)
	if m := decode[api.Model](t, resp, body, 200); m.Loaded || !strings.Contains(m.LoadError, "generator.onnx") {
		t.Errorf("detail %+v", m.ModelSummary)
	}
	resp, body = e.do("POST", "/v1/admin/models/reload", nil, bearer(testAdminToken))
	r := decode[api.Reload](t, resp, body, 200)
	if reloaded != 1 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], textModel+" not loaded") {
		t.Errorf("reload hook called %d times, problems %q", reloaded, r.Problems)
	}
}

// TestClassExamples: every class of the sample models, held-out ones
// included, links a real 64×64 image, served as PNG; a class without one
// and an unknown class answer 404 problems.
func TestClassExamples(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, name := range []string{classModel, textModel} {
		resp, body := e.do("GET", "/v1/models/"+name, nil)
		m := decode[api.Model](t, resp, body, 200)
		held := 0
		for _, c := range m.Classes {
			if want := fmt.Sprintf("/v1/models/%s/classes/%d/example.png", name, c.ID); c.Example != want {
				t.Fatalf("%s class %d: example %q, want %q", name, c.ID, c.Example, want)
			}
			if !c.Trained {
				held++
			}
		}
		if held == 0 {
			t.Fatalf("%s: no held-out class", name)
		}
		for _, c := range []api.Class{m.Classes[0], m.Classes[len(m.Classes)-1]} {
			resp, body := e.do("GET", c.Example, nil)
			cfg, err := png.DecodeConfig(bytes.NewReader(body))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || err != nil || cfg.Width != 64 || cfg.Height != 64 {
				t.Fatalf("%s: %d %q %v %+v", c.Example, resp.StatusCode, resp.Header.Get("Content-Type"), err, cfg)
			}
		}
	}
	for _, p := range []string{"/v1/models/" + classModel + "/classes/9999/example.png", "/v1/models/" + classModel + "/classes/x/example.png",
		"/v1/models/nope/classes/1/example.png"} {
		if resp, body := e.do("GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}

	// Without examples the classes link none and the route says so.
	none := newEnv(t, envOpts{examples: "-"})
	resp, body := none.do("GET", "/v1/models/"+classModel, nil)
	m := decode[api.Model](t, resp, body, 200)
	for _, c := range m.Classes {
		if c.Example != "" {
			t.Fatalf("class %d links %q without an examples folder", c.ID, c.Example)
		}
	}
	resp, body = none.do("GET", fmt.Sprintf("/v1/models/%s/classes/%d/example.png", classModel, m.Classes[0].ID), nil)
	if resp.StatusCode != 404 || !strings.Contains(problemOf(t, body).Detail, "no example image") {
		t.Errorf("no example: %d %s", resp.StatusCode, body)
	}
}

// TestEvaluatorNotListed: an evaluation network in the models folder (the
// judge of `studio eval`) is neither listed nor described by the API.
func TestEvaluatorNotListed(t *testing.T) {
	src := sampleModels(t)
	dir := t.TempDir()
	for _, m := range []string{textModel, classModel, scorer} {
		abs, _ := filepath.Abs(filepath.Join(src, m))
		if err := os.Symlink(abs, filepath.Join(dir, m)); err != nil {
			t.Fatal(err)
		}
	}
	judge := filepath.Join(dir, "judge-test")
	copyDir(t, filepath.Join(src, scorer), judge)
	raw, err := os.ReadFile(filepath.Join(judge, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	man["name"], man["kind"], man["role"] = "judge-test", "evaluator", "evaluator"
	raw, _ = json.Marshal(man)
	if err := os.WriteFile(filepath.Join(judge, "model.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if cat, err := catalog.Open(dir); err != nil || len(cat.Problems()) != 0 {
		t.Fatalf("catalogue refused the evaluator: %v %v", err, cat.Problems())
	}
	e := newEnv(t, envOpts{models: dir})
	resp, body := e.do("GET", "/v1/models", nil)
	for _, m := range decode[api.ModelList](t, resp, body, 200).Models {
		if m.Name == "judge-test" || m.Kind == "evaluator" {
			t.Errorf("evaluator listed: %+v", m)
		}
	}
	if resp, body := e.do("GET", "/v1/models/judge-test", nil); resp.StatusCode != 404 {
		t.Errorf("GET the evaluator: %d %s", resp.StatusCode, body)
	}
}
