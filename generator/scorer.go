package generator

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/fgstudio/fgstudio/generator/evalstat"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/textenc"
	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// Scorer is the fidelity classifier (and the DAMSM image and text
// encoders) that scores every generated image.
type Scorer struct {
	name    string
	size    int // input resolution
	classes *catalog.Classes
	trained []catalog.Class  // by output index
	groups  map[string][]int // attribute group → attribute indices
	attrs   []string
	attrIdx map[string]int   // "group::value" → attribute index
	lex     *lexicon.Lexicon // reads the attributes a prompt names; nil without one

	// parallel: run the DAMSM encoders beside the classifier (the cores
	// hold both runs' intra-op threads).
	parallel bool

	classifier *graph
	// sharedCode: the classifier graph also outputs cnn_code (the DAMSM
	// image encoder shares its trunk and is folded into it), so one run
	// gives both measures and imageEnc is not loaded.
	sharedCode bool
	imageEnc   *graph // optional: DAMSM image side
	textEnc    *graph // optional: DAMSM text side
	vocab      *textenc.Vocab
	statsPath  string // feature statistics of real images, if any
}

// ClassProb is a class and its probability.
type ClassProb struct {
	Class string  `json:"class"`
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// Scores is what the scorer says of one image. Its JSON (API, SSE, PNG
// provenance) also carries class_probability (= class_prob), fidelity and
// fidelity_measure (see MarshalJSON), so every number shown names its
// measure.
type Scores struct {
	// Class is the requested class (empty for a prompt without one).
	Class string `json:"class,omitempty"`
	// ClassProb is the measure class_probability: the classifier's
	// calibrated probability of the requested class; ClassRank its rank
	// (1 = top). Absent for classes the classifier has not been trained
	// on. (JSON: class_prob, and class_probability beside it.)
	ClassProb *float64    `json:"class_prob,omitempty"`
	ClassRank int         `json:"class_rank,omitempty"`
	Top       []ClassProb `json:"top"`
	// Attributes is the value the attribute head sees per group (argmax
	// within the group).
	Attributes map[string]string `json:"attributes,omitempty"`
	// AttributeMatch is the share of the requested class's attributes
	// that Attributes matches: the first scorer's held-out measure, kept
	// as information; it is no fidelity measure any more.
	AttributeMatch *float64 `json:"attribute_match,omitempty"`
	// AttributeAgreement is the measure attribute_agreement (see
	// FidelityAttributeAgreement) over AttributeGroups; absent when no
	// asked attribute could be judged. AttributeBasis says what was asked:
	// "class" (the requested class's attributes) or "prompt" (the
	// attributes the prompt names).
	AttributeAgreement *float64         `json:"attribute_agreement,omitempty"`
	AttributeBasis     string           `json:"attribute_basis,omitempty"`
	AttributeGroups    []AttributeCheck `json:"attribute_groups,omitempty"`
	// AttributeUnjudged lists asked attributes ("group::value") the head
	// has no output for, left out of the agreement.
	AttributeUnjudged []string `json:"attribute_unjudged,omitempty"`
	// DAMSMSimilarity is the measure damsm_similarity: the DAMSM cosine
	// similarity between the image and the prompt clamped to [0,1]
	// (prompts only); TextSimilarity is the same cosine unclamped.
	DAMSMSimilarity *float64 `json:"damsm_similarity,omitempty"`
	TextSimilarity  *float64 `json:"text_similarity,omitempty"`
	// Features is the classifier's penultimate feature, Probs its class
	// probabilities and Code the DAMSM image code (prompts only), for
	// batch metrics and retrieval; not serialised.
	Features []float32 `json:"-"`
	Probs    []float64 `json:"-"`
	Code     []float32 `json:"-"`
}

// AttributeCheck is one group of an attribute agreement: the value asked
// for, the value the head sees, and their calibrated probabilities within
// the group ("crown: named red, sees black (0.03)").
type AttributeCheck struct {
	Group string `json:"group"`
	// Named is the value asked for; Word the prompt word that named it
	// (textenc.Split index Token), absent for a class's attributes.
	Named string `json:"named"`
	Word  string `json:"word,omitempty"`
	Token *int   `json:"token,omitempty"`
	// Prob is the calibrated probability of Named within the group.
	Prob float64 `json:"prob"`
	// Sees is the head's most probable value of the group, SeesProb its
	// probability.
	Sees     string  `json:"sees"`
	SeesProb float64 `json:"sees_prob"`
}

// MarshalJSON writes the fields, class_probability beside class_prob, and
// the image's fidelity with its measure when it has one.
func (s Scores) MarshalJSON() ([]byte, error) {
	type plain Scores
	out := struct {
		plain
		ClassProbability *float64 `json:"class_probability,omitempty"`
		Fidelity         *float64 `json:"fidelity,omitempty"`
		FidelityMeasure  string   `json:"fidelity_measure,omitempty"`
	}{plain: plain(s), ClassProbability: s.ClassProb}
	if f, m := s.Fidelity(); m != "" {
		out.Fidelity, out.FidelityMeasure = &f, m
	}
	return json.Marshal(out)
}

func loadScorer(rt Runtime, m *catalog.Model, poolSize int) (*Scorer, error) {
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	s := &Scorer{name: m.Manifest.Name, size: m.Manifest.Size("image_size", 64), classes: cls, trained: cls.Trained(), attrs: cls.Attributes, lex: cls.Lexicon}
	outs := outputsPresent(m, "classifier", "logits", "features", "attributes", "cnn_code")
	if s.classifier, err = loadGraph(rt, m, "classifier", poolSize, []string{"image"}, outs); err != nil {
		return nil, err
	}
	s.sharedCode = slices.Contains(outs, "cnn_code")
	if _, ok := m.Manifest.Graphs["image_encoder"]; ok && !s.sharedCode {
		if s.imageEnc, err = loadGraph(rt, m, "image_encoder", poolSize, []string{"image"}, []string{"cnn_code"}); err != nil {
			s.close()
			return nil, err
		}
	}
	if _, ok := m.Manifest.Graphs["text_encoder"]; ok && m.Manifest.Vocab != "" {
		if s.vocab, err = m.ReadVocab(); err != nil {
			s.close()
			return nil, fmt.Errorf("%w: %v", ErrModel, err)
		}
		if s.textEnc, err = loadGraph(rt, m, "text_encoder", poolSize, []string{"captions", "cap_lens"}, []string{"words_emb", "sent_emb"}); err != nil {
			s.close()
			return nil, err
		}
	}
	if m.Manifest.FeatureStats != "" {
		s.statsPath = filepath.Join(m.Dir, m.Manifest.FeatureStats)
	}
	s.groups, s.attrIdx = map[string][]int{}, map[string]int{}
	for i, a := range s.attrs {
		g, _, _ := cutAttr(a)
		s.groups[g] = append(s.groups[g], i)
		s.attrIdx[a] = i
	}
	return s, nil
}

// outputsPresent lists the wanted output roles that the manifest has, in
// order; logits is required and checked by loadGraph.
func outputsPresent(m *catalog.Model, graphRole string, roles ...string) []string {
	g := m.Manifest.Graphs[graphRole]
	have := map[string]bool{}
	for _, t := range g.Outputs {
		have[t.Role] = true
	}
	var res []string
	for i, r := range roles {
		if i == 0 || have[r] {
			res = append(res, r)
		}
	}
	return res
}

func (s *Scorer) close() {
	for _, g := range []*graph{s.classifier, s.imageEnc, s.textEnc} {
		if g != nil {
			g.close()
		}
	}
}

// scoreRequest says what each image was asked to be.
type scoreRequest struct {
	class  *catalog.Class // may be nil
	prompt string         // may be empty
	// fidelityOnly: the DAMSM measure only when it is the image's
	// fidelity measure (Request.FidelityOnly).
	fidelityOnly bool
}

// score runs the classifier (and DAMSM encoders for prompts) on a batch of
// CHW images of side size and returns one Scores per image.
//
// The DAMSM image and text encoders run beside the classifier, on their
// own sessions, when the cores hold both runs' threads (parallel), so that
// scoring takes about as long as its slowest graph. When every request is fidelityOnly they run
// after it instead, and only for the images whose fidelity measure is
// damsm_similarity (prompts naming no attribute the head judges): the
// others skip the image encoder.
func (s *Scorer) score(ctx context.Context, images []float32, size int, reqs []scoreRequest) ([]Scores, error) {
	b := len(reqs)
	in := images
	if size != s.size {
		in = resizeBatch(images, b, size, s.size)
	}
	img := ort.F32Tensor(in, int64(b), 3, int64(s.size), int64(s.size))
	lazy := true
	for _, r := range reqs {
		lazy = lazy && r.fidelityOnly
	}
	var (
		dm    damsm
		dmErr error
		wg    sync.WaitGroup
	)
	switch {
	case lazy || s.sharedCode: // after the classifier (shared: from its cnn_code)
	case s.parallel:
		wg.Go(func() { dm, dmErr = s.damsm(ctx, img, reqs) })
	default:
		dm, dmErr = s.damsm(ctx, img, reqs)
	}
	out, err := s.classifier.run(ctx, map[string]ort.Tensor{"image": img})
	wg.Wait()
	if err == nil {
		err = dmErr
	}
	if err != nil {
		return nil, err
	}
	logits := out["logits"]
	k := int(logits.Shape[1])
	res := make([]Scores, b)
	for i := range res {
		probs := softmax(logits.F32[i*k : (i+1)*k])
		res[i] = s.classScores(probs, reqs[i].class)
		res[i].Probs = probs
		if f, ok := out["features"]; ok {
			d := int(f.Shape[1])
			res[i].Features = append([]float32(nil), f.F32[i*d:(i+1)*d]...)
		}
		if a, ok := out["attributes"]; ok && len(s.attrs) == int(a.Shape[1]) {
			n := int(a.Shape[1])
			s.attributeScores(&res[i], a.F32[i*n:(i+1)*n], reqs[i])
		}
	}
	if !lazy {
		if s.sharedCode {
			if dm, err = s.sentences(ctx, out["cnn_code"], reqs); err != nil {
				return nil, err
			}
		}
		dm.apply(reqs, res, nil)
		return res, nil
	}
	// Only the images whose measure is damsm_similarity.
	var need []int
	for i, r := range reqs {
		if r.prompt != "" && res[i].ClassProb == nil && res[i].AttributeAgreement == nil {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return res, nil
	}
	subReqs := make([]scoreRequest, len(need))
	for k, i := range need {
		subReqs[k] = reqs[i]
	}
	if s.sharedCode {
		dm, err = s.sentences(ctx, rows(out["cnn_code"], need), subReqs)
	} else {
		dm, err = s.damsm(ctx, rows(img, need), subReqs)
	}
	if err != nil {
		return nil, err
	}
	dm.apply(subReqs, res, need)
	return res, nil
}

func (s *Scorer) classScores(probs []float64, want *catalog.Class) Scores {
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	var sc Scores
	for _, idx := range order[:min(5, len(order))] {
		sc.Top = append(sc.Top, ClassProb{Class: s.className(idx), Label: s.classLabel(idx), Prob: probs[idx]})
	}
	if want == nil {
		return sc
	}
	sc.Class = want.Name
	if idx := s.indexOf(want); idx >= 0 {
		p := probs[idx]
		sc.ClassProb = &p
		for r, o := range order {
			if o == idx {
				sc.ClassRank = r + 1
				break
			}
		}
	}
	return sc
}

// askedAttr is one attribute asked for: by the class (Token -1) or by a
// prompt word.
type askedAttr struct {
	group string
	named lexicon.Named
	word  string
}

// attributeScores reads the attribute head: the value it sees per group,
// and the agreement with the asked attributes (the class's, else the
// prompt's; see FidelityAttributeAgreement).
func (s *Scorer) attributeScores(sc *Scores, logits []float32, req scoreRequest) {
	sc.Attributes = map[string]string{}
	probs := make([]float64, len(logits)) // calibrated, within each group
	best := map[string]int{}
	for g, idxs := range s.groups {
		x := make([]float32, len(idxs))
		for k, i := range idxs {
			x[k] = logits[i]
		}
		p := softmax(x)
		b := idxs[0]
		for k, i := range idxs {
			probs[i] = p[k]
			if logits[i] > logits[b] {
				b = i
			}
		}
		best[g] = b
		_, v, _ := cutAttr(s.attrs[b])
		sc.Attributes[g] = v
	}
	want := req.class
	if want != nil && len(want.Attributes) > 0 {
		match, n := 0, 0
		for g, v := range want.Attributes {
			if got, ok := sc.Attributes[g]; ok {
				n++
				if got == v {
					match++
				}
			}
		}
		if n > 0 {
			f := float64(match) / float64(n)
			sc.AttributeMatch = &f
		}
	}

	var asked []askedAttr
	switch {
	case want != nil && len(want.Attributes) > 0:
		sc.AttributeBasis = "class"
		for g, v := range want.Attributes {
			asked = append(asked, askedAttr{g, lexicon.Named{Value: v, Token: -1}, ""})
		}
	case req.prompt != "" && s.lex != nil:
		sc.AttributeBasis = "prompt"
		words := textenc.Split(req.prompt)
		for g, n := range s.lex.Parse(req.prompt) {
			asked = append(asked, askedAttr{g, n, words[n.Token]})
		}
	default:
		return
	}
	sort.Slice(asked, func(i, j int) bool { return asked[i].group < asked[j].group })
	var ps []float64
	for _, a := range asked {
		i, ok := s.attrIdx[a.group+"::"+a.named.Value]
		if !ok {
			sc.AttributeUnjudged = append(sc.AttributeUnjudged, a.group+"::"+a.named.Value)
			continue
		}
		b := best[a.group]
		_, sees, _ := cutAttr(s.attrs[b])
		c := AttributeCheck{Group: a.group, Named: a.named.Value, Word: a.word, Prob: probs[i], Sees: sees, SeesProb: probs[b]}
		if a.named.Token >= 0 {
			tok := a.named.Token
			c.Token = &tok
		}
		sc.AttributeGroups = append(sc.AttributeGroups, c)
		ps = append(ps, probs[i])
	}
	if len(ps) > 0 {
		g := geometricMean(ps)
		sc.AttributeAgreement = &g
	} else {
		sc.AttributeBasis = ""
	}
}

// damsm is what the DAMSM encoders say of a batch: each image's code and
// each prompt's sentence vector.
type damsm struct {
	codes ort.Tensor
	sents map[string][]float32
}

// damsm runs the DAMSM image and text encoders on the images that came
// from prompts (none when the scorer has no DAMSM or no image a prompt).
func (s *Scorer) damsm(ctx context.Context, img ort.Tensor, reqs []scoreRequest) (damsm, error) {
	if s.imageEnc == nil || s.textEnc == nil || !slices.ContainsFunc(reqs, func(r scoreRequest) bool { return r.prompt != "" }) {
		return damsm{}, nil
	}
	out, err := s.imageEnc.run(ctx, map[string]ort.Tensor{"image": img})
	if err != nil {
		return damsm{}, err
	}
	return s.sentences(ctx, out["cnn_code"], reqs)
}

// sentences pairs the images' DAMSM codes with the sentence vectors of
// their prompts (the text encoder's run; none without a text encoder).
func (s *Scorer) sentences(ctx context.Context, codes ort.Tensor, reqs []scoreRequest) (damsm, error) {
	if s.textEnc == nil {
		return damsm{}, nil
	}
	var prompts []string
	for _, r := range reqs {
		if r.prompt != "" {
			prompts = append(prompts, r.prompt)
		}
	}
	if len(prompts) == 0 {
		return damsm{}, nil
	}
	sents, err := encodeSentences(ctx, s.textEnc, s.vocab, uniq(prompts))
	if err != nil {
		return damsm{}, err
	}
	return damsm{codes: codes, sents: sents}, nil
}

// rows is the batch t[at[0]], t[at[1]], … of a float32 tensor (t itself
// when at takes every row in order).
func rows(t ort.Tensor, at []int) ort.Tensor {
	b := int(t.Shape[0])
	if len(at) == b {
		return t
	}
	per := len(t.F32) / b
	data := make([]float32, 0, len(at)*per)
	for _, i := range at {
		data = append(data, t.F32[i*per:(i+1)*per]...)
	}
	return ort.F32Tensor(data, append([]int64{int64(len(at))}, t.Shape[1:]...)...)
}

// apply fills DAMSMSimilarity and TextSimilarity of the images that came
// from prompts: image k of the batch is res[at[k]] (res[k] when at is nil).
func (dm damsm) apply(reqs []scoreRequest, res []Scores, at []int) {
	if dm.sents == nil {
		return
	}
	d := int(dm.codes.Shape[1])
	for k, r := range reqs {
		if r.prompt == "" {
			continue
		}
		sent, ok := dm.sents[r.prompt]
		if !ok {
			continue // no word the scorer's vocabulary knows
		}
		i := k
		if at != nil {
			i = at[k]
		}
		res[i].Code = dm.codes.F32[k*d : (k+1)*d]
		c := evalstat.Cosine(res[i].Code, sent)
		cl := clamp01(c)
		res[i].TextSimilarity, res[i].DAMSMSimilarity = &c, &cl
	}
}

func (s *Scorer) indexOf(c *catalog.Class) int {
	for i, t := range s.trained {
		if t.ID == c.ID && t.Name == c.Name {
			return i
		}
	}
	return -1
}

func (s *Scorer) className(i int) string {
	if i < len(s.trained) {
		return s.trained[i].Name
	}
	return fmt.Sprint(i)
}

func (s *Scorer) classLabel(i int) string {
	if i < len(s.trained) {
		return s.trained[i].Label
	}
	return fmt.Sprint(i)
}

func cutAttr(a string) (group, value string, ok bool) {
	g, v, ok := cutString(a, "::")
	return g, v, ok
}

func softmax(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	res := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		res[i] = math.Exp(float64(v) - m)
		sum += res[i]
	}
	for i := range res {
		res[i] /= sum
	}
	return res
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var res []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			res = append(res, x)
		}
	}
	return res
}
