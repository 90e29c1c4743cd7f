package worker

import (
	"context"
	"errors"
	"sync"

	"github.com/fgstudio/fgstudio/generator"
)

// Models is a Generator that holds resources until it is closed, such as
// *generator.Service.
type Models interface {
	Generator
	Close()
}

// ErrModelsClosed is returned by the calls of a Swap after Close.
var ErrModelsClosed = errors.New("models closed")

// Swap is the Generator of a worker whose models are reloaded while it
// runs. Replace makes new models serve every call from then on; a call
// already running finishes on the models it started on, and replaced
// models are closed only once the last such call has returned, so that no
// session is destroyed under a graph run.
type Swap[M Models] struct {
	mu   sync.Mutex
	cur  *swapRef[M] // nil after Close
	live sync.WaitGroup
}

// swapRef is one set of models and the calls running on it.
type swapRef[M Models] struct {
	m       M
	calls   int
	retired bool
}

// NewSwap serves calls from m until it is replaced.
func NewSwap[M Models](m M) *Swap[M] {
	s := &Swap[M]{}
	s.cur = s.newRef(m)
	return s
}

func (s *Swap[M]) newRef(m M) *swapRef[M] {
	s.live.Add(1)
	return &swapRef[M]{m: m}
}

// Replace makes m serve every call from now on and returns at once; the
// models it replaces are closed when their last running call returns.
func (s *Swap[M]) Replace(m M) {
	s.mu.Lock()
	if s.cur == nil { // closed: nothing serves any more
		s.mu.Unlock()
		m.Close()
		return
	}
	old := s.cur
	s.cur = s.newRef(m)
	idle := s.retire(old)
	s.mu.Unlock()
	if idle {
		s.closeRef(old)
	}
}

// Close stops serving (later calls fail with ErrModelsClosed) and returns
// once every set of models this Swap held is closed, that is, after the
// calls still running have returned.
func (s *Swap[M]) Close() {
	s.mu.Lock()
	old := s.cur
	s.cur = nil
	idle := old != nil && s.retire(old)
	s.mu.Unlock()
	if idle {
		s.closeRef(old)
	}
	s.live.Wait()
}

// retire marks r replaced and reports whether it is idle (closed by the
// caller then). s.mu is held.
func (s *Swap[M]) retire(r *swapRef[M]) bool {
	r.retired = true
	return r.calls == 0
}

func (s *Swap[M]) closeRef(r *swapRef[M]) {
	defer s.live.Done()
	r.m.Close()
}

func (s *Swap[M]) acquire() (*swapRef[M], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil, ErrModelsClosed
	}
	s.cur.calls++
	return s.cur, nil
}

func (s *Swap[M]) release(r *swapRef[M]) {
	s.mu.Lock()
	r.calls--
	last := r.retired && r.calls == 0
	s.mu.Unlock()
	if last {
		s.closeRef(r)
	}
}

// With runs f on the current models, which stay open until f returns.
func (s *Swap[M]) With(f func(m M) error) error {
	r, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release(r)
	return f(r.m)
}

// Validate implements Generator.
func (s *Swap[M]) Validate(model string, req generator.Request) error {
	return s.With(func(m M) error { return m.Validate(model, req) })
}

// Generate implements Generator.
func (s *Swap[M]) Generate(ctx context.Context, model string, reqs []generator.Request) (imgs [][]generator.Image, err error) {
	err = s.With(func(m M) error {
		imgs, err = m.Generate(ctx, model, reqs)
		return err
	})
	return imgs, err
}

// Morph implements Generator.
func (s *Swap[M]) Morph(ctx context.Context, model string, data []byte, target string) (img generator.Image, err error) {
	err = s.With(func(m M) error {
		img, err = m.Morph(ctx, model, data, target)
		return err
	})
	return img, err
}

// Interpolate implements Generator.
func (s *Swap[M]) Interpolate(ctx context.Context, model string, from, to generator.Endpoint, steps int) (imgs []generator.Image, err error) {
	err = s.With(func(m M) error {
		imgs, err = m.Interpolate(ctx, model, from, to, steps)
		return err
	})
	return imgs, err
}
