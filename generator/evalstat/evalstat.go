// Package evalstat holds the evaluation statistics of generated images:
// Fréchet distance of feature statistics, precision and recall of
// k-NN manifolds, attribute agreement and attribute R-precision, DAMSM
// R-precision, and the order check of the degradation ladder. Pure Go, no
// ONNX Runtime.
package evalstat

import (
	"errors"
	"math"
	"math/rand/v2"
)

// Stats are the mean and covariance of a set of feature vectors.
type Stats struct {
	N    int         `json:"n"`
	Mean []float64   `json:"mean"`
	Cov  [][]float64 `json:"cov"`
}

// FeatureStats computes the mean and (unbiased) covariance of features.
func FeatureStats(features [][]float32) Stats {
	n := len(features)
	if n == 0 {
		return Stats{}
	}
	d := len(features[0])
	mu := make([]float64, d)
	for _, f := range features {
		for j, v := range f {
			mu[j] += float64(v)
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	cov := make([][]float64, d)
	for i := range cov {
		cov[i] = make([]float64, d)
	}
	x := make([]float64, d)
	for _, f := range features {
		for j, v := range f {
			x[j] = float64(v) - mu[j]
		}
		for i := 0; i < d; i++ {
			xi := x[i]
			row := cov[i]
			for j := i; j < d; j++ {
				row[j] += xi * x[j]
			}
		}
	}
	den := float64(max(n-1, 1))
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			cov[i][j] /= den
			cov[j][i] = cov[i][j]
		}
	}
	return Stats{N: n, Mean: mu, Cov: cov}
}

// FrechetDistance is ‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1^½ Σ2 Σ1^½)^½), the
// Fréchet distance between two Gaussians (FID when the features are a
// classifier's). The matrix square roots come from symmetric
// eigendecompositions, so the result is real by construction.
func FrechetDistance(a, b Stats) (float64, error) {
	d := len(a.Mean)
	if d == 0 || len(b.Mean) != d || len(a.Cov) != d || len(b.Cov) != d {
		return 0, errors.New("frechet distance: statistics of different or zero dimension")
	}
	var diff float64
	for i := range a.Mean {
		x := a.Mean[i] - b.Mean[i]
		diff += x * x
	}
	s1 := sqrtPSD(a.Cov)
	m := mul(mul(s1, b.Cov), s1)
	inner := sqrtPSD(m)
	var tr float64
	for i := 0; i < d; i++ {
		tr += a.Cov[i][i] + b.Cov[i][i] - 2*inner[i][i]
	}
	return diff + tr, nil
}

// sqrtPSD is the square root of a symmetric positive semi-definite
// matrix; negative eigenvalues from rounding are clipped to zero.
func sqrtPSD(a [][]float64) [][]float64 {
	vals, vecs := eigenSym(a)
	d := len(a)
	res := make([][]float64, d)
	for i := range res {
		res[i] = make([]float64, d)
	}
	for k, v := range vals {
		s := math.Sqrt(math.Max(v, 0))
		if s == 0 {
			continue
		}
		for i := 0; i < d; i++ {
			vi := vecs[i][k] * s
			if vi == 0 {
				continue
			}
			for j := 0; j < d; j++ {
				res[i][j] += vi * vecs[j][k]
			}
		}
	}
	return res
}

// eigenSym diagonalises a symmetric matrix with cyclic Jacobi rotations;
// the eigenvectors are the columns of vecs.
func eigenSym(in [][]float64) (vals []float64, vecs [][]float64) {
	d := len(in)
	a := make([][]float64, d)
	vecs = make([][]float64, d)
	for i := range a {
		a[i] = append([]float64(nil), in[i]...)
		vecs[i] = make([]float64, d)
		vecs[i][i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, total float64
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				total += a[i][j] * a[i][j]
				if i != j {
					off += a[i][j] * a[i][j]
				}
			}
		}
		if off <= 1e-22*total || off == 0 {
			break
		}
		for p := 0; p < d-1; p++ {
			for q := p + 1; q < d; q++ {
				apq := a[p][q]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < d; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p] = c*akp - s*akq
					a[k][q] = s*akp + c*akq
				}
				for k := 0; k < d; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k] = c*apk - s*aqk
					a[q][k] = s*apk + c*aqk
				}
				for k := 0; k < d; k++ {
					vkp, vkq := vecs[k][p], vecs[k][q]
					vecs[k][p] = c*vkp - s*vkq
					vecs[k][q] = s*vkp + c*vkq
				}
			}
		}
	}
	vals = make([]float64, d)
	for i := range vals {
		vals[i] = a[i][i]
	}
	return vals, vecs
}

func mul(a, b [][]float64) [][]float64 {
	d := len(a)
	res := make([][]float64, d)
	for i := range res {
		res[i] = make([]float64, d)
		for k := 0; k < d; k++ {
			aik := a[i][k]
			if aik == 0 {
				continue
			}
			for j := 0; j < d; j++ {
				res[i][j] += aik * b[k][j]
			}
		}
	}
	return res
}

// RPrecision is AttnGAN's R-precision with R = 1: for each image, its own
// caption (sents[i]) among candidates−1 captions of other classes, ranked
// by cosine similarity to the image's code; the share ranked first (ties
// count against). Negatives are drawn with a seeded generator.
func RPrecision(codes, sents [][]float32, labels []int, candidates int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	hits, n := 0, 0
	for i := range codes {
		var others []int
		for j := range sents {
			if labels[j] != labels[i] {
				others = append(others, j)
			}
		}
		if len(others) == 0 {
			continue
		}
		n++
		truth := Cosine(codes[i], sents[i])
		beaten := false
		for k := 0; k < candidates-1; k++ {
			var j int
			if len(others) >= candidates-1 {
				// without replacement: partial Fisher–Yates
				r := k + rng.IntN(len(others)-k)
				others[k], others[r] = others[r], others[k]
				j = others[k]
			} else {
				j = others[rng.IntN(len(others))]
			}
			if Cosine(codes[i], sents[j]) >= truth {
				beaten = true
				break
			}
		}
		if !beaten {
			hits++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(hits) / float64(n)
}

// Cosine is the cosine similarity of a and b (0 when either is zero).
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
