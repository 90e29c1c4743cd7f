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
data set made by "studio dataset make"; queries are real test-split
images. Episodes depend on --seed and the real data alone, so (a) is the
same with any synthetic set; without one, only (a) is measured (a
real-only baseline, for both class groups).

  studio dataset make --model attngan-birds --classes heldout --per-class 100 --out syn/heldout
  studio dataset make --model cvaegan-birds --classes seen --per-class 100 --out syn/seen
  studio fewshot eval --heldout-synthetic syn/heldout --seen-synthetic syn/seen
  studio fewshot eval --data CUB_200_2011 --scorer classifier-cub     # real only

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
	a, err := parseFewshotEval(args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	rep, err := fewshotEval(ctx, a, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, fewshotMarkdown(rep))
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if a.jsonOut != "" {
		return os.WriteFile(a.jsonOut, append(raw, '\n'), 0o644)
	}
	fmt.Fprintf(stdout, "\n```json\n%s\n```\n", raw)
	return nil
}

// fewshotArgs are the checked flags of `studio fewshot eval`.
type fewshotArgs struct {
	data, heldSyn, seenSyn, jsonOut, models, scorer, lib string
	ways, queries, episodes, perClass, threads           int
	skipMissing                                          bool
	shots                                                []int
	classifiers                                          []string
	weight                                               float64
	seed                                                 uint64
}

