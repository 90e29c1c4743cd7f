package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/evaluate"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/ort"
)

const evalUsage = `usage: studio eval --model NAME [flags]      measure a generator
       studio eval --ladder [flags]           prove the metrics on degraded real images

Every metric is measured by the evaluation network (--judge: a model of
kind evaluator, which no generator trained against) on the real test split,
each beside its reference on real test images. See README.md, "studio eval".`

// runEval measures a generator (or, with --ladder, the metrics themselves)
// with the judge on the test split.
func runEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseEvalFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	in, err := openEvalInputs(o)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := ort.Open(ort.Config{LibraryPath: o.lib, IntraOpThreads: threadsOr(o.threads)}, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	judge, err := generator.LoadJudge(rt, in.judge, 1)
	if err != nil {
		return err
	}
	defer judge.Close()
	var progress io.Writer = stderr
	if o.quiet {
		progress = nil
	}
	cfg := evaluate.Config{Images: o.images, Heldout: o.heldout, Edits: o.edits, K: o.k, Candidates: o.candidates, Seed: o.seed,
		Batch: o.batch, Progress: progress}
	table := stdout
	if o.jsonOut == "-" {
		table = stderr
	}
	var report any
	if o.ladder {
		report, err = evalLadder(ctx, judge, in.ds, cfg, table, o.mdOut)
	} else {
		report, err = evalGenerator(ctx, rt, in, judge, cfg, o, table, log)
	}
	if err != nil {
		return err
	}
	return writeEvalJSON(report, o.jsonOut, stdout)
}

// evalFlags are the flags of `studio eval`.
type evalFlags struct {
	model, judge, data                    string
	ladder, quiet                         bool
	images, heldout, edits, k, candidates int
	seed                                  uint64
	batch                                 int
	jsonOut, grid, mdOut, models, lib     string
	threads                               int
}

