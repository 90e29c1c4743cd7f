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
	if !model.Manifest.Generates() {
		return nil, fmt.Errorf("%s is a %s, not a generator", name, model.Manifest.Kind)
	}
	r := &runner{w: w, svc: svc, name: name, text: model.Manifest.Kind == catalog.KindAttnGAN, cfg: cfg,
		rep: &Report{Model: name, Kind: model.Manifest.Kind, Judge: judge.Name(), Data: ds.Root, Seed: cfg.Seed, NullReasons: map[string]string{}}}
	s, reqs, err := r.seenRequests()
	if err != nil {
		return nil, err
	}
	if err := r.judgeSeen(ctx, &s, reqs); err != nil {
		return nil, err
	}
	r.scoreDistribution(s)
	r.scoreSeenAttributes(s)
	if err := r.scoreHeldout(ctx); err != nil {
		return nil, err
	}
	if err := r.scoreEdits(ctx, s); err != nil {
		return nil, err
	}
	r.explainNulls()
	r.rep.Seconds = time.Since(start).Seconds()
	return r.rep, nil
}

// runner is one Run: the world, the generator under test and the report
// it fills in.
type runner struct {
	w    *world
	svc  *generator.Service
	name string // the generator model
	text bool   // the model takes captions (else class names)
	cfg  Config
	rep  *Report
}

// null marks a metric null, saying why.
func (r *runner) null(key, why string) { r.rep.NullReasons[key] = why }

// valid reports whether the model accepts a request.
func (r *runner) valid(q generator.Request) bool { return r.svc.Validate(r.name, q) == nil }

// seen is the seen-class sets of a Run and what the judge said of them.
type seen struct {
	a, b   []sample // half A (the requests' own real images), half B (the reference)
	ra, rb judged   // real half A, real half B
	g      judged   // generated from the requests of half A
}

// seenRequests draws the seen-class halves and makes one request per
// image of half A; requests the model refuses are left out with their
// real images (Report.Skipped).
func (r *runner) seenRequests() (seen, []generator.Request, error) {
	w, cfg := r.w, r.cfg
	a, b := w.seenHalves(cfg.Images)
	if len(b) <= cfg.K || len(a) <= cfg.K {
		return seen{}, nil, fmt.Errorf("too few seen-class test images in %s that %s knows (%d + %d)", w.ds.Root, w.judge.Name(), len(a), len(b))
	}
	var reqs []generator.Request
	var kept []sample
	for _, s := range a {
		q := generator.Request{N: 1, Seed: uint64(s.im.ID)}
		if r.text {
			q.Prompt = s.caption
		} else {
			q.Class = s.class.Name
		}
		if (r.text && s.caption == "") || !r.valid(q) {
			r.rep.Skipped++
			continue
		}
		reqs = append(reqs, q)
		kept = append(kept, s)
	}
	a = kept
	if len(a) <= cfg.K {
		return seen{}, nil, fmt.Errorf("%s accepts %d of the requests made from the test split (skipped %d): does it match the data set %s?", r.name, len(a), r.rep.Skipped, w.ds.Root)
	}
	if r.rep.Skipped > 0 {
		fmt.Fprintf(w.progress, "eval: warning: %s refused %d of %d requests (left out with their real images)\n", r.name, r.rep.Skipped, r.rep.Skipped+len(a))
	}
	r.rep.Images, r.rep.ReferenceImages = len(a), len(b)
	return seen{a: a, b: b}, reqs, nil
}

// judgeSeen reads both real halves, generates the requests of half A and
// runs the judge on all three; it keeps the first pairs for the grid.
func (r *runner) judgeSeen(ctx context.Context, s *seen, reqs []generator.Request) error {
	w := r.w
	pa, err := w.loadReal("real images, half A", s.a)
	if err != nil {
		return err
	}
	pb, err := w.loadReal("real images, half B", s.b)
	if err != nil {
		return err
	}
	if s.ra, err = w.judgeAll(ctx, "judge: real half A", pa); err != nil {
		return err
	}
	if s.rb, err = w.judgeAll(ctx, "judge: real half B", pb); err != nil {
		return err
	}
	if len(s.ra.Features) > 0 {
		r.rep.FDSpace = fmt.Sprintf("%s features (%d-d)", w.judge.Name(), len(s.ra.Features[0]))
	}
	pg, err := w.generate(ctx, r.svc, r.name, "generate: seen-class requests", reqs)
	if err != nil {
		return err
	}
	if s.g, err = w.judgeAll(ctx, "judge: generated", pg); err != nil {
		return err
	}
	for i := 0; i < min(r.cfg.GridPairs, len(pa)); i++ {
		r.rep.Grid = append(r.rep.Grid, [2]Pixels{pa[i], pg[i]})
	}
	return nil
}

