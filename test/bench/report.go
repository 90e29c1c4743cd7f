package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Goals of issues 4 and 9 that the raw benchmarks answer.
const (
	goalAttnGANRatio = 1.5  // ORT batched images/s over PyTorch eager, AttnGAN generator
	goalScoring      = 0.05 // extra time per image that fidelity scoring may add
)

// Report is BENCHMARKS.json.
type Report struct {
	Generated string      `json:"generated"`
	Commit    string      `json:"commit,omitempty"`
	Machine   Machine     `json:"machine"`
	Runtime   RuntimeInfo `json:"runtime"`
	Rounds    int         `json:"rounds"`
	Load      []LoadPoint `json:"load"`
	Graphs    []GraphRow  `json:"graphs"`
	Generate  []GenRow    `json:"generate"`
	Goals     []Goal      `json:"goals"`
	Seconds   float64     `json:"seconds,omitempty"`
	// Live is the running system (end to end, API, cold start, memory);
	// nil when the run skipped it.
	Live *Live `json:"live,omitempty"`
	// RawForE2E is the in-process reference of the end-to-end rows: the
	// generator's scored images/s at the workers' max batch.
	RawForE2E    *Stat   `json:"raw_for_end_to_end,omitempty"`
	RawCPUForE2E *Stat   `json:"raw_cpu_ms_per_image_for_end_to_end,omitempty"`
	E2ERatio     []Stat  `json:"end_to_end_ratio_to_raw,omitempty"`
	Queue        []Queue `json:"queue,omitempty"`
	// Spin compares the generator with ONNX Runtime's idle pool threads
	// sleeping (the studio's setting) and spinning (ONNX Runtime's default).
	Spin  []SpinRow `json:"spin,omitempty"`
	Notes []string  `json:"notes,omitempty"`
}

// SpinRow is one BenchmarkGenerate case with idle threads sleeping and
// spinning; Speedup is sleeping ÷ spinning images/s per round.
type SpinRow struct {
	Model   string `json:"model"`
	Scored  bool   `json:"scored"`
	Batch   int    `json:"batch"`
	Sleep   Stat   `json:"sleeping_images_per_s"`
	Spin    Stat   `json:"spinning_images_per_s"`
	Speedup Stat   `json:"speedup"`
}

// Queue is test/queuebench: jobs through the queue alone.
type Queue struct {
	Backend  string `json:"backend"`
	JobsPerS Stat   `json:"jobs_per_s"`
	XADDPerS Stat   `json:"redis_benchmark_xadd_per_s"`
	Ratio    Stat   `json:"jobs_per_xadd"`
}

// Machine is where the numbers were measured.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryGB string `json:"memory_gb,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
}

// RuntimeInfo names the two runtimes and their thread counts.
type RuntimeInfo struct {
	Go             string `json:"go"`
	ORT            string `json:"onnxruntime"`
	ORTThreads     int    `json:"onnxruntime_intra_op_threads"`
	Torch          string `json:"torch"`
	TorchThreads   int    `json:"torch_threads"`
	TorchWeights   string `json:"torch_weights"`
	TorchOMPWait   string `json:"torch_omp_wait_policy,omitempty"`
	GoBenchtime    string `json:"go_benchtime,omitempty"`
	TorchMinSecond string `json:"torch_min_seconds,omitempty"`
}

// LoadPoint is the load average when a phase ended.
type LoadPoint struct {
	Phase string    `json:"phase"`
	Load  []float64 `json:"loadavg"`
}

// GraphRow is one graph at one batch size on both runtimes.
type GraphRow struct {
	Graph   string   `json:"graph"`
	Aliases []string `json:"aliases,omitempty"`
	Batch   int      `json:"batch"`
	ORT     Stat     `json:"onnxruntime_images_per_s"`
	Torch   Stat     `json:"pytorch_eager_images_per_s"`
	// Ratio is ORT over PyTorch per round (paired), RatioOfMedians the
	// ratio of the two medians.
	Ratio          Stat    `json:"ratio"`
	RatioOfMedians float64 `json:"ratio_of_medians"`
	Weights        string  `json:"pytorch_weights"`
	// CPU milliseconds per image (all threads) and PyTorch's over ORT's
	// per round: steadier than wall time on a shared machine.
	ORTCPU   Stat `json:"onnxruntime_cpu_ms_per_image"`
	TorchCPU Stat `json:"pytorch_cpu_ms_per_image"`
	CPURatio Stat `json:"cpu_ratio"`
}