// parseEvalFlags parses and checks the flags of `studio eval`.
func parseEvalFlags(args []string, getenv func(string) string, stderr io.Writer) (*evalFlags, error) {
	var o evalFlags
	fs := flag.NewFlagSet("studio eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.model, "model", "", "generator model to measure")
	fs.StringVar(&o.judge, "judge", "", "evaluation network (a model of kind evaluator; default: the only one in --models-dir)")
	fs.BoolVar(&o.ladder, "ladder", false, "measure the degradation ladder of real test images instead of a generator")
	fs.StringVar(&o.data, "data", envOr(getenv, "STUDIO_DATA", "data/birds"), "data set in CUB-200-2011 layout (env STUDIO_DATA)")
	fs.IntVar(&o.images, "images", 1000, "seen-class requests, one per real test image of half A (the other half is the reference)")
	fs.IntVar(&o.heldout, "heldout", 500, "held-out-class captions (text models)")
	fs.IntVar(&o.edits, "edits", 300, "one-word caption edits (text models)")
	fs.IntVar(&o.k, "k", 3, "neighbourhood of precision, recall and coverage")
	fs.IntVar(&o.candidates, "candidates", 100, "captions each image is ranked among for R-precision")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of every draw (halves, captions, edits, negatives, noise)")
	fs.IntVar(&o.batch, "batch", 32, "images per graph run")
	fs.StringVar(&o.jsonOut, "json", "", `write the report as JSON to this file ("-": stdout, and the table goes to stderr)`)
	fs.StringVar(&o.grid, "grid", "", "write a PNG of real test images beside the images generated for them (first 32 requests)")
	fs.StringVar(&o.mdOut, "markdown", "", "with --ladder: also write the table as markdown to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&o.models, "models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	fs.StringVar(&o.lib, "ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	fs.IntVar(&o.threads, "threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		if err == errHelp {
			fmt.Fprintln(stderr, evalUsage)
		}
		return nil, err
	}
	if o.model == "" && !o.ladder {
		return nil, &usageError{"--model (a generator) or --ladder is required"}
	}
	if o.model != "" && o.ladder {
		return nil, &usageError{"--model and --ladder measure different things: give one"}
	}
	if o.images < 8 || o.heldout < 0 || o.edits < 0 || o.k < 1 || o.candidates < 2 || o.batch < 1 {
		return nil, &usageError{"--images ≥ 8, --k ≥ 1, --candidates ≥ 2, --batch ≥ 1, and --heldout, --edits ≥ 0"}
	}
	return &o, nil
}

// evalInputs are what `studio eval` measures with and on: the catalog,
// the judge's model, the generator (nil with --ladder) and the data set.
type evalInputs struct {
	cat   *catalog.Catalog
	judge *catalog.Model
	gen   *catalog.Model
	ds    *cub.Dataset
}

// openEvalInputs opens the catalog and the data set and picks the judge
// and the generator of the flags.
func openEvalInputs(o *evalFlags) (*evalInputs, error) {
	cat, err := catalog.Open(o.models)
	if err != nil {
		return nil, err
	}
	in := &evalInputs{cat: cat}
	if in.judge, err = cat.Evaluator(o.judge); err != nil {
		return nil, &usageError{fmt.Sprintf("--judge: %v", err)}
	}
	if o.model != "" {
		m, ok := cat.Get(o.model)
		if !ok {
			return nil, &usageError{fmt.Sprintf("invalid --model=%q: not in %s", o.model, o.models)}
		}
		if !m.Manifest.Generates() {
			return nil, &usageError{fmt.Sprintf("invalid --model=%q: a %s, not a generator", o.model, m.Manifest.Kind)}
		}
		in.gen = m
	}
	if in.ds, err = cub.Open(o.data); err != nil {
		return nil, fmt.Errorf("data set: %w (make it with `make data`)", err)
	}
	return in, nil
}

// evalLadder measures the degradation ladder and prints its table (also
// written as markdown to mdOut unless that is "").
func evalLadder(ctx context.Context, judge *generator.Judge, ds *cub.Dataset, cfg evaluate.Config, table io.Writer, mdOut string) (*evaluate.LadderReport, error) {
	rep, err := evaluate.Ladder(ctx, judge, ds, cfg)
	if err != nil {
		return nil, err
	}
	md := rep.Markdown()
	fmt.Fprint(table, md)
	if mdOut != "" {
		if err := os.WriteFile(mdOut, []byte(md), 0o644); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// evalGenerator measures the generator of in, prints the table and
// writes the grid of --grid.
func evalGenerator(ctx context.Context, rt *ort.Runtime, in *evalInputs, judge *generator.Judge, cfg evaluate.Config, o *evalFlags, table io.Writer, log *slog.Logger) (*evaluate.Report, error) {
	// The generator's own scorer is not loaded into the measure: the
	// judge grades, so the scorer's work is skipped.
	svc := generator.Load(rt, in.cat, generator.Config{MaxBatch: o.batch, MaxImages: 1, NoScore: true}, log)
	defer svc.Close()
	if err, failed := svc.Failed()[in.gen.Manifest.Name]; failed {
		return nil, fmt.Errorf("model %s did not load: %w", in.gen.Manifest.Name, err)
	}
	if o.grid != "" {
		cfg.GridPairs = 32
	}
	rep, err := evaluate.Run(ctx, svc, in.gen, judge, in.ds, cfg)
	if err != nil {
		return nil, err
	}
	printEval(table, rep)
	if o.grid != "" {
		png, err := evaluate.Grid(rep.Grid, 4)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(o.grid, png, 0o644); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// writeEvalJSON writes the report as JSON to path ("-": stdout; "":
// nowhere).
func writeEvalJSON(report any, path string, stdout io.Writer) error {
	if path == "" {
		return nil
	}
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if path == "-" {
		_, err = stdout.Write(raw)
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// printEval writes the report as a table: each metric beside its
// reference on real test images.
func printEval(w io.Writer, r *evaluate.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (%s), judged by %s\n", r.Model, r.Kind, r.Judge)
	fmt.Fprintf(tw, "images\t%d generated for seen-class test images, %d real reference images, %d held-out, %d edits (%.0f s)\n",
		r.Images, r.ReferenceImages, r.HeldoutImages, r.Edits, r.Seconds)
	fmt.Fprintf(tw, "metric\tgenerated\treal reference\n")
	rows := []struct{ name, gen, ref string }{
		{"fd (" + r.FDSpace + ")", "fd", "fd_real_floor"},
		{"precision (k-NN)", "precision", "precision_real"},
		{"recall (k-NN)", "recall", "recall_real"},
		{"coverage (k-NN)", "coverage", "coverage_real"},
		{"top-1 = requested class", "top1", "top1_real"},
		{"attributes confirmed, seen", "attr_agreement_seen", "attr_agreement_seen_real"},
		{"attributes confirmed, held-out", "attr_agreement_heldout", "attr_agreement_heldout_real"},
		{"edit: new value read", "edit_success", "edit_success_real"},
		{"edit: other values kept", "edit_keep", "edit_keep_real"},
		{"R-precision (1 of 100)", "r_precision", "r_precision_real"},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.name, cell(r.Value(row.gen), row.gen == "fd"), cell(r.Value(row.ref), row.gen == "fd"))
	}
	tw.Flush()
	for _, k := range evaluate.Keys {
		if why, ok := r.NullReasons[k]; ok {
			fmt.Fprintf(w, "%s: null (%s)\n", k, why)
		}
	}
}

func cell(v *float64, plain bool) string {
	switch {
	case v == nil:
		return "null"
	case plain:
		return fmt.Sprintf("%.4g", *v)
	}
	return fmt.Sprintf("%.3f", *v)
}
