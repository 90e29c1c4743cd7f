package queue_test

import (
	"testing"

	"github.com/fgstudio/fgstudio/queue"
)

func TestEmbeddedContract(t *testing.T) {
	runContract(t, func(t *testing.T, cfg queue.Config) backend {
		q := queue.NewEmbeddedConfig(cfg)
		t.Cleanup(func() { q.Close() })
		return q
	})
}
