package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/studio/api"
)

const datasetUsage = `usage: studio dataset <make|verify> [flags]

  make    make a synthetic data set (ImageFolder, Hugging Face imagefolder,
          WebDataset shards, manifest with sha256); resumable: run the same
          command again after an interruption
  verify  check a data set's files against its manifest

Run "studio dataset make -h" for its flags.`

func runDataset(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{"a subcommand is required: make or verify (see studio dataset -h)"}
	}
	switch args[0] {
	case "make":
		return runDatasetMake(ctx, args[1:], getenv, stdout, stderr)
	case "verify":
		return runDatasetVerify(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, datasetUsage)
		return errHelp
	}
	return &usageError{fmt.Sprintf("unknown subcommand %q (want make or verify)", args[0])}
}

func runDatasetVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("studio dataset verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(fs, args, stderr); err != nil {
			return err
		}
		return &usageError{"usage: studio dataset verify DIR"}
	}
	m, err := dataset.Verify(args[0])
	if err != nil {
		return err
	}
	n := 0
	for _, c := range m.Classes {
		n += c.Count
	}
	fmt.Fprintf(stdout, "%s: %d files match the manifest (%d images, %d classes, %d shards)\n", args[0], len(m.Files), n, len(m.Classes), len(m.Layouts.WebDataset))
	return nil
}

