//go:build !unit

package queue_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/test/redistest"
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

// A stopped server's errors are told apart as unavailable (the API's 503),
// and a refusal is not.
func TestRedisOutageIsUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	q, err := queue.NewRedis(ctx, srv.URL(), queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Get(ctx, "alice", "not-an-id"); queue.Unavailable(err) {
		t.Fatalf("not found classified as unavailable: %v", err)
	}
	srv.Stop()
	_, _, err = q.Enqueue(ctx, queue.NewJob{Client: "alice", Model: "m", Total: 1})
	if !errors.Is(err, queue.ErrUnavailable) || !queue.Unavailable(err) {
		t.Fatalf("enqueue with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := q.Claim(ctx, "w1", 1, 0); !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("claim with the server down: %v, want ErrUnavailable", err)
	}
	if queue.Unavailable(errors.New("boom")) || queue.Unavailable(nil) {
		t.Fatal("a plain error classified as unavailable")
	}
}

// Consumers left by workers that exited (no pending delivery, idle longer
// than ConsumerIdle) are removed from the group; one holding a lease stays.
func TestRedisRemovesIdleConsumers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	cfg := queue.Config{LeaseTTL: 5 * time.Second, ConsumerIdle: 1500 * time.Millisecond, PollInterval: 20 * time.Millisecond, Prefix: "{gc}:"}
	q, err := queue.NewRedis(ctx, srv.URL(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for range 6 {
		mustEnqueue(t, q, queue.NewJob{Client: "alice", Model: "m", Total: 1})
	}
	claimOne(t, q, "holder", 0) // keeps a pending delivery
	for i := range 5 {          // workers that finished a job and exited
		l := claimOne(t, q, fmt.Sprintf("gone-%d", i), 0)
		if err := put(t, q, l, 0, "png"); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	names := func() []string {
		cs, err := raw.XInfoConsumers(ctx, "{gc}:lane:interactive", "workers").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	if n := names(); len(n) < 2 || !slices.Contains(n, "holder") {
		t.Fatalf("consumers before: %v", n)
	}
	time.Sleep(2 * cfg.ConsumerIdle)
	claimNone(t, q, "live")
	if n := names(); !slices.Equal(n, []string{"holder"}) {
		t.Fatalf("consumers after: %v, want the holder of a lease only", n)
	}
}

// Serving one image of an n = 16 job reads about one image from Redis,
// not sixteen (nor their attention maps).
func TestRedisReadsOneImage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	q, err := queue.NewRedis(ctx, srv.URL(), queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	j := mustEnqueue(t, q, queue.NewJob{Client: "alice", Model: "m", Total: 16, Spec: json.RawMessage(`{"prompt":"a bird"}`)})
	l := claimOne(t, q, "w1", 0)
	const size = 20000
	for i := range 16 {
		img := bytes.Repeat([]byte{byte(i)}, size)
		att := [][]byte{bytes.Repeat([]byte{1}, size/4), bytes.Repeat([]byte{2}, size/4)}
		if err := q.PutResult(ctx, l, queue.Result{Index: i, Data: img, Meta: json.RawMessage(`{"seed":1}`), Parts: att}); err != nil {
			t.Fatal(err)
		}
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	sent := func() int64 {
		info, err := raw.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no total_net_output_bytes")
		return 0
	}
	a := sent()
	b := sent() // b-a: one INFO reply
	if _, blob, err := q.GetBlob(ctx, "alice", j.ID, 7, 0); err != nil || len(blob) != size {
		t.Fatalf("blob: %d bytes, %v", len(blob), err)
	}
	c := sent()
	read := (c - b) - (b - a)
	t.Logf("one image of an n=16 job: %d bytes read from Redis (image %d)", read, size)
	if read > size+2000 {
		t.Fatalf("serving one %d-byte image read %d bytes from Redis", size, read)
	}
	if _, err := q.GetMeta(ctx, "alice", j.ID, nil); err != nil {
		t.Fatal(err)
	}
	d := sent()
	if meta := (d - c) - (b - a); meta > 4000 {
		t.Fatalf("the metadata of 16 images read %d bytes", meta)
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

func TestRedisContract(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var n atomic.Int64
	runContract(t, func(t *testing.T, cfg queue.Config) backend {
		// Each test gets its own hash tag: its own key space on one server.
		cfg.Prefix = fmt.Sprintf("{fgs-test-%d}:", n.Add(1))
		q, err := queue.NewRedis(t.Context(), srv.URL(), cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	})
}

// Every key the queue writes lives under its prefix, whose hash tag puts
// them all in one Redis Cluster slot.
func TestRedisKeysUnderOneHashTag(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	cfg := queue.Config{Prefix: "{studio}:", ResultTTL: time.Hour}
	q, err := queue.NewRedis(ctx, srv.URL(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n := queue.NewJob{Client: "alice", Model: "m", Total: 1, IdempotencyKey: "k"}
	j, _, err := q.Enqueue(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, q, queue.NewJob{Client: "bob", Lane: queue.Batch, Model: "m", Total: 1})
	ls, err := q.Claim(ctx, "w", 1, 0)
	if err != nil || len(ls) != 1 {
		t.Fatal(len(ls), err)
	}
	if err := q.Fail(ctx, ls[0], errors.New("x"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Events(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	all, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 8 {
		t.Fatalf("only %d keys: %v", len(all), all)
	}
	for _, k := range all {
		if !strings.HasPrefix(k, "{studio}:") {
			t.Errorf("key %q outside the prefix", k)
		}
	}
	for _, bad := range []string{"fgs:", "{}:", "{fgs:"} {
		if _, err := queue.NewRedis(ctx, srv.URL(), queue.Config{Prefix: bad}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("prefix %q without a hash tag accepted", bad)
		}
	}
}

// Queued and running jobs survive a crash of an AOF server, and the same
// client object carries on once it is back.
func TestRedisRestartKeepsJobs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	ctx := t.Context()
	cfg := queue.Config{LeaseTTL: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond}
	q, err := queue.NewRedis(ctx, srv.URL(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a := mustEnqueue(t, q, queue.NewJob{Client: "alice", Model: "m", Total: 2})
	b := mustEnqueue(t, q, queue.NewJob{Client: "alice", Model: "m", Total: 1})
	l := claimOne(t, q, "w1", 0)
	if err := put(t, q, l, 0, "png0"); err != nil {
		t.Fatal(err)
	}

	srv.Restart()
	retry := func(what string, f func() error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after restart: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	retry("put", func() error { return put(t, q, l, 1, "png1") })
	retry("ack", func() error { return q.Ack(ctx, l) })
	if g := get(t, q, "alice", a.ID); g.State != queue.Succeeded || len(g.Results) != 2 {
		t.Fatalf("job a after restart: %+v", g)
	}
	l2 := claimOne(t, q, "w1", 2*time.Second)
	if l2.Job.ID != b.ID {
		t.Fatalf("claimed %s, want the queued job %s", l2.Job.ID, b.ID)
	}
}

// 1,000 watchers of one process share one reader: the connections the
// queue opens stay within its pool however many watch, and every watcher
// gets every event of its job, in order, once.
func TestRedisEventsFanOut(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	const pool, watchers, jobs = 8, 1000, 4
	q, err := queue.NewRedis(ctx, srv.URL()+"?pool_size=8&client_name=fanout", queue.Config{Prefix: "{fan}:"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var ids []string
	for range jobs {
		ids = append(ids, mustEnqueue(t, q, queue.NewJob{Client: "alice", Model: "m", Total: 3}).ID)
	}
	var chans []<-chan queue.Event
	for w := range watchers {
		ch, err := q.Events(ctx, ids[w%jobs])
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	conns := func() int {
		list, err := raw.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(list, "name=fanout")
	}
	time.Sleep(300 * time.Millisecond)
	if n := conns(); n > pool {
		t.Fatalf("%d connections with %d watchers; the pool holds %d", n, watchers, pool)
	}
	for range jobs {
		l := claimOne(t, q, "w1", time.Second)
		for i := range 3 {
			if err := put(t, q, l, i, "png"); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Ack(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{queue.EventQueued, queue.EventStarted, queue.EventResult, queue.EventResult, queue.EventResult, queue.EventSucceeded}
	for w, ch := range chans {
		// A watcher subscribed before the claim sees queued (its snapshot) and all that followed.
		if got := types(collect(t, ch, 20*time.Second)); !slices.Equal(got, want) {
			t.Fatalf("watcher %d got %v, want %v", w, got, want)
		}
	}
	if n := conns(); n > pool {
		t.Fatalf("%d connections after the events; the pool holds %d", n, pool)
	}
}
