package studio_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio"
	"github.com/fgstudio/fgstudio/studio/api"
)

// brokenJobs fails as a broken store does (an unexpected reply: an
// unreachable one is a 503, see outage_test.go), or panics.
type brokenJobs struct{ panics bool }

var errStore = errors.New("store 10.9.8.7:6379: ERR unexpected reply")

func (b brokenJobs) Enqueue(context.Context, queue.NewJob) (queue.Job, bool, error) {
	return queue.Job{}, false, errStore
}
func (b brokenJobs) Get(context.Context, string, string) (queue.Job, error) {
	if b.panics {
		panic("index out of range [3] with length 3")
	}
	return queue.Job{}, errStore
}
func (b brokenJobs) GetMeta(context.Context, string, string, []int) (queue.Job, error) {
	if b.panics {
		panic("index out of range [3] with length 3")
	}
	return queue.Job{}, errStore
}
func (b brokenJobs) GetBlob(context.Context, string, string, int, int) (queue.Job, []byte, error) {
	return queue.Job{}, nil, errStore
}
func (b brokenJobs) Cancel(context.Context, string, string) (queue.Job, error) {
	return queue.Job{}, errStore
}
func (b brokenJobs) Events(context.Context, string) (<-chan queue.Event, error) { return nil, errStore }

// Test5xxAreLoggedNotShown: a failing store is a 500 whose problem shows
// the request id and nothing of the failure; the log has both. A handler
// panic is the same, and the server goes on.
func Test5xxAreLoggedNotShown(t *testing.T) {
	for _, panics := range []bool{false, true} {
		logs := &syncBuffer{}
		srv := studio.New(studio.Config{AdminToken: testAdminToken}, studio.Deps{
			Log: slog.New(slog.NewTextHandler(logs, nil)), Jobs: brokenJobs{panics: panics}})
		req := httptest.NewRequest("GET", "/v1/generations/0190f7a4-7c6e-7d3c-8f00-000000000000", nil)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		checkAgainstDoc(t, req, nil, resp, body)
		p := problemOf(t, body)
		if resp.StatusCode != 500 || p.Slug() != api.TypeInternal || strings.Contains(string(body), "10.9.8.7") || strings.Contains(string(body), "index out of range") {
			t.Fatalf("panics=%v: %d %s", panics, resp.StatusCode, body)
		}
		log := logs.String()
		if !strings.Contains(log, "request_id="+p.RequestID) || !(strings.Contains(log, "10.9.8.7") || strings.Contains(log, "index out of range")) {
			t.Fatalf("log lacks the request id or the cause:\n%s", log)
		}
		hreq := httptest.NewRequest("GET", "/healthz", nil)
		if resp, err := srv.App().Test(hreq, -1); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after a failure: %v %v", resp, err)
		}
	}
}

// TestShutdownEndsEventStreams: idle streams get keep-alive comments, and
// a server that shuts down ends them cleanly instead of waiting for the
// jobs.
func TestShutdownEndsEventStreams(t *testing.T) {
	e := newEnv(t, envOpts{})
	j := e.submit(api.GenerationRequest{Model: classModel, Class: trainedClass(t, e)})
	resp, err := e.hc.Get(e.url + j.Links.Events)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before a keep-alive: %v", err)
		}
		if strings.HasPrefix(line, ": keep-alive") {
			break
		}
	}
	stopped := make(chan struct{})
	go func() {
		e.stop()
		close(stopped)
	}()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("the stream was cut, not ended: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
}
