package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/generator/fewshot"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/ort"
)

const fewshotUsage = `usage: studio fewshot eval [flags]

N-way K-shot episodes on the fidelity classifier's frozen features:
(a) K real images per class, (b) the same plus synthetic images from a
data set made by "studio dataset make"; queries are real test images.

  studio dataset make --model attngan-birds --classes heldout --per-class 100 --out syn/heldout
  studio dataset make --model cvaegan-birds --classes seen --per-class 100 --out syn/seen
  studio fewshot eval --heldout-synthetic syn/heldout --seen-synthetic syn/seen

Run "studio fewshot eval -h" for its flags.`

// fewshotReport is the JSON that studio fewshot eval writes.
type fewshotReport struct {
	Data      string             `json:"data"`
	Scorer    string             `json:"scorer"`
	Synthetic []syntheticSet     `json:"synthetic"`
	Results   []fewshot.Result   `json:"results"`
	Seconds   float64            `json:"seconds"`
	Config    fewshotConfigShown `json:"config"`
}

type syntheticSet struct {
	Group    string  `json:"group"`
	Dir      string  `json:"dir"`
	Model    string  `json:"model"`
	Classes  int     `json:"classes"`
	Images   int     `json:"images"`
	Accepted float64 `json:"acceptance_rate,omitempty"`
	Prompts  string  `json:"prompt_source,omitempty"`
}

type fewshotConfigShown struct {
	Ways      int     `json:"ways"`
	Shots     []int   `json:"shots"`
	Queries   int     `json:"queries"`
	Episodes  int     `json:"episodes"`
	Synthetic int     `json:"synthetic_per_class"`
	Weight    float64 `json:"synthetic_weight"`
	Seed      uint64  `json:"seed"`
}

