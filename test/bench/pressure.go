package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

// Pressure is pressure.json: the studio under pressure, measured from this
// process (a second one) against studio and redis-server processes it
// starts (issue "Serving under pressure").
type Pressure struct {
	Cores    int          `json:"cores"`
	Load     []LoadPoint  `json:"load"`
	Uploads  *UploadsRun  `json:"uploads,omitempty"`
	Outage   *OutageRun   `json:"redis_outage,omitempty"`
	Kill     *KillRun     `json:"worker_kill,omitempty"`
	Bytes    *BytesRun    `json:"image_bytes,omitempty"`
	Watchers *WatchersRun `json:"watchers,omitempty"`
	Cold     *ColdRefRun  `json:"cold_reference,omitempty"`
	Scoring  []ScoringRow `json:"scoring,omitempty"`
	Notes    []string     `json:"notes,omitempty"`
}

// UploadsRun is N concurrent 2048² 16-bit PNG morph uploads to the
// one-process studio.
type UploadsRun struct {
	Uploads       int            `json:"uploads"`
	ImageBytes    int            `json:"image_bytes"`
	RSSBeforeMiB  float64        `json:"rss_before_mib"`
	RSSPeakMiB    float64        `json:"rss_peak_mib"`
	RSSAfterMiB   float64        `json:"rss_after_5s_mib"`
	AnswerMs      Stat           `json:"answer_ms"`
	MaxAnswerMs   float64        `json:"max_answer_ms"`
	Statuses      map[string]int `json:"statuses"`
	HealthyAfter  bool           `json:"healthy_after"`
	TimedOut      int            `json:"timed_out"`
	FirstProblems []string       `json:"first_problems,omitempty"`
}

// OutageRun is Redis killed and restarted under load.
type OutageRun struct {
	DownSeconds  float64        `json:"down_seconds"`
	Requests     int            `json:"requests"`
	Statuses     map[string]int `json:"statuses"`
	Status500    int            `json:"status_500"`
	Accepted     int            `json:"accepted"`
	Succeeded    int            `json:"succeeded"`
	Lost         int            `json:"lost"`
	Duplicated   int            `json:"duplicated"`
	RetryAfter   bool           `json:"retry_after_on_every_503"`
	ReconcileSec float64        `json:"reconcile_seconds"`
}

// KillRun is a worker killed (SIGKILL) while it holds a job.
type KillRun struct {
	Images         int     `json:"images"`
	DoneAtKill     int     `json:"done_at_kill"`
	FinishedAfterS float64 `json:"finished_after_kill_s"`
	LeaseTTLs      float64 `json:"lease_ttl_s"`
	RetryingEvent  string  `json:"retrying_event"`
	State          string  `json:"state"`
	ImagesStored   int     `json:"images_stored"`
}

// BytesRun is what Redis sends the API to serve one image of a job.
type BytesRun struct {
	N             int   `json:"n"`
	ImageBytes    int   `json:"image_bytes"`
	AllImages     int   `json:"all_images_bytes"`
	RedisSent     int64 `json:"redis_bytes_sent"`
	MetaRedisSent int64 `json:"redis_bytes_sent_job_metadata"`
}

// WatchersRun is many event-stream watchers on one API process.
type WatchersRun struct {
	Watchers      int      `json:"watchers"`
	Jobs          int      `json:"jobs"`
	ImagesPerJob  int      `json:"images_per_job"`
	PoolSize      int      `json:"pool_size"`
	Pools         int      `json:"pools"`
	MaxConns      int      `json:"max_redis_connections"`
	Complete      int      `json:"watchers_with_every_event"`
	Seconds       float64  `json:"seconds"`
	FirstProblems []string `json:"first_problems,omitempty"`
}

// ColdRefRun is the reference-shape 256-px AttnGAN's first job after
// readiness.
type ColdRefRun struct {
	ReadyS     float64 `json:"start_to_ready_s"`
	FirstJobS  float64 `json:"first_job_after_ready_s"`
	SecondJobS float64 `json:"second_job_s"`
}

// ScoringRow is what scoring adds to one generator call of batch 8.
type ScoringRow struct {
	Model       string `json:"model"`
	Way         string `json:"way"`
	Overhead    Stat   `json:"overhead"` // per round: time ÷ unscored − 1
	OverheadCPU Stat   `json:"overhead_cpu"`
	MsPerOp     Stat   `json:"ms_per_call"`
	CPUMsPerOp  Stat   `json:"cpu_ms_per_call"`
}

type pressureConfig struct {
	studio, models, ortLib, dir, out string
	genTest, reference               string
	steps, from                      string
	uploads, watchers, rounds        int
}

