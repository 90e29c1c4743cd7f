package fewshot

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/fgstudio/fgstudio/generator/dataset"
)

// Described makes synthetic features of classes from their attribute
// descriptions alone (no image): feature hallucination in the manner of
// the low-shot literature the survey cites (§8), conditioned on the
// description as feature-generating zero-shot methods are.
//
// For each class c with a description, a ridge regression from the
// description (one-hot attribute values and a constant) to the class mean
// of unit features is fitted on the training images of the other seen
// classes — never on an image of c, so a seen class in an episode gets no
// more from it than a held-out one. The n features of c are that
// predicted mean plus n within-class deviations (an image's unit feature
// minus its class mean) borrowed from training images of those other
// classes, drawn with the seed. The ridge strength is chosen among a few
// by leave-one-class-out error on the seen classes.
//
// With Neighbours k > 0 the predicted mean is corrected by analogy: plus
// the mean residual (true minus predicted mean) of the k seen classes
// nearest to c in attributes (other than c) — what a linear map misses
// about a family of siblings, it misses alike for each member.
type Described struct {
	// PerClass is the number of features made per class.
	PerClass   int
	Neighbours int
	Seed       uint64
	// Lambda is the chosen ridge strength (set by Make).
	Lambda float64
	// FitError is the leave-one-class-out mean squared error of the
	// predicted class means at Lambda, and Spread the mean squared
	// distance of the seen classes' means from their overall mean (the
	// error of predicting the overall mean): FitError/Spread < 1 says the
	// descriptions predict where a class lies.
	FitError, Spread float64
}

// describeLambdas are the ridge strengths tried.
var describeLambdas = []float64{0.01, 0.1, 1, 10}

