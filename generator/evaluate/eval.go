// Package evaluate grades generators with an evaluation network (the
// judge: a model of kind evaluator that no generator trained against and
// that the fidelity scorer does not share) on the real test split, each
// metric beside its real-image reference, and proves the metrics on a
// degradation ladder of real images. See README.md, "studio eval".
package evaluate

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/evalstat"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// Config sizes an evaluation; zero fields take the defaults.
type Config struct {
	// Images is the number of seen-class requests, each made from one
	// real test image of the first half (default 1000; at most that
	// half).
	Images int
	// Heldout is the number of held-out-class captions (text models;
	// default 500).
	Heldout int
	// Edits is the number of one-word edits (text models; default 300).
	Edits int
	// K is the neighbourhood of precision, recall and coverage (default 3).
	K int
	// Candidates is the number of captions each image is ranked among
	// for R-precision (default 100).
	Candidates int
	// Seed fixes every draw (halves, captions, edits, negatives, noise);
	// image i of a request is generated with the seed of its real image's
	// id, so runs repeat.
	Seed uint64
	// Batch is the number of images per generator or judge run (default 64).
	Batch int
	// Progress receives a line per step (stderr); nil for none.
	Progress io.Writer
	// GridPairs is the number of (real, generated) pairs kept for a
	// look (Report.Grid); 0 for none.
	GridPairs int
}

func (c Config) withDefaults() Config {
	if c.Images <= 0 {
		c.Images = 1000
	}
	if c.Heldout <= 0 {
		c.Heldout = 500
	}
	if c.Edits <= 0 {
		c.Edits = 300
	}
	if c.K <= 0 {
		c.K = 3
	}
	if c.Candidates <= 1 {
		c.Candidates = 100
	}
	if c.Batch <= 0 {
		c.Batch = 64
	}
	return c
}

// Report is what `studio eval --json` writes. Every metric sits beside
// its reference on real test images (…_real, fd_real_floor); a metric
// that does not apply to the model is null with a reason in NullReasons.
type Report struct {
	Model string `json:"model"`
	Kind  string `json:"kind"`
	// Judge is the evaluation network; FDSpace names the feature space of
	// fd and precision/recall.
	Judge   string `json:"judge"`
	FDSpace string `json:"fd_space"`
	Data    string `json:"data"`
	Seed    uint64 `json:"seed"`
	// Images: generated for seen-class requests (one per real image of
	// half A); ReferenceImages: real images of half B.
	Images          int `json:"images"`
	ReferenceImages int `json:"reference_images"`
	HeldoutImages   int `json:"heldout_images"`
	Edits           int `json:"edits"`
	// Skipped counts requests the generator refused (e.g. a class it was
	// not trained on); their real images are left out of half A too.
	Skipped int `json:"skipped"`

	FD                       *float64 `json:"fd"`
	FDRealFloor              *float64 `json:"fd_real_floor"`
	Precision                *float64 `json:"precision"`
	PrecisionReal            *float64 `json:"precision_real"`
	Recall                   *float64 `json:"recall"`
	RecallReal               *float64 `json:"recall_real"`
	Coverage                 *float64 `json:"coverage"`
	CoverageReal             *float64 `json:"coverage_real"`
	Top1                     *float64 `json:"top1"`
	Top1Real                 *float64 `json:"top1_real"`
	AttrAgreementSeen        *float64 `json:"attr_agreement_seen"`
	AttrAgreementSeenReal    *float64 `json:"attr_agreement_seen_real"`
	AttrAgreementHeldout     *float64 `json:"attr_agreement_heldout"`
	AttrAgreementHeldoutReal *float64 `json:"attr_agreement_heldout_real"`
	EditSuccess              *float64 `json:"edit_success"`
	EditSuccessReal          *float64 `json:"edit_success_real"`
	EditKeep                 *float64 `json:"edit_keep"`
	EditKeepReal             *float64 `json:"edit_keep_real"`
	RPrecision               *float64 `json:"r_precision"`
	RPrecisionReal           *float64 `json:"r_precision_real"`

	// NullReasons says, for each null metric, why.
	NullReasons map[string]string `json:"null_reasons,omitempty"`
	Seconds     float64           `json:"seconds"`

	// Grid holds (real, generated) pairs of the first requests, for a look.
	Grid [][2]Pixels `json:"-"`
}

