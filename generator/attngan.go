package generator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sort"
	"strconv"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/textenc"
)

// attnGAN is a text-to-image model: text encoder → multi-stage generator
// with word attention.
type attnGAN struct {
	m       *catalog.Model
	svc     *Service
	vocab   *textenc.Vocab
	classes *catalog.Classes
	scorer  *Scorer
	textEnc *graph
	gen     *graph
	zDim    int
	cDim    int
	stages  []string // image output roles, smallest first
	atts    []string // attention output roles
	maskF32 bool     // words_mask is float (else bool)
}

func loadAttnGAN(rt Runtime, m *catalog.Model, svc *Service) (*attnGAN, error) {
	a := &attnGAN{m: m, svc: svc, zDim: m.Manifest.Size("z_dim", 100), cDim: m.Manifest.Size("cond_dim", 100)}
	var err error
	if m.Manifest.Vocab == "" {
		return nil, fmt.Errorf("%w: %s: an attngan model needs a vocabulary", ErrModel, m.Manifest.Name)
	}
	if a.vocab, err = m.ReadVocab(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	if a.classes, err = m.ReadClasses(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	if a.scorer, err = svc.scorer(m); err != nil {
		return nil, err
	}
	g, ok := m.Manifest.Graphs["generator"]
	if !ok {
		return nil, fmt.Errorf("%w: %s: manifest has no \"generator\" graph", ErrModel, m.Manifest.Name)
	}
	for _, t := range g.Outputs {
		switch {
		case strings.HasPrefix(t.Role, "img"):
			a.stages = append(a.stages, t.Role)
		case strings.HasPrefix(t.Role, "att"):
			a.atts = append(a.atts, t.Role)
		}
	}
	if len(a.stages) == 0 {
		return nil, fmt.Errorf("%w: %s: generator has no image output (role img<size>)", ErrModel, m.Manifest.Name)
	}
	sort.Slice(a.stages, func(i, j int) bool { return roleSize(a.stages[i]) < roleSize(a.stages[j]) })
	sort.Slice(a.atts, func(i, j int) bool { return roleSize(a.atts[i]) < roleSize(a.atts[j]) })
	for _, t := range g.Inputs {
		if t.Role == "words_mask" {
			a.maskF32 = t.DType == string(ort.Float32)
		}
	}
	pool := svc.cfg.PoolSize
	if a.textEnc, err = loadGraph(rt, m, "text_encoder", pool, []string{"captions", "cap_lens"}, []string{"words_emb", "sent_emb"}); err != nil {
		return nil, err
	}
	out := append(append([]string(nil), a.stages...), a.atts...)
	if a.gen, err = loadGraph(rt, m, "generator", pool, []string{"z_code", "ca_eps", "sent_emb", "words_emb", "words_mask"}, out); err != nil {
		a.textEnc.close()
		return nil, err
	}
	return a, nil
}

func roleSize(role string) int {
	n, _ := strconv.Atoi(strings.TrimLeft(role, "imgatt"))
	return n
}

func (a *attnGAN) info() *catalog.Model { return a.m }

func (a *attnGAN) close() {
	a.textEnc.close()
	a.gen.close()
}

// warmRequest is a prompt of MaxWords known words: the longest caption.
func (a *attnGAN) warmRequest() Request {
	words := a.vocab.Words()
	words = words[:min(len(words), max(1, a.vocab.MaxWords()))]
	return Request{Prompt: strings.Join(words, " "), N: 1}
}

func (a *attnGAN) validate(r Request) error {
	if strings.TrimSpace(r.Prompt) == "" {
		return fieldErr("prompt", ErrEmptyPrompt, "prompt is empty: describe the bird, e.g. \"a small bird with a red crown\"")
	}
	if _, err := a.vocab.Tokenize(r.Prompt); err != nil {
		if errors.Is(err, textenc.ErrEmptyPrompt) {
			return fieldErr("prompt", ErrEmptyPrompt, "prompt has no words")
		}
		return fieldErr("prompt", ErrNoKnownWord, err.Error())
	}
	if r.Class != "" {
		if _, ok := a.classes.Lookup(r.Class); !ok {
			return fieldErr("class", ErrUnknownClass, fmt.Sprintf("no class %q in %s", r.Class, a.m.Manifest.Name))
		}
	}
	return nil
}

// item is one image to make.
type item struct {
	req  int
	seed uint64
}

func flatten(reqs []Request) []item {
	var items []item
	for i, r := range reqs {
		for k := 0; k < r.N; k++ {
			items = append(items, item{req: i, seed: r.Seed + uint64(k)})
		}
	}
	return items
}

func (a *attnGAN) generate(ctx context.Context, reqs []Request) ([][]Image, error) {
	res := make([][]Image, len(reqs))
	items := flatten(reqs)
	for start := 0; start < len(items); start += a.svc.cfg.MaxBatch {
		chunk := items[start:min(start+a.svc.cfg.MaxBatch, len(items))]
		imgs, err := a.run(ctx, reqs, chunk)
		if err != nil {
			return nil, err
		}
		for i, it := range chunk {
			res[it.req] = append(res[it.req], imgs[i])
		}
	}
	return res, nil
}

// inputs are the generator's inputs for chunk: each image's noise from its
// seed (z_code, then ca_eps) and its prompt's text features, padded to the
// vocabulary's max_words.
func (a *attnGAN) inputs(reqs []Request, chunk []item, feats map[string]textFeatures, d int) map[string]ort.Tensor {
	b, t := len(chunk), a.vocab.MaxWords()
	z := make([]float32, b*a.zDim)
	eps := make([]float32, b*a.cDim)
	sent := make([]float32, b*d)
	words := make([]float32, b*d*t)
	maskF := make([]float32, b*t)
	maskB := make([]bool, b*t)
	for i, it := range chunk {
		n := NewNoise(it.seed)
		n.Fill(z[i*a.zDim : (i+1)*a.zDim])
		n.Fill(eps[i*a.cDim : (i+1)*a.cDim])
		f := feats[reqs[it.req].Prompt]
		copy(sent[i*d:], f.sent)
		copy(words[i*d*t:], f.words)
		copy(maskF[i*t:], f.mask)
		for j, v := range f.mask {
			maskB[i*t+j] = v != 0
		}
	}
	mask := ort.F32Tensor(maskF, int64(b), int64(t))
	if !a.maskF32 {
		mask = ort.BoolTensor(maskB, int64(b), int64(t))
	}
	return map[string]ort.Tensor{
		"z_code":     ort.F32Tensor(z, int64(b), int64(a.zDim)),
		"ca_eps":     ort.F32Tensor(eps, int64(b), int64(a.cDim)),
		"sent_emb":   ort.F32Tensor(sent, int64(b), int64(d)),
		"words_emb":  ort.F32Tensor(words, int64(b), int64(d), int64(t)),
		"words_mask": mask,
	}
}

func (a *attnGAN) run(ctx context.Context, reqs []Request, chunk []item) ([]Image, error) {
	var prompts []string
	for _, it := range chunk {
		prompts = append(prompts, reqs[it.req].Prompt)
	}
	feats, d, err := encodeText(ctx, a.textEnc, a.vocab, uniq(prompts))
	if err != nil {
		return nil, err
	}
	b := len(chunk)
	out, err := a.gen.run(ctx, a.inputs(reqs, chunk, feats, d))
	if err != nil {
		return nil, err
	}
	final := out[a.stages[len(a.stages)-1]]
	size := int(final.Shape[2])

	sreqs := make([]scoreRequest, b)
	for i, it := range chunk {
		r := reqs[it.req]
		sreqs[i].prompt, sreqs[i].fidelityOnly = r.Prompt, r.FidelityOnly
		if r.Class != "" {
			if c, ok := a.classes.Lookup(r.Class); ok {
				sreqs[i].class = &c
			}
		}
	}
	var scores []Scores
	if a.scorer != nil && !a.svc.cfg.NoScore {
		if scores, err = a.scorer.score(ctx, final.F32, size, sreqs); err != nil {
			return nil, err
		}
	}

	imgs := make([]Image, b)
	plane := 3 * size * size
	for i, it := range chunk {
		r := reqs[it.req]
		img := Image{Seed: it.seed, Size: size}
		if scores != nil {
			img.Scores = scores[i]
		}
		img.PNG, err = EncodePNG(ToImage(final.F32[i*plane:(i+1)*plane], size), Provenance{
			Model: a.m.Manifest.Name, ModelVersion: a.m.Manifest.Version, GraphSHA256: a.gen.sha256,
			Runtime: a.svc.runtime, Kind: a.m.Manifest.Kind, Prompt: r.Prompt, Class: sreqs[i].className(),
			Seed: it.seed, Scores: &img.Scores,
		})
		if err != nil {
			return nil, err
		}
		for _, role := range a.stages[:len(a.stages)-1] {
			st := out[role]
			s := int(st.Shape[2])
			p, err := EncodePNG(ToImage(st.F32[i*3*s*s:(i+1)*3*s*s], s), Provenance{
				Model: a.m.Manifest.Name, ModelVersion: a.m.Manifest.Version, GraphSHA256: a.gen.sha256,
				Runtime: a.svc.runtime, Kind: a.m.Manifest.Kind, Prompt: r.Prompt, Seed: it.seed})
			if err != nil {
				return nil, err
			}
			img.Stages = append(img.Stages, p)
		}
		for stage, role := range a.atts {
			maps := attentionMaps(out[role], i, feats[r.Prompt].tokens.Words, stage)
			if stage == len(a.atts)-1 {
				img.Attention = maps
			} else {
				img.CoarseAttention = append(img.CoarseAttention, maps...)
			}
		}
		imgs[i] = img
	}
	return imgs, nil
}

func (r scoreRequest) className() string {
	if r.class == nil {
		return ""
	}
	return r.class.Name
}

// attentionMaps turns att [B,T,S,S] of image i into one grayscale PNG per
// kept word, each scaled to its own maximum.
func attentionMaps(att ort.Tensor, i int, words []string, stage int) []WordMap {
	t, s := int(att.Shape[1]), int(att.Shape[2])
	var maps []WordMap
	for j, w := range words {
		if j >= t {
			break
		}
		m := att.F32[(i*t+j)*s*s : (i*t+j+1)*s*s]
		var mx float32
		for _, v := range m {
			mx = max(mx, v)
		}
		g := image.NewGray(image.Rect(0, 0, s, s))
		for k, v := range m {
			if mx > 0 {
				g.SetGray(k%s, k/s, color.Gray{Y: uint8(min(255, v/mx*255+0.5))})
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, g); err == nil {
			maps = append(maps, WordMap{Word: w, PNG: buf.Bytes(), Peak: mx, Stage: stage})
		}
	}
	return maps
}