func parseFewshotEval(args []string, getenv func(string) string, stderr io.Writer) (fewshotArgs, error) {
	var a fewshotArgs
	fs := flag.NewFlagSet("studio fewshot eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.data, "data", envOr(getenv, "STUDIO_DATA", "data/birds"), "real data set in CUB layout: supports and queries (env STUDIO_DATA)")
	fs.StringVar(&a.heldSyn, "heldout-synthetic", "", "data set of synthetic images of the held-out classes (studio dataset make, attngan)")
	fs.StringVar(&a.seenSyn, "seen-synthetic", "", "data set of synthetic images of the seen classes (studio dataset make, cvaegan)")
	fs.IntVar(&a.ways, "ways", 5, "classes per episode")
	shots := fs.String("shots", "1,5", "real images per class in the support set, comma-separated")
	fs.IntVar(&a.queries, "queries", 15, "real query images per class and episode")
	fs.IntVar(&a.episodes, "episodes", 600, "episodes per group and shot count")
	fs.IntVar(&a.perClass, "synthetic-per-class", 0, "synthetic images per class added in (b), drawn anew each episode; 0 = all")
	fs.Float64Var(&a.weight, "synthetic-weight", 1, "weight of one synthetic image relative to one real image")
	classifier := fs.String("classifier", "both", "prototype, linear or both")
	fs.Uint64Var(&a.seed, "seed", 0, "seed of the episode draws")
	fs.StringVar(&a.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&a.models, "models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	fs.StringVar(&a.scorer, "scorer", "", "classifier whose features are used (default: the synthetic sets' scorer, or the only classifier of --models-dir)")
	fs.BoolVar(&a.skipMissing, "skip-missing", false, "leave out images listed in images.txt whose files are missing (a partial download)")
	fs.StringVar(&a.lib, "ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	fs.IntVar(&a.threads, "threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		return a, err
	}
	for _, s := range splitList(*shots) {
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 {
			return a, &usageError{fmt.Sprintf("invalid --shots=%q: want positive integers", *shots)}
		}
		a.shots = append(a.shots, k)
	}
	switch *classifier {
	case "both":
		a.classifiers = []string{fewshot.Prototype, fewshot.Linear}
	case fewshot.Prototype, fewshot.Linear:
		a.classifiers = []string{*classifier}
	default:
		return a, &usageError{fmt.Sprintf("invalid --classifier=%q: want prototype, linear or both", *classifier)}
	}
	switch {
	case a.ways < 2:
		return a, &usageError{fmt.Sprintf("invalid --ways=%d: want at least 2", a.ways)}
	case a.queries < 1 || a.episodes < 1 || a.perClass < 0 || len(a.shots) == 0:
		return a, &usageError{"--queries, --episodes and --shots want positive values, --synthetic-per-class ≥ 0"}
	case !(a.weight > 0):
		return a, &usageError{fmt.Sprintf("invalid --synthetic-weight=%v: want > 0", a.weight)}
	}
	return a, nil
}

// fewshotEval scores the real data set and each synthetic set with the
// scorer and runs the episodes of each group and classifier.
func fewshotEval(ctx context.Context, a fewshotArgs, stderr io.Writer) (fewshotReport, error) {
	start := time.Now()
	rep := fewshotReport{Data: a.data, Config: fewshotConfigShown{Ways: a.ways, Shots: a.shots, Queries: a.queries,
		Episodes: a.episodes, Synthetic: a.perClass, Weight: a.weight, Seed: a.seed}}
	ds, err := cub.OpenWith(a.data, cub.Options{SkipMissing: a.skipMissing})
	if err != nil {
		return rep, dataSetError(a.data, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(a.models, ort.Config{LibraryPath: a.lib, IntraOpThreads: threadsOr(a.threads)}, generator.Config{MaxBatch: 64}, log)
	if err != nil {
		return rep, err
	}
	defer closeAll()
	type input struct{ group, dir string }
	var inputs []input
	if a.heldSyn != "" {
		inputs = append(inputs, input{"held-out", a.heldSyn})
	}
	if a.seenSyn != "" {
		inputs = append(inputs, input{"seen", a.seenSyn})
	}
	cat, err := catalog.Open(a.models)
	if err != nil {
		return rep, err
	}
	switch {
	case a.scorer != "":
	case len(inputs) > 0:
		man, err := dataset.ReadManifest(inputs[0].dir)
		if err != nil {
			return rep, fmt.Errorf("synthetic set %s: %w", inputs[0].dir, err)
		}
		if a.scorer, err = svc.ScorerName(man.Model); err != nil {
			return rep, err
		}
	default:
		if a.scorer, err = onlyClassifier(cat, a.models); err != nil {
			return rep, err
		}
	}
	rep.Scorer = a.scorer
	fmt.Fprintf(stderr, "scoring the real images of %s with %s ...\n", a.data, a.scorer)
	ref, err := dataset.BuildReference(ctx, svc, a.scorer, ds, nil)
	if err != nil {
		return rep, err
	}
	heldout := map[string]bool{}
	for id := range ds.Heldout {
		heldout[ds.Classes[id]] = true
	}
	if len(inputs) == 0 { // real only: both groups (the held-out one if there is one)
		if len(heldout) > 0 {
			inputs = append(inputs, input{"held-out", ""})
		}
		inputs = append(inputs, input{"seen", ""})
	}
	for _, in := range inputs {
		var syn map[string][][]float32
		if in.dir != "" {
			fmt.Fprintf(stderr, "scoring the synthetic images of %s ...\n", in.dir)
			var man *dataset.Manifest
			if syn, man, err = fewshot.Synthetic(ctx, svc, a.scorer, in.dir); err != nil {
				return rep, err
			}
			rep.Synthetic = append(rep.Synthetic, describeSynthetic(in.group, in.dir, syn, man, cat))
		}
		g := fewshot.Seen(ref, heldout, syn)
		if in.group == "held-out" {
			g = fewshot.HeldOut(ref, heldout, syn)
		}
		for _, c := range a.classifiers {
			res, err := fewshot.Evaluate(ctx, g, fewshot.Config{Ways: a.ways, Shots: a.shots, Queries: a.queries, Episodes: a.episodes,
				Seed: a.seed, Synthetic: a.perClass, Weight: a.weight, Classifier: c})
			if err != nil {
				return rep, err
			}
			rep.Results = append(rep.Results, res...)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// describeSynthetic is the report's line about one synthetic set.
func describeSynthetic(group, dir string, syn map[string][][]float32, man *dataset.Manifest, cat *catalog.Catalog) syntheticSet {
	set := syntheticSet{Group: group, Dir: dir, Model: man.Model, Classes: len(syn), Prompts: man.Spec.PromptSource}
	for _, f := range syn {
		set.Images += len(f)
	}
	if r, err := dataset.ReadReport(dir); err == nil {
		set.Accepted = r.AcceptanceRate
	}
	if m, ok := cat.Get(man.Model); ok && m.Manifest.Kind == catalog.KindAttnGAN && set.Prompts == "" {
		set.Prompts = "attributes"
	}
	return set
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
		if r.RealOnly {
			from := models[r.Group]
			if from == "" {
				from = "—"
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | — | — | — |\n", r.Group, from, r.Shots, r.Classifier, pct(r.Real))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %+.1f ± %.1f | %s |\n", r.Group, models[r.Group], r.Shots, r.Classifier,
			pct(r.Real), pct(r.Augmented), 100*r.Gain.Mean, 100*r.Gain.CI95, pct(r.SyntheticOnly))
	}
	if len(rep.Results) > 0 {
		r := rep.Results[0]
		syn := "all synthetic images of each class"
		if r.Synthetic > 0 {
			syn = fmt.Sprintf("%d synthetic images per class", r.Synthetic)
		}
		fmt.Fprintf(&b, "\n%d-way, %d real test queries per class, %d episodes per row (the same episodes for a and b, fixed by the seed and the real data alone); (b) adds %s (weight %g); accuracy %% ± 95%% CI; features of %s.\n",
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
