// Package queue holds generation jobs: in Redis (Streams and consumer
// groups) when several processes share the work, or in process memory (the
// embedded backend) for a single-machine studio. Redis is used only here.
package queue

import "errors"

// ErrClosed is returned by a backend after Close.
var ErrClosed = errors.New("queue closed")
