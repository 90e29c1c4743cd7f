package fewshot

import (
	"testing"

	"github.com/fgstudio/fgstudio/generator/dataset"
)

// TestEpisodesDependOnSeedAndDataAlone: the real-only accuracy of a seed
// is the same with any synthetic set, or none; without synthetic images
// only the real condition is reported.
func TestEpisodesDependOnSeedAndDataAlone(t *testing.T) {
	with := gaussianGroup(3, 8, 30, 20, faithful)
	without := with
	without.Synthetic = nil
	fewer := with
	fewer.Synthetic = map[string][][]float32{"A": with.Synthetic["A"][:3]}
	cfg := Config{Shots: []int{1, 5}, Episodes: 50, Seed: 7}
	a, err := Evaluate(t.Context(), with, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(t.Context(), without, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Evaluate(t.Context(), fewer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i].Real != b[i].Real || a[i].Real != c[i].Real {
			t.Errorf("%d-shot: real accuracy %v with synthetic images, %v without, %v with fewer", a[i].Shots, a[i].Real, b[i].Real, c[i].Real)
		}
		if !b[i].RealOnly || b[i].SyntheticOnly != (Stat{}) || b[i].Augmented != (Stat{}) || a[i].RealOnly {
			t.Errorf("real-only flags: %+v / %+v", a[i], b[i])
		}
	}
	cfg.Seed = 8
	d, err := Evaluate(t.Context(), without, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d[0].Real == b[0].Real {
		t.Errorf("another seed drew the same episodes")
	}
}

// TestHeldOutQueriesComeFromTheTestSplit: a held-out class with training
// images has them as supports and its test images as queries; one without
// (the sample world) shares one pool, drawn without overlap.
func TestHeldOutQueriesComeFromTheTestSplit(t *testing.T) {
	f := func(v float32) []float32 { return []float32{v} }
	ref := dataset.NewReference("s", []dataset.Real{
		{ID: 1, Class: "a", Train: true, Features: f(1)}, {ID: 2, Class: "a", Features: f(2)}, {ID: 3, Class: "a", Features: f(3)},
		{ID: 4, Class: "b", Features: f(4)}, {ID: 5, Class: "b", Features: f(5)},
		{ID: 6, Class: "c", Train: true, Features: f(6)},
	})
	g := HeldOut(ref, map[string]bool{"a": true, "b": true, "c": true}, nil)
	if len(g.Support["a"]) != 1 || g.Support["a"][0][0] != 1 || len(g.Query["a"]) != 2 {
		t.Errorf("class a: support %v query %v", g.Support["a"], g.Query["a"])
	}
	if !sameSlice(g.Support["b"], g.Query["b"]) || len(g.Query["b"]) != 2 {
		t.Errorf("class b: support %v query %v", g.Support["b"], g.Query["b"])
	}
	if _, ok := g.Query["c"]; ok {
		t.Errorf("class c has no test image, yet queries %v", g.Query["c"])
	}
}
