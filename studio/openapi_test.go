package studio_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/studio"
)

// fiberToOpenAPI turns a Fiber route into the document's path template:
// ":id" → "{id}".
var fiberParam = regexp.MustCompile(`:([a-z]+)`)

func TestOpenAPIDocumentedRoutesAreServedAndBack(t *testing.T) {
	srv := studio.New(studio.Config{}, studio.Deps{})
	served := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == http.MethodHead || r.Path == "/" {
			continue
		}
		p := fiberParam.ReplaceAllString(r.Path, "{$1}")
		p = strings.Replace(p, "/*", "/{id}", 1)
		served[r.Method+" "+p] = true
	}
	documented := map[string]bool{}
	for path, item := range oaDoc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var extra, missing []string
	for k := range served {
		if !documented[k] {
			extra = append(extra, k)
		}
	}
	for k := range documented {
		if !served[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 || len(missing) > 0 {
		t.Fatalf("routes not in openapi.json: %v\ndocumented but not served: %v", extra, missing)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, body := e.do("GET", "/openapi.json", nil)
	var doc map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil || doc["openapi"] != "3.0.3" {
		t.Fatalf("%d %.100s", resp.StatusCode, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := e.do("GET", path, nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
