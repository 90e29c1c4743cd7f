// Package fewshot measures whether synthetic images help a few-shot
// classifier: N-way K-shot episodes on the frozen features of the
// fidelity classifier, with a classifier (class prototypes or a linear
// probe) trained on (a) K real images per class and (b) the same K plus
// synthetic images of those classes. Both are scored on the same real
// query images, so each episode gives a paired difference; accuracies
// come with 95% confidence intervals over the episodes.
package fewshot

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
)

// Group is a set of classes to run episodes on, with the features of
// their images.
type Group struct {
	Name string
	// Support holds the real images that support sets are drawn from,
	// Query those that queries are drawn from (real test images). When a
	// class's Query is the same slice as its Support (held-out classes:
	// all their images are test images), supports and queries are drawn
	// from it without overlap.
	Support map[string][][]float32
	Query   map[string][][]float32
	// Synthetic holds the synthetic images per class (condition b).
	Synthetic map[string][][]float32
	// Attributes are each class's attribute values (group → value), for
	// fine-grained episodes (DrawFine).
	Attributes map[string]map[string]string
	// Anchors, if not nil, are the classes a fine-grained episode may be
	// built around; its other classes may be any of the group's.
	Anchors map[string]bool
}

// Config sets the episodes and the classifier.
type Config struct {
	Ways     int   // classes per episode (default 5)
	Shots    []int // real images per class in the support set (default 1, 5)
	Queries  int   // real query images per class (default 15)
	Episodes int   // episodes per group and shot count (default 600)
	Seed     uint64
	// Synthetic is the number of synthetic images per class added in
	// condition b (drawn anew each episode; 0 = all there are).
	Synthetic int
	// Weight is the weight of one synthetic image relative to one real
	// image in the classifier (default 1: a plain union).
	Weight float64
	// Classifier: "prototype" (nearest class mean, cosine) or "linear"
	// (multinomial logistic regression initialised at the prototypes).
	Classifier string
	// Draw is how an episode's classes are drawn: DrawFine (default when
	// the group has attributes) or DrawRandom.
	Draw string
	// Mix, when > 0, sets the synthetic images' weight per class so that
	// they hold this share (0–1) of the class's weight in the classifier,
	// whatever their count (replaces Weight): the synthetic prototype
	// shrunk toward the real support.
	Mix float64
	// Center moves each episode's synthetic features by the difference of
	// the mean real and the mean synthetic prototype of its classes: the
	// generator's shift common to all classes is taken out, the
	// differences between classes kept (prototype calibration).
	Center bool
	// Nearest, when > 0, keeps of each class's synthetic images the
	// Nearest closest (cosine) to its real support's mean: the real
	// support image chooses which generated images stand for the class.
	Nearest int
}

// Classifiers.
const (
	Prototype = "prototype"
	Linear    = "linear"
)

// Draws of an episode's classes.
const (
	// DrawFine builds an episode around an anchor class (drawn uniformly)
	// with the N−1 classes whose attributes differ from it in the fewest
	// groups (ties drawn at random): fine-grained episodes.
	DrawFine = "fine"
	// DrawRandom draws the N classes uniformly.
	DrawRandom = "random"
)

func (c Config) withDefaults() Config {
	if c.Ways == 0 {
		c.Ways = 5
	}
	if len(c.Shots) == 0 {
		c.Shots = []int{1, 5}
	}
	if c.Queries == 0 {
		c.Queries = 15
	}
	if c.Episodes == 0 {
		c.Episodes = 600
	}
	if c.Weight == 0 {
		c.Weight = 1
	}
	if c.Classifier == "" {
		c.Classifier = Prototype
	}
	return c
}

func (c Config) drawFor(g Group) string {
	if c.Draw == "" && len(g.Attributes) > 0 {
		return DrawFine
	}
	if c.Draw == "" {
		return DrawRandom
	}
	return c.Draw
}

// ErrConfig marks an evaluation that cannot run as configured.
var ErrConfig = errors.New("few-shot evaluation")

// Stat is a mean over episodes with its 95% confidence interval
// (half-width, 1.96 standard errors).
type Stat struct {
	Mean float64 `json:"mean"`
	CI95 float64 `json:"ci95"`
}

