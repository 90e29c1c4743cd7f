package studio_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

func listJobs(t *testing.T, e *env, opts ...opt) []api.JobSummary {
	t.Helper()
	resp, body := e.do("GET", "/v1/jobs", nil, opts...)
	return decode[api.JobList](t, resp, body, 200).Jobs
}

func ids(jobs []api.JobSummary) string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return strings.Join(out, ",")
}

// GET /v1/jobs lists the caller's queued and running jobs, oldest first,
// with their lane and what they ask for; finished and cancelled jobs,
// and other callers' jobs, are not listed.
func TestJobListShowsTheCallersUnfinishedJobs(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, requireAuth: true})
		alice := e.createKey("alice", "generate", "datasets")
		bob := e.createKey("bob", "generate")
		as := bearer(alice.Token)
		if got := listJobs(t, e, as); len(got) != 0 {
			t.Fatalf("a new key lists %+v", got)
		}
		prompt := knownWords(t, e)
		first := e.submit(api.GenerationRequest{Model: textModel, Prompt: prompt, N: ptr(2), Seed: ptr(uint64(5))}, as)
		cls := seenClasses(t, e, 2)
		resp, body := e.do("POST", "/v1/interpolations", api.InterpolationRequest{Model: classModel,
			From: &api.Endpoint{Class: cls[0]}, To: &api.Endpoint{Class: cls[1]}, N: ptr(3)}, as)
		interp := decode[api.Job](t, resp, body, 202)
		resp, body = e.do("POST", "/v1/datasets", api.DatasetRequest{Model: classModel, Classes: cls, PerClass: 2}, as)
		ds := decode[api.Dataset](t, resp, body, 202)
		third := e.submit(api.GenerationRequest{Model: classModel, Class: cls[0]}, as)

		got := listJobs(t, e, as)
		if ids(got) != strings.Join([]string{first.ID, interp.ID, ds.ID, third.ID}, ",") {
			t.Fatalf("listed %s, want the four jobs in submission order", ids(got))
		}
		g := got[0]
		if g.Kind != "generate" || g.Model != textModel || g.Lane != "interactive" || g.State != "queued" || g.Prompt != prompt ||
			g.N != 2 || g.Seed != 5 || g.Progress.Total != 2 || g.Links.Self != first.Links.Self || g.Links.Events != first.Links.Events {
			t.Errorf("generation listed as %+v", g)
		}
		if i := got[1]; i.Kind != "interpolate" || i.From == nil || i.From.Class != cls[0] || i.To == nil || i.To.Class != cls[1] {
			t.Errorf("interpolation listed as %+v", i)
		}
		if d := got[2]; d.Kind != "dataset" || d.Lane != "batch" || strings.Join(d.Classes, ",") != strings.Join(cls, ",") || d.Links.Self != ds.Links.Self {
			t.Errorf("data set listed as %+v", d)
		}
		if len(listJobs(t, e, bearer(bob.Token))) != 0 {
			t.Error("bob sees alice's jobs")
		}
		// A key without the datasets scope does not see data sets.
		gen := e.createKey("gen-only", "generate")
		e.submit(api.GenerationRequest{Model: classModel, Class: cls[0]}, bearer(gen.Token))
		if got := listJobs(t, e, bearer(gen.Token)); len(got) != 1 || got[0].Kind != "generate" {
			t.Errorf("gen-only lists %+v", got)
		}

		// The first job runs to the end (a worker takes the oldest); the
		// interpolation is cancelled: neither is listed any more.
		e.fakeWork(0)
		resp, _ = e.do("DELETE", interp.Links.Self, nil, as)
		if resp.StatusCode != 200 {
			t.Fatalf("cancel: %d", resp.StatusCode)
		}
		if got := listJobs(t, e, as); ids(got) != ds.ID+","+third.ID {
			t.Errorf("after one finished and one cancelled: %s", ids(got))
		}
	})
}

// The Go client lists them too.
func TestJobListFromTheClient(t *testing.T) {
	e := newEnv(t, envOpts{requireAuth: true})
	k := e.createKey("client", "generate")
	c, err := client.New(e.url, k.Token, &http.Client{Transport: checkingTransport{t}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Generate(t.Context(), api.GenerationRequest{Model: textModel, Prompt: knownWords(t, e)})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := c.Jobs(t.Context())
	if err != nil || len(jobs) != 1 || jobs[0].ID != j.ID || jobs[0].Kind != "generate" {
		t.Fatalf("%+v %v", jobs, err)
	}
}

// With the active-job quota off, jobs are still listed.
func TestJobListWithoutQuota(t *testing.T) {
	e := newEnv(t, envOpts{limits: studio.Limits{MaxActiveJobs: -1}})
	j := e.submit(api.GenerationRequest{Model: textModel, Prompt: knownWords(t, e)})
	if got := listJobs(t, e); len(got) != 1 || got[0].ID != j.ID || got[0].State != "queued" {
		t.Fatalf("listed %+v", got)
	}
}
