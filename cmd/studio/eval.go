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
	fs := flag.NewFlagSet("studio eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	model := fs.String("model", "", "generator model to measure")
	judgeName := fs.String("judge", "", "evaluation network (a model of kind evaluator; default: the only one in --models-dir)")
	ladder := fs.Bool("ladder", false, "measure the degradation ladder of real test images instead of a generator")
	data := fs.String("data", envOr(getenv, "STUDIO_DATA", "data/birds"), "data set in CUB-200-2011 layout (env STUDIO_DATA)")
	images := fs.Int("images", 1000, "seen-class requests, one per real test image of half A (the other half is the reference)")
	heldout := fs.Int("heldout", 500, "held-out-class captions (text models)")
	edits := fs.Int("edits", 300, "one-word caption edits (text models)")
	k := fs.Int("k", 3, "neighbourhood of precision, recall and coverage")
	candidates := fs.Int("candidates", 100, "captions each image is ranked among for R-precision")
	seed := fs.Uint64("seed", 0, "seed of every draw (halves, captions, edits, negatives, noise)")
	batch := fs.Int("batch", 32, "images per graph run")
	jsonOut := fs.String("json", "", `write the report as JSON to this file ("-": stdout, and the table goes to stderr)`)
	grid := fs.String("grid", "", "write a PNG of real test images beside the images generated for them (first 32 requests)")
	mdOut := fs.String("markdown", "", "with --ladder: also write the table as markdown to this file")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		if err == errHelp {
			fmt.Fprintln(stderr, evalUsage)
		}
		return err
	}
	if *model == "" && !*ladder {
		return &usageError{"--model (a generator) or --ladder is required"}
	}
	if *model != "" && *ladder {
		return &usageError{"--model and --ladder measure different things: give one"}
	}
	if *images < 8 || *heldout < 0 || *edits < 0 || *k < 1 || *candidates < 2 || *batch < 1 {
		return &usageError{"--images ≥ 8, --k ≥ 1, --candidates ≥ 2, --batch ≥ 1, and --heldout, --edits ≥ 0"}
	}
	cat, err := catalog.Open(*models)
	if err != nil {
		return err
	}
	jm, err := cat.Evaluator(*judgeName)
	if err != nil {
		return &usageError{fmt.Sprintf("--judge: %v", err)}
	}
	var gm *catalog.Model
	if *model != "" {
		m, ok := cat.Get(*model)
		if !ok {
			return &usageError{fmt.Sprintf("invalid --model=%q: not in %s", *model, *models)}
		}
		if !m.Manifest.Generates() {
			return &usageError{fmt.Sprintf("invalid --model=%q: a %s, not a generator", *model, m.Manifest.Kind)}
		}
		gm = m
	}
	ds, err := cub.Open(*data)
	if err != nil {
		return fmt.Errorf("data set: %w (make it with `make data`)", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := ort.Open(ort.Config{LibraryPath: *lib, IntraOpThreads: threadsOr(*threads)}, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	judge, err := generator.LoadJudge(rt, jm, 1)
	if err != nil {
		return err
	}
	defer judge.Close()
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	cfg := evaluate.Config{Images: *images, Heldout: *heldout, Edits: *edits, K: *k, Candidates: *candidates, Seed: *seed,
		Batch: *batch, Progress: progress}
	table := stdout
	if *jsonOut == "-" {
		table = stderr
	}
	var report any
	if *ladder {
		rep, err := evaluate.Ladder(ctx, judge, ds, cfg)
		if err != nil {
			return err
		}
		md := rep.Markdown()
		fmt.Fprint(table, md)
		if *mdOut != "" {
			if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil {
				return err
			}
		}
		report = rep
	} else {
		// The generator's own scorer is not loaded into the measure: the
		// judge grades, so the scorer's work is skipped.
		svc := generator.Load(rt, cat, generator.Config{MaxBatch: *batch, MaxImages: 1, NoScore: true}, log)
		defer svc.Close()
		if err, failed := svc.Failed()[gm.Manifest.Name]; failed {
			return fmt.Errorf("model %s did not load: %w", gm.Manifest.Name, err)
		}
		if *grid != "" {
			cfg.GridPairs = 32
		}
		rep, err := evaluate.Run(ctx, svc, gm, judge, ds, cfg)
		if err != nil {
			return err
		}
		printEval(table, rep)
		if *grid != "" {
			png, err := evaluate.Grid(rep.Grid, 4)
			if err != nil {
				return err
			}
			if err := os.WriteFile(*grid, png, 0o644); err != nil {
				return err
			}
		}
		report = rep
	}
	if *jsonOut == "" {
		return nil
	}
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if *jsonOut == "-" {
		_, err = stdout.Write(raw)
		return err
	}
	return os.WriteFile(*jsonOut, raw, 0o644)
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