func runDatasetMake(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("studio dataset make", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	model := fs.String("model", "", "generator: cvaegan (seen classes) or attngan (any class that can be described)")
	classes := fs.String("classes", "all", `comma-separated classes: ids (5 or 005), names (005.Name), folder names (005_Name) or labels, or "seen", "heldout", "all" (all the model can make)`)
	perClass := fs.Int("per-class", 100, "images kept per class")
	minFid := fs.Float64("min-fidelity", 0.5, "keep images whose fidelity (class probability; attribute match for held-out classes; DAMSM similarity for prompts) reaches this")
	measure := fs.String("fidelity-measure", "", "force a fidelity measure: class_probability, attribute_agreement or damsm_similarity (default: the scorer's choice: class_probability for trained classes, attribute_agreement over the attributes of held-out ones)")
	maxAttempts := fs.Int("max-attempts", 4, "regeneration budget: at most this many images made per image kept, on average over the classes (a hard class gets what easy ones left unused)")
	novelty := fs.String("min-novelty", "auto", `reject images closer than this (classifier feature distance) to their nearest real training image; "auto" = closer than 99% of real training images are to their nearest neighbour; 0 = keep all (distances still recorded)`)
	seed := fs.Uint64("seed", 0, "job seed; attempt k of class c uses seed hash(seed, c) + k")
	prompts := fs.String("prompts", "attributes", `text models: "attributes" (descriptions written from each class's attributes), "captions" (the data set's captions of the class), or a file of "class<TAB>prompt" lines`)
	shard := fs.Int("shard-size", 1000, "samples per WebDataset shard")
	out := fs.String("out", "", "directory of the data set (new or empty; or one an interrupted run left, to continue it)")
	data := fs.String("data", envOr(getenv, "STUDIO_DATA", "data/birds"), `real data set (CUB layout) for novelty and captions; "" = no novelty check (env STUDIO_DATA)`)
	batch := fs.Int("batch", 64, "images per generator call")
	skipMissing := fs.Bool("skip-missing", false, "leave out real images listed in images.txt whose files are missing (a partial download)")
	progress := fs.String("progress", "auto", "progress on stderr: bar, lines, none, or auto (bar on a terminal, else lines)")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	cache := fs.String("feature-cache", envOr(getenv, "STUDIO_FEATURE_CACHE", dataset.DefaultFeatureCacheDir()), `folder of the real images' features (novelty reference), keyed by the scorer's and the data's hashes and reused across runs; "" = keep none (env STUDIO_FEATURE_CACHE)`)
	server := fs.String("server", envOr(getenv, "STUDIO_SERVER", ""), "make the data set on a studio server at this URL instead of in this process, then download it into --out and verify it; Ctrl-C/SIGTERM cancels the server's job; the server checks novelty against its own real data (not with --data, --batch, --models-dir, --ort-lib, --threads, --feature-cache) (env STUDIO_SERVER)")
	token := fs.String("token", "", "API key for --server (env STUDIO_API_KEY)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *model == "":
		return &usageError{"--model is required"}
	case *out == "":
		return &usageError{"--out is required"}
	case *batch < 1:
		return &usageError{fmt.Sprintf("invalid --batch=%d: want at least 1", *batch)}
	}
	mode, err := progressMode(*progress, stderr)
	if err != nil {
		return err
	}
	spec := dataset.Spec{Model: *model, Classes: splitList(*classes), PerClass: *perClass, MinFidelity: *minFid,
		Measure: *measure, MaxAttempts: *maxAttempts, Seed: *seed, ShardSize: *shard}
	spec.MinNoveltyAuto = *novelty == "auto"
	if !spec.MinNoveltyAuto {
		v, err := strconv.ParseFloat(*novelty, 64)
		if err != nil || v < 0 {
			return &usageError{fmt.Sprintf("invalid --min-novelty=%q: want auto or a distance ≥ 0", *novelty)}
		}
		spec.MinNovelty = v
	}
	if *server != "" {
		key := *token
		if key == "" {
			key = getenv("STUDIO_API_KEY")
		}
		req, err := datasetRequest(spec, *prompts)
		if err != nil {
			return err
		}
		return remoteDatasetMake(ctx, fs, *server, key, req, *out, mode, stdout, stderr)
	}

	return localDatasetMake(ctx, localMake{spec: spec, models: *models, data: *data, prompts: *prompts, cache: *cache,
		lib: *lib, threads: *threads, batch: *batch, out: *out, mode: mode, skipMissing: *skipMissing}, stdout, stderr)
}

// localMake are the flags of `studio dataset make` without --server.
type localMake struct {
	spec                                         dataset.Spec
	models, data, prompts, cache, lib, out, mode string
	threads, batch                               int
	skipMissing                                  bool
}

// localDatasetMake makes the data set in this process. Everything that
// can be wrong with the flags, the spec and --out is found before any
// model is loaded or any image scored.
func localDatasetMake(ctx context.Context, a localMake, stdout, stderr io.Writer) error {
	spec := a.spec
	cat, err := catalog.Open(a.models)
	if err != nil {
		return err
	}
	m, ok := cat.Get(spec.Model)
	if !ok {
		return &usageError{fmt.Sprintf("invalid --model=%q: not in %s", spec.Model, a.models)}
	}
	var ds *cub.Dataset
	if a.data != "" {
		if ds, err = cub.OpenWith(a.data, cub.Options{SkipMissing: a.skipMissing}); err != nil {
			return fmt.Errorf("%w; or pass --data \"\" to skip the novelty check", dataSetError(a.data, err))
		}
	} else if spec.MinNoveltyAuto {
		spec.MinNoveltyAuto = false
	}
	if m.Manifest.Kind == catalog.KindAttnGAN {
		if spec.Prompts, spec.PromptSource, err = loadPrompts(a.prompts, ds); err != nil {
			return err
		}
	}
	if _, err := dataset.Preflight(nil, m, spec, a.out, ds != nil); err != nil {
		return specFlagError(err, a.out)
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(a.models, ort.Config{LibraryPath: a.lib, IntraOpThreads: threadsOr(a.threads)},
		generator.Config{MaxBatch: min(a.batch, 64), MaxImages: 1}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	if err, bad := svc.Failed()[spec.Model]; bad {
		return fmt.Errorf("model %s did not load: %w", spec.Model, err)
	}
	if _, err := dataset.Preflight(svc, m, spec, a.out, ds != nil); err != nil {
		return specFlagError(err, a.out)
	}

	var ref *dataset.Reference
	if ds != nil {
		if ref, err = noveltyReference(ctx, svc, cat, ds, a, stderr); err != nil {
			return err
		}
	}

	bar := newProgressBar(stderr, a.mode)
	rep, err := dataset.Make(ctx, svc, m, spec, a.out, dataset.Options{Reference: ref, Batch: a.batch, Progress: bar.update})
	bar.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%w; run the same command again to continue", err)
		}
		return specFlagError(err, a.out)
	}
	printDatasetReport(stdout, rep)
	printShort(stderr, rep, "run the same command with a larger --max-attempts to make more of them (kept images are reused), or lower --min-fidelity with a new --out")
	return nil
}

// specFlags names the flag of each spec field.
var specFlags = map[string]string{"model": "--model", "classes": "--classes", "per_class": "--per-class", "min_fidelity": "--min-fidelity",
	"fidelity_measure": "--fidelity-measure", "max_attempts": "--max-attempts", "min_novelty": "--min-novelty",
	"prompts": "--prompts", "shard_size": "--shard-size"}

// specFlagError words a spec or directory error in terms of the flags:
// a usage error naming the flag, or --out for a directory that holds
// something else.
func specFlagError(err error, out string) error {
	var se *dataset.SpecError
	switch {
	case errors.As(err, &se):
		if f, ok := specFlags[se.Field]; ok {
			return &usageError{fmt.Sprintf("invalid %s: %s", f, se.Msg)}
		}
	case errors.Is(err, dataset.ErrSpecChanged), errors.Is(err, dataset.ErrNotEmpty):
		return &usageError{fmt.Sprintf("invalid --out=%q: %v", out, err)}
	}
	return err
}

// printShort says which classes fell short of --per-class and by how
// much, and what to do about it; a data set with short classes is still
// a data set (the command succeeds).
func printShort(w io.Writer, rep *dataset.Report, advice string) {
	if len(rep.Short) == 0 {
		return
	}
	missing := 0
	for _, c := range rep.Classes {
		missing += max(0, rep.PerClass-c.Accepted)
	}
	fmt.Fprintf(w, "warning: %d of %d classes have fewer than %d images (%d images short in all):\n", len(rep.Short), len(rep.Classes), rep.PerClass, missing)
	for _, c := range rep.Classes {
		if c.Accepted < rep.PerClass {
			fmt.Fprintf(w, "  %s: %d of %d (%d short) after %d attempts, %.0f%% accepted (%d below the fidelity bar, %d near-copies)\n",
				c.Class, c.Accepted, rep.PerClass, rep.PerClass-c.Accepted, c.Attempts, 100*c.AcceptanceRate, c.RejectedFidelity, c.RejectedNovelty)
		}
	}
	fmt.Fprintf(w, "%s\n", advice)
}

// progressMode resolves --progress: auto is a bar on a terminal, else lines.
func progressMode(progress string, stderr io.Writer) (string, error) {
	mode := progress
	if mode == "auto" {
		mode = "lines"
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				mode = "bar"
			}
		}
	}
	if mode != "bar" && mode != "lines" && mode != "none" {
		return "", &usageError{fmt.Sprintf("invalid --progress=%q: want bar, lines, none or auto", progress)}
	}
	return mode, nil
}

