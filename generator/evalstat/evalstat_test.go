package evalstat

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gaussian(rng *rand.Rand, n, d int, shift, scale float64) [][]float32 {
	res := make([][]float32, n)
	for i := range res {
		res[i] = make([]float32, d)
		for j := range res[i] {
			res[i][j] = float32(rng.NormFloat64()*scale + shift)
		}
	}
	return res
}

func TestFrechetDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := FeatureStats(gaussian(rng, 4000, 8, 0, 1))
	if d, _ := FrechetDistance(a, a); math.Abs(d) > 1e-8 {
		t.Fatalf("FD(a, a) = %g", d)
	}
	// N(0, I) vs N(1, 4I) in 8 dims: 8·1² + 8·(1 + 4 − 2·2) = 16.
	b := FeatureStats(gaussian(rng, 4000, 8, 1, 2))
	d, err := FrechetDistance(a, b)
	if err != nil || math.Abs(d-16) > 1 {
		t.Fatalf("FD = %g (%v), want about 16", d, err)
	}
	// Symmetric, and the covariance term matters, not only the means.
	d2, _ := FrechetDistance(b, a)
	if math.Abs(d-d2) > 1e-6*d {
		t.Fatalf("not symmetric: %g vs %g", d, d2)
	}
}

func TestSqrtPSD(t *testing.T) {
	a := [][]float64{{4, 1, 0}, {1, 3, 1}, {0, 1, 2}}
	s := sqrtPSD(a)
	sq := mul(s, s)
	for i := range a {
		for j := range a {
			if math.Abs(sq[i][j]-a[i][j]) > 1e-9 {
				t.Fatalf("sqrt² = %v, want %v", sq, a)
			}
		}
	}
}

func TestRPrecision(t *testing.T) {
	// Codes equal to their own caption's feature: R-precision 1. Codes
	// unrelated to the captions: about 1/candidates.
	rng := rand.New(rand.NewPCG(3, 4))
	n := 300
	sents := gaussian(rng, n, 16, 0, 1)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 30
	}
	if r := RPrecision(sents, sents, labels, 100, 1); r != 1 {
		t.Fatalf("perfect R-precision = %g", r)
	}
	random := gaussian(rng, n, 16, 0, 1)
	if r := RPrecision(random, sents, labels, 100, 1); r > 0.05 {
		t.Fatalf("random R-precision = %g", r)
	}
}
