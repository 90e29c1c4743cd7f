package queue_test

import (
	"testing"
	"time"

	"fgstudio/queue"
	"fgstudio/test/redistest"
)

func TestRedisPingAndOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	q, err := queue.OpenRedis(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("ping a running server: %v", err)
	}

	srv.Stop()
	if err := q.Ping(t.Context()); err == nil {
		t.Fatal("ping succeeded with the server down")
	}

	srv.Restart()
	// The client reconnects by itself.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := q.Ping(t.Context())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOpenRedisUnreachable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := srv.URL()
	srv.Stop()
	if _, err := queue.OpenRedis(t.Context(), url); err == nil {
		t.Fatal("OpenRedis succeeded against a stopped server")
	}
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