// scoreDistribution fills fd, precision, recall and coverage against
// half B, and top-1, each for the generated images and for half A.
func (r *runner) scoreDistribution(s seen) {
	rep, k := r.rep, r.cfg.K
	sb := evalstat.FeatureStats(s.rb.Features)
	if v, err := evalstat.FrechetDistance(evalstat.FeatureStats(s.g.Features), sb); err == nil {
		rep.FD = num(v)
	}
	if v, err := evalstat.FrechetDistance(evalstat.FeatureStats(s.ra.Features), sb); err == nil {
		rep.FDRealFloor = num(v)
	}
	p, rc := evalstat.PrecisionRecall(s.rb.Features, s.g.Features, k)
	rep.Precision, rep.Recall = num(p), num(rc)
	p, rc = evalstat.PrecisionRecall(s.rb.Features, s.ra.Features, k)
	rep.PrecisionReal, rep.RecallReal = num(p), num(rc)
	rep.Coverage = num(evalstat.Coverage(s.rb.Features, s.g.Features, k))
	rep.CoverageReal = num(evalstat.Coverage(s.rb.Features, s.ra.Features, k))
	rep.Top1, rep.Top1Real = num(top1(s.g.Logits, s.a)), num(top1(s.ra.Logits, s.a))
}

// scoreSeenAttributes fills the agreement with the attributes asked for
// (the caption's for text models, else the class's) and R-precision: the
// caption among Candidates, by attribute agreement.
func (r *runner) scoreSeenAttributes(s seen) {
	w, rep := r.w, r.rep
	want := classAttrsOf(s.a)
	if r.text {
		want = namedOf(s.a)
	}
	v, _ := evalstat.Agreement(w.head, s.g.Attributes, want)
	rep.AttrAgreementSeen = num(v)
	v, _ = evalstat.Agreement(w.head, s.ra.Attributes, want)
	rep.AttrAgreementSeenReal = num(v)

	labels, named := labelsOf(s.a), namedOf(s.a)
	v, _ = evalstat.AttrRPrecision(w.head, s.ra.Attributes, named, labels, r.cfg.Candidates, r.cfg.Seed)
	rep.RPrecisionReal = num(v)
	if r.text {
		v, _ = evalstat.AttrRPrecision(w.head, s.g.Attributes, named, labels, r.cfg.Candidates, r.cfg.Seed)
		rep.RPrecision = num(v)
	} else {
		r.null("r_precision", r.name+" is class-conditioned: it takes no caption to retrieve")
	}
}

// scoreHeldout fills the attribute agreement on held-out classes: of
// their real images, and of images generated from their captions (text
// models only).
func (r *runner) scoreHeldout(ctx context.Context) error {
	hs := r.w.heldout(r.cfg.Heldout)
	if len(hs) > 0 {
		ph, err := r.w.loadReal("real images, held-out", hs)
		if err != nil {
			return err
		}
		rh, err := r.w.judgeAll(ctx, "judge: real held-out", ph)
		if err != nil {
			return err
		}
		v, _ := evalstat.Agreement(r.w.head, rh.Attributes, namedOf(hs))
		r.rep.AttrAgreementHeldoutReal = num(v)
	}
	switch {
	case !r.text:
		r.null("attr_agreement_heldout", r.name+" is class-conditioned: it cannot draw classes it was not trained on, and takes no caption")
		r.rep.HeldoutImages = len(hs)
	case len(hs) == 0:
		r.null("attr_agreement_heldout", "no held-out-class test image with a caption naming an attribute in "+r.w.ds.Root)
	default:
		return r.generateHeldout(ctx, hs)
	}
	return nil
}