// datasetRequest is spec as the API takes it, with the prompts of
// --prompts read from their file (captions need the real data set, which
// only the server has).
func datasetRequest(spec dataset.Spec, prompts string) (api.DatasetRequest, error) {
	seed := spec.Seed
	req := api.DatasetRequest{Model: spec.Model, Classes: spec.Classes, PerClass: spec.PerClass, MinFidelity: spec.MinFidelity,
		FidelityMeasure: spec.Measure, MaxAttempts: spec.MaxAttempts, MinNovelty: spec.MinNovelty, MinNoveltyAuto: spec.MinNoveltyAuto,
		Seed: &seed, ShardSize: spec.ShardSize}
	switch prompts {
	case "", "attributes":
	case "captions":
		return req, &usageError{"--prompts captions needs the real data set, which is not available with --server: pass a file of class<TAB>prompt lines"}
	default:
		var err error
		if req.Prompts, _, err = loadPrompts(prompts, nil); err != nil {
			return req, err
		}
	}
	return req, nil
}

// noveltyReference is the real images of ds scored by the scorer of the
// model of a.spec: from the feature cache (a.cache) when it holds them for
// this scorer and these images, else scored and kept there.
func noveltyReference(ctx context.Context, svc *generator.Service, cat *catalog.Catalog, ds *cub.Dataset, a localMake, stderr io.Writer) (*dataset.Reference, error) {
	scorer, err := svc.ScorerName(a.spec.Model)
	if err != nil {
		return nil, err
	}
	sm, ok := cat.Get(scorer)
	if !ok {
		return nil, fmt.Errorf("scorer %s of %s is not in %s", scorer, a.spec.Model, a.models)
	}
	t0 := time.Now()
	fmt.Fprintf(stderr, "novelty reference: the real images of %s scored by %s ...\n", a.data, scorer)
	ref, hit, err := dataset.FeatureCache{Dir: a.cache}.Reference(ctx, svc, sm, ds)
	if err != nil {
		return nil, err
	}
	how := "scored"
	if hit {
		how = "read from the feature cache"
	} else if a.cache != "" {
		how = "scored and kept in " + a.cache
	}
	fmt.Fprintf(stderr, "%d real images (%d train) %s in %.1fs\n", len(ref.Images), ref.TrainCount(), how, time.Since(t0).Seconds())
	return ref, nil
}

