package worker_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/queue"
)

// slowMaker makes one-class data sets that take until release is closed.
type slowMaker struct {
	running, most atomic.Int32
	release       chan struct{}
}

func (m *slowMaker) MakeDataset(ctx context.Context, spec dataset.Spec, dir string, progress func(dataset.Progress)) (*dataset.Report, error) {
	n := m.running.Add(1)
	defer m.running.Add(-1)
	for {
		most := m.most.Load()
		if n <= most || m.most.CompareAndSwap(most, n) {
			break
		}
	}
	select {
	case <-m.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &dataset.Report{Classes: []datasetspec.ClassReport{{Class: "a"}}}, nil
}

// A worker with one data-set slot claims one data-set job at a time: the
// others stay queued (for another worker) instead of waiting in this one.
func TestDatasetClaimsLimitedToFreeSlots(t *testing.T) {
	backends(t, func(t *testing.T, newQueue newQueueFunc) {
		q := newQueue(t, testQueueConfig())
		raw, _ := json.Marshal(map[string]any{"model": "m-a", "classes": []string{"a"}, "per_class": 1})
		var jobs []queue.Job
		for range 3 {
			jobs = append(jobs, enqueue(t, q, queue.Batch, jobspec.Spec{Kind: jobspec.Dataset, Model: "m-a", N: 1, Dataset: raw}))
		}
		m := &slowMaker{release: make(chan struct{})}
		cfg := testWorkerConfig()
		cfg.Concurrency, cfg.Datasets, cfg.DatasetsDir, cfg.DatasetSlots = 2, m, t.TempDir(), 1
		start(t, cfg, q, newFake())
		eventually(t, "a data set running", func() bool { return m.running.Load() == 1 })
		time.Sleep(300 * time.Millisecond) // claims go on meanwhile
		running := 0
		for _, j := range jobs {
			if get(t, q, j.ID).State == queue.Running {
				running++
			}
		}
		if running != 1 {
			t.Fatalf("%d data-set jobs claimed with one slot", running)
		}
		close(m.release)
		for _, j := range jobs {
			waitState(t, q, j.ID, queue.Succeeded)
		}
		if most := m.most.Load(); most != 1 {
			t.Fatalf("%d data sets at once with one slot", most)
		}
	})
}
