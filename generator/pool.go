package generator

import (
	"context"
	"errors"
	"sync"

	"github.com/fgstudio/fgstudio/internal/ort"
)

// pool holds at most size sessions of one graph, created on demand; a
// caller waits (or gives up with its ctx) when all are busy.
type pool struct {
	slots chan struct{}     // one token per session that may exist
	idle  chan *ort.Session // sessions not in use
	make  func() (*ort.Session, error)

	mu     sync.Mutex
	all    []*ort.Session
	closed bool
}

func newPool(size int, mk func() (*ort.Session, error)) *pool {
	if size < 1 {
		size = 1
	}
	return &pool{slots: make(chan struct{}, size), idle: make(chan *ort.Session, size), make: mk}
}

var errPoolClosed = errors.New("model unloaded")

func (p *pool) acquire(ctx context.Context) (*ort.Session, error) {
	select {
	case s := <-p.idle:
		return s, nil
	default:
	}
	select {
	case s := <-p.idle:
		return s, nil
	case p.slots <- struct{}{}:
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			<-p.slots
			return nil, errPoolClosed
		}
		s, err := p.make()
		if err != nil {
			<-p.slots
			return nil, err
		}
		p.mu.Lock()
		p.all = append(p.all, s)
		p.mu.Unlock()
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pool) release(s *ort.Session) { p.idle <- s }

// close destroys every session; callers must have released theirs.
func (p *pool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, s := range p.all {
		errs = append(errs, s.Destroy())
	}
	p.all = nil
	return errors.Join(errs...)
}