type pressure struct {
	c    pressureConfig
	res  *Pressure
	logf func(format string, a ...any)
	hc   *http.Client
	n    int
}

func runPressure(args []string) error {
	fs := flag.NewFlagSet("pressure", flag.ContinueOnError)
	var c pressureConfig
	fs.StringVar(&c.studio, "studio", "bin/studio", "the studio binary")
	fs.StringVar(&c.models, "models", "samples/models", "models folder")
	fs.StringVar(&c.ortLib, "ort-lib", os.Getenv("ORT_LIB_PATH"), "libonnxruntime.so")
	fs.StringVar(&c.dir, "dir", "", "results folder (logs; pressure.json)")
	fs.StringVar(&c.out, "out", "", "also write the section into OUT.md and OUT.json (e.g. BENCHMARKS)")
	fs.StringVar(&c.genTest, "generator-test", "", "compiled generator test binary (go test -c ./generator), for BenchmarkScoring")
	fs.StringVar(&c.reference, "reference", "", "models folder holding the reference-shape 256-px AttnGAN (python -m fgtrain attngan --export-reference)")
	fs.StringVar(&c.steps, "steps", "uploads,outage,kill,bytes,watchers,cold,scoring", "steps to run")
	fs.IntVar(&c.uploads, "uploads", 48, "concurrent 2048² uploads")
	fs.IntVar(&c.watchers, "watchers", 1000, "concurrent event-stream watchers")
	fs.IntVar(&c.rounds, "rounds", 5, "BenchmarkScoring rounds")
	fs.StringVar(&c.from, "from", "", "measure nothing: write the section of this pressure.json into -out")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.from != "" {
		raw, err := os.ReadFile(c.from)
		if err != nil {
			return err
		}
		var r Pressure
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("%s: %w", c.from, err)
		}
		if c.out == "" {
			return errors.New("pressure: -from needs -out")
		}
		return mergePressure(c.out, &r)
	}
	if c.dir == "" {
		return errors.New("pressure: -dir is required")
	}
	for _, p := range []*string{&c.studio, &c.models, &c.genTest, &c.reference} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	p := &pressure{c: c, res: &Pressure{Cores: cores()}, logf: log.New(os.Stderr, "[bench pressure] ", log.Ltime).Printf,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}}}
	ctx := context.Background()
	steps := map[string]func(context.Context) error{
		"uploads": p.uploads, "outage": p.outage, "kill": p.kill, "bytes": p.bytesPerImage,
		"watchers": p.watchers, "cold": p.coldReference, "scoring": p.scoring,
	}
	p.mark("start")
	for _, name := range strings.Split(c.steps, ",") {
		fn, ok := steps[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("pressure: no step %q", name)
		}
		p.logf("%s", name)
		if err := fn(ctx); err != nil {
			p.res.Notes = append(p.res.Notes, fmt.Sprintf("%s: %v", name, err))
			p.logf("%s failed: %v", name, err)
		}
		p.mark(name)
	}
	js, err := json.MarshalIndent(p.res, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "pressure.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if c.out != "" {
		return mergePressure(c.out, p.res)
	}
	return nil
}

func cores() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func (p *pressure) mark(phase string) {
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		lp := LoadPoint{Phase: phase}
		for _, f := range strings.Fields(string(raw))[:3] {
			v, _ := strconv.ParseFloat(f, 64)
			lp.Load = append(lp.Load, v)
		}
		p.res.Load = append(p.res.Load, lp)
	}
}

func (p *pressure) env() []string {
	return []string{"STUDIO_MODELS_DIR=" + p.c.models, "ORT_LIB_PATH=" + p.c.ortLib, "STUDIO_LOG_LEVEL=info"}
}

// serve starts `studio serve` (with Redis when redisURL is set) and waits
// until it is ready.
func (p *pressure) serve(ctx context.Context, redisURL string, extra ...string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	p.n++
	args := []string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--rate-limit", "0", "--max-active-jobs", "0", "--threads", "1"}
	if redisURL != "" {
		args = append(args, "--redis-url", redisURL)
	}
	sp, err := start(p.c.dir, fmt.Sprintf("serve-%d", p.n), p.env(), p.c.studio, append(args, extra...)...)
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := waitHTTP(wctx, sp, url+"/readyz", 20*time.Millisecond); err != nil {
		sp.stop()
		return nil, "", err
	}
	return sp, url, nil
}

func (p *pressure) worker(redisURL string, extra ...string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.n++
	args := append([]string{"worker", "--redis-url", redisURL, "--admin-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--threads", "1", "--max-batch", "8"}, extra...)
	return start(p.c.dir, fmt.Sprintf("worker-%d", p.n), p.env(), p.c.studio, args...)
}

