package fewshot

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gaussianGroup makes classes as Gaussian clusters in d dimensions:
// class means far enough apart to be told apart with many images, noisy
// enough that one image per class often is not. synth draws the
// synthetic images of class c.
func gaussianGroup(seed uint64, classes, perClass, synthetic int, synth func(rng *rand.Rand, mean []float64) []float32) Group {
	return gaussianGroupDim(seed, 16, classes, perClass, synthetic, synth)
}

func gaussianGroupDim(seed uint64, d, classes, perClass, synthetic int, synth func(rng *rand.Rand, mean []float64) []float32) Group {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := Group{Name: "gauss", Support: map[string][][]float32{}, Synthetic: map[string][][]float32{}}
	for c := 0; c < classes; c++ {
		name := string(rune('A' + c))
		mean := make([]float64, d)
		for j := range mean {
			mean[j] = rng.NormFloat64()
		}
		mean[0] += 4 // keep the clusters on one side: cosine geometry
		for i := 0; i < perClass; i++ {
			f := make([]float32, d)
			for j := range f {
				f[j] = float32(mean[j] + 1.3*rng.NormFloat64())
			}
			g.Support[name] = append(g.Support[name], f)
		}
		for i := 0; i < synthetic; i++ {
			g.Synthetic[name] = append(g.Synthetic[name], synth(rng, mean))
		}
	}
	g.Query = g.Support
	return g
}

func faithful(rng *rand.Rand, mean []float64) []float32 {
	f := make([]float32, len(mean))
	for j := range f {
		f[j] = float32(mean[j] + 1.3*rng.NormFloat64())
	}
	return f
}

// TestSyntheticFromTheClassHelps: synthetic images drawn from the true
// class distributions raise 1-shot accuracy well beyond the interval.
func TestSyntheticFromTheClassHelps(t *testing.T) {
	g := gaussianGroup(1, 10, 40, 50, faithful)
	for _, c := range []string{Prototype, Linear} {
		res, err := Evaluate(t.Context(), g, Config{Shots: []int{1}, Episodes: 200, Classifier: c})
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		t.Logf("%s: real %.3f ± %.3f, augmented %.3f ± %.3f, gain %+.3f ± %.3f", c, r.Real.Mean, r.Real.CI95, r.Augmented.Mean, r.Augmented.CI95, r.Gain.Mean, r.Gain.CI95)
		if r.Real.Mean > 0.9 || r.Real.Mean < 0.3 {
			t.Errorf("%s: 1-shot real accuracy %.3f: the test data are not a few-shot problem", c, r.Real.Mean)
		}
		if r.Gain.Mean-r.Gain.CI95 < 0.05 {
			t.Errorf("%s: gain %+.3f ± %.3f: faithful synthetic images should help", c, r.Gain.Mean, r.Gain.CI95)
		}
	}
}

// TestSyntheticOfTheWrongClassHurts: synthetic images of another class
// lower accuracy; the evaluation does not flatter synthetic data.
func TestSyntheticOfTheWrongClassHurts(t *testing.T) {
	g := gaussianGroup(2, 10, 40, 50, faithful)
	names := []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"}
	shifted := map[string][][]float32{}
	for i, n := range names {
		shifted[n] = g.Synthetic[names[(i+1)%len(names)]]
	}
	g.Synthetic = shifted
	res, err := Evaluate(t.Context(), g, Config{Shots: []int{1, 5}, Episodes: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Gain.Mean+r.Gain.CI95 > -0.05 {
			t.Errorf("%d-shot: gain %+.3f ± %.3f with synthetic images of other classes", r.Shots, r.Gain.Mean, r.Gain.CI95)
		}
		if r.SyntheticOnly.Mean > 0.2 { // 5-way: chance is 0.2, and these point elsewhere
			t.Errorf("%d-shot: synthetic-only accuracy %.3f", r.Shots, r.SyntheticOnly.Mean)
		}
	}
}

func TestSameSeedSameResult(t *testing.T) {
	g := gaussianGroup(3, 8, 30, 10, faithful)
	cfg := Config{Shots: []int{1, 5}, Episodes: 50, Seed: 9, Synthetic: 5}
	a, _ := Evaluate(t.Context(), g, cfg)
	b, _ := Evaluate(t.Context(), g, cfg)
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("row %d: %+v then %+v", i, a[i], b[i])
		}
	}
	cfg.Seed = 10
	c, _ := Evaluate(t.Context(), g, cfg)
	if c[0] == a[0] {
		t.Error("another seed gave the same episodes")
	}
}

