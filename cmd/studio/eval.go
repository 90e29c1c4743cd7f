package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"text/tabwriter"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// runEval measures a generator on the test split of seen classes: one
// image per test image (its class, or one of its captions, seeded by the
// image id), scored by the model's scorer.
func runEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("studio eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	model := fs.String("model", "", "generator model to measure")
	data := fs.String("data", envOr(getenv, "STUDIO_DATA", "data/birds"), "data set in CUB-200-2011 layout (env STUDIO_DATA)")
	limit := fs.Int("limit", 0, "measure at most this many test images (0 = all)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *model == "" {
		return &usageError{"--model is required"}
	}
	ds, err := cub.Open(*data)
	if err != nil {
		return fmt.Errorf("data set: %w (make it with `make data`)", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(*models, ort.Config{LibraryPath: *lib, IntraOpThreads: threadsOr(*threads)}, generator.Config{MaxBatch: 32}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	cat, err := catalog.Open(*models)
	if err != nil {
		return err
	}
	m, ok := cat.Get(*model)
	if !ok {
		return &usageError{fmt.Sprintf("invalid --model=%q: not in %s", *model, *models)}
	}
	var reqs []generator.Request
	var labels []int
	for _, im := range ds.TestSeen() {
		r := generator.Request{Class: ds.Classes[im.ClassID], N: 1, Seed: uint64(im.ID)}
		if m.Manifest.Kind == catalog.KindAttnGAN {
			if len(im.Captions) == 0 {
				continue
			}
			r.Prompt = im.Captions[im.ID%len(im.Captions)]
		}
		reqs = append(reqs, r)
		labels = append(labels, im.ClassID)
		if *limit > 0 && len(reqs) == *limit {
			break
		}
	}
	if len(reqs) == 0 {
		return fmt.Errorf("no test images of seen classes in %s", *data)
	}
	rep, err := svc.Evaluate(ctx, *model, reqs, labels)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (scored by %s)\n", rep.Model, rep.Scorer)
	fmt.Fprintf(tw, "images\t%d test-split requests, %.1f s (%.1f images/s)\n", rep.Images, rep.Seconds, float64(rep.Images)/rep.Seconds)
	fmt.Fprintf(tw, "top-1 as requested class\t%.1f%% (mean p %.3f)\n", 100*rep.Top1, rep.MeanClassProb)
	fmt.Fprintf(tw, "intra-class diversity\t%.3f\n", rep.Diversity)
	fmt.Fprintf(tw, "Fréchet distance\t%.3f to real test, %.3f to real train\n", rep.FID, rep.FIDTrain)
	fmt.Fprintf(tw, "inception-style score\t%.2f\n", rep.IS)
	if rep.RPrecision != nil {
		fmt.Fprintf(tw, "R-precision (1 of 100)\t%.1f%%\n", 100**rep.RPrecision)
	}
	tw.Flush()
	if *jsonOut != "" {
		raw, err := json.MarshalIndent(jsonSafe(rep), "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(raw, '\n'), 0o644)
	}
	return nil
}

// jsonSafe replaces NaN (no statistics) with -1 so the report encodes.
func jsonSafe(r generator.Report) generator.Report {
	for _, f := range []*float64{&r.FID, &r.FIDTrain, &r.Diversity, &r.IS} {
		if math.IsNaN(*f) {
			*f = -1
		}
	}
	return r
}