// aofRedis starts redis-server with every write fsynced (appendfsync
// always), so that a kill and restart loses no acknowledged write.
func aofRedis(dir string, port int) (*proc, error) {
	data := filepath.Join(dir, "redis-aof")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	rp, err := start(dir, fmt.Sprintf("redis-%d-%d", port, time.Now().UnixNano()%1000), nil, "redis-server", "--port", strconv.Itoa(port),
		"--bind", "127.0.0.1", "--dir", data, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := exec.Command("redis-cli", "-p", strconv.Itoa(port), "PING").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return rp, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	rp.stop()
	return nil, errors.New("redis-server did not start")
}

func redisCLI(port int, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(port)}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

func (p *pressure) model(ctx context.Context, url, name string) (trained string, err error) {
	cl, err := client.New(url, "", p.hc)
	if err != nil {
		return "", err
	}
	m, err := cl.Model(ctx, name)
	if err != nil {
		return "", err
	}
	for _, c := range m.Classes {
		if c.Trained {
			return c.Name, nil
		}
	}
	return "", fmt.Errorf("%s has no trained class", name)
}

// bigPNG is a 2048×2048 16-bit RGBA PNG of smooth gradients.
func bigPNG() ([]byte, error) {
	const side = 2048
	img := image.NewNRGBA64(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			img.SetNRGBA64(x, y, color.NRGBA64{R: uint16(x * 32), G: uint16(y * 32), B: uint16((x + y) * 16), A: 0xffff})
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	err := enc.Encode(&buf, img)
	return buf.Bytes(), err
}

// uploads: N concurrent 2048² morph uploads to the one-process studio.
func (p *pressure) uploads(ctx context.Context) error {
	sp, url, err := p.serve(ctx, "")
	if err != nil {
		return err
	}
	defer sp.stop()
	class, err := p.model(ctx, url, "cvaegan-birds")
	if err != nil {
		return err
	}
	data, err := bigPNG()
	if err != nil {
		return err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("model", "cvaegan-birds")
	mw.WriteField("class", class)
	fw, _ := mw.CreateFormFile("image", "big.png")
	fw.Write(data)
	mw.Close()
	run := &UploadsRun{Uploads: p.c.uploads, ImageBytes: len(data), Statuses: map[string]int{}}
	time.Sleep(2 * time.Second) // idle after load
	run.RSSBeforeMiB = sp.rssMB()
	stop := make(chan struct{})
	var peak atomic.Uint64
	var pollWG sync.WaitGroup
	pollWG.Go(func() {
		for {
			if r := uint64(sp.rssMB() * 1024); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	hc := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	var times []float64
	var wg sync.WaitGroup
	for i := range p.c.uploads {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/morphs", bytes.NewReader(body.Bytes()))
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Idempotency-Key", fmt.Sprintf("upload-%d", i))
			began := time.Now()
			resp, err := hc.Do(req)
			ms := float64(time.Since(began).Microseconds()) / 1000
			mu.Lock()
			defer mu.Unlock()
			times = append(times, ms)
			if err != nil {
				run.TimedOut++
				run.Statuses["error"]++
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			key := strconv.Itoa(resp.StatusCode)
			if resp.StatusCode >= 400 {
				var pr api.Problem
				_ = json.Unmarshal(b, &pr)
				key += " " + pr.Slug()
				if resp.Header.Get("Retry-After") != "" {
					key += " (Retry-After)"
				}
				if len(run.FirstProblems) < 3 && !strings.Contains(strings.Join(run.FirstProblems, "\n"), pr.Slug()) {
					run.FirstProblems = append(run.FirstProblems, fmt.Sprintf("%d %s: %s", resp.StatusCode, pr.Slug(), pr.Detail))
				}
			}
			run.Statuses[key]++
		})
	}
	wg.Wait()
	close(stop)
	pollWG.Wait()
	run.RSSPeakMiB = float64(peak.Load()) / 1024
	run.AnswerMs = summarize(times)
	run.MaxAnswerMs = run.AnswerMs.Max
	time.Sleep(5 * time.Second)
	run.RSSAfterMiB = sp.rssMB()
	resp, err := http.Get(url + "/readyz")
	run.HealthyAfter = err == nil && resp.StatusCode == 200
	if err == nil {
		resp.Body.Close()
	}
	p.res.Uploads = run
	return nil
}

// outage: Redis killed for 10 s while clients submit and read jobs.
func (p *pressure) outage(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	rp, err := aofRedis(p.c.dir, port)
	if err != nil {
		return err
	}
	defer func() { rp.stop() }()
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	sp, url, err := p.serve(ctx, redisURL)
	if err != nil {
		return err
	}
	defer sp.stop()
	wp, err := p.worker(redisURL)
	if err != nil {
		return err
	}
	defer wp.stop()
	class, err := p.model(ctx, url, "cvaegan-birds")
	if err != nil {
		return err
	}
	run := &OutageRun{Statuses: map[string]int{}, RetryAfter: true}
	var mu sync.Mutex
	ids := map[string]map[string]bool{} // idempotency key → job ids answered
	hc := &http.Client{Timeout: 20 * time.Second}
	do := func(method, path string, body []byte, key string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, method, url+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := hc.Do(req)
		mu.Lock()
		defer mu.Unlock()
		run.Requests++
		if err != nil {
			run.Statuses["transport error"]++
			return 0, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		run.Statuses[strconv.Itoa(resp.StatusCode)]++
		if resp.StatusCode == 500 {
			run.Status500++
		}
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			run.RetryAfter = false
		}
		return resp.StatusCode, b
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for c := range 3 {
		wg.Go(func() {
			var mine []string
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("outage-%d-%d", c, seq.Add(1))
				n, seed := 2, uint64(seq.Load())
				body, _ := json.Marshal(api.GenerationRequest{Model: "cvaegan-birds", Class: class, N: &n, Seed: &seed})
				for { // a client retries its submit (same key) until it is answered
					code, b := do(http.MethodPost, "/v1/generations", body, key)
					if code == 202 || code == 200 {
						var j api.Job
						_ = json.Unmarshal(b, &j)
						mu.Lock()
						if ids[key] == nil {
							ids[key] = map[string]bool{}
						}
						ids[key][j.ID] = true
						mu.Unlock()
						mine = append(mine, j.ID)
						break
					}
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
				}
				if len(mine) > 0 {
					do(http.MethodGet, "/v1/generations/"+mine[len(mine)-1], nil, "")
					do(http.MethodGet, "/v1/generations/"+mine[len(mine)-1]+"/images/0.png", nil, "")
				}
				do(http.MethodGet, "/v1/models", nil, "")
				time.Sleep(150 * time.Millisecond)
			}
		})
	}
	time.Sleep(6 * time.Second)
	rp.cmd.Process.Kill()
	<-rp.done
	down := time.Now()
	time.Sleep(10 * time.Second)
	rp, err = aofRedis(p.c.dir, port)
	if err != nil {
		close(stop)
		wg.Wait()
		return err
	}
	run.DownSeconds = time.Since(down).Seconds()
	time.Sleep(8 * time.Second)
	close(stop)
	wg.Wait()
	// Reconcile: every accepted job finishes once, with its images.
	began := time.Now()
	cl, _ := client.New(url, "", p.hc)
	deadline := time.Now().Add(4 * time.Minute)
	for key, set := range ids {
		run.Accepted++
		if len(set) > 1 {
			run.Duplicated += len(set) - 1
		}
		for id := range set {
			for {
				j, err := cl.Job(ctx, id)
				if err == nil && j.State == "succeeded" && len(j.Images) == 2 {
					run.Succeeded++
					break
				}
				if (err == nil && (j.State == "failed" || j.State == "cancelled")) || time.Now().After(deadline) {
					run.Lost++
					p.logf("job %s (key %s) not succeeded: %+v %v", id, key, j.State, err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	run.ReconcileSec = time.Since(began).Seconds()
	p.res.Outage = run
	return nil
}

// kill: SIGKILL the worker that holds a running job.
func (p *pressure) kill(ctx context.Context) error {
	rp, port, err := redisServer(p.c.dir)
	if err != nil {
		return err
	}
	defer rp.stop()
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	sp, url, err := p.serve(ctx, redisURL)
	if err != nil {
		return err
	}
	defer sp.stop()
	workers := map[int]*proc{}
	for range 2 {
		w, err := p.worker(redisURL, "--max-batch", "1")
		if err != nil {
			return err
		}
		defer w.stop()
		workers[w.cmd.Process.Pid] = w
	}
	time.Sleep(3 * time.Second) // loaded and claiming
	cl, err := client.New(url, "", p.hc)
	if err != nil {
		return err
	}
	n, seed := 32, uint64(99)
	j, err := cl.Generate(ctx, api.GenerationRequest{Model: "attngan-birds", Prompt: "a small bird with a red crown and white wings", N: &n, Seed: &seed})
	if err != nil {
		return err
	}
	run := &KillRun{Images: n, LeaseTTLs: 8}
	retrying := make(chan string, 4)
	go cl.Events(ctx, j.ID, func(ev api.Event) error {
		if ev.Type == api.EventRetrying {
			select {
			case retrying <- ev.Error:
			default:
			}
		}
		return nil
	})
	var victim *proc
	deadline := time.Now().Add(2 * time.Minute)
	for victim == nil {
		if time.Now().After(deadline) {
			return errors.New("no worker took the job")
		}
		cur, err := cl.Job(ctx, j.ID)
		if err == nil && cur.Finished() {
			return fmt.Errorf("job %s before a worker could be killed (%d images)", cur.State, cur.Progress.Done)
		}
		if err == nil && cur.State == "running" && cur.Progress.Done >= 2 {
			holder, _ := redisCLI(port, "HGET", "{fgs}:job:"+j.ID, "worker")
			p.logf("job running on %q, %d done", holder, cur.Progress.Done)
			if i := strings.LastIndexByte(holder, '-'); i >= 0 {
				pid, _ := strconv.Atoi(strings.Split(holder[i+1:], "/")[0])
				victim = workers[pid]
				run.DoneAtKill = cur.Progress.Done
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	victim.cmd.Process.Kill()
	killed := time.Now()
	p.logf("killed worker %s", victim.name)
	done, err := cl.Wait(ctx, j.ID, nil)
	if err != nil {
		return err
	}
	run.FinishedAfterS = time.Since(killed).Seconds()
	run.State, run.ImagesStored = done.State, len(done.Images)
	select {
	case run.RetryingEvent = <-retrying:
	case <-time.After(time.Second):
	}
	p.res.Kill = run
	return nil
}

func redisSent(port int) int64 {
	info, _ := redisCLI(port, "INFO", "stats")
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_net_output_bytes:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// bytesPerImage: what Redis sends the API to serve image 5 of an n = 16 job.
func (p *pressure) bytesPerImage(ctx context.Context) error {
	rp, port, err := redisServer(p.c.dir)
	if err != nil {
		return err
	}
	defer rp.stop()
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	sp, url, err := p.serve(ctx, redisURL)
	if err != nil {
		return err
	}
	defer sp.stop()
	wp, err := p.worker(redisURL)
	if err != nil {
		return err
	}
	defer wp.stop()
	cl, err := client.New(url, "", p.hc)
	if err != nil {
		return err
	}
	n, seed := 16, uint64(7)
	j, err := cl.Generate(ctx, api.GenerationRequest{Model: "attngan-birds", Prompt: "a small bird with a red crown and white wings", N: &n, Seed: &seed})
	if err != nil {
		return err
	}
	if j, err = cl.Wait(ctx, j.ID, nil); err != nil || j.State != "succeeded" {
		return fmt.Errorf("job %s: %v", j.State, err)
	}
	run := &BytesRun{N: n}
	for k := range n {
		b, err := cl.Image(ctx, j.ID, k)
		if err != nil {
			return err
		}
		run.AllImages += len(b)
	}
	a := redisSent(port)
	b := redisSent(port) // b − a: one INFO reply
	img, err := cl.Image(ctx, j.ID, 5)
	if err != nil {
		return err
	}
	c := redisSent(port)
	run.ImageBytes, run.RedisSent = len(img), (c-b)-(b-a)
	if _, err := cl.Job(ctx, j.ID); err != nil {
		return err
	}
	d := redisSent(port)
	run.MetaRedisSent = (d - c) - (b - a)
	p.res.Bytes = run
	return nil
}

// watchers: many SSE watchers on one API process.
func (p *pressure) watchers(ctx context.Context) error {
	rp, port, err := redisServer(p.c.dir)
	if err != nil {
		return err
	}
	defer rp.stop()
	const pool = 10
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0?client_name=api&pool_size=%d", port, pool)
	sp, url, err := p.serve(ctx, redisURL)
	if err != nil {
		return err
	}
	defer sp.stop()
	class, err := p.model(ctx, url, "cvaegan-birds")
	if err != nil {
		return err
	}
	cl, err := client.New(url, "", p.hc)
	if err != nil {
		return err
	}
	const jobs, n = 10, 4
	var ids []string
	for i := range jobs {
		nn, seed := n, uint64(1000+i)
		j, err := cl.Generate(ctx, api.GenerationRequest{Model: "cvaegan-birds", Class: class, N: &nn, Seed: &seed})
		if err != nil {
			return err
		}
		ids = append(ids, j.ID)
	}
	run := &WatchersRun{Watchers: p.c.watchers, Jobs: jobs, ImagesPerJob: n, PoolSize: pool, Pools: 2}
	var maxConns atomic.Int64
	stopPoll := make(chan struct{})
	var pollWG sync.WaitGroup
	pollWG.Go(func() {
		for {
			list, _ := redisCLI(port, "CLIENT", "LIST")
			c := int64(strings.Count(list, "name=api "))
			if c > maxConns.Load() {
				maxConns.Store(c)
			}
			select {
			case <-stopPoll:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 2000}}
	var complete atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for w := range p.c.watchers {
		wg.Go(func() {
			id := ids[w%jobs]
			req, _ := http.NewRequestWithContext(sctx, http.MethodGet, url+"/v1/generations/"+id+"/events", nil)
			resp, err := hc.Do(req)
			problem := func(s string) {
				mu.Lock()
				if len(run.FirstProblems) < 5 {
					run.FirstProblems = append(run.FirstProblems, s)
				}
				mu.Unlock()
			}
			if err != nil {
				problem(err.Error())
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				problem(resp.Status)
				return
			}
			images, finished := map[string]bool{}, false
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			var typ string
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					typ = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: ") && typ == "image":
					var ev api.Event
					if json.Unmarshal([]byte(line[6:]), &ev) == nil && ev.Index != nil {
						images[strconv.Itoa(*ev.Index)] = true
					}
				case strings.HasPrefix(line, "data: ") && typ == "finished":
					finished = true
				}
				if finished {
					break
				}
			}
			if finished && len(images) == n {
				complete.Add(1)
			} else {
				problem(fmt.Sprintf("watcher %d: %d images, finished %v", w, len(images), finished))
			}
		})
	}
	time.Sleep(3 * time.Second) // every watcher connected and waiting
	wp, err := p.worker(strings.Split(redisURL, "?")[0])
	if err != nil {
		return err
	}
	defer wp.stop()
	wg.Wait()
	run.Seconds = time.Since(began).Seconds()
	close(stopPoll)
	pollWG.Wait()
	run.MaxConns, run.Complete = int(maxConns.Load()), int(complete.Load())
	p.res.Watchers = run
	return nil
}

// coldReference: the reference-shape model's first job after readiness.
func (p *pressure) coldReference(ctx context.Context) error {
	if p.c.reference == "" {
		return errors.New("no -reference folder (python -m fgtrain attngan --export-reference DIR/attngan-reference)")
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p.n++
	env := []string{"STUDIO_MODELS_DIR=" + p.c.reference, "ORT_LIB_PATH=" + p.c.ortLib, "STUDIO_LOG_LEVEL=info"}
	began := time.Now()
	sp, err := start(p.c.dir, fmt.Sprintf("serve-ref-%d", p.n), env, p.c.studio, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--threads", strconv.Itoa(max(1, cores())), "--max-active-jobs", "0", "--rate-limit", "0")
	if err != nil {
		return err
	}
	defer sp.stop()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := waitHTTP(wctx, sp, url+"/readyz", 20*time.Millisecond); err != nil {
		return err
	}
	run := &ColdRefRun{ReadyS: time.Since(began).Seconds()}
	cl, err := client.New(url, "", p.hc)
	if err != nil {
		return err
	}
	for i, dst := range []*float64{&run.FirstJobS, &run.SecondJobS} {
		one, seed := 1, uint64(i)
		t0 := time.Now()
		j, err := cl.Generate(ctx, api.GenerationRequest{Model: "attngan-reference", Prompt: "a small bird with a red crown", N: &one, Seed: &seed})
		if err != nil {
			return err
		}
		if j, err = cl.Wait(ctx, j.ID, nil); err != nil || j.State != "succeeded" {
			return fmt.Errorf("job %s: %v", j.State, err)
		}
		if _, err := cl.Image(ctx, j.ID, 0); err != nil {
			return err
		}
		*dst = time.Since(t0).Seconds()
	}
	p.res.Cold = run
	return nil
}

var (
	benchScoring = regexp.MustCompile(`^BenchmarkScoring/(\S+?)-\d+\s+\d+\s`)
	benchMetric  = regexp.MustCompile(`([\d.]+) (unscored|full|parallel|fidelity-only)-(ms|cpu-ms)`)
)

// scoring runs BenchmarkScoring (a second process) rounds times; each
// round gives every way's overhead over unscored, the ways interleaved
// call by call.
func (p *pressure) scoring(ctx context.Context) error {
	if p.c.genTest == "" {
		return errors.New("no -generator-test binary")
	}
	cmd := exec.CommandContext(ctx, p.c.genTest, "-test.run", "^$", "-test.bench", "^BenchmarkScoring$",
		"-test.benchtime", "10x", "-test.count", strconv.Itoa(p.c.rounds))
	cmd.Dir = filepath.Dir(p.c.genTest)
	cmd.Env = append(os.Environ(), "STUDIO_TEST_MODELS="+p.c.models, "ORT_LIB_PATH="+p.c.ortLib, "STUDIO_TEST_THREADS=1")
	out, err := cmd.CombinedOutput()
	os.WriteFile(filepath.Join(p.c.dir, "scoring.txt"), out, 0o644)
	if err != nil {
		return fmt.Errorf("BenchmarkScoring: %v", err)
	}
	type key struct{ model, way, unit string }
	vals := map[key][]float64{}
	var models []string
	for _, line := range strings.Split(string(out), "\n") {
		m := benchScoring.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if !slices.Contains(models, m[1]) {
			models = append(models, m[1])
		}
		for _, x := range benchMetric.FindAllStringSubmatch(line, -1) {
			v, _ := strconv.ParseFloat(x[1], 64)
			k := key{m[1], x[2], x[3]}
			vals[k] = append(vals[k], v)
		}
	}
	for _, m := range models {
		base, baseCPU := vals[key{m, "unscored", "ms"}], vals[key{m, "unscored", "cpu-ms"}]
		for _, way := range []string{"unscored", "full", "parallel", "fidelity-only"} {
			xs, cs := vals[key{m, way, "ms"}], vals[key{m, way, "cpu-ms"}]
			var over, overCPU []float64
			for i := range min(len(xs), len(base), len(cs), len(baseCPU)) {
				over = append(over, xs[i]/base[i]-1)
				overCPU = append(overCPU, cs[i]/baseCPU[i]-1)
			}
			row := ScoringRow{Model: m, Way: way, MsPerOp: summarize(xs), CPUMsPerOp: summarize(cs)}
			if way != "unscored" {
				row.Overhead, row.OverheadCPU = summarize(over), summarize(overCPU)
			}
			p.res.Scoring = append(p.res.Scoring, row)
		}
	}
	return nil
}

// pressureMarkdown is the section of BENCHMARKS.md.
func pressureMarkdown(r *Pressure) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Serving under pressure\n\n")
	w("Measured by `go run ./test/bench pressure` (a second process) against `studio` and `redis-server` processes it starts, on this %d-core machine", r.Cores)
	if len(r.Load) > 0 {
		w(" (1-minute load average %.1f at the start, %.1f at the end: the cores are shared)", r.Load[0].Load[0], r.Load[len(r.Load)-1].Load[0])
	}
	w(". Raw numbers: `pressure.json` of the run; BENCHMARKS.json `pressure`.\n\n")
	w("| figure | measured | target |\n|---|---|---|\n")
	if u := r.Uploads; u != nil {
		w("| %d concurrent 2048² 16-bit PNG uploads (`POST /v1/morphs`, %d kB each, one-process studio): server RSS | %.0f MiB before, **%.0f MiB peak**, %.0f MiB 5 s later | peak ≤ 400 MB |\n",
			u.Uploads, u.ImageBytes/1024, u.RSSBeforeMiB, u.RSSPeakMiB, u.RSSAfterMiB)
		w("| … answer times | median %.0f ms, **max %.0f ms**; %s; healthy after: %v | every answer ≤ 5 s, accepted or a precise 429/503 |\n",
			u.AnswerMs.Median, u.MaxAnswerMs, statuses(u.Statuses), u.HealthyAfter)
	}
	if o := r.Outage; o != nil {
		w("| Redis killed for %.0f s under load (3 clients submitting and reading; AOF, appendfsync always) | %d requests: %s; **%d × 500**; Retry-After on every 503: %v | 0 × 500 |\n",
			o.DownSeconds, o.Requests, statuses(o.Statuses), o.Status500, o.RetryAfter)
		w("| … reconciled (accepted ids against finished jobs) | %d accepted, %d succeeded, **%d lost, %d duplicated** | 0 lost, 0 duplicated |\n",
			o.Accepted, o.Succeeded, o.Lost, o.Duplicated)
	}
	if k := r.Kill; k != nil {
		w("| `kill -9` of a worker holding a job (n = %d, %d stored at the kill; lease %g s) | job %s with %d images **%.1f s after the kill**; event stream: `retrying` %q | ≤ 15 s |\n",
			k.Images, k.DoneAtKill, k.LeaseTTLs, k.State, k.ImagesStored, k.FinishedAfterS, k.RetryingEvent)
	}
	if x := r.Bytes; x != nil {
		w("| Bytes Redis sends the API to serve one image of an n = %d job | **%d B** for a %d B image (all %d images: %d B); the job with its images' metadata: %d B | one image's worth |\n",
			x.N, x.RedisSent, x.ImageBytes, x.N, x.AllImages, x.MetaRedisSent)
	}
	if wt := r.Watchers; wt != nil {
		w("| %d event-stream watchers on one API process (%d jobs × %d images) | **%d Redis connections at most** (%d pools of %d: queue, keys); %d of %d watchers got every event, in %.0f s | within the pool size; every watcher every event |\n",
			wt.Watchers, wt.Jobs, wt.ImagesPerJob, wt.MaxConns, wt.Pools, wt.PoolSize, wt.Complete, wt.Watchers, wt.Seconds)
	}
	if c := r.Cold; c != nil {
		w("| Reference-shape 256-px AttnGAN: first job after readiness (one image, fetched) | start → ready %.1f s (sessions made and run at load); **first job %.2f s**, second %.2f s | ≤ 3 s |\n",
			c.ReadyS, c.FirstJobS, c.SecondJobS)
	}
	w("\n")
	if len(r.Scoring) > 0 {
		w("Scoring cost at batch 8 (`BenchmarkScoring`: the four ways in turn, call by call, 1 intra-op thread; %d rounds of 10 calls each, medians of per-round ratios; overhead = per call ÷ unscored − 1, in wall time and in CPU time, which the shared cores disturb less; a generator call includes PNG encoding of the images and, for AttnGAN, of every attention map):\n\n", r.Scoring[0].MsPerOp.N)
		w("| model | way | ms per call | overhead | CPU ms per call | overhead in CPU |\n|---|---|---:|---:|---:|---:|\n")
		for _, s := range r.Scoring {
			o, oc := "—", "—"
			if s.Way != "unscored" {
				o, oc = fmt.Sprintf("%+.0f%%", 100*s.Overhead.Median), fmt.Sprintf("%+.0f%%", 100*s.OverheadCPU.Median)
			}
			w("| `%s` | %s | %.0f | %s | %.0f | %s |\n", s.Model, s.Way, s.MsPerOp.Median, o, s.CPUMsPerOp.Median, oc)
		}
		w("\nfull: classifier, then the DAMSM image and text encoders; parallel: the encoders beside the classifier on their own sessions (used when the cores hold both runs' threads); fidelity-only: what the worker asks for, the DAMSM image encoder only where damsm_similarity is the image's measure (`attngan-birds/plain`: a prompt that names no attribute, so DAMSM is its measure). A scorer whose classifier graph gives the DAMSM `cnn_code` itself (one scorer graph, as `classifier-birds` since 2026-12-07) runs no image encoder in any way: the three ways then differ only in whether the text encoder runs.\n\n")
	}
	for _, n := range r.Notes {
		w("- %s\n", n)
	}
	return b.String()
}

func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

const (
	pressureBegin = "<!-- pressure: written by `go run ./test/bench pressure` -->"
	pressureEnd   = "<!-- /pressure -->"
)

// mergePressure puts the section into OUT.md (replacing an earlier one,
// else at the end) and the numbers into OUT.json under "pressure".
func mergePressure(out string, r *Pressure) error {
	md, err := os.ReadFile(out + ".md")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := pressureBegin + "\n" + pressureMarkdown(r) + pressureEnd + "\n"
	s := string(md)
	if i := strings.Index(s, pressureBegin); i >= 0 {
		if j := strings.Index(s[i:], pressureEnd); j >= 0 {
			s = s[:i] + section + strings.TrimPrefix(s[i+j+len(pressureEnd):], "\n")
		}
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section
	}
	if err := os.WriteFile(out+".md", []byte(s), 0o644); err != nil {
		return err
	}
	// The report's JSON keeps its order: the section goes last, replacing
	// the one an earlier run put there.
	js, err := json.MarshalIndent(r, " ", " ")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(out + ".json")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := strings.TrimRight(string(raw), " \n")
	const key = ",\n \"pressure\": "
	if i := strings.LastIndex(doc, key); i >= 0 {
		doc = doc[:i] + "\n}"
	}
	switch {
	case doc == "":
		doc = "{\n \"pressure\": " + string(js) + "\n}"
	case strings.HasSuffix(doc, "}"):
		doc = strings.TrimRight(strings.TrimSuffix(doc, "}"), " \n") + key + string(js) + "\n}"
	default:
		return fmt.Errorf("%s.json is not a JSON object", out)
	}
	if !json.Valid([]byte(doc)) {
		return fmt.Errorf("%s.json: merging the pressure section broke it", out)
	}
	return os.WriteFile(out+".json", []byte(doc+"\n"), 0o644)
}