// Result is one row of the table: a group, a shot count, both
// conditions and their paired difference.
type Result struct {
	// Scorer is the network whose features were used, Variant how the
	// synthetic images were added and MinFidelity their bar (set by the
	// caller that chose them).
	Scorer      string  `json:"scorer,omitempty"`
	Variant     string  `json:"variant,omitempty"`
	MinFidelity float64 `json:"synthetic_min_fidelity,omitempty"`
	Group       string  `json:"group"`
	Ways        int     `json:"ways"`
	Shots       int     `json:"shots"`
	Queries     int     `json:"queries"`
	Episodes    int     `json:"episodes"`
	Classifier  string  `json:"classifier"`
	Synthetic   int     `json:"synthetic_per_class"`
	// Classes is the number of classes episodes are drawn from, and
	// WithoutSynthetic how many of them have no synthetic image.
	Classes          int     `json:"classes"`
	WithoutSynthetic int     `json:"classes_without_synthetic"`
	Weight           float64 `json:"synthetic_weight"`
	Mix              float64 `json:"synthetic_share,omitempty"`
	Center           bool    `json:"centered,omitempty"`
	Nearest          int     `json:"nearest_to_support,omitempty"`
	// Draw is how episodes' classes were drawn; AttributeDistance the
	// mean number of attribute groups in which two classes of an episode
	// differ.
	Draw              string  `json:"draw"`
	AttributeDistance float64 `json:"attribute_distance,omitempty"`
	Real              Stat    `json:"real"`      // (a) K real
	Augmented         Stat    `json:"augmented"` // (b) K real + synthetic
	Gain              Stat    `json:"gain"`      // b − a, paired per episode
	// SyntheticOnly is the accuracy of the synthetic images alone (no real
	// support image): how much the generator knows of the class by itself.
	SyntheticOnly Stat `json:"synthetic_only"`
	// RealOnly is set when no class of the group has a synthetic image:
	// only Real is measured (Augmented, Gain and SyntheticOnly are zero).
	RealOnly bool `json:"real_only,omitempty"`
}

// Evaluate runs cfg.Episodes episodes per shot count on g.
func Evaluate(ctx context.Context, g Group, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Classifier != Prototype && cfg.Classifier != Linear {
		return nil, fmt.Errorf("%w: classifier %q: want %s or %s", ErrConfig, cfg.Classifier, Prototype, Linear)
	}
	switch cfg.drawFor(g) {
	case DrawRandom:
	case DrawFine:
		if len(g.Attributes) == 0 {
			return nil, fmt.Errorf("%w: group %s: fine-grained episodes need the classes' attributes", ErrConfig, g.Name)
		}
	default:
		return nil, fmt.Errorf("%w: draw %q: want %s or %s", ErrConfig, cfg.Draw, DrawFine, DrawRandom)
	}
	if cfg.Mix < 0 || cfg.Mix >= 1 {
		return nil, fmt.Errorf("%w: synthetic share %v: want 0 to 1 (exclusive)", ErrConfig, cfg.Mix)
	}
	classes := eligible(g, cfg)
	if len(classes) < cfg.Ways {
		return nil, fmt.Errorf("%w: group %s: %d classes have enough real images (%d support, %d queries); %d-way episodes need %d",
			ErrConfig, g.Name, len(classes), maxInt(cfg.Shots), cfg.Queries, cfg.Ways, cfg.Ways)
	}
	if cfg.drawFor(g) == DrawFine && len(anchors(g, classes)) == 0 {
		return nil, fmt.Errorf("%w: group %s: no anchor class has enough real images", ErrConfig, g.Name)
	}
	var res []Result
	for _, k := range cfg.Shots {
		r, err := run(ctx, g, classes, cfg, k)
		if err != nil {
			return nil, err
		}
		res = append(res, r)
	}
	return res, nil
}

// eligible lists the classes with enough real images for the largest
// shot count, sorted. A class without synthetic images takes part; (b)
// then has nothing to add for it.
func eligible(g Group, cfg Config) []string {
	k := maxInt(cfg.Shots)
	var res []string
	for c, sup := range g.Support {
		q := g.Query[c]
		shared := sameSlice(sup, q)
		ok := len(sup) >= k && len(q) >= cfg.Queries
		if shared {
			ok = len(sup) >= k+cfg.Queries
		}
		if ok {
			res = append(res, c)
		}
	}
	sort.Strings(res)
	return res
}

func sameSlice(a, b [][]float32) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// episode is one drawn task: per class, support, query and synthetic
// features.
type episode struct {
	classes               []string
	support, query, synth [][][]float32 // [way][i]
}