// Make returns PerClass features for every class in attrs, from the
// training images of the seen classes (those not in heldout) of ref.
func (d *Described) Make(ref *dataset.Reference, heldout map[string]bool, attrs map[string]map[string]string) (map[string][][]float32, error) {
	if d.PerClass < 1 {
		return nil, errors.New("fewshot: features per class from descriptions: want at least 1")
	}
	train := map[string][][]float64{}
	for _, im := range ref.Images {
		if im.Train && !heldout[im.Class] && attrs[im.Class] != nil {
			train[im.Class] = append(train[im.Class], unit(im.Features))
		}
	}
	var seen []string
	for c := range train {
		seen = append(seen, c)
	}
	sort.Strings(seen)
	if len(seen) < 3 {
		return nil, fmt.Errorf("fewshot: features from descriptions need training images of at least 3 described seen classes, have %d", len(seen))
	}
	enc := newAttrEncoder(attrs)
	dim := len(ref.Images[0].Features)
	means := make([][]float64, len(seen))
	var devs [][]float64 // within-class deviations, with their class
	var devClass []int
	for k, c := range seen {
		means[k] = mean(train[c], dim)
		for _, f := range train[c] {
			dv := make([]float64, dim)
			for j := range f {
				dv[j] = f[j] - means[k][j]
			}
			devs, devClass = append(devs, dv), append(devClass, k)
		}
	}
	xs := make([][]float64, len(seen))
	for k, c := range seen {
		xs[k] = enc.encode(attrs[c])
	}
	// The ridge strength with the least leave-one-class-out error.
	overall := mean(means, dim)
	d.Spread = 0
	for _, m := range means {
		d.Spread += sqDist(m, overall) / float64(len(means))
	}
	d.FitError = math.Inf(1)
	for _, lam := range describeLambdas {
		var e float64
		for k := range seen {
			mu, err := d.predict(xs, means, k, xs[k], lam)
			if err != nil {
				return nil, err
			}
			e += sqDist(mu, means[k]) / float64(len(seen))
		}
		if e < d.FitError {
			d.FitError, d.Lambda = e, lam
		}
	}
	index := map[string]int{}
	for k, c := range seen {
		index[c] = k
	}
	var classes []string
	for c := range attrs {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	rng := rand.New(rand.NewPCG(d.Seed, 0xde5c71bed))
	res := map[string][][]float32{}
	for _, c := range classes {
		leave, ok := index[c]
		if !ok {
			leave = -1
		}
		mu, err := d.predict(xs, means, leave, enc.encode(attrs[c]), d.Lambda)
		if err != nil {
			return nil, err
		}
		for len(res[c]) < d.PerClass {
			i := rng.IntN(len(devs))
			if devClass[i] == leave {
				continue // never a deviation of c's own images
			}
			f := make([]float32, dim)
			for j := range f {
				f[j] = float32(mu[j] + devs[i][j])
			}
			res[c] = append(res[c], f)
		}
	}
	return res, nil
}

// predict is the mean feature of a class described by x, from the seen
// classes other than leave (xs, means): the ridge map, corrected by its
// residuals on the d.Neighbours seen classes nearest to x.
func (d *Described) predict(xs, means [][]float64, leave int, x []float64, lambda float64) ([]float64, error) {
	w, err := ridge(xs, means, leave, lambda)
	if err != nil {
		return nil, err
	}
	mu := apply(w, x)
	if d.Neighbours <= 0 {
		return mu, nil
	}
	var near []int
	for k := range xs {
		if k != leave {
			near = append(near, k)
		}
	}
	sort.SliceStable(near, func(i, j int) bool { return sqDist(xs[near[i]], x) < sqDist(xs[near[j]], x) })
	near = near[:min(d.Neighbours, len(near))]
	for _, k := range near {
		r := apply(w, xs[k])
		for j := range mu {
			mu[j] += (means[k][j] - r[j]) / float64(len(near))
		}
	}
	return mu, nil
}

// attrEncoder turns a description (group → value) into a one-hot vector
// of every (group, value) pair any class has, and a constant 1.
type attrEncoder struct{ pos map[[2]string]int }

func newAttrEncoder(attrs map[string]map[string]string) attrEncoder {
	var pairs [][2]string
	seen := map[[2]string]bool{}
	for _, a := range attrs {
		for g, v := range a {
			p := [2]string{g, v}
			if !seen[p] {
				seen[p] = true
				pairs = append(pairs, p)
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		return pairs[i][0] < pairs[j][0] || (pairs[i][0] == pairs[j][0] && pairs[i][1] < pairs[j][1])
	})
	e := attrEncoder{pos: map[[2]string]int{}}
	for i, p := range pairs {
		e.pos[p] = i
	}
	return e
}

func (e attrEncoder) encode(a map[string]string) []float64 {
	x := make([]float64, len(e.pos)+1)
	x[len(e.pos)] = 1
	for g, v := range a {
		if i, ok := e.pos[[2]string{g, v}]; ok {
			x[i] = 1
		}
	}
	return x
}

// ridge fits W (rows: outputs) minimising Σ_k ||y_k − W x_k||² + λ||W||²
// over the rows k ≠ leave, by the normal equations (Cholesky).
func ridge(xs, ys [][]float64, leave int, lambda float64) ([][]float64, error) {
	p, d := len(xs[0]), len(ys[0])
	a := make([][]float64, p) // XᵀX + λI
	b := make([][]float64, p) // XᵀY
	for i := range a {
		a[i], b[i] = make([]float64, p), make([]float64, d)
		a[i][i] = lambda
	}
	for k, x := range xs {
		if k == leave {
			continue
		}
		for i, xi := range x {
			if xi == 0 {
				continue
			}
			for j, xj := range x {
				a[i][j] += xi * xj
			}
			for j, y := range ys[k] {
				b[i][j] += xi * y
			}
		}
	}
	l, err := cholesky(a)
	if err != nil {
		return nil, err
	}
	// Solve L Lᵀ B' = B column by column; W = B'ᵀ.
	w := make([][]float64, d)
	z := make([]float64, p)
	for j := 0; j < d; j++ {
		for i := 0; i < p; i++ {
			s := b[i][j]
			for k := 0; k < i; k++ {
				s -= l[i][k] * z[k]
			}
			z[i] = s / l[i][i]
		}
		col := make([]float64, p)
		for i := p - 1; i >= 0; i-- {
			s := z[i]
			for k := i + 1; k < p; k++ {
				s -= l[k][i] * col[k]
			}
			col[i] = s / l[i][i]
		}
		w[j] = col
	}
	return w, nil
}

// cholesky is L with L Lᵀ = a (a symmetric positive definite).
func cholesky(a [][]float64) ([][]float64, error) {
	n := len(a)
	l := make([][]float64, n)
	for i := range l {
		l[i] = make([]float64, n)
		for j := 0; j <= i; j++ {
			s := a[i][j]
			for k := 0; k < j; k++ {
				s -= l[i][k] * l[j][k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("fewshot: ridge system not positive definite")
				}
				l[i][i] = math.Sqrt(s)
			} else {
				l[i][j] = s / l[j][j]
			}
		}
	}
	return l, nil
}

func apply(w [][]float64, x []float64) []float64 {
	y := make([]float64, len(w))
	for j, row := range w {
		y[j] = dot(row, x)
	}
	return y
}

func mean(xs [][]float64, d int) []float64 {
	m := make([]float64, d)
	for _, x := range xs {
		for j, v := range x {
			m[j] += v / float64(len(xs))
		}
	}
	return m
}

func sqDist(a, b []float64) float64 {
	var s float64
	for j := range a {
		s += (a[j] - b[j]) * (a[j] - b[j])
	}
	return s
}
