package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
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

N-way K-shot episodes on a network's frozen features: (a) K real images
per class, (b) the same plus synthetic images from a data set made by
"studio dataset make"; queries are real test-split images. Episodes are
fine-grained by default (an anchor class and the classes nearest to it
in attributes) and depend on --seed and the real data alone, so (a) is
the same with any synthetic set or variant; without one, only (a) is
measured (a real-only baseline). The table goes to stdout, JSON only to
--json FILE.

  studio dataset make --model attngan-birds --classes heldout --per-class 40 --min-fidelity 0 --out syn/heldout
  studio fewshot eval --heldout-synthetic syn/heldout --scorer classifier-birds,judge-birds \
      --variant bar=0.5 --variant bar=0.5,share=0.3,center=true --json fewshot.json
  studio fewshot eval --groups held-out,held-out+siblings,seen          # real only
  studio fewshot eval --groups held-out+siblings --from-descriptions 40 --variant share=0.2
      # synthetic features from the classes' attribute descriptions instead of images

Run "studio fewshot eval -h" for its flags.`

// fewshotReport is the JSON that studio fewshot eval writes.
type fewshotReport struct {
	Data      string             `json:"data"`
	Scorers   []string           `json:"scorers"`
	Synthetic []syntheticSet     `json:"synthetic"`
	Results   []fewshot.Result   `json:"results"`
	Warnings  []string           `json:"warnings,omitempty"`
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
	Ways     int       `json:"ways"`
	Shots    []int     `json:"shots"`
	Queries  int       `json:"queries"`
	Episodes int       `json:"episodes"`
	Draw     string    `json:"draw"`
	Variants []variant `json:"variants"`
	Seed     uint64    `json:"seed"`
}

// variant is one way of adding the synthetic images: which (the fidelity
// bar, how many per class) and how (weight, share, centring).
type variant struct {
	Name   string  `json:"name"`
	Bar    float64 `json:"min_fidelity"`
	Count  int     `json:"per_class"`
	Weight float64 `json:"weight"`
	Share  float64 `json:"share,omitempty"`
	Center bool    `json:"center,omitempty"`
	Near   int     `json:"nearest,omitempty"`
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
	if a.jsonOut == "" {
		return nil
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(a.jsonOut, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results written to %s\n", a.jsonOut)
	return nil
}

// fewshotArgs are the checked flags of `studio fewshot eval`.
type fewshotArgs struct {
	data, heldSyn, seenSyn, jsonOut, models, lib, cache, draw string
	ways, queries, episodes, threads, described, neighbours   int
	skipMissing, force                                        bool
	shots                                                     []int
	scorers, groups, classifiers                              []string
	variants                                                  []variant
	seed                                                      uint64
}

// Groups of classes an evaluation runs on.
const (
	groupHeldOut  = "held-out"
	groupSiblings = "held-out+siblings"
	groupSeen     = "seen"
)

// variantList is the repeatable --variant flag.
type variantList []variant

func (v *variantList) String() string { return "" }
func (v *variantList) Set(s string) error {
	x, err := parseVariant(s)
	if err == nil {
		*v = append(*v, x)
	}
	return err
}

// parseVariant reads "bar=0.5,count=20,weight=1,share=0.3,center=true,near=5"
// (any subset; the rest default to bar 0, all images, weight 1, no
// share, no centring, no choice by the support).
func parseVariant(s string) (variant, error) {
	v := variant{Name: s, Weight: 1}
	for _, kv := range splitList(s) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return v, fmt.Errorf("%q: want key=value", kv)
		}
		var err error
		switch k {
		case "bar":
			v.Bar, err = strconv.ParseFloat(val, 64)
			if err == nil && !(v.Bar >= 0 && v.Bar <= 1) {
				err = fmt.Errorf("want 0 to 1")
			}
		case "count":
			v.Count, err = strconv.Atoi(val)
			if err == nil && v.Count < 0 {
				err = fmt.Errorf("want ≥ 0")
			}
		case "weight":
			v.Weight, err = strconv.ParseFloat(val, 64)
			if err == nil && !(v.Weight > 0) {
				err = fmt.Errorf("want > 0")
			}
		case "share":
			v.Share, err = strconv.ParseFloat(val, 64)
			if err == nil && !(v.Share >= 0 && v.Share < 1) {
				err = fmt.Errorf("want 0 to 1 (exclusive)")
			}
		case "center":
			v.Center, err = strconv.ParseBool(val)
		case "near":
			v.Near, err = strconv.Atoi(val)
			if err == nil && v.Near < 0 {
				err = fmt.Errorf("want ≥ 0")
			}
		default:
			return v, fmt.Errorf("unknown key %q (want bar, count, weight, share, center, near)", k)
		}
		if err != nil {
			return v, fmt.Errorf("%s=%s: %v", k, val, err)
		}
	}
	if v.Name == "" {
		v.Name = "all"
	}
	return v, nil
}

func parseFewshotEval(args []string, getenv func(string) string, stderr io.Writer) (fewshotArgs, error) {
	var a fewshotArgs
	var variants variantList
	fs := flag.NewFlagSet("studio fewshot eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.data, "data", envOr(getenv, "STUDIO_DATA", "data/birds"), "real data set in CUB layout: supports and queries (env STUDIO_DATA)")
	fs.StringVar(&a.heldSyn, "heldout-synthetic", "", "data set of synthetic images of the held-out classes (studio dataset make, attngan); for held-out+siblings, of all their classes")
	fs.StringVar(&a.seenSyn, "seen-synthetic", "", "data set of synthetic images of the seen classes (studio dataset make, cvaegan)")
	fs.IntVar(&a.neighbours, "description-neighbours", 3, "with --from-descriptions: correct each predicted class mean by the mean error of the map on the k seen classes nearest in attributes (0 = the map alone)")
	fs.IntVar(&a.described, "from-descriptions", 0, "instead of a synthetic image set: N synthetic features per class made from its attribute description (a ridge map from description to mean feature fitted on the other seen classes' training images, plus their within-class variation; no image, never an image of the class itself)")
	groups := fs.String("groups", "", "class groups, comma-separated: held-out, held-out+siblings (episodes around a held-out class with its nearest classes, seen or not), seen (default: the groups with a synthetic set, or held-out and seen)")
	fs.StringVar(&a.draw, "draw", fewshot.DrawFine, "episode classes: fine (an anchor and the classes nearest to it in attributes) or random")
	fs.IntVar(&a.ways, "ways", 5, "classes per episode")
	shots := fs.String("shots", "1,5", "real images per class in the support set, comma-separated")
	fs.IntVar(&a.queries, "queries", 15, "real query images per class and episode")
	fs.IntVar(&a.episodes, "episodes", 600, "episodes per group and shot count")
	perClass := fs.Int("synthetic-per-class", 0, "synthetic images per class added in (b), drawn anew each episode; 0 = all (default variant)")
	weight := fs.Float64("synthetic-weight", 1, "weight of one synthetic image relative to one real image (default variant)")
	bar := fs.Float64("synthetic-min-fidelity", 0, "use only synthetic images whose recorded fidelity reaches this (default variant)")
	fs.Var(&variants, "variant", `a way of adding synthetic images, "bar=0.5,count=20,weight=1,share=0.3,center=true,near=5" (any subset: fidelity bar, images per class, weight of one, their share of a class, centred on the real support, the n nearest to the support); repeat for several, each measured on the same episodes (replaces the --synthetic-* flags)`)
	classifier := fs.String("classifier", "both", "prototype, linear or both")
	fs.Uint64Var(&a.seed, "seed", 0, "seed of the episode draws")
	fs.StringVar(&a.jsonOut, "json", "", "write the results as JSON to this file")
	fs.BoolVar(&a.force, "force", false, "run even when a synthetic set has no image of some classes of its group")
	fs.StringVar(&a.models, "models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	scorers := fs.String("scorer", "", "networks whose features are used, comma-separated: classifiers or evaluators (default: the synthetic sets' scorer, or the only classifier of --models-dir)")
	fs.StringVar(&a.cache, "feature-cache", envOr(getenv, "STUDIO_FEATURE_CACHE", dataset.DefaultFeatureCacheDir()), `folder of the real images' features, reused across runs; "" = keep none (env STUDIO_FEATURE_CACHE)`)
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
	a.scorers, a.groups = splitList(*scorers), splitList(*groups)
	for _, g := range a.groups {
		if g != groupHeldOut && g != groupSiblings && g != groupSeen {
			return a, &usageError{fmt.Sprintf("invalid --groups=%q: want held-out, held-out+siblings or seen", *groups)}
		}
	}
	switch {
	case a.draw != fewshot.DrawFine && a.draw != fewshot.DrawRandom:
		return a, &usageError{fmt.Sprintf("invalid --draw=%q: want fine or random", a.draw)}
	case a.ways < 2:
		return a, &usageError{fmt.Sprintf("invalid --ways=%d: want at least 2", a.ways)}
	case a.queries < 1 || a.episodes < 1 || *perClass < 0 || len(a.shots) == 0:
		return a, &usageError{"--queries, --episodes and --shots want positive values, --synthetic-per-class ≥ 0"}
	case !(*weight > 0):
		return a, &usageError{fmt.Sprintf("invalid --synthetic-weight=%v: want > 0", *weight)}
	case !(*bar >= 0 && *bar <= 1):
		return a, &usageError{fmt.Sprintf("invalid --synthetic-min-fidelity=%v: want 0 to 1", *bar)}
	case a.described < 0 || a.neighbours < 0:
		return a, &usageError{fmt.Sprintf("invalid --from-descriptions=%d or --description-neighbours=%d: want ≥ 0", a.described, a.neighbours)}
	case a.described > 0 && (a.heldSyn != "" || a.seenSyn != ""):
		return a, &usageError{"--from-descriptions replaces --heldout-synthetic and --seen-synthetic: give one source of synthetic data"}
	}
	a.variants = variants
	if len(a.variants) == 0 {
		a.variants = []variant{{Name: "all", Bar: *bar, Count: *perClass, Weight: *weight}}
		if *bar > 0 || *perClass > 0 || *weight != 1 {
			a.variants[0].Name = fmt.Sprintf("bar=%g,count=%d,weight=%g", *bar, *perClass, *weight)
		}
	}
	return a, nil
}