func printDatasetReport(w io.Writer, rep *dataset.Report) {
	checked := rep.ReferenceImages > 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tkept\tmade\taccept\trej fid\trej novel\tmean fid\tfidelity measure\tnovelty min\tdiversity\treal div\t")
	for _, c := range rep.Classes {
		novelty, real := "n/a", "n/a"
		if checked {
			novelty = fmt.Sprintf("%.3f", c.NoveltyMin)
		}
		if c.RealDiversity > 0 {
			real = fmt.Sprintf("%.3f", c.RealDiversity)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%d\t%d\t%.3f\t%s\t%s\t%.3f\t%s\t\n", c.Class, c.Accepted, c.Attempts, 100*c.AcceptanceRate,
			c.RejectedFidelity, c.RejectedNovelty, c.MeanFidelity, c.FidelityMeasure, novelty, c.DiversityMean, real)
	}
	tw.Flush()
	r := rep.Run
	novelty := "no novelty check (no real data set)"
	if checked {
		novelty = fmt.Sprintf("min novelty %.3f against %d real training images", rep.MinNovelty, rep.ReferenceImages)
	}
	fmt.Fprintf(w, "\n%s: %d images kept of %d made (%.1f%%), %d classes; min fidelity %.2f, %s\n",
		rep.Dir, rep.Accepted, rep.Attempts, 100*rep.AcceptanceRate, len(rep.Classes), rep.MinFidelity, novelty)
	realDiv := "n/a"
	if rep.RealDiversity > 0 {
		realDiv = fmt.Sprintf("%.3f", rep.RealDiversity)
	}
	fmt.Fprintf(w, "diversity (mean pairwise feature distance within a class): %.3f generated, %s real\n", rep.Diversity, realDiv)
	fmt.Fprintf(w, "this run: %d made, %d kept (%d from an earlier run) in %.1fs: %.1f kept/s, %.1f made/s; generator alone %.1f images/s (%.1fs)\n",
		r.Made, r.Kept, r.Resumed, r.Seconds, r.KeptPerSec, r.MadePerSec, r.GeneratorPerSec, r.GenerateSeconds)
}

// loadPrompts reads the descriptions for a text model: none (the data
// set package writes them from attributes), the data set's captions, or
// a file of class<TAB>prompt lines.
func loadPrompts(src string, ds *cub.Dataset) (map[string][]string, string, error) {
	switch src {
	case "", "attributes":
		return nil, "attributes", nil
	case "captions":
		if ds == nil {
			return nil, "", &usageError{"--prompts captions needs --data"}
		}
		res := map[string][]string{}
		seen := map[string]bool{}
		for _, im := range ds.Images {
			c := ds.Classes[im.ClassID]
			for _, p := range im.Captions {
				if !seen[c+"\x00"+p] {
					seen[c+"\x00"+p] = true
					res[c] = append(res[c], p)
				}
			}
		}
		for _, ps := range res {
			sort.Strings(ps)
		}
		return res, "captions", nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, "", &usageError{fmt.Sprintf("invalid --prompts=%q: want attributes, captions or a file: %v", src, err)}
	}
	defer f.Close()
	res := map[string][]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		class, prompt, ok := strings.Cut(line, "\t")
		if strings.HasPrefix(line, "{") {
			var row struct{ Class, Prompt string }
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				return nil, "", fmt.Errorf("%s:%d: %w", src, n, err)
			}
			class, prompt, ok = row.Class, row.Prompt, row.Class != "" && row.Prompt != ""
		}
		if !ok || strings.TrimSpace(prompt) == "" {
			return nil, "", fmt.Errorf("%s:%d: want class<TAB>prompt", src, n)
		}
		res[strings.TrimSpace(class)] = append(res[strings.TrimSpace(class)], strings.TrimSpace(prompt))
	}
	if err := sc.Err(); err != nil {
		return nil, "", err
	}
	return res, "file " + filepath.Base(src), nil
}

func splitList(s string) []string {
	var res []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			res = append(res, p)
		}
	}
	return res
}

func roundDown(x float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(x*p)) / p
}

// progressBar draws Make's progress on stderr: a bar redrawn in place on
// a terminal, or a line every few seconds in a log.
type progressBar struct {
	w    io.Writer
	mode string
	last time.Time
	line int // length of the last bar drawn
}

func newProgressBar(w io.Writer, mode string) *progressBar { return &progressBar{w: w, mode: mode} }

func (b *progressBar) update(p dataset.Progress) {
	switch b.mode {
	case "none":
		return
	case "lines":
		if p.Phase == "generating" && time.Since(b.last) < 5*time.Second && p.Accepted < p.Target {
			return
		}
	}
	b.last = time.Now()
	const width = 30
	n := int(p.Fraction() * width)
	eta := "?"
	if p.ETA >= 0 {
		eta = p.ETA.Round(time.Second).String()
	}
	s := fmt.Sprintf("%-10s [%s%s] %3.0f%%  %d/%d kept, %d made  %.1f kept/s  %.1f made/s  ETA %s  classes %d/%d",
		p.Phase, strings.Repeat("#", n), strings.Repeat("-", width-n), 100*p.Fraction(), p.Accepted, p.Target, p.Attempts,
		p.AcceptedPerSec, p.AttemptsPerSec, eta, p.ClassesDone, p.Classes)
	if p.Resumed > 0 {
		s += fmt.Sprintf("  (%d resumed)", p.Resumed)
	}
	if b.mode == "bar" {
		pad := ""
		if len(s) < b.line {
			pad = strings.Repeat(" ", b.line-len(s))
		}
		fmt.Fprint(b.w, "\r"+s+pad)
		b.line = len(s)
		return
	}
	fmt.Fprintln(b.w, s)
}

func (b *progressBar) finish() {
	if b.mode == "bar" && b.line > 0 {
		fmt.Fprintln(b.w)
	}
}
