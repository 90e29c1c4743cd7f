//go:build !unit

package fewshot_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/generator/fewshot"
	"github.com/fgstudio/fgstudio/generator/generatortest"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
)

var (
	svc     *generator.Service
	cat     *catalog.Catalog
	realSet *cub.Dataset
)

// TestMain loads the real ONNX Runtime and sample models, and makes the
// sample data set's 200 classes (those the models know, 50 held out) with
// 8 small images each. A missing library, model or maker fails.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	repo := filepath.Join("..", "..")
	var closeAll func()
	var err error
	svc, cat, closeAll, err = generatortest.Open(repo, generator.Config{MaxBatch: 32})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fewshot tests:", err)
		return 1
	}
	defer closeAll()
	tmp, err := os.MkdirTemp("", "fewshot-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if realSet, err = cubtest.Make(repo, filepath.Join(tmp, "birds"), "--per-class", "8", "--size", "64", "--workers", "2"); err != nil {
		fmt.Fprintln(os.Stderr, "fewshot tests:", err)
		return 1
	}
	return m.Run()
}

// TestEvaluateWithSampleModels runs the whole pipeline on the sample
// models, small: synthetic sets made by dataset.Make (AttnGAN from
// attribute descriptions for the held-out classes, CVAE-GAN for three
// seen classes), features from the classifier, a few episodes of each.
func TestEvaluateWithSampleModels(t *testing.T) {
	mk := func(model string, classes []string, per int, minFidelity float64) string {
		dir := filepath.Join(t.TempDir(), model)
		m, _ := cat.Get(model)
		spec := dataset.Spec{Model: model, Classes: classes, PerClass: per, MinFidelity: minFidelity, MaxAttempts: 10}
		if _, err := dataset.Make(t.Context(), svc, m, spec, dir, dataset.Options{}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// The sample generators are CPU-short baselines that reach no useful
	// fidelity bar for every class; the filter has its own tests
	// (generator/dataset), and this pipeline needs images of every class.
	heldDir := mk("attngan-birds", []string{"heldout"}, 3, 0)
	seenDir := mk("cvaegan-birds", []string{"54", "46", "31"}, 3, 0)

	ref, err := dataset.BuildReference(t.Context(), svc, "classifier-birds", realSet, nil)
	if err != nil {
		t.Fatal(err)
	}
	heldout := map[string]bool{}
	for id := range realSet.Heldout {
		heldout[realSet.Classes[id]] = true
	}
	for _, c := range []struct {
		group   string
		dir     string
		queries int
		classes int // with synthetic images
	}{{"held-out", heldDir, 3, 50}, {"seen", seenDir, 2, 3}} {
		syn, man, err := fewshot.Synthetic(t.Context(), svc, "classifier-birds", c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(syn) != c.classes || man.Model == "" {
			t.Fatalf("%s: synthetic features of %d classes, want %d", c.group, len(syn), c.classes)
		}
		for cl, fs := range syn {
			if len(fs) != 3 || len(fs[0]) != 256 {
				t.Fatalf("%s: %d features of %d dims", cl, len(fs), len(fs[0]))
			}
		}
		g := fewshot.Seen(ref, heldout, syn)
		if c.group == "held-out" {
			g = fewshot.HeldOut(ref, heldout, syn)
		}
		if len(g.Support) != map[string]int{"held-out": 50, "seen": 150}[c.group] {
			t.Fatalf("%s: %d classes", c.group, len(g.Support))
		}
		for _, cl := range []string{fewshot.Prototype, fewshot.Linear} {
			res, err := fewshot.Evaluate(t.Context(), g, fewshot.Config{Ways: 3, Shots: []int{1, 5}, Queries: c.queries, Episodes: 30, Classifier: cl})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 || res[0].Shots != 1 || res[1].Shots != 5 || res[0].Classes != len(g.Support) || res[0].WithoutSynthetic != len(g.Support)-c.classes {
				t.Fatalf("results %+v", res)
			}
			for _, r := range res {
				t.Logf("%s %s %d-shot: real %.3f, +synthetic %.3f, synthetic only %.3f", c.group, cl, r.Shots, r.Real.Mean, r.Augmented.Mean, r.SyntheticOnly.Mean)
				// The classifier's features separate these classes with one
				// real image (chance is 1/3).
				if r.Real.Mean < 0.8 {
					t.Errorf("%s %s %d-shot: real accuracy %.3f", c.group, cl, r.Shots, r.Real.Mean)
				}
				if d := r.Augmented.Mean - r.Real.Mean - r.Gain.Mean; math.Abs(d) > 1e-9 {
					t.Errorf("gain %v is not augmented − real", r.Gain.Mean)
				}
			}
		}
	}
}

// TestDescribedWithSampleModels: features made from the sample world's
// attribute descriptions, in the classifier's feature space: one set per
// class of every group, and the descriptions predict where a seen class
// lies better than the overall mean does (leave-one-class-out).
func TestDescribedWithSampleModels(t *testing.T) {
	ref, err := dataset.BuildReference(t.Context(), svc, "classifier-birds", realSet, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Get("classifier-birds")
	cls, err := m.ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	heldout := map[string]bool{}
	for id := range realSet.Heldout {
		heldout[realSet.Classes[id]] = true
	}
	d := fewshot.Described{PerClass: 4, Neighbours: 1, Seed: 1}
	syn, err := d.Make(ref, heldout, fewshot.Attributes(cls))
	if err != nil {
		t.Fatal(err)
	}
	if len(syn) != 200 || len(syn[realSet.Classes[1]]) != 4 || len(syn[realSet.Classes[1]][0]) != 256 {
		t.Fatalf("features of %d classes", len(syn))
	}
	t.Logf("ridge λ %g: leave-one-class-out error %.4f, overall mean %.4f", d.Lambda, d.FitError, d.Spread)
	if !(d.FitError < 0.8*d.Spread) {
		t.Errorf("descriptions predict seen class means no better than their overall mean: %.4f vs %.4f", d.FitError, d.Spread)
	}
	g := fewshot.HeldOutWithSiblings(ref, heldout, syn)
	g.Attributes = fewshot.Attributes(cls)
	res, err := fewshot.Evaluate(t.Context(), g, fewshot.Config{Ways: 3, Shots: []int{1}, Queries: 3, Episodes: 30, Mix: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].WithoutSynthetic != 0 || res[0].RealOnly {
		t.Fatalf("results %+v", res)
	}
	t.Logf("held-out+siblings 1-shot: real %.3f, + from descriptions %.3f, descriptions only %.3f", res[0].Real.Mean, res[0].Augmented.Mean, res[0].SyntheticOnly.Mean)
	if res[0].SyntheticOnly.Mean < 0.4 { // chance 1/3
		t.Errorf("features from descriptions alone: %.3f", res[0].SyntheticOnly.Mean)
	}
}
