//go:build !unit

package generator_test

import (
	"io"
	"log/slog"
	"math"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// TestOneScorerGraph: the sample scorer's classifier graph gives the
// DAMSM cnn_code from its own trunk run (the DAMSM image encoder shares
// the trunk), so scoring makes no image-encoder session and gives the same
// numbers as the two-graph way (the same model with cnn_code left out of
// its manifest, which loads image_encoder.onnx instead).
func TestOneScorerGraph(t *testing.T) {
	cat := sampleCatalog(t)
	scorer, ok := cat.Get("classifier-birds")
	if !ok {
		t.Fatal("no classifier-birds in the sample models")
	}
	hasCode := false
	for _, o := range scorer.Manifest.Graphs["classifier"].Outputs {
		hasCode = hasCode || o.Role == "cnn_code"
	}
	if !hasCode {
		t.Fatal("classifier-birds: the classifier graph has no cnn_code output (export folds the shared-trunk DAMSM image encoder into it)")
	}
	gen, ok := cat.Get("attngan-birds")
	if !ok {
		t.Fatal("no attngan-birds in the sample models")
	}
	// The same two models in two folders, the second with cnn_code left
	// out of the classifier's manifest.
	oneRoot, root := t.TempDir(), t.TempDir()
	copyModel(t, gen, oneRoot)
	copyModel(t, scorer, oneRoot)
	copyModel(t, gen, root)
	two := copyModel(t, scorer, root)
	editManifest(t, two, func(m map[string]any) {
		g := m["graphs"].(map[string]any)["classifier"].(map[string]any)
		var keep []any
		for _, o := range g["outputs"].([]any) {
			if o.(map[string]any)["role"] != "cnn_code" {
				keep = append(keep, o)
			}
		}
		g["outputs"] = keep
	})
	oneCat, err := catalog.Open(oneRoot)
	if err != nil {
		t.Fatal(err)
	}
	twoCat, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reqs := []generator.Request{
		{Prompt: "a small bird with a red crown and black wings", N: 3, Seed: 5},
		{Prompt: "this bird is small", N: 2, Seed: 9, FidelityOnly: true},
	}
	run := func(c *catalog.Catalog) ([][]generator.Image, int) {
		before := rt.LiveSessions()
		svc := generator.Load(rt, c, generator.Config{PoolSize: 1, Warm: true}, quiet)
		defer svc.Close()
		out, err := svc.Generate(t.Context(), "attngan-birds", reqs)
		if err != nil {
			t.Fatal(err)
		}
		return out, int(rt.LiveSessions() - before)
	}
	one, oneSessions := run(oneCat)
	sep, sepSessions := run(twoCat)
	if oneSessions >= sepSessions {
		t.Fatalf("one scorer graph made %d sessions, two graphs %d: the image encoder should not be loaded", oneSessions, sepSessions)
	}
	compared := 0
	for r := range one {
		for k, a := range one[r] {
			b := sep[r][k]
			if (a.Scores.DAMSMSimilarity == nil) != (b.Scores.DAMSMSimilarity == nil) {
				t.Fatalf("request %d image %d: DAMSM similarity present %v with one graph, %v with two", r, k, a.Scores.DAMSMSimilarity != nil, b.Scores.DAMSMSimilarity != nil)
			}
			fa, ma := a.Scores.Fidelity()
			fb, mb := b.Scores.Fidelity()
			if ma != mb || math.Abs(fa-fb) > 1e-6 {
				t.Fatalf("request %d image %d: fidelity %v (%s) with one graph, %v (%s) with two", r, k, fa, ma, fb, mb)
			}
			if a.Scores.DAMSMSimilarity == nil {
				continue
			}
			if d := math.Abs(*a.Scores.TextSimilarity - *b.Scores.TextSimilarity); d > 1e-5 {
				t.Fatalf("request %d image %d: text similarity %v with one graph, %v with two", r, k, *a.Scores.TextSimilarity, *b.Scores.TextSimilarity)
			}
			compared++
		}
	}
	if compared < 3 {
		t.Fatalf("only %d images carried a DAMSM similarity", compared)
	}
	t.Logf("sessions: %d with one scorer graph, %d with two; %d similarities equal", oneSessions, sepSessions, compared)
}
