package studio

import (
	"encoding/json"
	"testing"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
)

// While a data set runs, each finished class shows its own kept and made
// counts (the worker stores the job's running totals per class).
func TestDatasetViewPerClassCountsWhileRunning(t *testing.T) {
	spec, _ := json.Marshal(jobspec.Spec{Kind: jobspec.Dataset, Model: "m", N: 3, Dataset: json.RawMessage(`{"model":"m","per_class":4}`)})
	res := func(i int, c jobspec.DatasetClass) queue.Result {
		raw, _ := json.Marshal(c)
		return queue.Result{Index: i, Meta: raw}
	}
	j := queue.Job{ID: "j", Model: "m", State: queue.Running, Spec: spec, Total: 4, Done: 2, Results: []queue.Result{
		res(1, jobspec.DatasetClass{Class: "b", ClassesDone: 2, Accepted: 8, Attempts: 14}),
		res(0, jobspec.DatasetClass{Class: "a", ClassesDone: 1, Accepted: 4, Attempts: 5}),
	}}
	v := datasetView(j)
	if len(v.Classes) != 2 {
		t.Fatalf("classes %+v", v.Classes)
	}
	for i, want := range []struct {
		class      string
		kept, made int
	}{{"a", 4, 5}, {"b", 4, 9}} {
		c := v.Classes[i]
		if c.Class != want.class || !c.Done || c.Kept == nil || *c.Kept != want.kept || c.Made == nil || *c.Made != want.made ||
			c.Acceptance == nil || *c.Acceptance != float64(want.kept)/float64(want.made) {
			t.Errorf("class %d: %+v", i, c)
		}
	}
	// A gap (a class stored out of order) leaves the counts out rather
	// than guess them.
	j.Results = j.Results[:1]
	if c := datasetView(j).Classes[0]; c.Kept != nil || c.Made != nil {
		t.Errorf("class stored out of order: %+v", c)
	}
}
