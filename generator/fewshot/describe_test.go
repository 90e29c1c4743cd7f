package fewshot

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fgstudio/fgstudio/generator/dataset"
)

// describedWorld: classes whose attributes (crown and wing colour) set
// the mean feature linearly, images scattered around it; "odd" is a seen
// class whose images sit far from what its description says, and "new"
// ("black-black") a held-out class with no image at all.
func describedWorld() (*dataset.Reference, map[string]bool, map[string]map[string]string, map[string][]float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 8
	colour := map[string][]float64{
		"red": {1, 0, 0, 0, 0, 0, 0, 0}, "blue": {0, 1, 0, 0, 0, 0, 0, 0}, "black": {0, 0, 1, 0, 0, 0, 0, 0}}
	wing := map[string][]float64{
		"red": {0, 0, 0, 1, 0, 0, 0, 0}, "blue": {0, 0, 0, 0, 1, 0, 0, 0}, "black": {0, 0, 0, 0, 0, 1, 0, 0}}
	attrs := map[string]map[string]string{}
	truth := map[string][]float64{}
	ref := &dataset.Reference{}
	for _, c := range []string{"red", "blue", "black"} {
		for _, w := range []string{"red", "blue", "black"} {
			name := c + "-" + w
			attrs[name] = map[string]string{"crown": c, "wing": w}
			m := make([]float64, d)
			for j := range m {
				m[j] = colour[c][j] + wing[w][j] + 0.5
			}
			truth[name] = m
			if name == "black-black" {
				continue // held out, no image
			}
			for i := 0; i < 20; i++ {
				f := make([]float32, d)
				for j := range f {
					f[j] = float32(m[j] + 0.05*rng.NormFloat64())
				}
				ref.Images = append(ref.Images, dataset.Real{Class: name, Train: true, Features: f})
			}
		}
	}
	// (a tail value no other class has takes up what is odd about it when
	// the others are fitted)
	attrs["odd"] = map[string]string{"crown": "red", "wing": "red", "tail": "long"}
	for i := 0; i < 20; i++ {
		f := make([]float32, d)
		f[7] = 5 // nothing like red-red
		ref.Images = append(ref.Images, dataset.Real{Class: "odd", Train: true, Features: f})
	}
	return ref, map[string]bool{"black-black": true}, attrs, truth
}

func TestDescribedFollowsDescriptionsNotTheClassOwnImages(t *testing.T) {
	ref, held, attrs, truth := describedWorld()
	d := Described{PerClass: 30, Seed: 3}
	feats, err := d.Make(ref, held, attrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != len(attrs) {
		t.Fatalf("features for %d classes, want %d", len(feats), len(attrs))
	}
	if !(d.FitError < d.Spread) {
		t.Fatalf("leave-one-class-out error %v not below the spread %v", d.FitError, d.Spread)
	}
	meanUnit := func(fs [][]float32) []float64 {
		var xs [][]float64
		for _, f := range fs {
			xs = append(xs, unit(f))
		}
		return mean(xs, len(fs[0]))
	}
	cos := func(a, b []float64) float64 { return dot(a, b) / math.Sqrt(dot(a, a)*dot(b, b)) }
	for c, fs := range feats {
		if len(fs) != 30 {
			t.Fatalf("%s: %d features, want 30", c, len(fs))
		}
		if c == "odd" {
			continue
		}
		// The held-out class (no image) lands where its description says.
		if got := cos(meanUnit(fs), unit(f32(truth[c]))); got < 0.97 {
			t.Errorf("%s: cosine %.3f between the made and the true mean", c, got)
		}
	}
	// "odd" is described as red-red: its features follow the description
	// (fitted without its own images), not its images.
	odd := meanUnit(feats["odd"])
	own := make([]float64, len(odd))
	own[7] = 1
	if cos(odd, own) > 0.5 || cos(odd, unit(f32(truth["red-red"]))) < 0.9 {
		t.Errorf("odd: cosine %.3f with its own images, %.3f with its description", cos(odd, own), cos(odd, unit(f32(truth["red-red"]))))
	}
	// The same seed makes the same features.
	again, _ := (&Described{PerClass: 30, Seed: 3}).Make(ref, held, attrs)
	if fmt.Sprint(again["black-black"]) != fmt.Sprint(feats["black-black"]) {
		t.Error("same seed, different features")
	}
	if _, err := (&Described{}).Make(ref, held, attrs); err == nil {
		t.Error("PerClass 0 accepted")
	}
}

func f32(x []float64) []float32 {
	r := make([]float32, len(x))
	for i, v := range x {
		r[i] = float32(v)
	}
	return r
}
