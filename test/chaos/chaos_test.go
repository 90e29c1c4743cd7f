//go:build !unit

// Package chaos runs the Redis queue with real worker processes and breaks
// things underneath them: SIGKILLed workers, a crashed and restarted
// redis-server, a worker whose network link goes down while it holds a job.
// Each test then checks what a client sees: every job finished exactly
// once, with exactly one result per index.
package chaos

import (
	"bufio"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/test/studiotest"
)

const prefix = "{chaos}:"

func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }

// proc is one running worker process; it collects the worker's stdout lines.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	out  []string
	done chan struct{}
}

// startWorker runs the worker binary, optionally behind a command prefix
// (ip netns exec <ns>), and kills it when the test ends.
func startWorker(t *testing.T, wrap []string, name, url string, extra ...string) *proc {
	t.Helper()
	args := append([]string{}, wrap...)
	args = append(args, studiotest.Binary(t, studiotest.Module+"/test/chaos/chaosworker"), "-redis", url, "-name", name, "-prefix", prefix)
	args = append(args, extra...)
	cmd := exec.Command(args[0], args[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL (what a crash or an OOM kill looks like) and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitLine waits for a stdout line containing every part.
func (p *proc) waitLine(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for seen := 0; ; {
		for ; seen < len(p.out); seen++ {
			if containsAll(p.out[seen], parts) {
				return p.out[seen]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s printed no line with %q within %s; last lines: %v", p.name, parts, timeout, tail(p.out, 10))
		}
		p.cond.Wait()
	}
}

func (p *proc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

func containsAll(s string, parts []string) bool {
	for _, x := range parts {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func tail(s []string, n int) []string { return s[max(0, len(s)-n):] }

// client is the API side's queue handle.
func client(t *testing.T, url string, lease time.Duration) *queue.Redis {
	t.Helper()
	cfg := queue.Config{Prefix: prefix, LeaseTTL: lease, MaxDeliveries: 50}
	q, err := queue.NewRedis(t.Context(), url, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// retry repeats f through errors (a restarting server) until it succeeds.
func retry[T any](t *testing.T, what string, f func() (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := f()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type submitted struct {
	id, client string
	total      int
}

// waitAll waits until every job is finished, or fails at the deadline.
func waitAll(t *testing.T, q *queue.Redis, jobs []submitted, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for _, j := range jobs {
			g, err := q.Get(t.Context(), j.client, j.id)
			if err != nil || !g.State.Finished() {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			st, _ := q.Stats(t.Context())
			t.Fatalf("%d of %d jobs not finished after %s; stats %+v", pending, len(jobs), timeout, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExactlyOnce is what a client must see for every job: succeeded,
// exactly Total results with each index once and its own data, and in the
// job's event stream one result event per index and one terminal event.
// It returns how many jobs needed more than one delivery.
func checkExactlyOnce(t *testing.T, q *queue.Redis, url string, jobs []submitted) (redelivered int) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opts)
	defer raw.Close()
	for _, s := range jobs {
		j, err := q.Get(t.Context(), s.client, s.id)
		if err != nil {
			t.Fatalf("job %s: %v", s.id, err)
		}
		if j.State != queue.Succeeded || j.Done != s.total || len(j.Results) != s.total {
			t.Fatalf("job %s: state %s done %d results %d, want succeeded with %d (error %q)",
				s.id, j.State, j.Done, len(j.Results), s.total, j.Error)
		}
		for i, r := range j.Results {
			if r.Index != i || !strings.HasPrefix(string(r.Data), fmt.Sprintf("job=%s index=%d ", s.id, i)) {
				t.Fatalf("job %s result %d: index %d data %q", s.id, i, r.Index, r.Data)
			}
		}
		if j.Attempts > 1 {
			redelivered++
		}
		// The progress stream a client relays (SSE), entry by entry.
		evs, err := raw.XRange(t.Context(), prefix+"job:"+s.id+":ev", "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		perIndex := map[string]int{}
		terminal := 0
		for _, e := range evs {
			switch e.Values["type"] {
			case queue.EventResult:
				perIndex[e.Values["index"].(string)]++
			case queue.EventSucceeded, queue.EventFailed, queue.EventCancelled:
				terminal++
			}
		}
		if len(perIndex) != s.total || terminal != 1 {
			t.Fatalf("job %s events: result indexes %v, %d terminal events", s.id, perIndex, terminal)
		}
		for idx, n := range perIndex {
			if n != 1 {
				t.Fatalf("job %s: %d result events for index %s", s.id, n, idx)
			}
		}
	}
	return redelivered
}

// TestKillWorkers SIGKILLs workers again and again, mid-batch, while they
// work through a few hundred jobs.
func TestKillWorkers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const lease = 800 * time.Millisecond
	q := client(t, srv.URL(), lease)
	ctx := t.Context()

	var jobs []submitted
	for i := range 300 {
		c := fmt.Sprintf("client-%d", i%6)
		lane := queue.Interactive
		if i%3 == 0 {
			lane = queue.Batch
		}
		n := queue.NewJob{Client: c, Lane: lane, Model: "noop", Total: 1 + i%4, Spec: []byte(`{"seed":1}`)}
		j, _, err := q.Enqueue(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, submitted{j.ID, c, n.Total})
	}

	workerArgs := []string{"-lease", lease.String(), "-unit", "25ms", "-batch", "4"}
	var workers []*proc
	seq := 0
	spawn := func() {
		seq++
		workers = append(workers, startWorker(t, nil, fmt.Sprintf("w%d", seq), srv.URL(), workerArgs...))
	}
	for range 4 {
		spawn()
	}
	kills, midBatch := 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Duration(150+rng.IntN(200)) * time.Millisecond)
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByState[queue.Succeeded] == len(jobs) {
			break
		}
		if kills >= 25 {
			continue
		}
		i := rng.IntN(len(workers))
		victim := workers[i]
		victim.kill()
		kills++
		// Mid-batch: it had claimed jobs it never acknowledged.
		claimed, acked := 0, 0
		for _, l := range victim.lines() {
			switch {
			case strings.HasPrefix(l, "claimed "):
				claimed++
			case strings.HasPrefix(l, "acked "), strings.HasPrefix(l, "leaselost "):
				acked++
			}
		}
		if claimed > acked {
			midBatch++
		}
		workers = append(workers[:i], workers[i+1:]...)
		spawn()
	}
	waitAll(t, q, jobs, 30*time.Second)
	redelivered := checkExactlyOnce(t, q, srv.URL(), jobs)
	st, _ := q.Stats(ctx)
	t.Logf("%d jobs, %d workers SIGKILLed (%d mid-batch), %d jobs redelivered after a kill; stats %+v",
		len(jobs), kills, midBatch, redelivered, st.ByState)
	if midBatch == 0 || redelivered == 0 {
		t.Fatalf("the kills hit no batch (%d kills, %d mid-batch, %d redelivered): the test proved nothing", kills, midBatch, redelivered)
	}
	if st.ByState[queue.Succeeded] != len(jobs) || st.DeadLetters != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestRestartRedis crashes redis-server (SIGKILL; AOF with appendfsync
// always) twice while a client enqueues and workers work. Every job whose
// Enqueue returned must complete; nobody is restarted but the server.
func TestRestartRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	const lease = time.Second
	q := client(t, srv.URL(), lease)
	ctx := t.Context()
	var workers []*proc
	for i := range 3 {
		workers = append(workers, startWorker(t, nil, fmt.Sprintf("w%d", i), srv.URL(), "-lease", lease.String(), "-unit", "30ms", "-batch", "4"))
	}

	const total = 200
	var mu sync.Mutex
	var jobs []submitted
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			c := fmt.Sprintf("client-%d", i%4)
			n := queue.NewJob{Client: c, Model: "noop", Total: 1 + i%3, IdempotencyKey: fmt.Sprintf("req-%d", i)}
			// The API retries through the outage; the idempotency key keeps
			// a retry of a request that did reach Redis from making a second job.
			var j queue.Job
			for {
				var err error
				if j, _, err = q.Enqueue(ctx, n); err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			jobs = append(jobs, submitted{j.ID, c, n.Total})
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(jobs) }
	for _, at := range []int{total / 3, 2 * total / 3} {
		for count() < at {
			time.Sleep(20 * time.Millisecond)
		}
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		srv.Restart()
		t.Logf("redis-server SIGKILLed and restarted after %d enqueues, with %d queued and %d running",
			at, st.ByState[queue.Queued], st.ByState[queue.Running])
	}
	<-done
	waitAll(t, q, jobs, 40*time.Second)
	checkExactlyOnce(t, q, srv.URL(), jobs)
	// The same worker processes carried on: none exited, each reconnected.
	for _, w := range workers {
		select {
		case <-w.done:
			t.Fatalf("worker %s exited", w.name)
		default:
		}
	}
	st := retry(t, "stats", func() (queue.Stats, error) { return q.Stats(ctx) })
	if st.ByState[queue.Succeeded] != total {
		t.Fatalf("%d jobs succeeded, want exactly %d (one per request)", st.ByState[queue.Succeeded], total)
	}
}

// netLink is a worker's private network: a namespace joined to the host by
// a veth pair, whose host end the test takes down to cut the worker off.
type netLink struct {
	ns, host string
	hostIP   string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetLink(t *testing.T) *netLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the cut-off test needs root for ip netns (network namespaces)")
	}
	id := os.Getpid() % 10000
	n := &netLink{ns: fmt.Sprintf("fgs-chaos-%d", id), host: fmt.Sprintf("fgsh%d", id)}
	peer := fmt.Sprintf("fgsn%d", id)
	sub := id % 250
	n.hostIP = fmt.Sprintf("10.213.%d.1", sub)
	run(t, "ip", "netns", "add", n.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.ns).Run() })
	run(t, "ip", "link", "add", n.host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.host).Run() })
	run(t, "ip", "link", "set", peer, "netns", n.ns)
	run(t, "ip", "addr", "add", n.hostIP+"/30", "dev", n.host)
	run(t, "ip", "link", "set", n.host, "up")
	run(t, "ip", "netns", "exec", n.ns, "ip", "addr", "add", fmt.Sprintf("10.213.%d.2/30", sub), "dev", peer)
	run(t, "ip", "netns", "exec", n.ns, "ip", "link", "set", peer, "up")
	run(t, "ip", "netns", "exec", n.ns, "ip", "link", "set", "lo", "up")
	return n
}

// TestWorkerCutOff takes down the network link of a worker (in its own
// network namespace) while it holds a job. Another worker takes the job
// over after the lease TTL and finishes it; when the link comes back, the
// cut-off worker's late write is rejected and not visible to the client.
func TestWorkerCutOff(t *testing.T) {
	link := newNetLink(t)
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	// Listen on the host end of the link too (the namespace has no loopback
	// route to the host).
	if err := admin.ConfigSet(ctx, "bind", "127.0.0.1 "+link.hostIP).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "protected-mode", "no").Err(); err != nil {
		t.Fatal(err)
	}

	const lease = time.Second
	q := client(t, srv.URL(), lease)
	const total = 8
	j, _, err := q.Enqueue(ctx, queue.NewJob{Client: "alice", Model: "noop", Total: total})
	if err != nil {
		t.Fatal(err)
	}

	// Short client timeouts so that the cut-off worker notices the link is
	// back within a second or two.
	cutURL := fmt.Sprintf("redis://%s:%d/0?dial_timeout=500ms&read_timeout=500ms&write_timeout=500ms", link.hostIP, srv.Port)
	cut := startWorker(t, []string{"ip", "netns", "exec", link.ns}, "cut", cutURL,
		"-lease", lease.String(), "-unit", "250ms", "-batch", "1")
	cut.waitLine(t, 10*time.Second, "claimed job="+j.ID, "attempt=1")
	cut.waitLine(t, 10*time.Second, "stored job="+j.ID, "index=0")

	run(t, "ip", "link", "set", link.host, "down")
	cutAt := len(cut.lines())
	t.Logf("link %s down while %s holds job %s", link.host, cut.name, j.ID)

	rescuer := startWorker(t, nil, "rescuer", srv.URL(), "-lease", lease.String(), "-unit", "10ms", "-batch", "1")
	rescuer.waitLine(t, 10*time.Second, "claimed job="+j.ID, "attempt=2")
	rescuer.waitLine(t, 10*time.Second, "acked job="+j.ID, "attempt=2")

	run(t, "ip", "link", "set", link.host, "up")
	// The write the cut-off worker had in flight reaches Redis now, late.
	lost := cut.waitLine(t, 15*time.Second, "leaselost job="+j.ID, "attempt=1", "op=put")
	t.Logf("link up; cut-off worker: %s", lost)
	var late int
	if _, err := fmt.Sscanf(lost[strings.Index(lost, "index="):], "index=%d", &late); err != nil {
		t.Fatalf("parse %q: %v", lost, err)
	}

	got, err := q.Get(ctx, "alice", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != queue.Succeeded || got.Attempts != 2 || got.Worker != "rescuer" || len(got.Results) != total {
		t.Fatalf("job after takeover: state %s attempts %d worker %s results %d", got.State, got.Attempts, got.Worker, len(got.Results))
	}
	if d := string(got.Results[late].Data); !strings.Contains(d, "attempt=2 worker=rescuer") {
		t.Fatalf("index %d holds %q: the cut-off worker's late write was not discarded", late, d)
	}
	// The cut-off worker's results are those it stored before the cut, plus
	// at most the one in flight at that moment (stored while its lease held).
	storedBefore := 0
	for _, l := range cut.lines()[:cutAt] {
		if strings.HasPrefix(l, "stored job="+j.ID) {
			storedBefore++
		}
	}
	fromCut := 0
	for _, r := range got.Results {
		if strings.Contains(string(r.Data), "worker=cut") {
			fromCut++
			if r.Index > storedBefore || !strings.Contains(string(r.Data), "attempt=1 ") {
				t.Fatalf("result %d from the cut-off worker after the cut: %q", r.Index, r.Data)
			}
		}
	}
	checkExactlyOnce(t, q, srv.URL(), []submitted{{j.ID, "alice", total}})
	t.Logf("%d results from the cut-off worker (stored before the cut), %d from the rescuer; late write for index %d discarded",
		fromCut, total-fromCut, late)
}
