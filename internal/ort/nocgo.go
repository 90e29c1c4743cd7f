//go:build !cgo

package ort

import (
	"errors"
	"fmt"
	"log/slog"
)

// errNoCgo is why nothing runs in a binary built without cgo.
var errNoCgo = fmt.Errorf("%w: built without cgo (CGO_ENABLED=0), so no graph can run", ErrLibrary)

// Open reports ErrLibrary: the binding to the library needs cgo.
func Open(cfg Config, log *slog.Logger) (*Runtime, error) { return nil, errNoCgo }

// Version is empty: no library is loaded.
func (r *Runtime) Version() string { return "" }

// Close does nothing.
func (r *Runtime) Close() error { return nil }

// Session is never made without cgo.
type Session struct{ provider Provider }

// NewSession reports ErrLibrary.
func (r *Runtime) NewSession(path string, inputs, outputs []string) (*Session, error) {
	return nil, errNoCgo
}

// Provider is the execution provider the session runs on.
func (s *Session) Provider() Provider { return s.provider }

// Destroy does nothing.
func (s *Session) Destroy() error { return nil }

// Run reports ErrLibrary.
func (s *Session) Run(inputs map[string]Tensor) (map[string]Tensor, error) {
	return nil, errors.New("run: " + errNoCgo.Error())
}

// Inspect reports ErrLibrary.
func (r *Runtime) Inspect(path string) (inputs, outputs []TensorInfo, err error) {
	return nil, nil, errNoCgo
}
