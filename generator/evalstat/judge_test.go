package evalstat

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Real vs the same real: every point lies in its own ball, so precision =
// recall = 1 exactly; vs another draw of the same distribution, both are
// close to 1.
func TestPrecisionRecallRealVsReal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	real := gaussian(rng, 600, 2, 0, 1)
	if p, r := PrecisionRecall(real, real, 3); p != 1 || r != 1 {
		t.Fatalf("same set: precision %g recall %g, want 1, 1", p, r)
	}
	other := gaussian(rng, 600, 2, 0, 1)
	if p, r := PrecisionRecall(real, other, 3); p < 0.9 || r < 0.9 {
		t.Fatalf("same distribution: precision %g recall %g, want ≈ 1", p, r)
	}
}

// Disjoint clusters: no generated point is near a real one and vice versa.
func TestPrecisionRecallDisjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	real := gaussian(rng, 300, 8, 0, 1)
	gen := gaussian(rng, 300, 8, 50, 1)
	if p, r := PrecisionRecall(real, gen, 3); p != 0 || r != 0 {
		t.Fatalf("disjoint: precision %g recall %g, want 0, 0", p, r)
	}
}

// Mode collapse: generated points all near one real point are realistic
// (precision high) but cover little (recall low); a too-spread generator
// covers the real set (recall high) but is mostly unrealistic.
func TestPrecisionRecallSeparatesFidelityFromCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	real := gaussian(rng, 500, 4, 0, 1)
	collapsed := gaussian(rng, 500, 4, 0, 0.05)
	if p, r := PrecisionRecall(real, collapsed, 3); p < 0.9 || r > 0.2 {
		t.Fatalf("collapsed: precision %g recall %g, want high / low", p, r)
	}
	spread := gaussian(rng, 500, 4, 0, 4)
	if p, r := PrecisionRecall(real, spread, 3); p > 0.5 || r < 0.8 {
		t.Fatalf("spread: precision %g recall %g, want low / high", p, r)
	}
	if p, r := PrecisionRecall(real[:3], spread, 3); !math.IsNaN(p) || !math.IsNaN(r) {
		t.Fatalf("k ≥ n must be NaN, got %g %g", p, r)
	}
}

// Coverage: the same set covers itself; a disjoint set covers nothing; a
// collapsed set covers little; and noise that spreads a copy of the real
// set raises recall but lowers coverage.
func TestCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	real := gaussian(rng, 500, 8, 0, 1)
	if c := Coverage(real, real, 3); c != 1 {
		t.Fatalf("same set: coverage %g", c)
	}
	if c := Coverage(real, gaussian(rng, 500, 8, 50, 1), 3); c != 0 {
		t.Fatalf("disjoint: coverage %g", c)
	}
	if c := Coverage(real, gaussian(rng, 500, 8, 0, 0.05), 3); c > 0.1 {
		t.Fatalf("collapsed: coverage %g", c)
	}
	other := gaussian(rng, 500, 8, 0, 1)
	noisy := make([][]float32, len(other))
	for i, f := range other {
		noisy[i] = make([]float32, len(f))
		for j, v := range f {
			noisy[i][j] = v + float32(0.7*rng.NormFloat64())
		}
	}
	_, rClean := PrecisionRecall(real, other, 3)
	_, rNoisy := PrecisionRecall(real, noisy, 3)
	cClean, cNoisy := Coverage(real, other, 3), Coverage(real, noisy, 3)
	if !(rNoisy >= rClean-0.02 && cNoisy < cClean-0.05) {
		t.Fatalf("noise: recall %g → %g, coverage %g → %g; want recall held up, coverage down", rClean, rNoisy, cClean, cNoisy)
	}
	if c := Coverage(real[:3], other, 3); !math.IsNaN(c) {
		t.Fatalf("k ≥ n must be NaN, got %g", c)
	}
}

// The floor: two disjoint halves of one distribution, and a third sample
// of the same size, have about the same distance to the reference half;
// a shifted copy is farther than the floor by about ‖shift‖².
func TestFrechetDistanceFloor(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n, d = 1000, 16
	a, b, c := gaussian(rng, n, d, 0, 1), gaussian(rng, n, d, 0, 1), gaussian(rng, n, d, 0, 1)
	sb := FeatureStats(b)
	floor, _ := FrechetDistance(FeatureStats(a), sb)
	same, _ := FrechetDistance(FeatureStats(c), sb)
	if floor <= 0 || math.Abs(same-floor) > 0.5*floor {
		t.Fatalf("real vs real %g, floor %g: want about equal", same, floor)
	}
	shifted := make([][]float32, n)
	for i, f := range c {
		shifted[i] = make([]float32, d)
		for j, v := range f {
			shifted[i][j] = v + 0.25 // ‖shift‖² = 16 · 0.0625 = 1
		}
	}
	fs, _ := FrechetDistance(FeatureStats(shifted), sb)
	if fs < floor+0.7 || fs > floor+1.5 {
		t.Fatalf("shifted copy %g, floor %g: want floor + about 1", fs, floor)
	}
}

