package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
)

// DatasetMaker makes data sets for dataset jobs: cmd wires it to
// dataset.Make with the generation service, the model catalog and the
// novelty reference (built once per process).
type DatasetMaker interface {
	MakeDataset(ctx context.Context, spec dataset.Spec, dir string, progress func(dataset.Progress)) (*dataset.Report, error)
}

// errNoDatasets fails a dataset job claimed by a worker without a maker.
var errNoDatasets = &jobspec.FieldError{Field: "kind", Reason: "this worker makes no data sets (no dataset maker configured)"}

// DatasetDir is the folder of a dataset job under root: the API serves
// downloads from the same path.
func DatasetDir(root, jobID string) string { return filepath.Join(root, jobID) }

// startDataset runs a dataset job beside the loop: it has its own
// heartbeat, waits for one of Config.DatasetSlots, and never holds the
// loop (data sets take minutes; the loop keeps serving images).
//
// slot says the job holds a dataset slot reserved by its claim; otherwise
// it counts itself in.
func (l *loop) startDataset(ctx context.Context, ls queue.Lease, spec jobspec.Spec, slot bool) {
	w := l.w
	if w.cfg.Datasets == nil {
		l.fail(ctx, ls, errNoDatasets, false)
		return
	}
	log := l.log.With("job_id", ls.Job.ID, "kind", jobspec.Dataset)
	if !slot {
		w.datasetsHeld.Add(1)
	}
	w.datasets.Go(func() {
		defer w.datasetsHeld.Add(-1)
		(&loop{w: w, name: l.name, log: log}).runDataset(ctx, ls, spec)
	})
}

// runDataset is one dataset job, start to end. ctx is Run's: when it
// ends, Make stops after its batch and the job is handed back; the next
// delivery continues the directory where it stopped.
func (l *loop) runDataset(ctx context.Context, ls queue.Lease, spec jobspec.Spec) {
	w := l.w
	mctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		l.heartbeatOne(mctx, ls, stop)
	}()
	defer func() {
		stop(nil)
		<-hbDone
	}()
	end := context.WithoutCancel(ctx) // final writes outlive shutdown
	select {
	case w.datasetSlots <- struct{}{}:
		defer func() { <-w.datasetSlots }()
	case <-mctx.Done():
		l.endDataset(end, ls, context.Cause(mctx))
		return
	}

	var ds dataset.Spec
	if err := json.Unmarshal(spec.Dataset, &ds); err != nil {
		l.fail(end, ls, &jobspec.FieldError{Field: "dataset", Reason: err.Error()}, false)
		return
	}
	n := spec.N
	next := ls.Job.Done // results already stored by earlier deliveries (classes are stored in order)
	put := func(idx int, meta any) error {
		b, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		err = w.q.PutResult(mctx, ls, queue.Result{Index: idx, Meta: b})
		if errors.Is(err, queue.ErrCancelled) || errors.Is(err, queue.ErrLeaseLost) {
			stop(err)
		}
		return err
	}
	progress := func(p dataset.Progress) {
		for next < n && next < p.ClassesDone {
			if err := put(next, jobspec.DatasetClass{Class: p.Class, ClassesDone: p.ClassesDone, Accepted: p.Accepted, Attempts: p.Attempts}); err != nil {
				l.log.Warn("store class progress", "err", err)
				return
			}
			next++
		}
	}
	rep, err := w.cfg.Datasets.MakeDataset(mctx, ds, DatasetDir(w.cfg.DatasetsDir, ls.Job.ID), progress)
	if err == nil {
		// Classes finished by an earlier run are not reported again.
		for ; next < n && next < len(rep.Classes); next++ {
			c := rep.Classes[next]
			if err = put(next, jobspec.DatasetClass{Class: c.Class, ClassesDone: next + 1, Accepted: rep.Accepted, Attempts: rep.Attempts}); err != nil {
				break
			}
		}
	}
	if err == nil && next < n {
		err = fmt.Errorf("data set has %d classes, job expects %d", len(rep.Classes), n)
	}
	if err == nil {
		err = put(n, rep)
	}
	if err == nil {
		l.ack(end, &task{lease: ls, spec: spec, stored: spec.Total()})
		return
	}
	if cause := context.Cause(mctx); cause != nil && mctx.Err() != nil {
		err = cause
	}
	l.endDataset(end, ls, err)
}

// endDataset records why a dataset job stopped early.
func (l *loop) endDataset(ctx context.Context, ls queue.Lease, err error) {
	var se *dataset.SpecError
	switch {
	case errors.Is(err, queue.ErrLeaseLost):
		l.w.metrics.jobs.WithLabelValues(outcomeLost).Inc()
		l.log.Info("lease lost: dataset job dropped without further writes")
	case errors.Is(err, queue.ErrCancelled):
		l.fail(ctx, ls, queue.ErrCancelled, false)
	case errors.As(err, &se):
		l.fail(ctx, ls, &jobspec.FieldError{Field: se.Field, Reason: se.Msg}, false)
	case errors.Is(err, dataset.ErrSpecChanged), errors.Is(err, dataset.ErrNotEmpty):
		l.fail(ctx, ls, &jobspec.FieldError{Field: "dataset", Reason: err.Error()}, false)
	case errors.Is(err, context.Canceled):
		l.fail(ctx, ls, errShutdown, true)
	default: // ErrBusy included: another delivery still runs; retry later
		l.fail(ctx, ls, fmt.Errorf("make data set: %w", err), true)
	}
}

// heartbeatOne extends one lease every Heartbeat until ctx ends, and
// stops the job (stop's cause) when it is cancelled or lost.
func (l *loop) heartbeatOne(ctx context.Context, ls queue.Lease, stop context.CancelCauseFunc) {
	tick := time.NewTicker(l.w.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := l.w.q.Extend(ctx, ls)
		switch {
		case err == nil:
		case errors.Is(err, queue.ErrCancelled), errors.Is(err, queue.ErrLeaseLost):
			stop(err)
			return
		case ctx.Err() != nil:
			return
		default:
			l.log.Warn("heartbeat failed", "err", err)
		}
	}
}

// Maker is the DatasetMaker of a worker process: dataset.Make with the
// process's generation service, its model catalogue and the novelty
// reference (none: no novelty check, and min_novelty > 0 fails the job
// naming the field).
type Maker struct {
	Service dataset.Service
	Models  *catalog.Catalog
	// Reference is the novelty reference of every job; when nil,
	// References gives the one of the job's model (nil: none).
	Reference  *dataset.Reference
	References func(ctx context.Context, model string) (*dataset.Reference, error)
	// Batch is the number of images per generator call (default 64).
	Batch int
}

// MakeDataset makes (or continues) the data set of spec in dir.
func (m *Maker) MakeDataset(ctx context.Context, spec dataset.Spec, dir string, progress func(dataset.Progress)) (*dataset.Report, error) {
	model, ok := m.Models.Get(spec.Model)
	if !ok {
		return nil, &dataset.SpecError{Field: "model", Msg: fmt.Sprintf("no model %q on this worker", spec.Model)}
	}
	ref := m.Reference
	if ref == nil && m.References != nil {
		var err error
		if ref, err = m.References(ctx, spec.Model); err != nil {
			return nil, fmt.Errorf("novelty reference: %w", err)
		}
	}
	return dataset.Make(ctx, m.Service, model, spec, dir, dataset.Options{Reference: ref, Batch: m.Batch, Progress: progress})
}
