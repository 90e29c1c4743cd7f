package queue

import (
	"context"
	"sync"
)

// Embedded is the in-process backend used by `studio serve` without Redis:
// API and worker share it inside one process.
type Embedded struct {
	mu     sync.Mutex
	closed bool
}

// NewEmbedded makes an empty embedded queue.
func NewEmbedded() *Embedded { return &Embedded{} }

// Ping reports whether the queue accepts work.
func (e *Embedded) Ping(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Close stops the queue; later calls fail with ErrClosed.
func (e *Embedded) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}
