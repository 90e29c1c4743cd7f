package studio_test

import (
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/studio/api"
)

// seenClasses are n classes the class-conditional sample model was trained on.
func seenClasses(t *testing.T, e *env, n int) []string {
	t.Helper()
	cat, err := catalog.Open(e.models)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Get(classModel)
	cls, err := m.ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	var res []string
	for _, c := range cls.Classes {
		if c.Index >= 0 && len(res) < n {
			res = append(res, c.Name)
		}
	}
	if len(res) < n {
		t.Fatalf("%s has %d seen classes", classModel, len(res))
	}
	return res
}

// waitDataset polls the job until done says so.
func waitDataset(t *testing.T, e *env, path string, done func(api.Dataset) bool) api.Dataset {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, body := e.do("GET", path, nil)
		d := decode[api.Dataset](t, resp, body, 200)
		if done(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("data set still %s (%d/%d): %s", d.State, d.Progress.Done, d.Progress.Total, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDatasetBadRequestsNameTheField(t *testing.T) {
	e := newEnv(t, envOpts{})
	classes := []string{trainedClass(t, e)}
	for _, c := range []struct {
		name  string
		req   api.DatasetRequest
		field string
	}{
		{"unknown model", api.DatasetRequest{Model: "nope", Classes: classes, PerClass: 3}, "model"},
		{"scorer is no generator", api.DatasetRequest{Model: scorer, Classes: classes, PerClass: 3}, "model"},
		{"unknown class", api.DatasetRequest{Model: classModel, Classes: []string{"no such bird"}, PerClass: 3}, "classes"},
		{"held-out class on cvaegan", api.DatasetRequest{Model: classModel, Classes: []string{"heldout"}, PerClass: 3}, "classes"},
		{"per_class 0", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 0}, "per_class"},
		{"per_class huge", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 2_000_000}, "per_class"},
		{"over the server limit", api.DatasetRequest{Model: classModel, Classes: []string{"seen"}, PerClass: 900_000}, "per_class"},
		{"min_fidelity above 1", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 3, MinFidelity: 1.5}, "min_fidelity"},
		{"min_fidelity negative", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 3, MinFidelity: -0.1}, "min_fidelity"},
		{"max_attempts", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 3, MaxAttempts: -1}, "max_attempts"},
		{"fidelity_measure", api.DatasetRequest{Model: classModel, Classes: classes, PerClass: 3, FidelityMeasure: "vibes"}, "fidelity_measure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do("POST", "/v1/datasets", c.req)
			if p := problemOf(t, body); resp.StatusCode != 422 || p.Field != c.field {
				t.Errorf("%d field %q, want 422 %q: %s", resp.StatusCode, p.Field, c.field, body)
			}
		})
	}
	if resp, body := e.do("POST", "/v1/datasets", map[string]any{"model": classModel, "per_class": 1, "colour": "red"}); resp.StatusCode != 400 {
		t.Errorf("unknown field: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do("GET", "/v1/datasets/00000000-0000-0000-0000-000000000000", nil); resp.StatusCode != 404 {
		t.Errorf("unknown id: %d %s", resp.StatusCode, body)
	}
}