func testHead(t *testing.T) *AttrHead {
	t.Helper()
	h, err := NewAttrHead([]string{"crown::red", "crown::blue", "crown::black", "bill::hooked", "bill::cone", "size::small", "size::large"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// logitsFor is a head output that reads the given values (logit 3 for
// them, 0 for the rest).
func logitsFor(h *AttrHead, vals map[string]string) []float32 {
	res := make([]float32, h.Len())
	for i, n := range h.names {
		g, v, _ := strings.Cut(n, "::")
		if vals[g] == v {
			res[i] = 3
		}
	}
	return res
}

func TestAttrHead(t *testing.T) {
	h := testHead(t)
	if g := h.Groups(); len(g) != 3 || g[0] != "bill" || strings.Join(h.Values("crown"), ",") != "red,blue,black" {
		t.Fatalf("groups %v values %v", g, h.Values("crown"))
	}
	l := logitsFor(h, map[string]string{"crown": "blue", "bill": "cone", "size": "large"})
	if r := h.Read(l); r["crown"] != "blue" || r["bill"] != "cone" || r["size"] != "large" {
		t.Fatalf("read %v", r)
	}
	lp := h.LogProbs(l)
	var sum float64
	for _, i := range h.members["crown"] {
		sum += math.Exp(lp[i])
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("crown probabilities sum to %g", sum)
	}
	// geometric mean of p(blue) and p(cone): e³/(e³+2) and e³/(e³+1)
	s, ok := h.AttrScore(lp, map[string]string{"crown": "blue", "bill": "cone", "tail": "fan"})
	want := (math.Log(math.Exp(3)/(math.Exp(3)+2)) + math.Log(math.Exp(3)/(math.Exp(3)+1))) / 2
	if !ok || math.Abs(s-want) > 1e-12 {
		t.Fatalf("score %g, want %g", s, want)
	}
	if _, err := NewAttrHead([]string{"no_group"}); err == nil {
		t.Fatal("a name without :: accepted")
	}
}

func TestAgreement(t *testing.T) {
	h := testHead(t)
	logits := [][]float32{
		logitsFor(h, map[string]string{"crown": "red", "bill": "hooked", "size": "small"}),
		logitsFor(h, map[string]string{"crown": "black", "bill": "cone", "size": "small"}),
	}
	named := []map[string]string{
		{"crown": "red", "bill": "cone"},              // 1 of 2
		{"crown": "black", "size": "small", "x": "y"}, // 2 of 2; x unknown to the head
	}
	if s, n := Agreement(h, logits, named); n != 4 || s != 0.75 {
		t.Fatalf("agreement %g over %d, want 0.75 over 4", s, n)
	}
	if s, n := Agreement(h, logits, []map[string]string{{}, {"x": "y"}}); n != 0 || !math.IsNaN(s) {
		t.Fatalf("nothing named: %g %d", s, n)
	}
}

// R-precision on constructed attribute logits: 12 classes with distinct
// descriptions. Images that read their own description exactly rank it
// first (1); images that read another class's description never do (0);
// images that read nothing (all logits equal) tie every candidate, and
// ties count against (0); a half-and-half set gives 0.5.
func TestAttrRPrecision(t *testing.T) {
	h := testHead(t)
	var descs []map[string]string
	for _, c := range []string{"red", "blue", "black"} {
		for _, b := range []string{"hooked", "cone"} {
			for _, s := range []string{"small", "large"} {
				descs = append(descs, map[string]string{"crown": c, "bill": b, "size": s})
			}
		}
	}
	var named []map[string]string
	var labels []int
	var own, wrong, blank [][]float32
	for rep := 0; rep < 5; rep++ {
		for c, d := range descs {
			named = append(named, d)
			labels = append(labels, c)
			own = append(own, logitsFor(h, d))
			wrong = append(wrong, logitsFor(h, descs[(c+1)%len(descs)]))
			blank = append(blank, make([]float32, h.Len()))
		}
	}
	check := func(name string, logits [][]float32, want float64) {
		t.Helper()
		r, n := AttrRPrecision(h, logits, named, labels, 100, 1)
		if n != len(named) || math.Abs(r-want) > 1e-12 {
			t.Errorf("%s: R-precision %g over %d, want %g over %d", name, r, n, want, len(named))
		}
	}
	check("own", own, 1)
	check("wrong", wrong, 0)
	check("blank", blank, 0)
	half := append(append([][]float32(nil), own[:30]...), wrong[30:]...)
	check("half", half, 0.5)
	// Same descriptions and labels: the same negatives, so equal sets give
	// equal results whatever the seed of the caller's other draws.
	a, _ := AttrRPrecision(h, half, named, labels, 20, 7)
	b, _ := AttrRPrecision(h, half, named, labels, 20, 7)
	if a != b {
		t.Fatalf("not repeatable: %g vs %g", a, b)
	}
}

func TestOrderBreaks(t *testing.T) {
	v := map[string]map[string]float64{
		"clean": {"fd": 1, "top1": 0.9},
		"blur":  {"fd": 3, "top1": 0.95},
		"worse": {"fd": 2, "top1": 0.5},
	}
	pairs := [][2]string{{"clean", "blur"}, {"clean", "worse"}, {"blur", "worse"}}
	br := OrderBreaks(v, []string{"fd", "top1"}, pairs, map[string]bool{"fd": true})
	if len(br) != 2 || br[0].Metric != "fd" || br[0].Better != "blur" || br[1].Metric != "top1" || br[1].Worse != "blur" {
		t.Fatalf("breaks %+v", br)
	}
	v["blur"]["fd"] = math.NaN()
	if br := OrderBreaks(v, []string{"fd"}, pairs[:1], map[string]bool{"fd": true}); len(br) != 1 {
		t.Fatalf("NaN must break the order: %+v", br)
	}
}