// draw draws an episode's classes, supports and queries: from the real
// images alone, so that the episodes of a seed are the same whatever
// synthetic set is added (or none).
func draw(rng *rand.Rand, g Group, classes []string, cfg Config, k int) episode {
	var picked []string
	if cfg.drawFor(g) == DrawFine {
		picked = drawFine(rng, g, classes, cfg.Ways)
	} else {
		for _, ci := range rng.Perm(len(classes))[:cfg.Ways] {
			picked = append(picked, classes[ci])
		}
	}
	var e episode
	for _, c := range picked {
		sup, q := g.Support[c], g.Query[c]
		var s, qs [][]float32
		if sameSlice(sup, q) {
			idx := rng.Perm(len(sup))
			for _, i := range idx[:k] {
				s = append(s, sup[i])
			}
			for _, i := range idx[k : k+cfg.Queries] {
				qs = append(qs, sup[i])
			}
		} else {
			for _, i := range rng.Perm(len(sup))[:k] {
				s = append(s, sup[i])
			}
			for _, i := range rng.Perm(len(q))[:cfg.Queries] {
				qs = append(qs, q[i])
			}
		}
		e.classes = append(e.classes, c)
		e.support = append(e.support, s)
		e.query = append(e.query, qs)
	}
	return e
}

// anchors are the classes a fine-grained episode may be built around.
func anchors(g Group, classes []string) []string {
	if g.Anchors == nil {
		return classes
	}
	var res []string
	for _, c := range classes {
		if g.Anchors[c] {
			res = append(res, c)
		}
	}
	return res
}

// drawFine picks an anchor class and the ways−1 classes nearest to it in
// attributes (ties at random).
func drawFine(rng *rand.Rand, g Group, classes []string, ways int) []string {
	as := anchors(g, classes)
	a := as[rng.IntN(len(as))]
	type near struct {
		c    string
		d    int
		rank float64
	}
	var others []near
	for _, c := range classes {
		if c != a {
			others = append(others, near{c, attributeDistance(g.Attributes[a], g.Attributes[c]), rng.Float64()})
		}
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].d != others[j].d {
			return others[i].d < others[j].d
		}
		return others[i].rank < others[j].rank
	})
	res := []string{a}
	for _, o := range others[:ways-1] {
		res = append(res, o.c)
	}
	return res
}

// attributeDistance is the number of attribute groups in which a and b
// differ (a group only one of them has counts).
func attributeDistance(a, b map[string]string) int {
	d := 0
	for k, v := range a {
		if b[k] != v {
			d++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d++
		}
	}
	return d
}

