//go:build !unit

package worker_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/test/redistest"
)

// realBackends: the queue on a real redis-server (left out of the unit
// tier, `go test -tags unit`).
var realBackends = []realBackend{{"redis", func(t *testing.T) newQueueFunc {
	srv := redistest.Start(t, redistest.Options{})
	var n atomic.Int64
	return func(t *testing.T, cfg queue.Config) backend {
		cfg.Prefix = fmt.Sprintf("{wt-%d}:", n.Add(1))
		q, err := queue.NewRedis(t.Context(), srv.URL(), cfg, quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
}}}
