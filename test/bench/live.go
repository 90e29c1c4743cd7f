package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

// Live is live.json: the numbers of the running system (API process,
// worker processes, Redis), measured from this process over loopback.
type Live struct {
	Model        string      `json:"model"`
	Prompt       string      `json:"prompt"`
	ImagesPerJob int         `json:"images_per_job"`
	MaxBatch     int         `json:"max_batch"`
	Threads      int         `json:"threads"`
	E2E          []E2ERow    `json:"end_to_end"`
	API          []APIRow    `json:"api"`
	Cold         []ColdRow   `json:"cold_start"`
	Memory       []MemRow    `json:"memory"`
	Load         []LoadPoint `json:"load"`
}

// E2ERow is HTTP submit → every image fetched, at saturation.
type E2ERow struct {
	Workers int `json:"workers"`
	// Loops is each worker's --worker-concurrency (claim → generate →
	// store loops in one process, each with its own sessions).
	Loops            int  `json:"loops"`
	ThreadsPerWorker int  `json:"threads_per_worker"` // intra-op threads of each loop's sessions
	Clients          int  `json:"clients"`
	ImagesPerS       Stat `json:"images_per_s"`
	// Latency percentiles (ms) of jobs finished in each window, then
	// summarised over windows.
	P50    Stat `json:"latency_p50_ms"`
	P95    Stat `json:"latency_p95_ms"`
	P99    Stat `json:"latency_p99_ms"`
	Jobs   int  `json:"jobs"`
	Errors int  `json:"errors"`
	// Cores is the CPU each process kind used during the windows, in
	// cores (CPU seconds per second): where the machine's time went.
	Cores map[string]float64 `json:"cores"`
	// CPU milliseconds per image fetched: of the workers, and of workers,
	// API and redis-server together (the serving system, not the clients).
	WorkerCPUms float64 `json:"worker_cpu_ms_per_image"`
	SystemCPUms float64 `json:"system_cpu_ms_per_image"`
}

// APIRow is one endpoint under one kind of load.
type APIRow struct {
	Endpoint string  `json:"endpoint"`
	Mode     string  `json:"mode"`
	Offered  float64 `json:"offered_per_s,omitempty"`
	RPS      Stat    `json:"requests_per_s"`
	P50      Stat    `json:"p50_ms"`
	P99      Stat    `json:"p99_ms"`
	Errors   int     `json:"errors"`
	// CPUms is the API process's and redis-server's CPU time per answered
	// request (median over runs): the cost of a request whatever share of
	// the cores the run got.
	CPUms Stat `json:"api_redis_cpu_ms_per_request"`
	// FirstError is the first failure, for the reader to judge the errors.
	FirstError string `json:"first_error,omitempty"`
}

// ColdRow is process start → first image fetched.
type ColdRow struct {
	What    string `json:"what"`
	Seconds Stat   `json:"seconds"`
}

// MemRow is the resident set of one process in one state, in MiB.
type MemRow struct {
	Process string `json:"process"`
	State   string `json:"state"`
	MB      Stat   `json:"rss_mib"`
}

type liveConfig struct {
	studio, models, ortLib, dir string
	model, prompt               string
	n, maxBatch, threads        int
	workers                     []workerSpec
	warmup, window              time.Duration
	runs                        int
	apiRate                     float64
	apiWindow                   time.Duration
	coldRuns                    int
}

func runLive(args []string) error {
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	var c liveConfig
	var workers string
	fs.StringVar(&c.studio, "studio", "bin/studio", "the studio binary")
	fs.StringVar(&c.models, "models", "samples/models", "models folder")
	fs.StringVar(&c.ortLib, "ort-lib", os.Getenv("ORT_LIB_PATH"), "libonnxruntime.so")
	fs.StringVar(&c.dir, "dir", "", "results folder (logs; live.json)")
	fs.StringVar(&c.model, "model", "attngan-birds", "model of the end-to-end jobs")
	fs.StringVar(&c.prompt, "prompt", "a small bird with a red crown and white wings", "prompt of the jobs (text models)")
	fs.IntVar(&c.n, "n", 4, "images per job")
	fs.IntVar(&c.maxBatch, "max-batch", 8, "workers' --max-batch")
	fs.IntVar(&c.threads, "threads", 2, "ONNX Runtime threads in all, divided among the workers")
	fs.StringVar(&workers, "workers", "1,1x2,2,4", "worker process counts, each N or NxL (N processes of L loops: --worker-concurrency)")
	fs.DurationVar(&c.warmup, "warmup", 4*time.Second, "load before the measured windows")
	fs.DurationVar(&c.window, "window", 5*time.Second, "one measured window")
	fs.IntVar(&c.runs, "runs", 3, "windows (and API runs) per configuration")
	fs.Float64Var(&c.apiRate, "api-rate", 500, "offered requests/s of the API runs")
	fs.DurationVar(&c.apiWindow, "api-window", 3*time.Second, "one API run")
	fs.IntVar(&c.coldRuns, "cold-runs", 3, "cold starts of each kind")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.dir == "" {
		return errors.New("live: -dir is required")
	}
	for _, w := range strings.Split(workers, ",") {
		procs, loops, hasLoops := strings.Cut(strings.TrimSpace(w), "x")
		n, err := strconv.Atoi(procs)
		l := 1
		if err == nil && hasLoops {
			l, err = strconv.Atoi(loops)
		}
		if err != nil || n < 1 || l < 1 {
			return fmt.Errorf("live: -workers %q: want N or NxL, positive", workers)
		}
		c.workers = append(c.workers, workerSpec{procs: n, loops: l})
	}
	res, err := live(context.Background(), c)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.dir, "live.json"), append(js, '\n'), 0o644)
}

