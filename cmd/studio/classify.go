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
	fs := flag.NewFlagSet("studio classify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	model := fs.String("model", "", "classifier model to measure (default: the only classifier of --models-dir)")
	data := fs.String("data", envOr(getenv, "STUDIO_DATA", "data/birds"), "data set in CUB-200-2011 layout (env STUDIO_DATA)")
	split := fs.String("split", "test", "images to measure on: test, train or all (of the classes the model knows)")
	limit := fs.Int("limit", 0, "measure at most this many images (0 = all)")
	skipMissing := fs.Bool("skip-missing", false, "leave out images listed in images.txt whose files are missing (a partial download)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	models := fs.String("models-dir", envOr(getenv, "STUDIO_MODELS_DIR", "samples/models"), "folder of model directories (env STUDIO_MODELS_DIR)")
	lib := fs.String("ort-lib", envOr(getenv, "ORT_LIB_PATH", ort.DefaultLibraryPath()), "ONNX Runtime library (env ORT_LIB_PATH)")
	threads := fs.Int("threads", 0, "intra-op threads; 0 = number of CPUs")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *split != "test" && *split != "train" && *split != "all" {
		return &usageError{fmt.Sprintf("invalid --split=%q: want test, train or all", *split)}
	}
	start := time.Now()
	ds, err := cub.OpenWith(*data, cub.Options{SkipMissing: *skipMissing})
	if err != nil {
		return dataSetError(*data, err)
	}
	cat, err := catalog.Open(*models)
	if err != nil {
		return err
	}
	if *model == "" {
		if *model, err = onlyClassifier(cat, *models); err != nil {
			return err
		}
	}
	m, ok := cat.Get(*model)
	if !ok || m.Manifest.Kind != catalog.KindClassifier {
		return &usageError{fmt.Sprintf("invalid --model=%q: no classifier of that name in %s", *model, *models)}
	}
	cls, err := m.ReadClasses()
	if err != nil {
		return err
	}
	index := map[string]int{}
	for _, c := range cls.Trained() {
		index[c.Name] = c.Index
	}
	rep := classifyReport{Model: *model, Data: *data, Split: *split, Missing: len(ds.Missing), Classes: len(index)}
	var ims []cub.Image
	var labels []int
	for _, im := range ds.Images {
		if (*split == "test" && im.Train) || (*split == "train" && !im.Train) {
			continue
		}
		k, known := index[ds.Classes[im.ClassID]]
		if !known {
			rep.Unknown++
			continue
		}
		ims, labels = append(ims, im), append(labels, k)
		if *limit > 0 && len(ims) == *limit {
			break
		}
	}
	if len(ims) == 0 {
		var ex []string
		for _, c := range cls.Trained()[:min(3, len(cls.Trained()))] {
			ex = append(ex, c.Name)
		}
		return fmt.Errorf("%s knows none of the classes of the %s images of %s (it was trained on %d classes, e.g. %s): a classifier of another data set?",
			*model, *split, *data, len(index), strings.Join(ex, ", "))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, closeAll, err := openService(*models, ort.Config{LibraryPath: *lib, IntraOpThreads: threadsOr(*threads)}, generator.Config{MaxBatch: 64}, log)
	if err != nil {
		return err
	}
	defer closeAll()
	if rep.ImageSize, err = svc.ScorerInputSize(*model); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "classifying %d images of %s with %s (%d px, cropped to the birds' boxes) ...\n", len(ims), *data, *model, rep.ImageSize)
	var probs [][]float64
	for from := 0; from < len(ims); from += 256 {
		part := ims[from:min(from+256, len(ims))]
		raw, err := dataset.RealImages(svc, *model, ds, part)
		if err != nil {
			return err
		}
		scores, err := svc.ScoreImages(ctx, *model, raw)
		if err != nil {
			return err
		}
		for _, s := range scores {
			probs = append(probs, s.Probs)
		}
	}
	for _, im := range ims {
		rep.Cropped = rep.Cropped || im.HasBBox
	}
	rep.Top1, rep.Top5, rep.MeanProb, rep.ECE = classifyMetrics(probs, labels)
	rep.Images = len(ims)
	rep.Seconds = time.Since(start).Seconds()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (%d classes, %d px)\n", rep.Model, rep.Classes, rep.ImageSize)
	fmt.Fprintf(tw, "images\t%d %s-split images of %s (%d of unknown classes left out, %d missing files skipped)\n", rep.Images, rep.Split, rep.Data, rep.Unknown, rep.Missing)
	fmt.Fprintf(tw, "top-1\t%.1f%%\n", 100*rep.Top1)
	fmt.Fprintf(tw, "top-5\t%.1f%%\n", 100*rep.Top5)
	fmt.Fprintf(tw, "mean probability of the true class\t%.3f\n", rep.MeanProb)
	fmt.Fprintf(tw, "expected calibration error\t%.3f (15 bins)\n", rep.ECE)
	fmt.Fprintf(tw, "time\t%.1f s\n", rep.Seconds)
	tw.Flush()
	if *jsonOut != "" {
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(raw, '\n'), 0o644)
	}
	return nil
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