// TestEpisodesKeepSupportAndQueryApart: drawn from one pool (held-out
// classes) no image is both support and query; with separate pools
// (seen classes) queries come only from the query pool.
func TestEpisodesKeepSupportAndQueryApart(t *testing.T) {
	id := 0
	vec := func() []float32 { id++; return []float32{float32(id), 1} }
	shared := Group{Support: map[string][][]float32{}, Synthetic: map[string][][]float32{}}
	split := Group{Support: map[string][][]float32{}, Query: map[string][][]float32{}, Synthetic: map[string][][]float32{}}
	isQuery := map[float32]bool{}
	var classes []string
	for c := 0; c < 6; c++ {
		n := string(rune('a' + c))
		classes = append(classes, n)
		for i := 0; i < 20; i++ {
			shared.Support[n] = append(shared.Support[n], vec())
			split.Support[n] = append(split.Support[n], vec())
			q := vec()
			isQuery[q[0]] = true
			split.Query[n] = append(split.Query[n], q)
		}
		shared.Synthetic[n] = [][]float32{vec()}
		split.Synthetic[n] = [][]float32{vec()}
	}
	shared.Query = shared.Support
	cfg := Config{Ways: 5, Queries: 15}.withDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		e := draw(rng, shared, classes, cfg, 5)
		used := map[float32]bool{}
		for w := range e.support {
			if len(e.support[w]) != 5 || len(e.query[w]) != 15 {
				t.Fatalf("way %d: %d support, %d query", w, len(e.support[w]), len(e.query[w]))
			}
			for _, f := range append(append([][]float32(nil), e.support[w]...), e.query[w]...) {
				if used[f[0]] {
					t.Fatalf("image %v drawn twice in one episode", f[0])
				}
				used[f[0]] = true
			}
		}
		e = draw(rng, split, classes, cfg, 5)
		for w := range e.query {
			for _, f := range e.query[w] {
				if !isQuery[f[0]] {
					t.Fatalf("query %v is not from the query pool", f[0])
				}
			}
			for _, f := range e.support[w] {
				if isQuery[f[0]] {
					t.Fatalf("support %v is from the query pool", f[0])
				}
			}
		}
	}
	if _, err := Evaluate(t.Context(), Group{Name: "few", Support: map[string][][]float32{"a": shared.Query["b"]}, Query: map[string][][]float32{"a": shared.Query["b"]}},
		Config{}); err == nil {
		t.Error("5-way episodes ran on one class")
	}
}

func TestStat(t *testing.T) {
	s := stat([]float64{1, 0, 1, 0})
	// mean 0.5, sample sd sqrt(1/3), se sqrt(1/3)/2
	if s.Mean != 0.5 || math.Abs(s.CI95-1.96*math.Sqrt(1.0/3)/2) > 1e-12 {
		t.Errorf("stat %+v", s)
	}
}

func BenchmarkLinearProbe(b *testing.B) {
	g := gaussianGroupDim(4, 256, 5, 40, 100, faithful) // the sample classifier's feature size
	e := draw(rand.New(rand.NewPCG(1, 1)), g, []string{"A", "B", "C", "D", "E"}, Config{Ways: 5, Queries: 15}.withDefaults(), 1)
	cfg := Config{Classifier: Linear}.withDefaults()
	for b.Loop() {
		accuracy(cfg, e.support, e.synth, e.query)
	}
}