// GenRow is the generator's whole path (Service.Generate) with and
// without fidelity scoring.
type GenRow struct {
	Model    string `json:"model"`
	Batch    int    `json:"batch"`
	Scored   Stat   `json:"scored_images_per_s"`
	Unscored Stat   `json:"unscored_images_per_s"`
	// Overhead is unscored/scored - 1 per round: the extra time per image
	// that scoring costs.
	Overhead         Stat    `json:"scoring_overhead"`
	OverheadOfMedian float64 `json:"scoring_overhead_of_medians"`
	// The same in CPU time per image: scored ÷ unscored − 1 per round.
	ScoredCPU   Stat `json:"scored_cpu_ms_per_image"`
	UnscoredCPU Stat `json:"unscored_cpu_ms_per_image"`
	OverheadCPU Stat `json:"scoring_overhead_cpu"`
}

// Goal is one target and whether this run met it.
type Goal struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"` // "ratio", "overhead", "share" or "ms"
	Met   bool    `json:"met"`
	How   string  `json:"how"`
}

type torchRound struct {
	Torch      string  `json:"torch"`
	Threads    int     `json:"threads"`
	OMPWait    string  `json:"omp_wait_policy"`
	MinSeconds float64 `json:"min_seconds"`
	Graphs     []struct {
		Graph   string   `json:"graph"`
		Aliases []string `json:"aliases"`
		Weights string   `json:"weights"`
		Batches map[string]struct {
			Samples []float64 `json:"samples"`
			CPU     []float64 `json:"cpu_ms_per_image"`
		} `json:"batches"`
	} `json:"graphs"`
}

var (
	graphName  = regexp.MustCompile(`^BenchmarkGraph/(.+)/batch=(\d+)$`)
	genName    = regexp.MustCompile(`^BenchmarkGenerate/(.+)/scored=(true|false)/batch=(\d+)$`)
	ortLogLine = regexp.MustCompile(`onnxruntime (\S+), intra-op threads (\d+)`)
)

type key struct {
	name  string
	batch int
}

type spinKey struct {
	model  string
	scored bool
	batch  int
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder with go-<r>.txt, torch-<r>.json and load.txt")
	out := fs.String("out", "BENCHMARKS", "write OUT.md and OUT.json")
	commit := fs.String("commit", "", "commit the numbers belong to")
	benchtime := fs.String("benchtime", "", "the Go -benchtime used")
	seconds := fs.Float64("seconds", 0, "wall-clock seconds of the whole run")
	note := fs.String("note", "", "a line to add under the tables (e.g. why a section is missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("report: -dir is required")
	}
	rep, err := buildReport(*dir)
	if err != nil {
		return err
	}
	rep.Commit, rep.Runtime.GoBenchtime, rep.Seconds = *commit, *benchtime, *seconds
	if *note != "" {
		rep.Notes = append(rep.Notes, *note)
	}
	js, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(*out+".md", []byte(markdown(rep)), 0o644)
}