// bench is one live run's shared state.
type bench struct {
	c       liveConfig
	redis   int // port
	redisP  *proc
	api     *proc
	apiURL  string
	hc      *http.Client
	cl      *client.Client
	res     *Live
	logf    func(format string, a ...any)
	workerN int // names worker processes uniquely
}

func live(ctx context.Context, c liveConfig) (*Live, error) {
	b := &bench{c: c, res: &Live{Model: c.model, Prompt: c.prompt, ImagesPerJob: c.n, MaxBatch: c.maxBatch, Threads: c.threads},
		hc:   &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}},
		logf: log.New(os.Stderr, "[bench live] ", log.Ltime).Printf}
	rp, port, err := redisServer(c.dir)
	if err != nil {
		return nil, err
	}
	defer rp.stop()
	b.redis, b.redisP = port, rp
	if err := b.startAPI(ctx); err != nil {
		return nil, err
	}
	defer b.api.stop()
	b.mark("api ready")

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"cold start of a worker", b.coldWorker},
		{"end to end", b.endToEnd},
		{"API", b.apiOnly},
		{"cold start of serve", b.coldServe},
	}
	for _, s := range steps {
		b.logf("%s", s.name)
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		b.mark(s.name)
	}
	return b.res, nil
}

func (b *bench) mark(phase string) {
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		p := LoadPoint{Phase: phase}
		for _, f := range strings.Fields(string(raw))[:3] {
			v, _ := strconv.ParseFloat(f, 64)
			p.Load = append(p.Load, v)
		}
		b.res.Load = append(b.res.Load, p)
	}
}

func (b *bench) redisURL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", b.redis) }

func (b *bench) commonEnv() []string {
	return []string{"STUDIO_MODELS_DIR=" + b.c.models, "ORT_LIB_PATH=" + b.c.ortLib, "STUDIO_LOG_LEVEL=warn"}
}

func (b *bench) startAPI(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	b.apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	b.api, err = start(b.c.dir, "api", b.commonEnv(), b.c.studio, "serve", "--redis-url", b.redisURL(),
		"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--rate-limit", "0", "--max-active-jobs", "0")
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := waitHTTP(wctx, b.api, b.apiURL+"/readyz", 20*time.Millisecond); err != nil {
		return err
	}
	b.cl, err = client.New(b.apiURL, "", b.hc)
	return err
}

// workerSpec is one end-to-end configuration: procs worker processes of
// loops loops each.
type workerSpec struct{ procs, loops int }

// startWorker starts one worker process of loops loops and returns it
// with its admin URL.
func (b *bench) startWorker(threads, loops int) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	b.workerN++
	p, err := start(b.c.dir, fmt.Sprintf("worker-%d", b.workerN), b.commonEnv(), b.c.studio, "worker",
		"--redis-url", b.redisURL(), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--threads", strconv.Itoa(threads), "--max-batch", strconv.Itoa(b.c.maxBatch), "--worker-concurrency", strconv.Itoa(loops))
	return p, fmt.Sprintf("http://127.0.0.1:%d", port), err
}

func (b *bench) request(seed uint64) api.GenerationRequest {
	n := b.c.n
	r := api.GenerationRequest{Model: b.c.model, N: &n, Seed: &seed}
	if strings.Contains(b.c.model, "attngan") {
		r.Prompt = b.c.prompt
	} else {
		r.Class = b.classOf()
	}
	return r
}

// classOf is the first class the model names (class models only).
func (b *bench) classOf() string {
	m, err := b.cl.Model(context.Background(), b.c.model)
	if err != nil {
		return ""
	}
	raw, _ := json.Marshal(m)
	var v struct {
		Classes []struct {
			Name string `json:"name"`
		} `json:"classes"`
	}
	_ = json.Unmarshal(raw, &v)
	if len(v.Classes) > 0 {
		return v.Classes[0].Name
	}
	return ""
}

