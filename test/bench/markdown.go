package main

import (
	"fmt"
	"math"
	"strings"
)

func num(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// cell is "median (min–max)", or "–" without samples.
func cell(s Stat) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

func ratioCell(s Stat) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f×", s.Median)
	}
	return fmt.Sprintf("**%.2f×** (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

func pctCell(s Stat) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmt.Sprintf("%+.0f%%", 100*s.Median)
	}
	return fmt.Sprintf("**%+.0f%%** (%+.0f … %+.0f%%)", 100*s.Median, 100*s.Min, 100*s.Max)
}

func loadCell(l []float64) string {
	var parts []string
	for _, v := range l {
		parts = append(parts, fmt.Sprintf("%.2f", v))
	}
	return strings.Join(parts, " / ")
}

// markdown writes BENCHMARKS.md. Over 100 lines because it is the
// document top to bottom, each paragraph after the one it follows; split
// by section, the order would only move into a list of calls.
func markdown(r *Report) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (`scripts/bench.sh`) on %s", r.Generated)
	if r.Commit != "" {
		w(" at commit `%s`", r.Commit)
	}
	if r.Seconds > 0 {
		w(", in %.1f minutes", r.Seconds/60)
	}
	w(". Run it again to measure your machine; every figure below comes from one run on one machine.\n\n")

	w("## Machine\n\n")
	w("| | |\n|---|---|\n")
	w("| CPU | %s |\n| cores | %d |\n", r.Machine.CPUModel, r.Machine.CPUs)
	if r.Machine.MemoryGB != "" {
		w("| memory | %s GiB |\n", r.Machine.MemoryGB)
	}
	if r.Machine.Kernel != "" {
		w("| kernel | %s |\n", r.Machine.Kernel)
	}
	w("| ONNX Runtime | %s, CPU, %d intra-op threads, idle threads sleep (`ort.Config.Spin` false) (Go %s) |\n", r.Runtime.ORT, r.Runtime.ORTThreads, r.Runtime.Go)
	omp := "default"
	if r.Runtime.TorchOMPWait != "" {
		omp = "`OMP_WAIT_POLICY=" + r.Runtime.TorchOMPWait + "`"
	}
	w("| PyTorch | %s eager, `torch.set_num_threads(%d)`, OpenMP wait policy %s, weights: %s |\n", r.Runtime.Torch, r.Runtime.TorchThreads, omp, r.Runtime.TorchWeights)
	w("| rounds | %d (ONNX Runtime and PyTorch alternate, one sample of each per round) |\n\n", r.Rounds)
	if len(r.Load) > 0 {
		w("Load average (1 / 5 / 15 min) at the end of each phase — other work on the machine shows up here:\n\n")
		w("| phase | load average |\n|---|---|\n")
		for _, l := range r.Load {
			w("| %s | %s |\n", l.Phase, loadCell(l.Load))
		}
		w("\n")
	}

	if len(r.Goals) > 0 {
		w("## Goals\n\n| goal | this run | met |\n|---|---|---|\n")
		for _, g := range r.Goals {
			var v string
			switch g.Unit {
			case "overhead":
				v = fmt.Sprintf("%+.0f%%", 100*g.Value)
			case "share":
				v = fmt.Sprintf("%.0f%%", 100*g.Value)
			case "ms":
				v = fmt.Sprintf("%.1f ms", g.Value)
			default:
				v = fmt.Sprintf("%.2f×", g.Value)
			}
			met := "no"
			if g.Met {
				met = "yes"
			}
			w("| %s | %s | %s |\n", g.Goal, v, met)
		}
		w("\n")
	}

	w("## Raw graphs: ONNX Runtime (Go) vs PyTorch eager\n\n")
	w("Images per second of each distinct graph file of `samples/models` (one forward pass, every output; ")
	w("inputs built from the manifest: T = `max_words`, random floats, zero masks, full-length captions). ")
	w("ONNX Runtime: `BenchmarkGraph` in `generator/bench_test.go`, through the `ort` package's session. ")
	w("PyTorch: `python3 -m fgtrain bench`, the training code's modules in eval mode under `torch.no_grad()`. ")
	w("Each cell: median over rounds (min–max). The ratio is ONNX Runtime ÷ PyTorch taken per round, then the median. ")
	w("CPU ms/image is the process's CPU time (every thread) per image; on a shared machine it depends less than wall time on the share of the cores each side got, ")
	w("and its ratio (PyTorch ÷ ONNX Runtime) is the second opinion on the first.\n\n")
	w("| graph | batch | ONNX Runtime images/s | PyTorch eager images/s | ratio | CPU ms/image ORT | CPU ms/image PyTorch | CPU ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, g := range r.Graphs {
		name := "`" + g.Graph + "`"
		if len(g.Aliases) > 0 {
			name += " (= " + strings.Join(g.Aliases, ", ") + ")"
		}
		w("| %s | %d | %s | %s | %s | %s | %s | %s |\n", name, g.Batch, cell(g.ORT), cell(g.Torch), ratioCell(g.Ratio),
			cell(g.ORTCPU), cell(g.TorchCPU), ratioCell(g.CPURatio))
	}
	w("\nPyTorch weights per graph:\n\n")
	seen := map[string]bool{}
	for _, g := range r.Graphs {
		if !seen[g.Graph] {
			seen[g.Graph] = true
			w("- `%s`: %s\n", g.Graph, g.Weights)
		}
	}
	w("\n")

	if len(r.Generate) > 0 {
		w("## Generator: the whole call, with and without fidelity scoring\n\n")
		w("`BenchmarkGenerate`: `Service.Generate` for one request of n = batch images (AttnGAN: text encoder, ")
		w("generator, PNG of every stage and attention map; CVAE-GAN: generator, PNG), with the fidelity scorer ")
		w("(classifier; for prompts also the DAMSM image and text encoders) and without (`NoScore`). ")
		w("Overhead = unscored ÷ scored − 1 per round (the extra time per image), then the median; the CPU columns do the same with ")
		w("CPU ms per image (scored ÷ unscored − 1).\n\n")
		w("| model | batch | scored images/s | unscored images/s | scoring overhead | CPU ms/image scored | unscored | overhead in CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, g := range r.Generate {
			w("| `%s` | %d | %s | %s | %s | %s | %s | %s |\n", g.Model, g.Batch, cell(g.Scored), cell(g.Unscored), pctCell(g.Overhead),
				cell(g.ScoredCPU), cell(g.UnscoredCPU), pctCell(g.OverheadCPU))
		}
		w("\n")
	}
	if len(r.Spin) > 0 {
		w("## ONNX Runtime's idle pool threads: sleeping vs spinning\n\n")
		w("Every session has its own intra-op thread pool, and a request runs several sessions one after another (text encoder, ")
		w("generator, classifier, DAMSM encoders) with Go work (PNG encoding) in between. By default ONNX Runtime lets idle pool ")
		w("threads spin; the studio turns that off (`ort.Config.Spin` false) so that threads left spinning by one session do not take ")
		w("the cores the next step needs. Same `BenchmarkGenerate`, same rounds; speed-up = sleeping ÷ spinning images/s per round.\n\n")
		w("| model | scored | batch | sleeping (studio) images/s | spinning (ORT default) images/s | speed-up |\n|---|---|---:|---:|---:|---:|\n")
		for _, sp := range r.Spin {
			w("| `%s` | %v | %d | %s | %s | %s |\n", sp.Model, sp.Scored, sp.Batch, cell(sp.Sleep), cell(sp.Spin), ratioCell(sp.Speedup))
		}
		w("\n")
	}
	liveSections(r, w)
	for _, n := range r.Notes {
		w("%s\n\n", n)
	}
	return b.String()
}