// generateHeldout generates the held-out captions the model accepts and
// fills the agreement of the images with them.
func (r *runner) generateHeldout(ctx context.Context, hs []sample) error {
	var hreqs []generator.Request
	var hkept []sample
	for _, s := range hs {
		q := generator.Request{Prompt: s.caption, N: 1, Seed: uint64(s.im.ID)}
		if r.valid(q) {
			hreqs = append(hreqs, q)
			hkept = append(hkept, s)
		}
	}
	ph, err := r.w.generate(ctx, r.svc, r.name, "generate: held-out captions", hreqs)
	if err != nil {
		return err
	}
	gh, err := r.w.judgeAll(ctx, "judge: generated held-out", ph)
	if err != nil {
		return err
	}
	v, _ := evalstat.Agreement(r.w.head, gh.Attributes, namedOf(hkept))
	r.rep.AttrAgreementHeldout = num(v)
	r.rep.HeldoutImages = len(hkept)
	return nil
}

// scoreEdits fills the edit metrics (text models with a lexicon): each
// edited caption generated with its request's seed, the edited attribute
// should be read as asked and the caption's others kept; the references
// are the judge's accuracy on real images of those values.
func (r *runner) scoreEdits(ctx context.Context, s seen) error {
	if why := r.noEdits(); why != "" {
		for _, k := range []string{"edit_success", "edit_success_real", "edit_keep", "edit_keep_real"} {
			r.null(k, why)
		}
		return nil
	}
	w := r.w
	edits := w.edits(s.a, r.cfg.Edits, r.valid)
	ereqs := make([]generator.Request, len(edits))
	for i, e := range edits {
		ereqs[i] = generator.Request{Prompt: e.edited, N: 1, Seed: uint64(s.a[e.of].im.ID)}
	}
	pe, err := w.generate(ctx, r.svc, r.name, "generate: edited captions", ereqs)
	if err != nil {
		return err
	}
	ge, err := w.judgeAll(ctx, "judge: edited", pe)
	if err != nil {
		return err
	}
	r.rep.Edits = len(edits)
	acc := w.valueAccuracy(append(append([]sample(nil), s.a...), s.b...), append(append([][]float32(nil), s.ra.Attributes...), s.rb.Attributes...))
	t := w.tallyEdits(edits, ge, s.a, acc)
	if len(edits) > 0 {
		r.rep.EditSuccess = num(float64(t.succ) / float64(len(edits)))
		r.rep.EditSuccessReal = num(mean(t.succRef))
	} else {
		r.null("edit_success", "no caption of the requests could be edited")
	}
	if t.keepN > 0 {
		r.rep.EditKeep = num(float64(t.keep) / float64(t.keepN))
		r.rep.EditKeepReal = num(mean(t.keepRef))
	} else {
		r.null("edit_keep", "no edited caption names a second attribute")
	}
	return nil
}

// noEdits says why the model's captions cannot be edited; "" when they can.
func (r *runner) noEdits() string {
	switch {
	case !r.text:
		return r.name + " is class-conditioned: there is no caption word to change"
	case r.w.lex == nil:
		return "the judge's classes.json has no lexicon to edit captions with"
	}
	return ""
}

// editTally counts what the judge read of edited images: succ edits
// whose new value was read, keep of keepN other named attributes kept,
// and the real-image accuracy of each value counted (the references).
type editTally struct {
	succ, keep, keepN int
	succRef, keepRef  []float64
}

// tallyEdits reads the judge's attributes ge of the edited images of a
// (half A); acc is valueAccuracy on real images.
func (w *world) tallyEdits(edits []edit, ge judged, a []sample, acc map[string]float64) editTally {
	var t editTally
	for i, e := range edits {
		read := w.head.Read(ge.Attributes[i])
		if read[e.group] == e.value {
			t.succ++
		}
		if v, ok := acc[e.group+"::"+e.value]; ok {
			t.succRef = append(t.succRef, v)
		}
		for _, og := range sortedKeys(a[e.of].named) {
			ov := a[e.of].named[og]
			if og == e.group || !w.head.Has(og, ov) {
				continue
			}
			t.keepN++
			if read[og] == ov {
				t.keep++
			}
			if v, ok := acc[og+"::"+ov]; ok {
				t.keepRef = append(t.keepRef, v)
			}
		}
	}
	return t
}

// explainNulls gives every null metric without a reason a generic one,
// and drops an empty NullReasons.
func (r *runner) explainNulls() {
	for _, k := range Keys {
		if r.rep.value(k) == nil {
			if _, ok := r.rep.NullReasons[k]; !ok {
				r.null(k, "not measurable on this sample (too few images or nothing named)")
			}
		}
	}
	if len(r.rep.NullReasons) == 0 {
		r.rep.NullReasons = nil
	}
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
