package evalstat

import (
	"math"
	"runtime"
	"sort"
	"sync"
)

// PrecisionRecall is improved precision and recall (Kynkäänniemi et al.,
// NeurIPS 2019). Each set's manifold is the union of balls around its
// features, each ball's radius the distance to the feature's k-th nearest
// neighbour in its own set (itself excluded). Precision is the share of
// generated features inside the real manifold (are the images realistic);
// recall is the share of real features inside the generated manifold (is
// the real variety covered). Euclidean distances; a point on a ball's
// boundary is inside. Either set smaller than k+1 gives NaN.
func PrecisionRecall(real, gen [][]float32, k int) (precision, recall float64) {
	if k < 1 || len(real) <= k || len(gen) <= k {
		return math.NaN(), math.NaN()
	}
	rr := kthRadii(real, k)
	gr := kthRadii(gen, k)
	return coverage(gen, real, rr), coverage(real, gen, gr)
}

// Coverage (Naeem et al., ICML 2020, "Reliable fidelity and diversity
// metrics for generative models") is the share of real features whose own
// k-NN ball (radius: distance to its k-th nearest real neighbour) holds at
// least one generated feature. Unlike recall, whose balls are drawn around
// the generated features, it is not raised by generated outliers: noise
// that spreads the generated set widens recall's balls, not these. Fewer
// than k+1 real features give NaN.
func Coverage(real, gen [][]float32, k int) float64 {
	if k < 1 || len(real) <= k || len(gen) == 0 {
		return math.NaN()
	}
	rr := kthRadii(real, k)
	hit := make([]bool, len(real))
	parallel(len(real), func(i int) {
		for _, g := range gen {
			if sqDist(real[i], g) <= rr[i] {
				hit[i] = true
				return
			}
		}
	})
	n := 0
	for _, h := range hit {
		if h {
			n++
		}
	}
	return float64(n) / float64(len(real))
}

// kthRadii is, for each feature, the squared distance to its k-th nearest
// neighbour among the others.
func kthRadii(x [][]float32, k int) []float64 {
	res := make([]float64, len(x))
	parallel(len(x), func(i int) {
		d := make([]float64, 0, len(x)-1)
		for j := range x {
			if j != i {
				d = append(d, sqDist(x[i], x[j]))
			}
		}
		sort.Float64s(d)
		res[i] = d[k-1]
	})
	return res
}

// coverage is the share of points within some ball of (centres, radii²).
func coverage(points, centres [][]float32, radii []float64) float64 {
	in := make([]bool, len(points))
	parallel(len(points), func(i int) {
		for j, c := range centres {
			if sqDist(points[i], c) <= radii[j] {
				in[i] = true
				return
			}
		}
	})
	n := 0
	for _, v := range in {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(points))
}

func sqDist(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}
