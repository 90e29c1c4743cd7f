//go:build cgo

package ort

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	onnx "github.com/yalue/onnxruntime_go"
)

// Open loads the shared library and creates the environment.
func Open(cfg Config, log *slog.Logger) (*Runtime, error) {
	if cfg.LibraryPath == "" {
		cfg.LibraryPath = DefaultLibraryPath()
	}
	if cfg.Provider == "" {
		cfg.Provider = CPU
	}
	if _, err := os.Stat(cfg.LibraryPath); err != nil {
		return nil, fmt.Errorf("%w: %v (run scripts/setup.sh or set ORT_LIB_PATH)", ErrLibrary, err)
	}
	if onnx.IsInitialized() {
		return nil, errors.New("onnx runtime environment already open in this process")
	}
	onnx.SetSharedLibraryPath(cfg.LibraryPath)
	if err := onnx.InitializeEnvironment(onnx.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLibrary, cfg.LibraryPath, err)
	}
	return &Runtime{cfg: cfg, log: log}, nil
}

// Version is the version string reported by the loaded library.
func (r *Runtime) Version() string { return onnx.GetVersion() }

// Close destroys the environment. Sessions must be destroyed first.
func (r *Runtime) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if err := onnx.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroy onnx runtime environment: %w", err)
	}
	return nil
}