// fewshotInput is one group of classes and its synthetic set ("" = none,
// or features from descriptions when described).
type fewshotInput struct {
	group, dir string
	man        *dataset.Manifest
	described  bool
}

// synthetic says whether the group gets synthetic data in (b).
func (in fewshotInput) synthetic() bool { return in.dir != "" || in.described }

// fewshotEval checks what it is given (the data, the synthetic sets'
// coverage of their groups), scores the real data set (feature cache) and
// each synthetic set with each scorer, and runs the episodes of each
// group, classifier and variant.
func fewshotEval(ctx context.Context, a fewshotArgs, stderr io.Writer) (fewshotReport, error) {
	start := time.Now()
	rep := fewshotReport{Data: a.data, Config: fewshotConfigShown{Ways: a.ways, Shots: a.shots, Queries: a.queries,
		Episodes: a.episodes, Draw: a.draw, Variants: a.variants, Seed: a.seed}}
	ds, err := cub.OpenWith(a.data, cub.Options{SkipMissing: a.skipMissing})
	if err != nil {
		return rep, dataSetError(a.data, err)
	}
	cat, err := catalog.Open(a.models)
	if err != nil {
		return rep, err
	}
	inputs, err := fewshotInputs(a, ds, &rep, stderr)
	if err != nil {
		return rep, err
	}
	if len(a.scorers) == 0 {
		if a.scorers, err = defaultScorers(cat, a.models, inputs); err != nil {
			return rep, err
		}
	}
	rep.Scorers = a.scorers
	for _, s := range a.scorers {
		m, ok := cat.Get(s)
		if !ok || (m.Manifest.Kind != catalog.KindClassifier && m.Manifest.Kind != catalog.KindEvaluator) {
			return rep, &usageError{fmt.Sprintf("invalid --scorer=%q: want classifiers or evaluators of %s", s, a.models)}
		}
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nets, closeAll, err := openScorers(cat, a, log)
	if err != nil {
		return rep, err
	}
	defer closeAll()
	heldout := map[string]bool{}
	for id := range ds.Heldout {
		heldout[ds.Classes[id]] = true
	}
	for _, in := range inputs {
		if in.dir != "" {
			rep.Synthetic = append(rep.Synthetic, describeSynthetic(in, cat))
		}
	}
	for _, scorer := range a.scorers {
		m, _ := cat.Get(scorer)
		t0 := time.Now()
		ref, hit, err := dataset.FeatureCache{Dir: a.cache}.Reference(ctx, nets[scorer], m, ds)
		if err != nil {
			return rep, err
		}
		fmt.Fprintf(stderr, "%s: %d real images' features (%s, %.1fs)\n", scorer, len(ref.Images), map[bool]string{true: "feature cache", false: "scored"}[hit], time.Since(t0).Seconds())
		cls, err := m.ReadClasses()
		if err != nil {
			return rep, err
		}
		attrs := fewshot.Attributes(cls)
		scored := map[string]map[string][]fewshot.SynthImage{} // by set, for groups that share one
		if a.described > 0 {
			d := fewshot.Described{PerClass: a.described, Neighbours: a.neighbours, Seed: a.seed}
			feats, err := d.Make(ref, heldout, attrs)
			if err != nil {
				return rep, err
			}
			fmt.Fprintf(stderr, "%s: %d features per class from descriptions (ridge λ = %g, %d neighbours; leave-one-class-out error %.4f against %.4f for the overall mean)\n",
				scorer, a.described, d.Lambda, a.neighbours, d.FitError, d.Spread)
			scored[""] = fewshot.AsSynthImages(feats)
			rep.Synthetic = append(rep.Synthetic, syntheticSet{Group: strings.Join(groupsOf(inputs), ","), Model: "descriptions (" + scorer + ")",
				Classes: len(feats), Images: len(feats) * a.described,
				Prompts: fmt.Sprintf("features from attribute descriptions: ridge λ = %g, %d neighbours, leave-one-class-out error %.4f (overall mean %.4f)", d.Lambda, a.neighbours, d.FitError, d.Spread)})
		}
		for _, in := range inputs {
			if in.dir != "" && scored[in.dir] == nil {
				fmt.Fprintf(stderr, "%s: the synthetic images of %s ...\n", scorer, in.dir)
				if scored[in.dir], _, err = fewshot.SyntheticImages(ctx, nets[scorer], scorer, in.dir); err != nil {
					return rep, err
				}
			}
			res, err := fewshotGroup(ctx, a, in, scored[in.dir], scorer, ref, heldout, attrs)
			if err != nil {
				return rep, err
			}
			rep.Results = append(rep.Results, res...)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// fewshotInputs are the groups to run, each with its synthetic set,
// checked before any network is loaded: a set that has no image of some
// classes of its group is refused unless --force (a warning either way).
func fewshotInputs(a fewshotArgs, ds *cub.Dataset, rep *fewshotReport, stderr io.Writer) ([]fewshotInput, error) {
	groups := a.groups
	if len(groups) == 0 {
		if a.heldSyn != "" {
			groups = append(groups, groupHeldOut)
		}
		if a.seenSyn != "" {
			groups = append(groups, groupSeen)
		}
		if len(groups) == 0 {
			if len(ds.Heldout) > 0 {
				groups = append(groups, groupHeldOut)
			}
			groups = append(groups, groupSeen)
		}
	}
	var res []fewshotInput
	var missing []string
	for _, g := range groups {
		in := fewshotInput{group: g, dir: a.heldSyn, described: a.described > 0}
		if g == groupSeen {
			in.dir = a.seenSyn
		}
		if in.dir != "" {
			man, err := dataset.Verify(in.dir)
			if err != nil {
				return nil, fmt.Errorf("synthetic set %s: %w", in.dir, err)
			}
			in.man = man
			have := map[string]bool{}
			for _, c := range man.Classes {
				if c.Count > 0 {
					have[c.Class] = true
				}
			}
			var need []string
			for id, name := range ds.Classes {
				inGroup := (g == groupHeldOut && ds.Heldout[id]) || (g == groupSeen && ds.Seen[id]) || g == groupSiblings
				if inGroup && !have[name] {
					need = append(need, name)
				}
			}
			sort.Strings(need)
			if len(need) > 0 {
				w := fmt.Sprintf("%s has no synthetic image of %d classes of the %s group (e.g. %s): for them (b) adds nothing, and (b) − (a) understates what a full set does",
					in.dir, len(need), g, strings.Join(need[:min(3, len(need))], ", "))
				fmt.Fprintln(stderr, "warning: "+w)
				rep.Warnings = append(rep.Warnings, w)
				missing = append(missing, fmt.Sprintf("%s: %d classes", g, len(need)))
			}
		}
		res = append(res, in)
	}
	if len(missing) > 0 && !a.force {
		return nil, &usageError{fmt.Sprintf("synthetic sets miss classes (%s): make them with --classes covering the group, or pass --force to measure anyway", strings.Join(missing, "; "))}
	}
	return res, nil
}

// defaultScorers is the synthetic sets' scorer, or the only classifier.
func defaultScorers(cat *catalog.Catalog, dir string, inputs []fewshotInput) ([]string, error) {
	for _, in := range inputs {
		if in.man == nil {
			continue
		}
		if m, ok := cat.Get(in.man.Model); ok && m.Manifest.Scorer != "" {
			return []string{m.Manifest.Scorer}, nil
		}
	}
	s, err := onlyClassifier(cat, dir)
	return []string{s}, err
}

// openScorers loads the networks of a.scorers: classifiers through the
// generation service, evaluators as judges.
func openScorers(cat *catalog.Catalog, a fewshotArgs, log *slog.Logger) (map[string]dataset.ImageScorer, func(), error) {
	rt, err := ort.Open(ort.Config{LibraryPath: a.lib, IntraOpThreads: threadsOr(a.threads)}, log)
	if err != nil {
		return nil, nil, err
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		rt.Close()
	}
	var svc *generator.Service
	nets := map[string]dataset.ImageScorer{}
	for _, s := range a.scorers {
		m, _ := cat.Get(s)
		if m.Manifest.Kind == catalog.KindEvaluator {
			j, err := generator.LoadJudge(rt, m, 1)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, j.Close)
			nets[s] = j
			continue
		}
		if svc == nil {
			svc = generator.Load(rt, cat, generator.Config{MaxBatch: 64}, log)
			closers = append(closers, svc.Close)
		}
		if err, bad := svc.Failed()[s]; bad {
			closeAll()
			return nil, nil, fmt.Errorf("scorer %s did not load: %w", s, err)
		}
		nets[s] = svc
	}
	return nets, closeAll, nil
}

// fewshotGroup runs one group's episodes on one scorer's features of the
// real images (ref) and of its synthetic set (ims), for every classifier
// and variant (each on the same episodes).
func fewshotGroup(ctx context.Context, a fewshotArgs, in fewshotInput, ims map[string][]fewshot.SynthImage, scorer string, ref *dataset.Reference,
	heldout map[string]bool, attrs map[string]map[string]string) ([]fewshot.Result, error) {
	variants := a.variants
	if !in.synthetic() {
		variants = variants[:1]
	}
	var res []fewshot.Result
	for _, v := range variants {
		var syn map[string][][]float32
		if ims != nil {
			syn = fewshot.Above(ims, v.Bar)
		}
		var g fewshot.Group
		switch in.group {
		case groupHeldOut:
			g = fewshot.HeldOut(ref, heldout, syn)
		case groupSiblings:
			g = fewshot.HeldOutWithSiblings(ref, heldout, syn)
		default:
			g = fewshot.Seen(ref, heldout, syn)
		}
		g.Attributes = attrs
		for _, c := range a.classifiers {
			rs, err := fewshot.Evaluate(ctx, g, fewshot.Config{Ways: a.ways, Shots: a.shots, Queries: a.queries, Episodes: a.episodes,
				Seed: a.seed, Synthetic: v.Count, Weight: v.Weight, Mix: v.Share, Center: v.Center, Nearest: v.Near, Classifier: c, Draw: a.draw})
			if err != nil {
				return nil, err
			}
			for i := range rs {
				rs[i].Scorer, rs[i].Variant, rs[i].MinFidelity = scorer, v.Name, v.Bar
				if !in.synthetic() {
					rs[i].Variant = ""
				}
			}
			res = append(res, rs...)
		}
	}
	return res, nil
}

// groupsOf names the groups of inputs.
func groupsOf(inputs []fewshotInput) []string {
	var res []string
	for _, in := range inputs {
		res = append(res, in.group)
	}
	return res
}

// describeSynthetic is the report's line about one synthetic set.
func describeSynthetic(in fewshotInput, cat *catalog.Catalog) syntheticSet {
	man := in.man
	set := syntheticSet{Group: in.group, Dir: in.dir, Model: man.Model, Prompts: man.Spec.PromptSource}
	for _, c := range man.Classes {
		if c.Count > 0 {
			set.Classes++
		}
		set.Images += c.Count
	}
	if r, err := dataset.ReadReport(in.dir); err == nil {
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
	fmt.Fprintf(&b, "| features | classes | shots | classifier | synthetic (variant) | (a) real only | (b) real + synthetic | gain (b − a) | synthetic only |\n")
	fmt.Fprintf(&b, "|---|---|---:|---|---|---:|---:|---:|---:|\n")
	for _, r := range rep.Results {
		if r.RealOnly {
			fmt.Fprintf(&b, "| %s | %s | %d | %s | — | %s | — | — | — |\n", r.Scorer, r.Group, r.Shots, r.Classifier, pct(r.Real))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s (%s) | %s | %s | %+.1f ± %.1f | %s |\n", r.Scorer, r.Group, r.Shots, r.Classifier,
			models[r.Group], r.Variant, pct(r.Real), pct(r.Augmented), 100*r.Gain.Mean, 100*r.Gain.CI95, pct(r.SyntheticOnly))
	}
	if len(rep.Results) > 0 {
		r := rep.Results[0]
		fmt.Fprintf(&b, "\n%d-way, %d real test queries per class, %d episodes per row (the same episodes for a and b and every variant, fixed by the seed and the real data alone); accuracy %% ± 95%% CI.\n",
			r.Ways, r.Queries, r.Episodes)
		dist := map[string]float64{}
		for _, r := range rep.Results {
			dist[r.Group] = r.AttributeDistance
		}
		fmt.Fprintf(&b, "Episodes drawn %s", rep.Config.Draw)
		for _, g := range []string{groupHeldOut, groupSiblings, groupSeen} {
			if d, ok := dist[g]; ok && d > 0 {
				fmt.Fprintf(&b, "; %s: classes of an episode differ in %.1f attribute groups on average", g, d)
			}
		}
		fmt.Fprintln(&b, ".")
	}
	for _, s := range rep.Synthetic {
		fmt.Fprintf(&b, "- %s: %s, %d images of %d classes (acceptance %.0f%%)", s.Group, s.Dir, s.Images, s.Classes, 100*s.Accepted)
		if s.Prompts != "" {
			fmt.Fprintf(&b, ", prompts from %s", s.Prompts)
		}
		fmt.Fprintln(&b)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(&b, "- warning: %s\n", w)
	}
	return b.String()
}
