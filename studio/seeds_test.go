package studio_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/studio/api"
)

// Seeds are 0 … 2^53−1, kept exactly by every JSON client, and every seed
// a job uses (its images' and their retries') stays in that range: a
// request that would wrap around is refused naming the field, one that
// ends exactly at 2^53−1 is accepted with its seed intact.
func TestSeedRange(t *testing.T) {
	e := newEnv(t, envOpts{})
	cl := trainedClass(t, e)
	const top = uint64(jobspec.MaxSeed)
	gen := func(extra string) string {
		return `{"model":"` + classModel + `","class":"` + cl + `"` + extra + `}`
	}
	for _, c := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"seed 2^53", "/v1/generations", gen(fmt.Sprintf(`,"seed":%d`, top+1)), 422, "seed"},
		{"seed 2^64-1", "/v1/generations", gen(`,"seed":18446744073709551615`), 422, "seed"},
		{"seed+n past 2^53-1", "/v1/generations", gen(fmt.Sprintf(`,"seed":%d,"n":3`, top-1)), 422, "seed"},
		{"retries past 2^53-1", "/v1/generations", gen(fmt.Sprintf(`,"seed":%d,"n":2,"min_fidelity":0.5,"max_attempts":4`, top-6)), 422, "seed"},
		{"interpolation from.seed 2^53", "/v1/interpolations",
			fmt.Sprintf(`{"model":"%s","from":{"class":"%s","seed":%d},"to":{"class":"%s"}}`, classModel, cl, top+1, cl), 422, "from.seed"},
		{"data set seed 2^53", "/v1/datasets",
			fmt.Sprintf(`{"model":"%s","classes":["%s"],"per_class":1,"seed":%d}`, classModel, cl, top+1), 422, "seed"},
	} {
		resp, body := e.do("POST", c.path, c.body, header("Content-Type", "application/json"))
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.status, body)
			continue
		}
		if p := problemOf(t, body); p.Slug() != api.TypeInvalidField || p.Field != c.field {
			t.Errorf("%s: problem %s field %q, want invalid-field %q: %s", c.name, p.Slug(), p.Field, c.field, p.Detail)
		}
	}
	for _, c := range []struct {
		extra string
		seed  uint64
	}{
		{fmt.Sprintf(`,"seed":%d,"n":2`, top-1), top - 1},
		{fmt.Sprintf(`,"seed":%d,"n":2,"min_fidelity":0.5,"max_attempts":4`, top-7), top - 7},
	} {
		resp, body := e.do("POST", "/v1/generations", gen(c.extra), header("Content-Type", "application/json"))
		if j := decode[api.Job](t, resp, body, http.StatusAccepted); j.Request.Seed != c.seed {
			t.Errorf("seed %d came back as %d", c.seed, j.Request.Seed)
		}
	}
	// A default seed leaves room for the largest job.
	resp, body := e.do("POST", "/v1/generations", gen(`,"n":64,"min_fidelity":0.5,"max_attempts":8`), header("Content-Type", "application/json"))
	decode[api.Job](t, resp, body, http.StatusAccepted)
}
