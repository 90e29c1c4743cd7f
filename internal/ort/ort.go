// Package ort wraps ONNX Runtime for the studio: one environment per process,
// sessions with explicit thread counts and an execution provider (CUDA when
// asked for and available, CPU otherwise), and plain Go tensors in and out so
// that no ONNX Runtime value outlives a call.
//
// The binding to the library needs cgo. Built without it (CGO_ENABLED=0,
// as `make test-unit` builds), the package compiles with the same API and
// Open reports ErrLibrary: such a binary serves the API but runs no graph.
package ort

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Provider names an execution provider.
type Provider string

const (
	CPU  Provider = "cpu"
	CUDA Provider = "cuda"
)

// ParseProvider accepts "cpu" or "cuda".
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(s); p {
	case CPU, CUDA:
		return p, nil
	}
	return "", fmt.Errorf("unknown execution provider %q (want cpu or cuda)", s)
}

// Config selects the shared library and how sessions run.
type Config struct {
	// LibraryPath is the path of libonnxruntime.so (1.24.x). Empty means
	// DefaultLibraryPath().
	LibraryPath string
	// IntraOpThreads and InterOpThreads are set on every session; 0 lets
	// ONNX Runtime choose.
	IntraOpThreads int
	InterOpThreads int
	// Spin lets a session's idle pool threads busy-wait for the next
	// parallel section instead of sleeping. Off by default: every session
	// has its own pool, a request runs several sessions one after another
	// (text encoder, generator, scorer), and threads left spinning by one
	// take the cores the next one needs (BENCHMARKS.md measures it).
	Spin bool
	// Provider is CPU by default. CUDA falls back to CPU, with a warning,
	// when the library was built without it or no device is usable.
	Provider Provider
	// CUDADevice is the device id for the CUDA provider.
	CUDADevice int
}

// ErrLibrary is returned when the shared library cannot be loaded.
var ErrLibrary = errors.New("onnx runtime library unavailable")

// Runtime is the process's ONNX Runtime environment. ONNX Runtime keeps
// one environment per process, so only one Runtime may be open at a time.
type Runtime struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	fellBack bool // CUDA was asked for but a session fell back to CPU

	live atomic.Int64 // sessions made and not yet destroyed
}

// LiveSessions is the number of sessions made by this runtime and not yet
// destroyed: zero once every user has closed what it loaded.
func (r *Runtime) LiveSessions() int64 { return r.live.Load() }

// DefaultLibraryPath is where scripts/setup.sh installs the library,
// relative to the working directory (the repository root for `make run`).
func DefaultLibraryPath() string {
	return filepath.Join(".deps", "onnxruntime", "lib", "libonnxruntime.so")
}

// Config returns the effective configuration.
func (r *Runtime) Config() Config { return r.cfg }

// TensorInfo describes one input or output of a graph as ONNX Runtime
// sees it; -1 marks a dynamic dimension.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int64
}
