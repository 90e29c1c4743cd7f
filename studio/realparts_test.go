//go:build !unit

package studio_test

import (
	"log/slog"
	"testing"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/auth"
	"github.com/fgstudio/fgstudio/test/redistest"
)

// wholeSuite: every test of the package runs (not `go test -tags unit`),
// so TestMain checks that every documented operation was called.
const wholeSuite = true

// realBackends: the queue and key store on a real redis-server.
var realBackends = []realBackend{{"redis", func(t *testing.T, cfg queue.Config, log *slog.Logger) (workerQueue, keyStore) {
	srv := redistest.Start(t, redistest.Options{})
	q, err := queue.NewRedis(t.Context(), srv.URL(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.OpenRedis(t.Context(), srv.URL(), auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return q, ks
}}}

// closeRealParts closes the ONNX Runtime of the worker tests, if opened.
func closeRealParts() {
	if testRuntime != nil {
		testRuntime.Close()
	}
}
