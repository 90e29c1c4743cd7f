package evaluate

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/evalstat"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// sample is one real test image with what it says of itself: its class
// (the judge's entry), one of its captions and the attributes the caption
// names (lexicon).
type sample struct {
	im      cub.Image
	class   catalog.Class
	caption string
	named   map[string]string
}

// judged is what the judge said of a set of images, one row each.
type judged = generator.JudgeOutput

// world is the data set and the judge that reads it.
type world struct {
	ds       *cub.Dataset
	judge    *generator.Judge
	head     *evalstat.AttrHead
	lex      *lexicon.Lexicon // nil: the judge's classes.json has none
	byName   map[string]catalog.Class
	seed     uint64
	batch    int
	progress io.Writer
	printed  time.Time
}

func newWorld(ds *cub.Dataset, j *generator.Judge, seed uint64, batch int, progress io.Writer) (*world, error) {
	cls := j.Classes()
	head, err := evalstat.NewAttrHead(cls.Attributes)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", j.Name(), err)
	}
	w := &world{ds: ds, judge: j, head: head, lex: cls.Lexicon, byName: map[string]catalog.Class{}, seed: seed, batch: max(batch, 1), progress: progress}
	if w.progress == nil {
		w.progress = io.Discard
	}
	for _, c := range cls.Classes {
		w.byName[c.Name] = c
	}
	return w, nil
}

// sample describes a data set image; ok is false when the judge does not
// know its class.
func (w *world) sample(im cub.Image) (sample, bool) {
	c, ok := w.byName[w.ds.Classes[im.ClassID]]
	if !ok {
		return sample{}, false
	}
	s := sample{im: im, class: c, named: map[string]string{}}
	if len(im.Captions) > 0 {
		rng := rand.New(rand.NewPCG(w.seed, uint64(im.ID)))
		s.caption = im.Captions[rng.IntN(len(im.Captions))]
		if w.lex != nil {
			s.named = w.lex.Named(s.caption)
		}
	}
	return s, true
}

// byClass shuffles each class's images (seeded by the class) and returns
// the classes' lists in class id order.
func (w *world) byClass(ims []cub.Image, keep func(sample) bool) [][]sample {
	groups := map[int][]sample{}
	for _, im := range ims {
		if s, ok := w.sample(im); ok && keep(s) {
			groups[im.ClassID] = append(groups[im.ClassID], s)
		}
	}
	ids := make([]int, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	res := make([][]sample, len(ids))
	for k, id := range ids {
		g := groups[id]
		sort.Slice(g, func(a, b int) bool { return g[a].im.ID < g[b].im.ID })
		rng := rand.New(rand.NewPCG(w.seed^0x5e7, uint64(id)))
		rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		res[k] = g
	}
	return res
}

// roundRobin takes the first of every class, then the second, … : any
// prefix is as class-balanced as it can be.
func roundRobin(groups [][]sample, limit int) []sample {
	var res []sample
	for r := 0; ; r++ {
		added := false
		for _, g := range groups {
			if r < len(g) {
				res = append(res, g[r])
				added = true
				if limit > 0 && len(res) == limit {
					return res
				}
			}
		}
		if !added {
			return res
		}
	}
}

// seenHalves splits the test images of seen classes (classes the judge
// was trained on) into two disjoint halves, class by class: a (the first
// n of it, class-balanced; the requests are made from these) and b (all
// of the other half: the reference every set is compared with).
func (w *world) seenHalves(n int) (a, b []sample) {
	groups := w.byClass(w.ds.TestSeen(), func(s sample) bool { return s.class.Index >= 0 })
	ga := make([][]sample, len(groups))
	for k, g := range groups {
		for i, s := range g {
			if i%2 == 0 {
				ga[k] = append(ga[k], s)
			} else {
				b = append(b, s)
			}
		}
	}
	return roundRobin(ga, n), b
}

// heldout is n class-balanced test images of held-out classes that have a
// caption naming some attribute.
func (w *world) heldout(n int) []sample {
	groups := w.byClass(w.ds.TestHeldout(), func(s sample) bool { return len(s.named) > 0 })
	return roundRobin(groups, n)
}

// loadReal reads the samples' images at the judge's input size.
func (w *world) loadReal(stage string, ss []sample) ([]Pixels, error) {
	res := make([]Pixels, len(ss))
	start := time.Now()
	for i, s := range ss {
		p, err := LoadReal(w.ds, s.im, w.judge.Size())
		if err != nil {
			return nil, err
		}
		res[i] = p
		if (i+1)%500 == 0 || i+1 == len(ss) {
			w.report(stage, i+1, len(ss), start)
		}
	}
	return res, nil
}

// judgeAll runs the judge on images of any size (resized to its input).
func (w *world) judgeAll(ctx context.Context, stage string, ps []Pixels) (judged, error) {
	var res judged
	s := w.judge.Size()
	start := time.Now()
	for from := 0; from < len(ps); from += w.batch {
		part := ps[from:min(from+w.batch, len(ps))]
		chw := make([]float32, 0, len(part)*3*s*s)
		for _, p := range part {
			chw = append(chw, p.Resize(s, s).Input()...)
		}
		out, err := w.judge.Run(ctx, chw, len(part))
		if err != nil {
			return res, err
		}
		res.Logits = append(res.Logits, out.Logits...)
		res.Features = append(res.Features, out.Features...)
		res.Attributes = append(res.Attributes, out.Attributes...)
		w.report(stage, from+len(part), len(ps), start)
	}
	return res, nil
}

// report prints a progress line: at most one per stage every 2 s, and
// the last.
func (w *world) report(stage string, done, total int, start time.Time) {
	if done < total && time.Since(w.printed) < 2*time.Second {
		return
	}
	w.printed = time.Now()
	el := time.Since(start).Seconds()
	rate := ""
	if el > 0 {
		rate = fmt.Sprintf(", %.1f/s", float64(done)/el)
	}
	fmt.Fprintf(w.progress, "eval: %-28s %5d/%-5d (%.0f s%s)\n", stage, done, total, el, rate)
}

// top1 is the share of rows whose top class is the sample's class.
func top1(logits [][]float32, ss []sample) float64 {
	hits := 0
	for i, l := range logits {
		best := 0
		for k, v := range l {
			if v > l[best] {
				best = k
			}
		}
		if best == ss[i].class.Index {
			hits++
		}
	}
	return float64(hits) / float64(len(ss))
}

func namedOf(ss []sample) []map[string]string {
	res := make([]map[string]string, len(ss))
	for i, s := range ss {
		res[i] = s.named
	}
	return res
}

func classAttrsOf(ss []sample) []map[string]string {
	res := make([]map[string]string, len(ss))
	for i, s := range ss {
		res[i] = s.class.Attributes
	}
	return res
}

func labelsOf(ss []sample) []int {
	res := make([]int, len(ss))
	for i, s := range ss {
		res[i] = s.im.ClassID
	}
	return res
}
