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

func TestEmbeddedPingAfterClose(t *testing.T) {
	q := queue.NewEmbedded()
	if err := q.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if err := q.Ping(t.Context()); err != queue.ErrClosed {
		t.Fatalf("after close: %v, want ErrClosed", err)
	}
}
