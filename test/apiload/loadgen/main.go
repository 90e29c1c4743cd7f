// Command loadgen drives a studio API over HTTP from its own process:
// a phase of job submissions, then a phase of status reads of the jobs it
// made, each with a fixed number of concurrent clients. It prints one JSON
// line per phase: requests, errors, requests/s, p50 and p99 latency.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Phase    string  `json:"phase"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "studio base URL (loopback)")
	token := flag.String("token", "", "API key")
	model := flag.String("model", "cvaegan-birds", "model of the submitted jobs")
	class := flag.String("class", "", "class of the submitted jobs")
	submits := flag.Int("submits", 2000, "jobs to submit")
	reads := flag.Int("reads", 4000, "status reads")
	conc := flag.Int("c", 16, "concurrent clients")
	flag.Parse()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}
	do := func(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, err
	}
	ctx := context.Background()
	body, _ := json.Marshal(map[string]any{"model": *model, "class": *class, "n": 1})
	var idsMu sync.Mutex
	var ids []string
	emit(phase("submit", *submits, *conc, func(int) error {
		code, out, err := do(ctx, "POST", *base+"/v1/generations", body)
		if err != nil {
			return err
		}
		if code != http.StatusAccepted {
			return fmt.Errorf("status %d: %.200s", code, out)
		}
		var j struct{ ID string }
		if err := json.Unmarshal(out, &j); err != nil {
			return err
		}
		idsMu.Lock()
		ids = append(ids, j.ID)
		idsMu.Unlock()
		return nil
	}))
	if len(ids) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no job submitted")
		os.Exit(1)
	}
	emit(phase("status", *reads, *conc, func(i int) error {
		code, out, err := do(ctx, "GET", *base+"/v1/generations/"+ids[i%len(ids)], nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d: %.200s", code, out)
		}
		return nil
	}))
}

// phase runs n calls of f on conc goroutines and measures them.
func phase(name string, n, conc int, f func(i int) error) result {
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := f(i); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %d errors, first: %s\n", name, errs.Load(), e)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return result{Phase: name, Requests: n, Errors: int(errs.Load()), Seconds: el.Seconds(),
		RPS: float64(n) / el.Seconds(), P50ms: ms(lat[n/2]), P99ms: ms(lat[n*99/100])}
}

func emit(r result) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}
