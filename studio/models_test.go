package studio_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fgstudio/studio/api"
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