// liveSections writes the end-to-end, API, queue, cold start and memory
// sections, in the order of the document (over 100 lines for the reason
// markdown is).
func liveSections(r *Report, w func(string, ...any)) {
	l := r.Live
	if l == nil {
		w("## End to end, API, cold start, memory\n\n")
		w("**Not measured in this run** (`scripts/bench.sh` was run with `LIVE=0`, or the studio binary could not be built).\n\n")
	} else {
		w("## End to end: HTTP submit → every image fetched, at saturation\n\n")
		w("One API process (`studio serve` on Redis) and worker processes (`studio worker`, `--max-batch %d`; workers × loops: ", l.MaxBatch)
		w("processes × `--worker-concurrency`, each loop claiming and generating on its own sessions; ")
		w("%d ONNX Runtime threads divided among the loops) on one `redis-server`, all on this machine, loopback. ", l.Threads)
		w("Closed-loop clients in a separate process (this tool) each submit a job of %d images of `%s` (prompt \"%s\"), ", l.ImagesPerJob, l.Model, l.Prompt)
		w("follow its events (SSE) to the end and fetch every PNG, then submit the next; there are enough of them to keep about two full batches per worker queued. ")
		w("Images/s counts images fetched per measured window; latency is submit → last image fetched. ")
		if r.RawForE2E != nil {
			w("Raw = the generator in process (`BenchmarkGenerate`, scored, batch %d, all threads): %s images/s.\n\n", l.MaxBatch, cell(*r.RawForE2E))
		} else {
			w("\n\n")
		}
		w("| workers × loops | threads each | clients | images/s | p50 ms | p95 ms | p99 ms | ÷ raw | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for i, e := range l.E2E {
			ratio := "–"
			if i < len(r.E2ERatio) && r.E2ERatio[i].N > 0 {
				ratio = fmt.Sprintf("**%.0f%%** (%.0f–%.0f%%)", 100*r.E2ERatio[i].Median, 100*r.E2ERatio[i].Min, 100*r.E2ERatio[i].Max)
			}
			w("| %s | %d | %d | %s | %s | %s | %s | %s | %d |\n", e.procs(), e.ThreadsPerWorker, e.Clients, cell(e.ImagesPerS),
				cell(e.P50), cell(e.P95), cell(e.P99), ratio, e.Errors)
		}
		w("\nWhere the CPU went during the windows (cores used, CPU seconds per second):\n\n")
		raw := "–"
		if r.RawCPUForE2E != nil && r.RawCPUForE2E.N > 0 {
			raw = num(r.RawCPUForE2E.Median)
		}
		w("| workers × loops | workers' cores | API | redis-server | load generator | CPU ms/image, workers | CPU ms/image, workers + API + Redis | raw CPU ms/image ÷ that |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, e := range l.E2E {
			eff := "–"
			if r.RawCPUForE2E != nil && e.SystemCPUms > 0 {
				eff = fmt.Sprintf("%.0f%%", 100*r.RawCPUForE2E.Median/e.SystemCPUms)
			}
			w("| %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |\n", e.procs(), e.Cores["workers"], e.Cores["api"], e.Cores["redis"],
				e.Cores["load generator (this tool)"], num(e.WorkerCPUms), num(e.SystemCPUms), eff)
		}
		w("\nRaw CPU per image (the generator in process, scored, batch %d): %s ms. ", l.MaxBatch, raw)
		w("The last column is the serving system's CPU efficiency against it, whatever share of the cores the run got.\n")
		w("\nThe ÷ raw column compares with one process running the generator with all %d threads; the goal row uses the single worker, ", l.Threads)
		w("which has the same threads. Separate single-threaded worker processes can beat one process with several intra-op threads ")
		w("(a graph's operators parallelise imperfectly, and the Go work between graph runs, PNG encoding and queue calls, is serial), ")
		w("so rows with more workers may pass 100%%. With more worker processes than cores they share the cores: the rows show how ")
		w("throughput grows until the cores run out. On this machine the API, redis-server and the load generator share the cores with the workers.\n\n")

		w("## API only\n\n")
		w("The API process alone (no worker running), load from this tool as a second process over loopback. Submit enqueues in Redis ")
		w("(each run starts from an empty Redis); status reads a job submitted in the last run. Open loop: requests are sent at a fixed rate ")
		w("whatever the answers, and latency counts from when a request was due. Closed loop: 32 connections, each sends when answered.\n\n")
		w("CPU ms/request is the API process's and redis-server's CPU time per answered request.\n\n")
		w("| endpoint | load | requests/s | p50 ms | p99 ms | CPU ms/request | errors |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, a := range l.API {
			mode := a.Mode
			if a.Offered > 0 {
				mode = fmt.Sprintf("%s, %.0f/s offered", a.Mode, a.Offered)
			}
			w("| %s | %s | %s | %s | %s | %s | %d |\n", a.Endpoint, mode, cell(a.RPS), cell(a.P50), cell(a.P99), cell(a.CPUms), a.Errors)
		}
		w("\n")
		for _, a := range l.API {
			if a.FirstError != "" {
				w("- %s, %s: first error: `%s`\n", a.Endpoint, a.Mode, a.FirstError)
			}
		}
		w("\n")
	}
	if len(r.Queue) > 0 {
		w("## Queue only\n\n")
		w("`test/queuebench`: jobs through enqueue → claim → put result → ack with a no-op model (8 producers, 8 workers, claims of 16), ")
		w("and `redis-benchmark` XADD on the same `redis-server` in the same run.\n\n")
		w("| backend | jobs/s | redis-benchmark XADD/s | jobs per XADD |\n|---|---:|---:|---:|\n")
		for _, q := range r.Queue {
			ratio := "–"
			if q.Ratio.N > 0 {
				ratio = fmt.Sprintf("%.3f (%.3f–%.3f)", q.Ratio.Median, q.Ratio.Min, q.Ratio.Max)
			}
			w("| %s | %s | %s | %s |\n", q.Backend, cell(q.JobsPerS), cell(q.XADDPerS), ratio)
		}
		w("\nA job is several Redis round trips (enqueue, claim, result, ack, each a Lua script or MULTI) where XADD is one command, so the ratio is the cost of the protocol, not of Redis.\n\n")
	}
	if l == nil {
		return
	}
	if len(l.Cold) > 0 {
		w("## Cold start\n\n| what | seconds |\n|---|---:|\n")
		for _, c := range l.Cold {
			w("| %s | %s |\n", c.What, cell(c.Seconds))
		}
		w("\n")
	}
	if len(l.Memory) > 0 {
		w("## Memory (resident set)\n\n| process | state | MiB |\n|---|---|---:|\n")
		for _, m := range l.Memory {
			w("| %s | %s | %s |\n", m.Process, m.State, cell(m.MB))
		}
		w("\nPeaks are sampled every 200 ms during the end-to-end windows; each worker process holds its own sessions of every graph.\n\n")
	}
	if len(l.Load) > 0 {
		w("Load average at the end of each live phase: ")
		var parts []string
		for _, p := range l.Load {
			parts = append(parts, fmt.Sprintf("%s %s", p.Phase, loadCell(p.Load)))
		}
		w("%s.\n\n", strings.Join(parts, "; "))
	}
}
