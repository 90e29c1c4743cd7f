package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// apiOnly measures the API process alone (no worker runs): submit
// (POST /v1/generations, which enqueues in Redis) and status
// (GET /v1/generations/{id}), first at a fixed offered rate (open loop:
// latency counts from when a request was due, so a server that falls
// behind is charged for it), then as fast as 32 connections go.
func (b *bench) apiOnly(ctx context.Context) error {
	var ids []string
	var idMu sync.Mutex
	var seed atomic.Uint64
	submit := func(ctx context.Context, _ int) error {
		one := 1
		req := b.request(1_000_000 + seed.Add(1))
		req.N = &one
		j, err := b.cl.Generate(ctx, req)
		if err == nil {
			idMu.Lock()
			ids = append(ids, j.ID)
			idMu.Unlock()
		}
		return err
	}
	status := func(ctx context.Context, i int) error {
		_, err := b.cl.Job(ctx, ids[i%len(ids)])
		return err
	}
	type load struct {
		endpoint string
		fn       func(context.Context, int) error
		open     bool
	}
	isSubmit := func(l load) bool { return l.endpoint[:6] == "submit" }
	for _, l := range []load{
		{"submit `POST /v1/generations`", submit, true},
		{"status `GET /v1/generations/{id}`", status, true},
		{"submit `POST /v1/generations`", submit, false},
		{"status `GET /v1/generations/{id}`", status, false},
	} {
		row := APIRow{Endpoint: l.endpoint, Mode: "closed loop, 32 connections"}
		if l.open {
			row.Mode, row.Offered = "open loop, fixed rate", b.c.apiRate
		}
		var rps, p50, p99, cpuMs []float64
		serverCPU := func() float64 {
			return cpuSeconds(b.api.cmd.Process.Pid) + cpuSeconds(b.redisP.cmd.Process.Pid)
		}
		for range b.c.runs {
			// Each submit run starts from an empty Redis (the queue stays far
			// from its bound); status asks for the jobs of the last one.
			if isSubmit(l) {
				if err := flushRedis(b.redis); err != nil {
					return err
				}
				ids = nil
			} else if len(ids) == 0 {
				return errors.New("no job was submitted: nothing to ask the status of")
			}
			// Half a second first, not counted: connections open, caches fill.
			if l.open {
				openLoop(ctx, b.c.apiRate, 500*time.Millisecond, l.fn)
			} else {
				closedLoop(ctx, 32, 500*time.Millisecond, 0, l.fn)
			}
			if isSubmit(l) {
				if err := flushRedis(b.redis); err != nil {
					return err
				}
				ids = nil
			}
			var r float64
			var lat []float64
			var errs int
			var first string
			c0 := serverCPU()
			if l.open {
				r, lat, errs, first = openLoop(ctx, b.c.apiRate, b.c.apiWindow, l.fn)
			} else {
				// Submits stop short of the queue's bound (10,000 queued jobs
				// per lane), past which the API rightly answers 503.
				limit := 0
				if isSubmit(l) {
					limit = 8000
				}
				r, lat, errs, first = closedLoop(ctx, 32, b.c.apiWindow, limit, l.fn)
			}
			if len(lat) > 0 {
				cpuMs = append(cpuMs, 1000*(serverCPU()-c0)/float64(len(lat)))
			}
			row.Errors += errs
			if row.FirstError == "" {
				row.FirstError = first
			}
			rps = append(rps, r)
			if len(lat) > 0 {
				p50 = append(p50, percentile(lat, 50))
				p99 = append(p99, percentile(lat, 99))
			}
		}
		row.RPS, row.P50, row.P99, row.CPUms = summarize(rps), summarize(p50), summarize(p99), summarize(cpuMs)
		b.res.API = append(b.res.API, row)
		b.logf("%s, %s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d errors", l.endpoint, row.Mode,
			row.RPS.Median, row.P50.Median, row.P99.Median, row.Errors)
	}
	return flushRedis(b.redis)
}

// openLoop sends rate requests per second for d, each on its own
// goroutine, and returns completed requests/s, latencies (ms, from the
// time each request was due) and the number of failures.
func openLoop(ctx context.Context, rate float64, d time.Duration, fn func(context.Context, int) error) (float64, []float64, int, string) {
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	lat := make([]float64, 0, total)
	errs := 0
	first := ""
	sem := make(chan struct{}, 4096)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := fn(ctx, i)
			ms := float64(time.Since(due).Microseconds()) / 1000
			mu.Lock()
			if err != nil {
				if errs == 0 {
					first = err.Error()
				}
				errs++
			} else {
				lat = append(lat, ms)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(len(lat)) / time.Since(start).Seconds(), lat, errs, first
}

// closedLoop runs conns loops that send the next request when the last
// one is answered, for d or until limit requests were sent (0: no limit).
func closedLoop(ctx context.Context, conns int, d time.Duration, limit int, fn func(context.Context, int) error) (float64, []float64, int, string) {
	var mu sync.Mutex
	var lat []float64
	errs := 0
	first := ""
	var next atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1))
				if limit > 0 && i > limit {
					return
				}
				t0 := time.Now()
				err := fn(ctx, i)
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					if errs == 0 {
						first = err.Error()
					}
					errs++
				} else {
					lat = append(lat, ms)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(len(lat)) / time.Since(start).Seconds(), lat, errs, first
}