// buildReport reads the measurements of every round in dir into a Report.
// Over 100 lines because one pass over the rounds fills every table, and
// the ratios are taken per round from maps the tables share (ONNX Runtime
// ÷ PyTorch of the same round); split by table, each part would read the
// rounds again or take all of the maps.
func buildReport(dir string) (*Report, error) {
	rep := &Report{Generated: time.Now().UTC().Format(time.RFC3339), Machine: machine()}
	rep.Runtime.Go = runtime.Version()
	rounds, err := roundNumbers(dir)
	if err != nil {
		return nil, err
	}
	rep.Rounds = len(rounds)

	// Per round: ORT and PyTorch images/s by graph and batch; generator
	// images/s by model, scored and batch.
	ort := map[key][]float64{}
	torch := map[key][]float64{}
	ortCPU, torchCPU, cpuRatio := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	genCPU := map[string]map[key][]float64{"true": {}, "false": {}}
	overheadCPU := map[key][]float64{}
	ratio := map[key][]float64{}
	gen := map[string]map[key][]float64{"true": {}, "false": {}}
	overhead := map[key][]float64{}
	aliases := map[string][]string{}
	weights := map[string]string{}
	spinSleep := map[spinKey][]float64{}
	spinSpin := map[spinKey][]float64{}
	spinRatio := map[spinKey][]float64{}
	var order []key
	for _, r := range rounds {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("go-%d.txt", r)))
		if err != nil {
			return nil, err
		}
		if m := ortLogLine.FindSubmatch(raw); m != nil {
			rep.Runtime.ORT = string(m[1])
			rep.Runtime.ORTThreads, _ = strconv.Atoi(string(m[2]))
		}
		lines, err := parseGoBench(strings.NewReader(string(raw)))
		if err != nil {
			return nil, err
		}
		roundORT := map[key]float64{}
		roundORTCPU := map[key]float64{}
		roundGen := map[string]map[key]float64{"true": {}, "false": {}}
		roundGenCPU := map[string]map[key]float64{"true": {}, "false": {}}
		for _, l := range lines {
			v, ok := l.Metrics["images/s"]
			if !ok {
				continue
			}
			if m := graphName.FindStringSubmatch(l.Name); m != nil {
				b, _ := strconv.Atoi(m[2])
				k := key{m[1], b}
				roundORT[k] = v
				ort[k] = append(ort[k], v)
				if c, ok := l.Metrics["cpu-ms/image"]; ok {
					roundORTCPU[k] = c
					ortCPU[k] = append(ortCPU[k], c)
				}
			} else if m := genName.FindStringSubmatch(l.Name); m != nil {
				b, _ := strconv.Atoi(m[3])
				k := key{m[1], b}
				roundGen[m[2]][k] = v
				gen[m[2]][k] = append(gen[m[2]][k], v)
				if c, ok := l.Metrics["cpu-ms/image"]; ok {
					roundGenCPU[m[2]][k] = c
					genCPU[m[2]][k] = append(genCPU[m[2]][k], c)
				}
			}
		}
		if raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("go-spin-%d.txt", r))); err == nil {
			lines, err := parseGoBench(strings.NewReader(string(raw)))
			if err != nil {
				return nil, err
			}
			for _, l := range lines {
				m := genName.FindStringSubmatch(l.Name)
				v, ok := l.Metrics["images/s"]
				if m == nil || !ok {
					continue
				}
				b, _ := strconv.Atoi(m[3])
				k := spinKey{m[1], m[2] == "true", b}
				spinSpin[k] = append(spinSpin[k], v)
				if sl, ok := roundGen[m[2]][key{m[1], b}]; ok {
					spinSleep[k] = append(spinSleep[k], sl)
					if v > 0 {
						spinRatio[k] = append(spinRatio[k], sl/v)
					}
				}
			}
		}
		for k, s := range roundGen["true"] {
			if u, ok := roundGen["false"][k]; ok && s > 0 {
				overhead[k] = append(overhead[k], u/s-1)
			}
		}
		for k, s := range roundGenCPU["true"] {
			if u, ok := roundGenCPU["false"][k]; ok && u > 0 {
				overheadCPU[k] = append(overheadCPU[k], s/u-1)
			}
		}

		var tr torchRound
		if raw, err = os.ReadFile(filepath.Join(dir, fmt.Sprintf("torch-%d.json", r))); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &tr); err != nil {
			return nil, fmt.Errorf("torch-%d.json: %w", r, err)
		}
		rep.Runtime.Torch, rep.Runtime.TorchThreads, rep.Runtime.TorchOMPWait = tr.Torch, tr.Threads, tr.OMPWait
		rep.Runtime.TorchMinSecond = strconv.FormatFloat(tr.MinSeconds, 'g', -1, 64)
		for _, g := range tr.Graphs {
			aliases[g.Graph], weights[g.Graph] = g.Aliases, g.Weights
			for bs, b := range g.Batches {
				n, _ := strconv.Atoi(bs)
				k := key{g.Graph, n}
				if _, seen := torch[k]; !seen {
					order = append(order, k)
				}
				t := summarize(b.Samples).Median
				torch[k] = append(torch[k], t)
				if o, ok := roundORT[k]; ok && t > 0 {
					ratio[k] = append(ratio[k], o/t)
				}
				if len(b.CPU) > 0 {
					c := summarize(b.CPU).Median
					torchCPU[k] = append(torchCPU[k], c)
					if o, ok := roundORTCPU[k]; ok && o > 0 {
						cpuRatio[k] = append(cpuRatio[k], c/o)
					}
				}
			}
		}
	}
	for k := range ort {
		if _, ok := torch[k]; !ok {
			order = append(order, k)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].name != order[j].name {
			return order[i].name < order[j].name
		}
		return order[i].batch < order[j].batch
	})
	kinds := map[string]bool{}
	for _, k := range order {
		row := GraphRow{Graph: k.name, Aliases: aliases[k.name], Batch: k.batch, ORT: summarize(ort[k]),
			Torch: summarize(torch[k]), Ratio: summarize(ratio[k]), Weights: weights[k.name],
			ORTCPU: summarize(ortCPU[k]), TorchCPU: summarize(torchCPU[k]), CPURatio: summarize(cpuRatio[k])}
		if row.Torch.Median > 0 {
			row.RatioOfMedians = row.ORT.Median / row.Torch.Median
		}
		rep.Graphs = append(rep.Graphs, row)
		kinds[weightsKind(row.Weights)] = true
	}
	var wk []string
	for k := range kinds {
		wk = append(wk, k)
	}
	sort.Strings(wk)
	rep.Runtime.TorchWeights = strings.Join(wk, " + ")

	var gk []key
	for k := range gen["true"] {
		gk = append(gk, k)
	}
	sort.Slice(gk, func(i, j int) bool {
		if gk[i].name != gk[j].name {
			return gk[i].name < gk[j].name
		}
		return gk[i].batch < gk[j].batch
	})
	for _, k := range gk {
		row := GenRow{Model: k.name, Batch: k.batch, Scored: summarize(gen["true"][k]),
			Unscored: summarize(gen["false"][k]), Overhead: summarize(overhead[k]),
			ScoredCPU: summarize(genCPU["true"][k]), UnscoredCPU: summarize(genCPU["false"][k]),
			OverheadCPU: summarize(overheadCPU[k])}
		if row.Scored.Median > 0 {
			row.OverheadOfMedian = row.Unscored.Median/row.Scored.Median - 1
		}
		rep.Generate = append(rep.Generate, row)
	}
	var sk []spinKey
	for k := range spinSpin {
		sk = append(sk, k)
	}
	sort.Slice(sk, func(i, j int) bool {
		a, b := sk[i], sk[j]
		if a.model != b.model {
			return a.model < b.model
		}
		if a.scored != b.scored {
			return a.scored
		}
		return a.batch < b.batch
	})
	for _, k := range sk {
		rep.Spin = append(rep.Spin, SpinRow{Model: k.model, Scored: k.scored, Batch: k.batch,
			Sleep: summarize(spinSleep[k]), Spin: summarize(spinSpin[k]), Speedup: summarize(spinRatio[k])})
	}
	rep.Load, err = readLoad(filepath.Join(dir, "load.txt"))
	if err != nil {
		return nil, err
	}
	if err := readLive(dir, rep); err != nil {
		return nil, err
	}
	if rep.Queue, err = readQueue(filepath.Join(dir, "queue.txt")); err != nil {
		return nil, err
	}
	rep.Goals = goals(rep)
	return rep, nil
}

