package generator

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"

	"github.com/fgstudio/fgstudio/generator/evalstat"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/textenc"
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

	classifier *graph
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

// Scores is what the scorer says of one image.
type Scores struct {
	// Class is the requested class (empty for a prompt without one).
	Class string `json:"class,omitempty"`
	// ClassProb is the classifier's probability of the requested class and
	// ClassRank its rank (1 = top); absent for classes the classifier has
	// not been trained on.
	ClassProb *float64    `json:"class_prob,omitempty"`
	ClassRank int         `json:"class_rank,omitempty"`
	Top       []ClassProb `json:"top"`
	// Attributes predicted per group (argmax within the group), and how
	// many of the requested class's attributes they match.
	Attributes     map[string]string `json:"attributes,omitempty"`
	AttributeMatch *float64          `json:"attribute_match,omitempty"`
	// TextSimilarity is the DAMSM cosine similarity between the image and
	// the prompt (prompts only).
	TextSimilarity *float64 `json:"text_similarity,omitempty"`
	// Features is the classifier's penultimate feature, Probs its class
	// probabilities and Code the DAMSM image code (prompts only), for
	// batch metrics and retrieval; not serialised.
	Features []float32 `json:"-"`
	Probs    []float64 `json:"-"`
	Code     []float32 `json:"-"`
}

func loadScorer(rt Runtime, m *catalog.Model, poolSize int) (*Scorer, error) {
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	s := &Scorer{name: m.Manifest.Name, size: m.Manifest.Size("image_size", 64), classes: cls, trained: cls.Trained(), attrs: cls.Attributes}
	if s.classifier, err = loadGraph(rt, m, "classifier", poolSize, []string{"image"}, outputsPresent(m, "classifier", "logits", "features", "attributes")); err != nil {
		return nil, err
	}
	if _, ok := m.Manifest.Graphs["image_encoder"]; ok {
		if s.imageEnc, err = loadGraph(rt, m, "image_encoder", poolSize, []string{"image"}, []string{"cnn_code"}); err != nil {
			s.close()
			return nil, err
		}
	}
	if _, ok := m.Manifest.Graphs["text_encoder"]; ok && m.Manifest.Vocab != "" {
		if s.vocab, err = textenc.LoadVocab(filepath.Join(m.Dir, m.Manifest.Vocab)); err != nil {
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
	s.groups = map[string][]int{}
	for i, a := range s.attrs {
		g, _, _ := cutAttr(a)
		s.groups[g] = append(s.groups[g], i)
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
}

// score runs the classifier (and DAMSM encoders for prompts) on a batch of
// CHW images of side size and returns one Scores per image.
func (s *Scorer) score(ctx context.Context, images []float32, size int, reqs []scoreRequest) ([]Scores, error) {
	b := len(reqs)
	in := images
	if size != s.size {
		in = resizeBatch(images, b, size, s.size)
	}
	img := ort.F32Tensor(in, int64(b), 3, int64(s.size), int64(s.size))
	out, err := s.classifier.run(ctx, map[string]ort.Tensor{"image": img})
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
			s.attributeScores(&res[i], a.F32[i*n:(i+1)*n], reqs[i].class)
		}
	}
	if err := s.textScores(ctx, img, reqs, res); err != nil {
		return nil, err
	}
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

func (s *Scorer) attributeScores(sc *Scores, logits []float32, want *catalog.Class) {
	sc.Attributes = map[string]string{}
	for g, idxs := range s.groups {
		best := idxs[0]
		for _, i := range idxs {
			if logits[i] > logits[best] {
				best = i
			}
		}
		_, v, _ := cutAttr(s.attrs[best])
		sc.Attributes[g] = v
	}
	if want == nil || len(want.Attributes) == 0 {
		return
	}
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

// textScores fills TextSimilarity for the images that came from prompts.
func (s *Scorer) textScores(ctx context.Context, img ort.Tensor, reqs []scoreRequest, res []Scores) error {
	if s.imageEnc == nil || s.textEnc == nil {
		return nil
	}
	var prompts []string
	for _, r := range reqs {
		if r.prompt != "" {
			prompts = append(prompts, r.prompt)
		}
	}
	if len(prompts) == 0 {
		return nil
	}
	out, err := s.imageEnc.run(ctx, map[string]ort.Tensor{"image": img})
	if err != nil {
		return err
	}
	codes := out["cnn_code"]
	d := int(codes.Shape[1])
	sents, err := encodeSentences(ctx, s.textEnc, s.vocab, uniq(prompts))
	if err != nil {
		return err
	}
	for i, r := range reqs {
		if r.prompt == "" {
			continue
		}
		sent, ok := sents[r.prompt]
		if !ok {
			continue // no word the scorer's vocabulary knows
		}
		res[i].Code = codes.F32[i*d : (i+1)*d]
		c := evalstat.Cosine(res[i].Code, sent)
		res[i].TextSimilarity = &c
	}
	return nil
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
