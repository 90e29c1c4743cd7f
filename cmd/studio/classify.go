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
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// classifyReport is what `studio classify` measures and writes as JSON.
type classifyReport struct {
	Model   string `json:"model"`
	Data    string `json:"data"`
	Split   string `json:"split"`
	Images  int    `json:"images"`
	Classes int    `json:"classes"`
	// Unknown counts the images of classes the classifier was not trained
	// on (left out); Missing the files skipped with --skip-missing.
	Unknown   int     `json:"images_of_unknown_classes"`
	Missing   int     `json:"missing_files_skipped"`
	Top1      float64 `json:"top1"`
	Top5      float64 `json:"top5"`
	MeanProb  float64 `json:"mean_true_class_prob"`
	ECE       float64 `json:"expected_calibration_error"`
	ImageSize int     `json:"image_size"`
	Cropped   bool    `json:"cropped_to_bounding_boxes"`
	Seconds   float64 `json:"seconds"`
}

// runClassify measures a classifier model on real images of a data set:
// top-1 and top-5 accuracy, the mean probability of the true class and
// the expected calibration error, on the test split of the classes it
// was trained on, each image cropped around its bounding box as training
// cropped it.
func runClassify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseClassifyFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	ds, err := cub.OpenWith(o.data, cub.Options{SkipMissing: o.skipMissing})
	if err != nil {
		return dataSetError(o.data, err)
	}
	cls, err := openClassifier(o)
	if err != nil {
		return err
	}
	index := map[string]int{}
	for _, c := range cls.Trained() {
		index[c.Name] = c.Index
	}
	rep := classifyReport{Model: o.model, Data: o.data, Split: o.split, Missing: len(ds.Missing), Classes: len(index)}
	ims, labels := classifyImages(ds, o.split, o.limit, index, &rep)
	if len(ims) == 0 {
		return noKnownClassError(o, cls, len(index))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(o.models, ort.Config{LibraryPath: o.lib, IntraOpThreads: threadsOr(o.threads)}, generator.Config{MaxBatch: 64}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	if rep.ImageSize, err = svc.ScorerInputSize(o.model); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "classifying %d images of %s with %s (%d px, cropped to the birds' boxes) ...\n", len(ims), o.data, o.model, rep.ImageSize)
	probs, err := classifyProbs(ctx, svc, o.model, ds, ims)
	if err != nil {
		return err
	}
	for _, im := range ims {
		rep.Cropped = rep.Cropped || im.HasBBox
	}
	rep.Top1, rep.Top5, rep.MeanProb, rep.ECE = classifyMetrics(probs, labels)
	rep.Images = len(ims)
	rep.Seconds = time.Since(start).Seconds()
	printClassify(stdout, rep)
	if o.jsonOut != "" {
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, append(raw, '\n'), 0o644)
	}
	return nil
}

// classifyFlags are the flags of `studio classify`.
type classifyFlags struct {
	model, data, split   string
	limit                int
	skipMissing          bool
	jsonOut, models, lib string
	threads              int
}