// readLive adds live.json, if the run made one, and the ratio of each
// end-to-end row to the generator's in-process throughput.
func readLive(dir string, rep *Report) error {
	raw, err := os.ReadFile(filepath.Join(dir, "live.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var l Live
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("live.json: %w", err)
	}
	rep.Live = &l
	for _, g := range rep.Generate {
		if g.Model == l.Model && g.Batch == l.MaxBatch {
			s, c := g.Scored, g.ScoredCPU
			rep.RawForE2E, rep.RawCPUForE2E = &s, &c
		}
	}
	for _, e := range l.E2E {
		var r Stat
		if rep.RawForE2E != nil && rep.RawForE2E.Median > 0 {
			var xs []float64
			for _, v := range e.ImagesPerS.Samples {
				xs = append(xs, v/rep.RawForE2E.Median)
			}
			r = summarize(xs)
		}
		rep.E2ERatio = append(rep.E2ERatio, r)
	}
	return nil
}

// readQueue reads test/queuebench's output (-count several).
func readQueue(path string) ([]Queue, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := parseGoBench(f)
	if err != nil {
		return nil, err
	}
	type acc struct{ jobs, xadd, ratio []float64 }
	by := map[string]*acc{}
	var order []string
	for _, l := range lines {
		j, ok := l.Metrics["jobs/s"]
		if !ok {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(l.Name, "Benchmark"), "Queue")
		a := by[name]
		if a == nil {
			a = &acc{}
			by[name] = a
			order = append(order, name)
		}
		a.jobs = append(a.jobs, j)
		if x, ok := l.Metrics["xadd/s"]; ok {
			a.xadd = append(a.xadd, x)
			a.ratio = append(a.ratio, j/x)
		}
	}
	var res []Queue
	for _, n := range order {
		a := by[n]
		res = append(res, Queue{Backend: n, JobsPerS: summarize(a.jobs), XADDPerS: summarize(a.xadd), Ratio: summarize(a.ratio)})
	}
	return res, nil
}

func weightsKind(w string) string {
	switch {
	case strings.HasPrefix(w, "checkpoint") && strings.Contains(w, "= exported weights"):
		return "checkpoints (= exported weights)"
	case strings.HasPrefix(w, "checkpoint"):
		return "checkpoints"
	case w == "":
		return "none"
	}
	return "random init"
}

// goals: AttnGAN's generator at every batch above 1; end to end, API;
// scoring at each generator's largest batch (a worker's batches are large
// at saturation).
func goals(rep *Report) []Goal {
	var res []Goal
	for _, r := range rep.Graphs {
		if strings.HasPrefix(r.Graph, "attngan") && strings.HasSuffix(r.Graph, "/generator") && r.Batch > 1 && r.Ratio.N > 0 {
			res = append(res, Goal{
				Goal:  fmt.Sprintf("ONNX Runtime ≥ %.1f× PyTorch eager, AttnGAN generator, batch %d", goalAttnGANRatio, r.Batch),
				Value: r.Ratio.Median, Unit: "ratio", Met: r.Ratio.Median >= goalAttnGANRatio,
				How: "median over rounds of ORT images/s ÷ PyTorch images/s measured in the same round",
			})
		}
	}
	if rep.Live != nil && rep.RawForE2E != nil {
		// Compare like with like: one worker with all the threads, as raw.
		for i, e := range rep.Live.E2E {
			if e.Workers != 1 || i >= len(rep.E2ERatio) || rep.E2ERatio[i].N == 0 {
				continue
			}
			res = append(res, Goal{
				Goal: fmt.Sprintf("end to end ≥ 95%% of raw at saturation (%s, 1 worker, %d loop(s) × %d thread(s))", rep.Live.Model,
					max(e.Loops, 1), e.ThreadsPerWorker),
				Value: rep.E2ERatio[i].Median, Unit: "share", Met: rep.E2ERatio[i].Median >= 0.95,
				How: fmt.Sprintf("images fetched over HTTP per second ÷ the generator's scored images/s in process at batch %d",
					rep.Live.MaxBatch),
			})
		}
	}
	if rep.Live != nil {
		for _, a := range rep.Live.API {
			if strings.HasPrefix(a.Endpoint, "submit") && a.Offered > 0 {
				res = append(res, Goal{
					Goal:  fmt.Sprintf("API submit p99 < 10 ms at %.0f requests/s", a.Offered),
					Value: a.P99.Median, Unit: "ms", Met: a.P99.Median < 10 && a.Errors == 0 && a.RPS.Median >= 0.95*a.Offered,
					How: "median over runs of the p99 latency, open loop (from when each request was due)",
				})
			}
		}
	}
	last := map[string]GenRow{}
	for _, g := range rep.Generate {
		if g.Batch >= last[g.Model].Batch {
			last[g.Model] = g
		}
	}
	var models []string
	for m := range last {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		g := last[m]
		res = append(res, Goal{
			Goal:  fmt.Sprintf("scoring adds ≤ %.0f%%, %s, batch %d", goalScoring*100, m, g.Batch),
			Value: g.Overhead.Median, Unit: "overhead", Met: g.Overhead.Median <= goalScoring,
			How: "median over rounds of (unscored images/s ÷ scored images/s − 1), Service.Generate",
		})
	}
	return res
}

func roundNumbers(dir string) ([]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "go-*.txt"))
	if err != nil {
		return nil, err
	}
	var rs []int
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "go-"), ".txt"))
		if err == nil {
			rs = append(rs, n)
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no go-<round>.txt in %s", dir)
	}
	sort.Ints(rs)
	return rs, nil
}

func readLoad(path string) ([]LoadPoint, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res []LoadPoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		var p LoadPoint
		p.Phase = strings.Join(fields[:len(fields)-3], " ")
		for _, s := range fields[len(fields)-3:] {
			v, _ := strconv.ParseFloat(s, 64)
			p.Load = append(p.Load, v)
		}
		res = append(res, p)
	}
	return res, sc.Err()
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(raw), "MemTotal: %g kB", &kb); err == nil {
			m.MemoryGB = strconv.FormatFloat(kb/1024/1024, 'f', 1, 64)
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	return m
}