// job submits one request, follows it to the end and fetches every image:
// the latency a user sees.
func (b *bench) job(ctx context.Context, req api.GenerationRequest) (int, error) {
	j, err := b.cl.Generate(ctx, req)
	if err != nil {
		return 0, err
	}
	if j, err = b.cl.Wait(ctx, j.ID, nil); err != nil {
		return 0, err
	}
	if j.State != "succeeded" {
		return 0, fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
	}
	for k := range j.Images {
		if _, err := b.cl.Image(ctx, j.ID, k); err != nil {
			return 0, err
		}
	}
	return len(j.Images), nil
}

func (b *bench) coldWorker(ctx context.Context) error {
	var secs []float64
	for i := 0; i < b.c.coldRuns; i++ {
		if err := flushRedis(b.redis); err != nil {
			return err
		}
		one := 1
		seed := uint64(i)
		req := b.request(seed)
		req.N = &one
		j, err := b.cl.Generate(ctx, req)
		if err != nil {
			return err
		}
		w, _, err := b.startWorker(b.c.threads, 1)
		if err != nil {
			return err
		}
		done, err := b.cl.Wait(ctx, j.ID, nil)
		if err == nil && done.State == "succeeded" {
			_, err = b.cl.Image(ctx, j.ID, 0)
		} else if err == nil {
			err = fmt.Errorf("job %s", done.State)
		}
		t := time.Since(w.started).Seconds()
		w.stop()
		if err != nil {
			return err
		}
		secs = append(secs, t)
	}
	b.res.Cold = append(b.res.Cold, ColdRow{What: "`studio worker` (Redis), start → first image of a queued job fetched over the API", Seconds: summarize(secs)})
	return nil
}

func (b *bench) coldServe(ctx context.Context) error {
	var secs, rss []float64
	for i := 0; i < b.c.coldRuns; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err := start(b.c.dir, fmt.Sprintf("serve-%d", i), b.commonEnv(), b.c.studio, "serve",
			"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--threads", strconv.Itoa(b.c.threads))
		if err != nil {
			return err
		}
		err = func() error {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := waitHTTP(wctx, p, url+"/readyz", 10*time.Millisecond); err != nil {
				return err
			}
			cl, err := client.New(url, "", b.hc)
			if err != nil {
				return err
			}
			saved := b.cl
			b.cl = cl
			defer func() { b.cl = saved }()
			one := 1
			req := b.request(uint64(i))
			req.N = &one
			if _, err := b.job(wctx, req); err != nil {
				return err
			}
			secs = append(secs, time.Since(p.started).Seconds())
			rss = append(rss, p.rssMB())
			return nil
		}()
		p.stop()
		if err != nil {
			return err
		}
	}
	b.res.Cold = append(b.res.Cold, ColdRow{What: "`studio serve` (one process, embedded queue), start → first image fetched", Seconds: summarize(secs)})
	b.res.Memory = append(b.res.Memory, MemRow{Process: "serve (API + worker, embedded queue)", State: "after its first image", MB: summarize(rss)})
	return nil
}

// endToEnd runs each worker count at saturation: closed-loop clients keep
// about two full batches per worker queued.
func (b *bench) endToEnd(ctx context.Context) error {
	memRest := map[string][]float64{}
	memLoad := map[string][]float64{}
	for _, spec := range b.c.workers {
		if err := flushRedis(b.redis); err != nil {
			return err
		}
		nw := spec.procs
		threads := max(1, b.c.threads/(nw*spec.loops))
		var ws []*proc
		stopAll := func() {
			for _, w := range ws {
				w.stop()
			}
		}
		for i := 0; i < nw; i++ {
			w, admin, err := b.startWorker(threads, spec.loops)
			if err != nil {
				stopAll()
				return err
			}
			ws = append(ws, w)
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = waitHTTP(wctx, w, admin+"/readyz", 20*time.Millisecond)
			cancel()
			if err != nil {
				stopAll()
				return err
			}
		}
		memRest["api"] = append(memRest["api"], b.api.rssMB())
		for _, w := range ws {
			memRest["worker"] = append(memRest["worker"], w.rssMB())
		}
		row, apiPeak, workerPeak, err := b.saturate(ctx, spec, threads, ws)
		stopAll()
		if err != nil {
			return err
		}
		memLoad["api"] = append(memLoad["api"], apiPeak)
		memLoad["worker"] = append(memLoad["worker"], workerPeak)
		b.res.E2E = append(b.res.E2E, row)
		b.logf("%d worker(s) × %d loop(s): %.1f images/s, p50 %.0f ms, p99 %.0f ms", nw, spec.loops, row.ImagesPerS.Median, row.P50.Median, row.P99.Median)
	}
	b.res.Memory = append(b.res.Memory,
		MemRow{Process: "API (`studio serve` with Redis)", State: "at rest", MB: summarize(memRest["api"])},
		MemRow{Process: "API (`studio serve` with Redis)", State: "peak under end-to-end load", MB: summarize(memLoad["api"])},
		MemRow{Process: "worker (`studio worker`)", State: "at rest (ready, before its first job)", MB: summarize(memRest["worker"])},
		MemRow{Process: "worker (`studio worker`)", State: "peak under end-to-end load", MB: summarize(memLoad["worker"])})
	return nil
}