func runFewshot(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, fewshotUsage)
		if len(args) == 0 {
			return &usageError{"a subcommand is required: eval"}
		}
		return errHelp
	}
	if args[0] != "eval" {
		return &usageError{fmt.Sprintf("unknown subcommand %q (want eval)", args[0])}
	}
	fs := flag.NewFlagSet("studio fewshot eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", envOr(getenv, "STUDIO_DATA", "data/birds"), "real data set in CUB layout: supports and queries (env STUDIO_DATA)")
	heldSyn := fs.String("heldout-synthetic", "", "data set of synthetic images of the held-out classes (studio dataset make, attngan)")
	seenSyn := fs.String("seen-synthetic", "", "data set of synthetic images of the seen classes (studio dataset make, cvaegan)")
	ways := fs.Int("ways", 5, "classes per episode")
	shots := fs.String("shots", "1,5", "real images per class in the support set, comma-separated")
	queries := fs.Int("queries", 15, "real query images per class and episode")
	episodes := fs.Int("episodes", 600, "episodes per group and shot count")
	perClass := fs.Int("synthetic-per-class", 0, "synthetic images per class added in (b), drawn anew each episode; 0 = all")
	weight := fs.Float64("synthetic-weight", 1, "weight of one synthetic image relative to one real image")
	classifier := fs.String("classifier", "both", "prototype, linear or both")
	seed := fs.Uint64("seed", 0, "seed of the episode draws")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	scorer := fs.String("scorer", "", "classifier whose features are used (default: the synthetic sets' scorer)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if *heldSyn == "" && *seenSyn == "" {
		return &usageError{"at least one of --heldout-synthetic and --seen-synthetic is required"}
	}
	var shotList []int
	for _, s := range splitList(*shots) {
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 {
			return &usageError{fmt.Sprintf("invalid --shots=%q: want positive integers", *shots)}
		}
		shotList = append(shotList, k)
	}
	var classifiers []string
	switch *classifier {
	case "both":
		classifiers = []string{fewshot.Prototype, fewshot.Linear}
	case fewshot.Prototype, fewshot.Linear:
		classifiers = []string{*classifier}
	default:
		return &usageError{fmt.Sprintf("invalid --classifier=%q: want prototype, linear or both", *classifier)}
	}
	switch {
	case *ways < 2:
		return &usageError{fmt.Sprintf("invalid --ways=%d: want at least 2", *ways)}
	case *queries < 1 || *episodes < 1 || *perClass < 0 || len(shotList) == 0:
		return &usageError{"--queries, --episodes and --shots want positive values, --synthetic-per-class ≥ 0"}
	case !(*weight > 0):
		return &usageError{fmt.Sprintf("invalid --synthetic-weight=%v: want > 0", *weight)}
	}
	start := time.Now()
	ds, err := cub.Open(*data)
	if err != nil {
		return fmt.Errorf("data set: %w (make it with `make data`)", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(*models, ort.Config{LibraryPath: *lib, IntraOpThreads: threadsOr(*threads)}, generator.Config{MaxBatch: 64}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	type input struct{ group, dir string }
	var inputs []input
	if *heldSyn != "" {
		inputs = append(inputs, input{"held-out", *heldSyn})
	}
	if *seenSyn != "" {
		inputs = append(inputs, input{"seen", *seenSyn})
	}
	if *scorer == "" {
		man, err := dataset.ReadManifest(inputs[0].dir)
		if err != nil {
			return fmt.Errorf("synthetic set %s: %w", inputs[0].dir, err)
		}
		if *scorer, err = svc.ScorerName(man.Model); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "scoring the real images of %s with %s ...\n", *data, *scorer)
	ref, err := dataset.BuildReference(ctx, svc, *scorer, ds, nil)
	if err != nil {
		return err
	}
	heldout := map[string]bool{}
	for id := range ds.Heldout {
		heldout[ds.Classes[id]] = true
	}
	cat, err := catalog.Open(*models)
	if err != nil {
		return err
	}
	rep := fewshotReport{Data: *data, Scorer: *scorer, Config: fewshotConfigShown{Ways: *ways, Shots: shotList, Queries: *queries,
		Episodes: *episodes, Synthetic: *perClass, Weight: *weight, Seed: *seed}}
	for _, in := range inputs {
		fmt.Fprintf(stderr, "scoring the synthetic images of %s ...\n", in.dir)
		syn, man, err := fewshot.Synthetic(ctx, svc, *scorer, in.dir)
		if err != nil {
			return err
		}
		set := syntheticSet{Group: in.group, Dir: in.dir, Model: man.Model, Classes: len(syn), Prompts: man.Spec.PromptSource}
		for _, f := range syn {
			set.Images += len(f)
		}
		if r, err := dataset.ReadReport(in.dir); err == nil {
			set.Accepted = r.AcceptanceRate
		}
		if m, ok := cat.Get(man.Model); ok && m.Manifest.Kind == catalog.KindAttnGAN && set.Prompts == "" {
			set.Prompts = "attributes"
		}
		rep.Synthetic = append(rep.Synthetic, set)
		g := fewshot.Seen(ref, heldout, syn)
		if in.group == "held-out" {
			g = fewshot.HeldOut(ref, heldout, syn)
		}
		for _, c := range classifiers {
			res, err := fewshot.Evaluate(ctx, g, fewshot.Config{Ways: *ways, Shots: shotList, Queries: *queries, Episodes: *episodes,
				Seed: *seed, Synthetic: *perClass, Weight: *weight, Classifier: c})
			if err != nil {
				return err
			}
			rep.Results = append(rep.Results, res...)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	fmt.Fprint(stdout, fewshotMarkdown(rep))
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		return os.WriteFile(*jsonOut, append(raw, '\n'), 0o644)
	}
	fmt.Fprintf(stdout, "\n```json\n%s\n```\n", raw)
	return nil
}

// fewshotMarkdown is the results table, accuracies in percent with 95%
// confidence intervals.
func fewshotMarkdown(rep fewshotReport) string {
	var b strings.Builder
	models := map[string]string{}
	for _, s := range rep.Synthetic {
		models[s.Group] = s.Model
	}
	pct := func(s fewshot.Stat) string { return fmt.Sprintf("%.1f ± %.1f", 100*s.Mean, 100*s.CI95) }
	fmt.Fprintf(&b, "| classes | synthetic from | shots | classifier | (a) real only | (b) real + synthetic | gain (b − a) | synthetic only |\n")
	fmt.Fprintf(&b, "|---|---|---:|---|---:|---:|---:|---:|\n")
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %+.1f ± %.1f | %s |\n", r.Group, models[r.Group], r.Shots, r.Classifier,
			pct(r.Real), pct(r.Augmented), 100*r.Gain.Mean, 100*r.Gain.CI95, pct(r.SyntheticOnly))
	}
	if len(rep.Results) > 0 {
		r := rep.Results[0]
		syn := "all synthetic images of each class"
		if r.Synthetic > 0 {
			syn = fmt.Sprintf("%d synthetic images per class", r.Synthetic)
		}
		fmt.Fprintf(&b, "\n%d-way, %d real test queries per class, %d episodes per row (the same episodes for a and b); (b) adds %s (weight %g); accuracy %% ± 95%% CI; features of %s.\n",
			r.Ways, r.Queries, r.Episodes, syn, r.Weight, rep.Scorer)
	}
	for _, s := range rep.Synthetic {
		fmt.Fprintf(&b, "- %s: %s, %d images of %d classes (acceptance %.0f%%)", s.Group, s.Dir, s.Images, s.Classes, 100*s.Accepted)
		if s.Prompts != "" {
			fmt.Fprintf(&b, ", prompts from %s", s.Prompts)
		}
		fmt.Fprintln(&b)
	}
	return b.String()
}