// Keys lists the metric keys of a Report in output order.
var Keys = []string{"fd", "fd_real_floor", "precision", "precision_real", "recall", "recall_real", "coverage", "coverage_real",
	"top1", "top1_real", "attr_agreement_seen", "attr_agreement_seen_real", "attr_agreement_heldout", "attr_agreement_heldout_real",
	"edit_success", "edit_success_real", "edit_keep", "edit_keep_real", "r_precision", "r_precision_real"}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Run measures a generator model of svc (loaded with its requests
// validated by svc) with the judge on the test split of ds.
func Run(ctx context.Context, svc *generator.Service, model *catalog.Model, judge *generator.Judge, ds *cub.Dataset, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	w, err := newWorld(ds, judge, cfg.Seed, cfg.Batch, cfg.Progress)
	if err != nil {
		return nil, err
	}
	name := model.Manifest.Name
	text := model.Manifest.Kind == catalog.KindAttnGAN
	if !model.Manifest.Generates() {
		return nil, fmt.Errorf("%s is a %s, not a generator", name, model.Manifest.Kind)
	}
	rep := &Report{Model: name, Kind: model.Manifest.Kind, Judge: judge.Name(), Data: ds.Root, Seed: cfg.Seed, NullReasons: map[string]string{}}
	null := func(key, why string) { rep.NullReasons[key] = why }

	a, b := w.seenHalves(cfg.Images)
	if len(b) <= cfg.K || len(a) <= cfg.K {
		return nil, fmt.Errorf("too few seen-class test images in %s that %s knows (%d + %d)", ds.Root, judge.Name(), len(a), len(b))
	}
	// The requests, one per image of half A.
	var reqs []generator.Request
	var kept []sample
	for _, s := range a {
		r := generator.Request{N: 1, Seed: uint64(s.im.ID)}
		if text {
			r.Prompt = s.caption
		} else {
			r.Class = s.class.Name
		}
		if (text && s.caption == "") || svc.Validate(name, r) != nil {
			rep.Skipped++
			continue
		}
		reqs = append(reqs, r)
		kept = append(kept, s)
	}
	a = kept
	if len(a) <= cfg.K {
		return nil, fmt.Errorf("%s accepts %d of the requests made from the test split (skipped %d): does it match the data set %s?", name, len(a), rep.Skipped, ds.Root)
	}
	if rep.Skipped > 0 {
		fmt.Fprintf(w.progress, "eval: warning: %s refused %d of %d requests (left out with their real images)\n", name, rep.Skipped, rep.Skipped+len(a))
	}
	rep.Images, rep.ReferenceImages = len(a), len(b)

	// Real images: half A (the requests' own), half B (the reference).
	pa, err := w.loadReal("real images, half A", a)
	if err != nil {
		return nil, err
	}
	pb, err := w.loadReal("real images, half B", b)
	if err != nil {
		return nil, err
	}
	ra, err := w.judgeAll(ctx, "judge: real half A", pa)
	if err != nil {
		return nil, err
	}
	rb, err := w.judgeAll(ctx, "judge: real half B", pb)
	if err != nil {
		return nil, err
	}
	if len(ra.Features) > 0 {
		rep.FDSpace = fmt.Sprintf("%s features (%d-d)", judge.Name(), len(ra.Features[0]))
	}
	pg, err := w.generate(ctx, svc, name, "generate: seen-class requests", reqs)
	if err != nil {
		return nil, err
	}
	g, err := w.judgeAll(ctx, "judge: generated", pg)
	if err != nil {
		return nil, err
	}
	for i := 0; i < min(cfg.GridPairs, len(pa)); i++ {
		rep.Grid = append(rep.Grid, [2]Pixels{pa[i], pg[i]})
	}

	// Distribution: fd and precision/recall against half B.
	sb := evalstat.FeatureStats(rb.Features)
	if v, err := evalstat.FrechetDistance(evalstat.FeatureStats(g.Features), sb); err == nil {
		rep.FD = num(v)
	}
	if v, err := evalstat.FrechetDistance(evalstat.FeatureStats(ra.Features), sb); err == nil {
		rep.FDRealFloor = num(v)
	}
	p, r := evalstat.PrecisionRecall(rb.Features, g.Features, cfg.K)
	rep.Precision, rep.Recall = num(p), num(r)
	p, r = evalstat.PrecisionRecall(rb.Features, ra.Features, cfg.K)
	rep.PrecisionReal, rep.RecallReal = num(p), num(r)
	rep.Coverage = num(evalstat.Coverage(rb.Features, g.Features, cfg.K))
	rep.CoverageReal = num(evalstat.Coverage(rb.Features, ra.Features, cfg.K))
	rep.Top1, rep.Top1Real = num(top1(g.Logits, a)), num(top1(ra.Logits, a))

	// Attributes asked for: the caption's (text models) or the class's.
	want := classAttrsOf(a)
	if text {
		want = namedOf(a)
	}
	v, _ := evalstat.Agreement(w.head, g.Attributes, want)
	rep.AttrAgreementSeen = num(v)
	v, _ = evalstat.Agreement(w.head, ra.Attributes, want)
	rep.AttrAgreementSeenReal = num(v)

	// R-precision: the caption among Candidates, by attribute agreement.
	labels, named := labelsOf(a), namedOf(a)
	v, _ = evalstat.AttrRPrecision(w.head, ra.Attributes, named, labels, cfg.Candidates, cfg.Seed)
	rep.RPrecisionReal = num(v)
	if text {
		v, _ = evalstat.AttrRPrecision(w.head, g.Attributes, named, labels, cfg.Candidates, cfg.Seed)
		rep.RPrecision = num(v)
	} else {
		null("r_precision", name+" is class-conditioned: it takes no caption to retrieve")
	}

	// Held-out classes: their captions (text models only).
	hs := w.heldout(cfg.Heldout)
	if len(hs) > 0 {
		ph, err := w.loadReal("real images, held-out", hs)
		if err != nil {
			return nil, err
		}
		rh, err := w.judgeAll(ctx, "judge: real held-out", ph)
		if err != nil {
			return nil, err
		}
		v, _ = evalstat.Agreement(w.head, rh.Attributes, namedOf(hs))
		rep.AttrAgreementHeldoutReal = num(v)
	}
	switch {
	case !text:
		null("attr_agreement_heldout", name+" is class-conditioned: it cannot draw classes it was not trained on, and takes no caption")
	case len(hs) == 0:
		null("attr_agreement_heldout", "no held-out-class test image with a caption naming an attribute in "+ds.Root)
	default:
		var hreqs []generator.Request
		var hkept []sample
		for _, s := range hs {
			r := generator.Request{Prompt: s.caption, N: 1, Seed: uint64(s.im.ID)}
			if svc.Validate(name, r) == nil {
				hreqs = append(hreqs, r)
				hkept = append(hkept, s)
			}
		}
		ph, err := w.generate(ctx, svc, name, "generate: held-out captions", hreqs)
		if err != nil {
			return nil, err
		}
		gh, err := w.judgeAll(ctx, "judge: generated held-out", ph)
		if err != nil {
			return nil, err
		}
		v, _ = evalstat.Agreement(w.head, gh.Attributes, namedOf(hkept))
		rep.AttrAgreementHeldout = num(v)
		rep.HeldoutImages = len(hkept)
	}
	if !text {
		rep.HeldoutImages = len(hs)
	}

	// Edits: same seed, one attribute word changed.
	acc := w.valueAccuracy(append(append([]sample(nil), a...), b...), append(append([][]float32(nil), ra.Attributes...), rb.Attributes...))
	if !text {
		why := name + " is class-conditioned: there is no caption word to change"
		for _, k := range []string{"edit_success", "edit_success_real", "edit_keep", "edit_keep_real"} {
			null(k, why)
		}
	} else if w.lex == nil {
		for _, k := range []string{"edit_success", "edit_success_real", "edit_keep", "edit_keep_real"} {
			null(k, "the judge's classes.json has no lexicon to edit captions with")
		}
	}
	if text && w.lex != nil {
		edits := w.edits(a, cfg.Edits, func(r generator.Request) bool { return svc.Validate(name, r) == nil })
		ereqs := make([]generator.Request, len(edits))
		for i, e := range edits {
			ereqs[i] = generator.Request{Prompt: e.edited, N: 1, Seed: uint64(a[e.of].im.ID)}
		}
		pe, err := w.generate(ctx, svc, name, "generate: edited captions", ereqs)
		if err != nil {
			return nil, err
		}
		ge, err := w.judgeAll(ctx, "judge: edited", pe)
		if err != nil {
			return nil, err
		}
		rep.Edits = len(edits)
		succ, keep, keepN := 0, 0, 0
		var succRef, keepRef []float64
		for i, e := range edits {
			read := w.head.Read(ge.Attributes[i])
			if read[e.group] == e.value {
				succ++
			}
			if v, ok := acc[e.group+"::"+e.value]; ok {
				succRef = append(succRef, v)
			}
			for _, og := range sortedKeys(a[e.of].named) {
				ov := a[e.of].named[og]
				if og == e.group || !w.head.Has(og, ov) {
					continue
				}
				keepN++
				if read[og] == ov {
					keep++
				}
				if v, ok := acc[og+"::"+ov]; ok {
					keepRef = append(keepRef, v)
				}
			}
		}
		if len(edits) > 0 {
			rep.EditSuccess = num(float64(succ) / float64(len(edits)))
			rep.EditSuccessReal = num(mean(succRef))
		} else {
			null("edit_success", "no caption of the requests could be edited")
		}
		if keepN > 0 {
			rep.EditKeep = num(float64(keep) / float64(keepN))
			rep.EditKeepReal = num(mean(keepRef))
		} else {
			null("edit_keep", "no edited caption names a second attribute")
		}
	}
	for _, k := range Keys {
		if rep.value(k) == nil {
			if _, ok := rep.NullReasons[k]; !ok {
				null(k, "not measurable on this sample (too few images or nothing named)")
			}
		}
	}
	if len(rep.NullReasons) == 0 {
		rep.NullReasons = nil
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// value is the metric of a key (Keys).
func (r *Report) value(key string) *float64 {
	m := map[string]*float64{"fd": r.FD, "fd_real_floor": r.FDRealFloor, "precision": r.Precision, "precision_real": r.PrecisionReal,
		"recall": r.Recall, "recall_real": r.RecallReal, "coverage": r.Coverage, "coverage_real": r.CoverageReal, "top1": r.Top1, "top1_real": r.Top1Real,
		"attr_agreement_seen": r.AttrAgreementSeen, "attr_agreement_seen_real": r.AttrAgreementSeenReal,
		"attr_agreement_heldout": r.AttrAgreementHeldout, "attr_agreement_heldout_real": r.AttrAgreementHeldoutReal,
		"edit_success": r.EditSuccess, "edit_success_real": r.EditSuccessReal, "edit_keep": r.EditKeep, "edit_keep_real": r.EditKeepReal,
		"r_precision": r.RPrecision, "r_precision_real": r.RPrecisionReal}
	return m[key]
}

// Value is the metric of a key of Keys; nil when null.
func (r *Report) Value(key string) *float64 { return r.value(key) }

// generate makes one image per request and decodes it.
func (w *world) generate(ctx context.Context, svc *generator.Service, model, stage string, reqs []generator.Request) ([]Pixels, error) {
	res := make([]Pixels, 0, len(reqs))
	start := time.Now()
	for from := 0; from < len(reqs); from += w.batch {
		part := reqs[from:min(from+w.batch, len(reqs))]
		out, err := svc.Generate(ctx, model, part)
		if err != nil {
			return nil, err
		}
		for i, imgs := range out {
			if len(imgs) != 1 {
				return nil, fmt.Errorf("%s: request %d gave %d images, want 1", model, from+i, len(imgs))
			}
			p, err := decodePixels(imgs[0].PNG)
			if err != nil {
				return nil, fmt.Errorf("%s: image %d: %w", model, from+i, err)
			}
			res = append(res, p)
		}
		w.report(stage, from+len(part), len(reqs), start)
	}
	return res, nil
}

// edit is one caption of half A with one attribute word changed.
type edit struct {
	of           int // index in half A
	group, value string
	edited       string
}

// edits picks up to n captions of ss in order and, for each, a named
// group (seeded) and another value of it that the lexicon can say.
func (w *world) edits(ss []sample, n int, valid func(generator.Request) bool) []edit {
	var res []edit
	for i, s := range ss {
		if len(res) == n {
			break
		}
		rng := rand.New(rand.NewPCG(w.seed^0xed17, uint64(s.im.ID)))
		groups := sortedKeys(s.named)
		rng.Shuffle(len(groups), func(a, b int) { groups[a], groups[b] = groups[b], groups[a] })
	pick:
		for _, g := range groups {
			if !w.head.Has(g, s.named[g]) {
				continue
			}
			vals := w.head.Values(g)
			rng.Shuffle(len(vals), func(a, b int) { vals[a], vals[b] = vals[b], vals[a] })
			for _, v := range vals {
				if v == s.named[g] {
					continue
				}
				text, ok := w.lex.Edit(s.caption, g, v)
				if !ok || !valid(generator.Request{Prompt: text, N: 1, Seed: uint64(s.im.ID)}) {
					continue
				}
				res = append(res, edit{of: i, group: g, value: v, edited: text})
				break pick
			}
		}
	}
	return res
}

// valueAccuracy is, for each group::value, the share of real images of
// classes with that value on which the judge reads it: what a generator
// that drew every attribute right would score, the judge's errors being
// what they are.
func (w *world) valueAccuracy(ss []sample, attrs [][]float32) map[string]float64 {
	hits, n := map[string]int{}, map[string]int{}
	for i, s := range ss {
		read := w.head.Read(attrs[i])
		for g, v := range s.class.Attributes {
			if !w.head.Has(g, v) {
				continue
			}
			n[g+"::"+v]++
			if read[g] == v {
				hits[g+"::"+v]++
			}
		}
	}
	res := make(map[string]float64, len(n))
	for k, c := range n {
		res[k] = float64(hits[k]) / float64(c)
	}
	return res
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func sortedKeys(m map[string]string) []string {
	res := make([]string, 0, len(m))
	for k := range m {
		res = append(res, k)
	}
	sort.Strings(res)
	return res
}