// parseClassifyFlags parses and checks the flags of `studio classify`.
func parseClassifyFlags(args []string, getenv func(string) string, stderr io.Writer) (*classifyFlags, error) {
	var o classifyFlags
	fs := flag.NewFlagSet("studio classify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.model, "model", "", "classifier model to measure (default: the only classifier of --models-dir)")
	fs.StringVar(&o.data, "data", envOr(getenv, "STUDIO_DATA", "data/birds"), "data set in CUB-200-2011 layout (env STUDIO_DATA)")
	fs.StringVar(&o.split, "split", "test", "images to measure on: test, train or all (of the classes the model knows)")
	fs.IntVar(&o.limit, "limit", 0, "measure at most this many images (0 = all)")
	fs.BoolVar(&o.skipMissing, "skip-missing", false, "leave out images listed in images.txt whose files are missing (a partial download)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.models, "models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	fs.StringVar(&o.lib, "ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	fs.IntVar(&o.threads, "threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, err
	}
	if o.split != "test" && o.split != "train" && o.split != "all" {
		return nil, &usageError{fmt.Sprintf("invalid --split=%q: want test, train or all", o.split)}
	}
	return &o, nil
}

// openClassifier picks the classifier of --model (default: the only one
// of --models-dir, stored back in o.model) and reads its classes.
func openClassifier(o *classifyFlags) (*catalog.Classes, error) {
	cat, err := catalog.Open(o.models)
	if err != nil {
		return nil, err
	}
	if o.model == "" {
		if o.model, err = onlyClassifier(cat, o.models); err != nil {
			return nil, err
		}
	}
	m, ok := cat.Get(o.model)
	if !ok || m.Manifest.Kind != catalog.KindClassifier {
		return nil, &usageError{fmt.Sprintf("invalid --model=%q: no classifier of that name in %s", o.model, o.models)}
	}
	return m.ReadClasses()
}

// classifyImages lists the images of the split whose classes the
// classifier knows (index: class name → output), with their labels, at
// most limit of them (0: all); it counts the others in rep.Unknown.
func classifyImages(ds *cub.Dataset, split string, limit int, index map[string]int, rep *classifyReport) (ims []cub.Image, labels []int) {
	for _, im := range ds.Images {
		if (split == "test" && im.Train) || (split == "train" && !im.Train) {
			continue
		}
		k, known := index[ds.Classes[im.ClassID]]
		if !known {
			rep.Unknown++
			continue
		}
		ims, labels = append(ims, im), append(labels, k)
		if limit > 0 && len(ims) == limit {
			break
		}
	}
	return ims, labels
}

// noKnownClassError says that the classifier knows none of the classes
// of the split's images, naming a few it does know.
func noKnownClassError(o *classifyFlags, cls *catalog.Classes, known int) error {
	var ex []string
	for _, c := range cls.Trained()[:min(3, len(cls.Trained()))] {
		ex = append(ex, c.Name)
	}
	return fmt.Errorf("%s knows none of the classes of the %s images of %s (it was trained on %d classes, e.g. %s): a classifier of another data set?",
		o.model, o.split, o.data, known, strings.Join(ex, ", "))
}

// classifyProbs runs the classifier on the images, 256 at a time: the
// class probabilities of each.
func classifyProbs(ctx context.Context, svc *generator.Service, model string, ds *cub.Dataset, ims []cub.Image) ([][]float64, error) {
	var probs [][]float64
	for from := 0; from < len(ims); from += 256 {
		part := ims[from:min(from+256, len(ims))]
		raw, err := dataset.RealImages(svc, model, ds, part)
		if err != nil {
			return nil, err
		}
		scores, err := svc.ScoreImages(ctx, model, raw)
		if err != nil {
			return nil, err
		}
		for _, s := range scores {
			probs = append(probs, s.Probs)
		}
	}
	return probs, nil
}

// printClassify writes the report as a table.
func printClassify(w io.Writer, rep classifyReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (%d classes, %d px)\n", rep.Model, rep.Classes, rep.ImageSize)
	fmt.Fprintf(tw, "images\t%d %s-split images of %s (%d of unknown classes left out, %d missing files skipped)\n", rep.Images, rep.Split, rep.Data, rep.Unknown, rep.Missing)
	fmt.Fprintf(tw, "top-1\t%.1f%%\n", 100*rep.Top1)
	fmt.Fprintf(tw, "top-5\t%.1f%%\n", 100*rep.Top5)
	fmt.Fprintf(tw, "mean probability of the true class\t%.3f\n", rep.MeanProb)
	fmt.Fprintf(tw, "expected calibration error\t%.3f (15 bins)\n", rep.ECE)
	fmt.Fprintf(tw, "time\t%.1f s\n", rep.Seconds)
	tw.Flush()
}

// classifyMetrics: top-1, top-5, mean probability of the true class and
// expected calibration error (15 equal-width bins of the top
// probability), as fgtrain's classifier evaluation computes them.
func classifyMetrics(probs [][]float64, labels []int) (top1, top5, meanProb, ece float64) {
	const bins = 15
	var conf, hit [bins]float64
	var count [bins]int
	for i, p := range probs {
		order := make([]int, len(p))
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
		if order[0] == labels[i] {
			top1++
		}
		for _, j := range order[:min(5, len(order))] {
			if j == labels[i] {
				top5++
			}
		}
		meanProb += p[labels[i]]
		top := p[order[0]]
		b := min(bins-1, max(0, int(math.Ceil(top*bins))-1))
		conf[b] += top
		count[b]++
		if order[0] == labels[i] {
			hit[b]++
		}
	}
	n := float64(len(probs))
	for b := range count {
		if count[b] > 0 {
			ece += float64(count[b]) / n * math.Abs(hit[b]/float64(count[b])-conf[b]/float64(count[b]))
		}
	}
	return top1 / n, top5 / n, meanProb / n, ece
}
