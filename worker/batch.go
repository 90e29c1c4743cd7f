package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
)

// batch is one generator call: images of one model, from one or more jobs.
type batch struct {
	kind  jobspec.Kind
	model string
	slots []slot
	tasks []*task // the distinct tasks of slots, in order
}

type slot struct {
	t *task
	u unit
}

// next takes the next batch off the held tasks: the first task in priority
// order with work left sets the model; a generate batch then gathers up to
// MaxBatch images from every task of that model, while a morph or
// interpolation runs alone.
func (l *loop) next() *batch {
	var b *batch
	for _, t := range l.tasks {
		if len(t.pending) == 0 || t.stopped() != nil {
			continue
		}
		if b == nil {
			b = &batch{kind: t.spec.Kind, model: t.spec.Model}
			if t.spec.Kind != jobspec.Generate {
				b.add(t, len(t.pending))
				return b
			}
		}
		if t.spec.Kind != jobspec.Generate || t.spec.Model != b.model {
			continue
		}
		b.add(t, l.w.cfg.MaxBatch-len(b.slots))
		if len(b.slots) == l.w.cfg.MaxBatch {
			break
		}
	}
	return b
}

// add moves up to n of t's pending units into the batch.
func (b *batch) add(t *task, n int) {
	n = min(n, len(t.pending))
	for _, u := range t.pending[:n] {
		b.slots = append(b.slots, slot{t: t, u: u})
	}
	t.pending = t.pending[n:]
	b.tasks = append(b.tasks, t)
}

// only is the part of b that belongs to t.
func (b *batch) only(t *task) *batch {
	sub := &batch{kind: b.kind, model: b.model, tasks: []*task{t}}
	for _, s := range b.slots {
		if s.t == t {
			sub.slots = append(sub.slots, s)
		}
	}
	return sub
}

// runBatch runs one batch and stores or retries each image. A failure of a
// batch that mixes jobs runs each job's part alone, so that one bad job
// fails alone.
func (l *loop) runBatch(ctx context.Context, b *batch) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	detach := guardBatch(b.tasks, cancel)
	m := l.w.metrics
	m.busy.Inc()
	start := time.Now()
	imgs, err := l.generate(bctx, b)
	m.busy.Dec()
	detach()
	m.generateSeconds.WithLabelValues(b.model).Observe(time.Since(start).Seconds())
	m.batchImages.Observe(float64(len(b.slots)))
	m.batchJobs.Observe(float64(len(b.tasks)))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return // shutdown: run hands the jobs back
		case len(b.tasks) > 1:
			l.log.Warn("batch failed: running its jobs one by one", "model", b.model, "jobs", len(b.tasks), "err", err)
			for _, t := range b.tasks {
				if t.stopped() == nil && !t.finished {
					l.runBatch(ctx, b.only(t))
				}
			}
		case b.tasks[0].stopped() == nil:
			t := b.tasks[0]
			l.remove(t)
			if field, reason, ok := requestError(err); ok {
				l.fail(ctx, t.lease, &jobspec.FieldError{Field: field, Reason: reason}, false)
			} else {
				l.fail(ctx, t.lease, fmt.Errorf("generate: %w", err), true)
			}
		}
		return
	}
	for i, s := range b.slots {
		if ctx.Err() != nil {
			return
		}
		l.take(ctx, s, imgs[i])
	}
}

// generate runs the batch and returns one image per slot.
func (l *loop) generate(ctx context.Context, b *batch) ([]generator.Image, error) {
	spec := b.tasks[0].spec
	switch b.kind {
	case jobspec.Morph:
		img, err := l.w.gen.Morph(ctx, b.model, spec.Image, spec.Class)
		if err != nil {
			return nil, err
		}
		return []generator.Image{img}, nil
	case jobspec.Interpolate:
		imgs, err := l.w.gen.Interpolate(ctx, b.model,
			generator.Endpoint{Class: spec.From.Class, Seed: spec.From.Seed},
			generator.Endpoint{Class: spec.To.Class, Seed: spec.To.Seed}, spec.N)
		if err != nil {
			return nil, err
		}
		if len(imgs) != len(b.slots) {
			return nil, fmt.Errorf("interpolate: %d images for %d steps", len(imgs), len(b.slots))
		}
		return imgs, nil
	}
	// Runs of consecutive seeds of one job become one request.
	var reqs []generator.Request
	for i, s := range b.slots {
		seed := s.t.spec.SeedFor(s.u.index, s.u.try)
		if i > 0 {
			prev, last := b.slots[i-1], &reqs[len(reqs)-1]
			if prev.t == s.t && last.Seed+uint64(last.N) == seed {
				last.N++
				continue
			}
		}
		// Scored by the fidelity measure alone: the DAMSM image encoder
		// runs only for images whose measure it is.
		reqs = append(reqs, generator.Request{Prompt: s.t.spec.Prompt, Class: s.t.spec.Class, N: 1, Seed: seed, FidelityOnly: true})
	}
	out, err := l.w.gen.Generate(ctx, b.model, reqs)
	if err != nil {
		return nil, err
	}
	imgs := make([]generator.Image, 0, len(b.slots))
	for i, r := range out {
		if len(r) != reqs[i].N {
			return nil, fmt.Errorf("generate: request %d gave %d images, want %d", i, len(r), reqs[i].N)
		}
		imgs = append(imgs, r...)
	}
	return imgs, nil
}