// meanDistance is the mean attribute distance of the pairs of classes of
// the episodes.
func meanDistance(g Group, eps []episode) float64 {
	if len(g.Attributes) == 0 {
		return 0
	}
	var sum float64
	n := 0
	for _, e := range eps {
		for i := range e.classes {
			for j := i + 1; j < len(e.classes); j++ {
				sum += float64(attributeDistance(g.Attributes[e.classes[i]], g.Attributes[e.classes[j]]))
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// drawSynthetic picks the synthetic images of an episode's classes, from
// a stream of its own.
func drawSynthetic(rng *rand.Rand, e *episode, g Group, cfg Config) {
	e.synth = make([][][]float32, len(e.classes))
	for w, c := range e.classes {
		syn := g.Synthetic[c]
		m := len(syn)
		if cfg.Synthetic > 0 {
			m = min(m, cfg.Synthetic)
		}
		for _, i := range rng.Perm(len(syn))[:m] {
			e.synth[w] = append(e.synth[w], syn[i])
		}
	}
}

func run(ctx context.Context, g Group, classes []string, cfg Config, k int) (Result, error) {
	// Episodes are drawn up front from one seeded stream (per group and
	// shot count) from the real images only, the synthetic images from a
	// second stream; then they are scored in parallel: the result does not
	// depend on the number of CPUs, and the real-only accuracy of a seed
	// not on the synthetic set.
	h := fnv.New64a()
	h.Write([]byte(g.Name))
	rng := rand.New(rand.NewPCG(cfg.Seed^h.Sum64(), uint64(k)))
	rngSyn := rand.New(rand.NewPCG(cfg.Seed^h.Sum64()^0x5e17e71c, uint64(k)+1))
	without := 0
	for _, c := range classes {
		if len(g.Synthetic[c]) == 0 {
			without++
		}
	}
	realOnly := without == len(classes)
	eps := make([]episode, cfg.Episodes)
	for i := range eps {
		eps[i] = draw(rng, g, classes, cfg, k)
	}
	for i := range eps {
		drawSynthetic(rngSyn, &eps[i], g, cfg)
	}
	real := make([]float64, len(eps))
	aug := make([]float64, len(eps))
	syn := make([]float64, len(eps))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := eps[i]
				none := make([][][]float32, len(e.support))
				real[i] = accuracy(cfg, e.support, none, e.query)
				if !realOnly {
					aug[i] = accuracy(cfg, e.support, e.synth, e.query)
					syn[i] = accuracy(cfg, none, e.synth, e.query)
				}
			}
		}()
	}
	for i := range eps {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	gain := make([]float64, len(eps))
	for i := range gain {
		gain[i] = aug[i] - real[i]
	}
	r := Result{Group: g.Name, Ways: cfg.Ways, Shots: k, Queries: cfg.Queries, Episodes: cfg.Episodes,
		Classifier: cfg.Classifier, Synthetic: cfg.Synthetic, Weight: cfg.Weight, Mix: cfg.Mix, Center: cfg.Center, Nearest: cfg.Nearest,
		Classes: len(classes), WithoutSynthetic: without, Draw: cfg.drawFor(g), AttributeDistance: meanDistance(g, eps),
		Real: stat(real), RealOnly: realOnly}
	if !realOnly {
		r.Augmented, r.Gain, r.SyntheticOnly = stat(aug), stat(gain), stat(syn)
	}
	return r, nil
}

func stat(xs []float64) Stat {
	n := float64(len(xs))
	var mean float64
	for _, x := range xs {
		mean += x / n
	}
	var v float64
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	if len(xs) > 1 {
		v /= n - 1
	}
	return Stat{Mean: mean, CI95: 1.96 * math.Sqrt(v/n)}
}

// accuracy trains the configured classifier on the real support images
// (weight 1) and synthetic ones (weight cfg.Weight, or the share cfg.Mix
// of each class; moved by the episode's synthetic-to-real shift with
// cfg.Center) and returns its accuracy on the queries.
func accuracy(cfg Config, support, synth, query [][][]float32) float64 {
	n, d := len(support), len(query[0][0])
	if cfg.Nearest > 0 {
		synth = nearestToSupport(support, synth, cfg.Nearest)
	}
	shift := make([]float64, d)
	if cfg.Center {
		shift = centerShift(support, synth, d)
	}
	var xs [][]float64
	var ys []int
	var ws []float64
	for c := range support {
		for _, f := range support[c] {
			xs, ys, ws = append(xs, unit(f)), append(ys, c), append(ws, 1)
		}
		w := cfg.Weight
		if cfg.Mix > 0 && len(synth[c]) > 0 {
			w = cfg.Mix / (1 - cfg.Mix) * float64(max(len(support[c]), 1)) / float64(len(synth[c]))
		}
		for _, f := range synth[c] {
			x := unit(f)
			for j := range x {
				x[j] += shift[j]
			}
			xs, ys, ws = append(xs, x), append(ys, c), append(ws, w)
		}
	}
	w := prototypes(xs, ys, ws, n, d)
	b := make([]float64, n)
	if cfg.Classifier == Linear && len(xs) > 0 {
		w, b = logistic(xs, ys, ws, w)
	}
	hits, total := 0, 0
	for c := range query {
		for _, f := range query[c] {
			if predict(w, b, unit(f)) == c {
				hits++
			}
			total++
		}
	}
	return float64(hits) / float64(total)
}

// nearestToSupport keeps of each class's synthetic features the m
// closest (cosine) to the mean of its real support (all of them for a
// class without real support).
func nearestToSupport(support, synth [][][]float32, m int) [][][]float32 {
	res := make([][][]float32, len(synth))
	for c := range synth {
		if len(support[c]) == 0 || len(synth[c]) <= m {
			res[c] = synth[c]
			continue
		}
		mean := make([]float64, len(support[c][0]))
		for _, f := range support[c] {
			for j, v := range unit(f) {
				mean[j] += v
			}
		}
		type scored struct {
			f []float32
			s float64
		}
		list := make([]scored, len(synth[c]))
		for i, f := range synth[c] {
			list[i] = scored{f, dot(mean, unit(f))}
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].s > list[j].s })
		for _, x := range list[:m] {
			res[c] = append(res[c], x.f)
		}
	}
	return res
}

