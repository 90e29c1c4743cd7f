package queue_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/queue"
)

// gauges gathers reg into "name{label=value}" → value (one label at most).
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestCollectorExportsStats(t *testing.T) {
	q := queue.NewEmbeddedConfig(contractConfig())
	defer q.Close()
	mustEnqueue(t, q, job("alice", queue.Interactive, 1))
	mustEnqueue(t, q, job("alice", queue.Batch, 1))
	mustEnqueue(t, q, job("bob", queue.Batch, 1))
	claimOne(t, q, "w1", 0) // the interactive one

	reg := prometheus.NewRegistry()
	reg.MustRegister(queue.NewCollector(q, 0))
	got := gauges(t, reg)
	want := map[string]float64{
		"studio_queue_up":                        1,
		"studio_queue_depth{lane=interactive}":   0,
		"studio_queue_depth{lane=batch}":         2,
		"studio_queue_running{lane=interactive}": 1,
		"studio_queue_running{lane=batch}":       0,
		"studio_queue_jobs{state=queued}":        2,
		"studio_queue_jobs{state=running}":       1,
		"studio_queue_jobs{state=succeeded}":     0,
		"studio_queue_dead_letters":              0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if got["studio_queue_oldest_age_seconds{lane=batch}"] < 0 {
		t.Errorf("negative age")
	}

	q.Close()
	got = gauges(t, reg)
	if got["studio_queue_up"] != 0 || len(got) != 1 {
		t.Fatalf("after close: %v, want only studio_queue_up 0", got)
	}
}
