package evalstat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// AttrHead reads an attribute head whose outputs are named
// "group::value" (e.g. "has_crown_color::red"): one logit per value, the
// values of a group competing in a softmax.
type AttrHead struct {
	names   []string
	groups  []string                  // sorted
	members map[string][]int          // group → output indices
	index   map[string]map[string]int // group → value → output index
}

// NewAttrHead indexes the head's output names.
func NewAttrHead(names []string) (*AttrHead, error) {
	h := &AttrHead{names: append([]string(nil), names...), members: map[string][]int{}, index: map[string]map[string]int{}}
	for i, n := range names {
		g, v, ok := strings.Cut(n, "::")
		if !ok || g == "" || v == "" {
			return nil, fmt.Errorf("attribute %d %q is not group::value", i, n)
		}
		if _, ok := h.index[g]; !ok {
			h.index[g] = map[string]int{}
			h.groups = append(h.groups, g)
		}
		if _, dup := h.index[g][v]; dup {
			return nil, fmt.Errorf("attribute %q twice", n)
		}
		h.index[g][v] = i
		h.members[g] = append(h.members[g], i)
	}
	sort.Strings(h.groups)
	return h, nil
}

// Len is the number of outputs.
func (h *AttrHead) Len() int { return len(h.names) }

// Groups lists the groups, sorted.
func (h *AttrHead) Groups() []string { return append([]string(nil), h.groups...) }

// Values lists a group's values in output order.
func (h *AttrHead) Values(group string) []string {
	var res []string
	for _, i := range h.members[group] {
		_, v, _ := strings.Cut(h.names[i], "::")
		res = append(res, v)
	}
	return res
}

// Has reports whether the head has an output for group::value.
func (h *AttrHead) Has(group, value string) bool {
	_, ok := h.index[group][value]
	return ok
}

// Read is the within-group argmax of every group (first on ties).
func (h *AttrHead) Read(logits []float32) map[string]string {
	res := make(map[string]string, len(h.groups))
	for _, g := range h.groups {
		res[g] = h.argmax(logits, g)
	}
	return res
}

func (h *AttrHead) argmax(logits []float32, group string) string {
	idx := h.members[group]
	best := idx[0]
	for _, i := range idx[1:] {
		if logits[i] > logits[best] {
			best = i
		}
	}
	_, v, _ := strings.Cut(h.names[best], "::")
	return v
}

// LogProbs is the within-group log-softmax of every output.
func (h *AttrHead) LogProbs(logits []float32) []float64 {
	res := make([]float64, len(h.names))
	for _, g := range h.groups {
		idx := h.members[g]
		m := math.Inf(-1)
		for _, i := range idx {
			m = math.Max(m, float64(logits[i]))
		}
		var sum float64
		for _, i := range idx {
			sum += math.Exp(float64(logits[i]) - m)
		}
		lse := m + math.Log(sum)
		for _, i := range idx {
			res[i] = float64(logits[i]) - lse
		}
	}
	return res
}

// Agreement is the share of named attributes that the head confirms:
// over every image i and every group::value of named[i] that the head
// has, whether the group's argmax on logits[i] is that value. n is the
// number of attributes counted; with none the share is NaN.
func Agreement(h *AttrHead, logits [][]float32, named []map[string]string) (share float64, n int) {
	hits := 0
	for i, want := range named {
		for g, v := range want {
			if !h.Has(g, v) {
				continue
			}
			n++
			if h.argmax(logits[i], g) == v {
				hits++
			}
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hits) / float64(n), n
}

// AttrScore is the log of the geometric mean, over the group::value pairs
// of named that the head has, of the within-group probability of the
// value, given the image's log-probabilities (LogProbs); ok is false when
// named has no such pair.
func (h *AttrHead) AttrScore(logProbs []float64, named map[string]string) (score float64, ok bool) {
	n := 0
	for _, g := range h.groups { // fixed order: equal descriptions score equal
		v, named := named[g]
		if i, has := h.index[g][v]; named && has {
			score += logProbs[i]
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return score / float64(n), true
}

// AttrRPrecision is R-precision (R = 1) with the attribute head as the
// matcher: image i's own description named[i] among candidates−1
// descriptions of images of other classes (labels differ), drawn without
// replacement with a generator seeded by (seed, i), so that two sets with
// the same descriptions and labels are ranked against the same
// negatives. Each description is scored by AttrScore on image i; a hit
// when the own description scores strictly above every other (ties count
// against). Images and candidates whose description names no attribute
// of the head take no part. n is the number of images ranked.
func AttrRPrecision(h *AttrHead, logits [][]float32, named []map[string]string, labels []int, candidates int, seed uint64) (rate float64, n int) {
	usable := make([]bool, len(named))
	for i, d := range named {
		for g, v := range d {
			if h.Has(g, v) {
				usable[i] = true
				break
			}
		}
	}
	hits := 0
	for i := range logits {
		if !usable[i] {
			continue
		}
		var others []int
		for j := range named {
			if usable[j] && labels[j] != labels[i] {
				others = append(others, j)
			}
		}
		if len(others) == 0 {
			continue
		}
		n++
		lp := h.LogProbs(logits[i])
		own, _ := h.AttrScore(lp, named[i])
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		beaten := false
		for k := 0; k < candidates-1 && !beaten; k++ {
			var j int
			if len(others) >= candidates-1 {
				r := k + rng.IntN(len(others)-k) // partial Fisher–Yates
				others[k], others[r] = others[r], others[k]
				j = others[k]
			} else {
				j = others[rng.IntN(len(others))]
			}
			if s, _ := h.AttrScore(lp, named[j]); s >= own {
				beaten = true
			}
		}
		if !beaten {
			hits++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hits) / float64(n), n
}