// centerShift is the mean real prototype minus the mean synthetic
// prototype over the classes that have both (unit features): added to
// every synthetic feature, it takes out the generator's shift that all
// classes share. Zero without real or synthetic images.
func centerShift(support, synth [][][]float32, d int) []float64 {
	shift := make([]float64, d)
	n := 0
	for c := range support {
		if len(support[c]) == 0 || len(synth[c]) == 0 {
			continue
		}
		n++
		for _, f := range support[c] {
			for j, v := range unit(f) {
				shift[j] += v / float64(len(support[c]))
			}
		}
		for _, f := range synth[c] {
			for j, v := range unit(f) {
				shift[j] -= v / float64(len(synth[c]))
			}
		}
	}
	for j := range shift {
		if n > 0 {
			shift[j] /= float64(n)
		}
	}
	return shift
}

// unit is f scaled to length 1 (cosine geometry).
func unit(f []float32) []float64 {
	var s float64
	for _, v := range f {
		s += float64(v) * float64(v)
	}
	s = math.Sqrt(s)
	res := make([]float64, len(f))
	if s == 0 {
		return res
	}
	for i, v := range f {
		res[i] = float64(v) / s
	}
	return res
}

// prototypes are the weighted class means, scaled to length 1.
func prototypes(xs [][]float64, ys []int, ws []float64, n, d int) [][]float64 {
	p := make([][]float64, n)
	for c := range p {
		p[c] = make([]float64, d)
	}
	for i, x := range xs {
		for j, v := range x {
			p[ys[i]][j] += ws[i] * v
		}
	}
	for c := range p {
		var s float64
		for _, v := range p[c] {
			s += v * v
		}
		if s = math.Sqrt(s); s > 0 {
			for j := range p[c] {
				p[c][j] /= s
			}
		}
	}
	return p
}

func predict(w [][]float64, b []float64, x []float64) int {
	best, arg := math.Inf(-1), 0
	for c := range w {
		s := b[c] + dot(w[c], x)
		if s > best {
			best, arg = s, c
		}
	}
	return arg
}

// Linear probe settings: logits are scale·(w·x + b) on unit features;
// full-batch gradient descent from the prototypes with weight decay
// towards them.
const (
	probeScale = 10.0
	probeSteps = 40
	probeLR    = 1.0
	probeDecay = 0.01
)

// logistic fits a weighted multinomial logistic regression on unit
// features, starting from (and decaying towards) the prototypes w0.
func logistic(xs [][]float64, ys []int, ws []float64, w0 [][]float64) ([][]float64, []float64) {
	n, nc, d := len(xs), len(w0), len(w0[0])
	x := make([]float64, n*d)
	for i, row := range xs {
		copy(x[i*d:], row)
	}
	w, init, g := make([]float64, nc*d), make([]float64, nc*d), make([]float64, nc*d)
	for c, row := range w0 {
		copy(w[c*d:], row)
		copy(init[c*d:], row)
	}
	b, gb, p := make([]float64, nc), make([]float64, nc), make([]float64, nc)
	var wsum float64
	for _, v := range ws {
		wsum += v
	}
	for step := 0; step < probeSteps; step++ {
		for k := range g {
			g[k] = probeDecay * (w[k] - init[k])
		}
		clear(gb)
		for i := 0; i < n; i++ {
			xi := x[i*d : (i+1)*d]
			mx := math.Inf(-1)
			for c := 0; c < nc; c++ {
				p[c] = probeScale * (b[c] + dot(w[c*d:(c+1)*d], xi))
				mx = math.Max(mx, p[c])
			}
			var z float64
			for c := range p {
				p[c] = math.Exp(p[c] - mx)
				z += p[c]
			}
			coef := probeScale * ws[i] / wsum
			for c := range p {
				gc := p[c] / z
				if c == ys[i] {
					gc--
				}
				gc *= coef
				axpy(g[c*d:(c+1)*d], gc, xi)
				gb[c] += gc
			}
		}
		for k := range w {
			w[k] -= probeLR * g[k]
		}
		for c := range b {
			b[c] -= probeLR * gb[c]
		}
	}
	res := make([][]float64, nc)
	for c := range res {
		res[c] = w[c*d : (c+1)*d]
	}
	return res, b
}

func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// axpy adds a·x to y.
func axpy(y []float64, a float64, x []float64) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}