// take keeps an image: stored when it reaches the job's fidelity bar or
// its index has no tries left (the best try is stored), otherwise tried
// again with the index's next seed.
func (l *loop) take(ctx context.Context, s slot, img generator.Image) {
	t, idx := s.t, s.u.index
	if t.finished || t.stopped() != nil {
		return
	}
	t.tries[idx]++
	f, measure := img.Scores.Fidelity()
	if prev, ok := t.best[idx]; !ok || f > prev.fidelity {
		t.best[idx] = candidate{img: img, fidelity: f, measure: measure}
	}
	if below(t.spec, f, measure) && t.spec.Kind == jobspec.Generate && t.tries[idx] < t.spec.Attempts() {
		t.pending = append(t.pending, unit{index: idx, try: t.tries[idx]})
		l.w.metrics.images.WithLabelValues(imageRetried).Inc()
		return
	}
	best := t.best[idx]
	delete(t.best, idx)
	l.store(ctx, t, idx, best)
}

// below reports whether a score misses the job's bar; an unscored image
// never does.
func below(s jobspec.Spec, f float64, measure string) bool {
	return measure != "" && s.MinFidelity > 0 && f < s.MinFidelity
}

// store writes one image as the result of index.
func (l *loop) store(ctx context.Context, t *task, idx int, c candidate) {
	scores, err := json.Marshal(c.img.Scores)
	if err != nil {
		l.remove(t)
		l.fail(ctx, t.lease, fmt.Errorf("encode scores: %w", err), true)
		return
	}
	meta := jobspec.ImageMeta{
		Index: idx, Seed: c.img.Seed, Size: c.img.Size, Attempts: t.tries[idx],
		Fidelity: c.fidelity, FidelityMeasure: c.measure, BelowMin: below(t.spec, c.fidelity, c.measure),
		Scores: scores,
	}
	// The finest stage's maps first, as before there were several; each
	// map's PNG is a part of its own (map w is part w+1). Stage images are
	// not stored: nothing serves them.
	var parts [][]byte
	for _, w := range append(append([]generator.WordMap(nil), c.img.Attention...), c.img.CoarseAttention...) {
		meta.Attention = append(meta.Attention, jobspec.WordMap{Word: w.Word, Peak: w.Peak, Stage: w.Stage})
		parts = append(parts, w.PNG)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		l.remove(t)
		l.fail(ctx, t.lease, fmt.Errorf("encode image meta: %w", err), true)
		return
	}
	res := queue.Result{Index: idx, Data: c.img.PNG, Meta: raw, Parts: parts}
	err = l.persist(ctx, "store", t.id(), func() error { return l.w.q.PutResult(ctx, t.lease, res) })
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrCancelled):
		t.stop(queue.ErrCancelled)
		return
	case errors.Is(err, queue.ErrLeaseLost):
		t.stop(queue.ErrLeaseLost)
		return
	case ctx.Err() != nil:
		return // shutdown: run hands the job back
	default:
		l.remove(t)
		l.fail(ctx, t.lease, fmt.Errorf("store image %d: %w", idx, err), true)
		return
	}
	t.stored++
	m := l.w.metrics
	if meta.BelowMin {
		m.images.WithLabelValues(imageBelowMin).Inc()
	} else {
		m.images.WithLabelValues(imageStored).Inc()
	}
	if c.measure != "" {
		m.fidelity.WithLabelValues(c.measure).Observe(c.fidelity)
	}
}
