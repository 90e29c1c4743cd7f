package generator

import (
	"context"
	"strings"

	"github.com/fgstudio/fgstudio/internal/ort"
	"github.com/fgstudio/fgstudio/textenc"
)

// textFeatures are the encoder's outputs for one caption, padded to the
// vocabulary's MaxWords so that a caption's features never depend on the
// other captions of its batch.
type textFeatures struct {
	tokens textenc.Tokens
	words  []float32 // [D, T], T = MaxWords
	sent   []float32 // [D]
	mask   []float32 // [T], 1 = padding
}

// encodeText tokenizes and encodes prompts (already known to tokenize).
func encodeText(ctx context.Context, g *graph, v *textenc.Vocab, prompts []string) (map[string]textFeatures, int, error) {
	t := v.MaxWords()
	b := len(prompts)
	ids := make([]int64, b*t)
	lens := make([]int64, b)
	toks := make([]textenc.Tokens, b)
	for i, p := range prompts {
		tk, err := v.Tokenize(p)
		if err != nil {
			return nil, 0, err
		}
		toks[i] = tk
		copy(ids[i*t:], tk.IDs)
		lens[i] = int64(len(tk.IDs))
	}
	out, err := g.run(ctx, map[string]ort.Tensor{
		"captions": ort.I64Tensor(ids, int64(b), int64(t)),
		"cap_lens": ort.I64Tensor(lens, int64(b)),
	})
	if err != nil {
		return nil, 0, err
	}
	words, sent := out["words_emb"], out["sent_emb"]
	d := int(sent.Shape[1])
	res := make(map[string]textFeatures, b)
	for i, p := range prompts {
		mask := make([]float32, t)
		for j := int(lens[i]); j < t; j++ {
			mask[j] = 1
		}
		res[p] = textFeatures{
			tokens: toks[i],
			words:  append([]float32(nil), words.F32[i*d*t:(i+1)*d*t]...),
			sent:   append([]float32(nil), sent.F32[i*d:(i+1)*d]...),
			mask:   mask,
		}
	}
	return res, d, nil
}

// encodeSentences returns sentence features of the prompts that have a
// known word; the others are left out.
func encodeSentences(ctx context.Context, g *graph, v *textenc.Vocab, prompts []string) (map[string][]float32, error) {
	var ok []string
	for _, p := range prompts {
		if _, err := v.Tokenize(p); err == nil {
			ok = append(ok, p)
		}
	}
	res := map[string][]float32{}
	if len(ok) == 0 {
		return res, nil
	}
	feats, _, err := encodeText(ctx, g, v, ok)
	if err != nil {
		return nil, err
	}
	for p, f := range feats {
		res[p] = f.sent
	}
	return res, nil
}

func cutString(s, sep string) (string, string, bool) { return strings.Cut(s, sep) }