// procs is the row's "workers × loops" (old reports have no loops: 1).
func (e E2ERow) procs() string {
	return fmt.Sprintf("%d × %d", e.Workers, max(e.Loops, 1))
}

type done struct {
	at      time.Time
	latency time.Duration
	images  int
}

// saturate keeps clients×jobs in flight against nw workers and measures
// the windows: throughput, latencies, CPU per process and peak memory.
// Over 100 lines because the load, the memory sampler and the windows
// share one clock and one set of counters, started and stopped together;
// split, each part would need all of them passed in.
func (b *bench) saturate(ctx context.Context, spec workerSpec, threads int, ws []*proc) (E2ERow, float64, float64, error) {
	nw := spec.procs * spec.loops // batches in flight
	clients := max(2, 2*nw*b.c.maxBatch/b.c.n)
	row := E2ERow{Workers: spec.procs, Loops: spec.loops, ThreadsPerWorker: threads, Clients: clients}
	lctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var finished []done
	var errs atomic.Int64
	var firstErr atomic.Value
	var seed atomic.Uint64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for lctx.Err() == nil {
				t0 := time.Now()
				n, err := b.job(lctx, b.request(seed.Add(uint64(b.c.n))))
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				mu.Lock()
				finished = append(finished, done{at: time.Now(), latency: time.Since(t0), images: n})
				mu.Unlock()
			}
		})
	}
	// Peak resident sets while the windows run.
	var apiPeak, workerPeak float64
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-tick.C:
				apiPeak = max(apiPeak, b.api.rssMB())
				for _, w := range ws {
					workerPeak = max(workerPeak, w.rssMB())
				}
			}
		}
	}()
	time.Sleep(b.c.warmup)
	cpu := func() map[string]float64 {
		m := map[string]float64{"api": cpuSeconds(b.api.cmd.Process.Pid), "redis": cpuSeconds(b.redisP.cmd.Process.Pid),
			"load generator (this tool)": cpuSeconds(os.Getpid())}
		for _, w := range ws {
			m["workers"] += cpuSeconds(w.cmd.Process.Pid)
		}
		return m
	}
	cpu0, tcpu := cpu(), time.Now()
	var rates, p50, p95, p99 []float64
	totalImages := 0
	for range b.c.runs {
		t0 := time.Now()
		time.Sleep(b.c.window)
		t1 := time.Now()
		mu.Lock()
		var lat []float64
		images := 0
		for _, d := range finished {
			if d.at.After(t0) && !d.at.After(t1) {
				images += d.images
				lat = append(lat, float64(d.latency.Microseconds())/1000)
			}
		}
		mu.Unlock()
		rates = append(rates, float64(images)/t1.Sub(t0).Seconds())
		totalImages += images
		row.Jobs += len(lat)
		if len(lat) > 0 {
			p50 = append(p50, percentile(lat, 50))
			p95 = append(p95, percentile(lat, 95))
			p99 = append(p99, percentile(lat, 99))
		}
	}
	cpu1, el := cpu(), time.Since(tcpu).Seconds()
	row.Cores = map[string]float64{}
	for k, v := range cpu1 {
		row.Cores[k] = (v - cpu0[k]) / el
	}
	if totalImages > 0 {
		per := func(k string) float64 { return 1000 * (cpu1[k] - cpu0[k]) / float64(totalImages) }
		row.WorkerCPUms = per("workers")
		row.SystemCPUms = per("workers") + per("api") + per("redis")
	}
	close(stopRSS)
	<-rssDone
	cancel()
	wg.Wait()
	row.ImagesPerS, row.P50, row.P95, row.P99 = summarize(rates), summarize(p50), summarize(p95), summarize(p99)
	row.Errors = int(errs.Load())
	if row.Jobs == 0 {
		msg, _ := firstErr.Load().(string)
		return row, 0, 0, fmt.Errorf("%d worker(s): no job finished in the windows (%d errors; first: %s)", nw, row.Errors, msg)
	}
	return row, apiPeak, workerPeak, nil
}

func percentile(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s)-1)*p/100 + 0.5)
	return s[min(max(i, 0), len(s)-1)]
}
