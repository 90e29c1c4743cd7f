//go:build !unit

package generator_test

import (
	"errors"
	"math"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
)

// TestScoreImagesMatchesGeneration scores generated PNGs again as files:
// the features are those the generator reported (up to 8-bit rounding),
// and the top class is the same.
func TestScoreImagesMatchesGeneration(t *testing.T) {
	cat := sampleCatalog(t)
	svc := loadService(t, cat, generator.Config{MaxBatch: 3})
	m, ok := cat.Get("cvaegan-birds")
	if !ok {
		t.Fatal("no cvaegan-birds in the sample models")
	}
	cls, err := m.ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	out, err := svc.Generate(t.Context(), "cvaegan-birds", []generator.Request{{Class: cls.Trained()[0].Name, N: 5, Seed: 11}})
	if err != nil {
		t.Fatal(err)
	}
	var pngs [][]byte
	for _, im := range out[0] {
		pngs = append(pngs, im.PNG)
	}
	for _, model := range []string{"cvaegan-birds", "classifier-birds"} {
		got, err := svc.ScoreImages(t.Context(), model, pngs)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(pngs) {
			t.Fatalf("%d scores for %d images", len(got), len(pngs))
		}
		for i, sc := range got {
			want := out[0][i].Scores
			if c := cos(sc.Features, want.Features); c < 0.999 {
				t.Errorf("%s image %d: feature cosine %.4f with the generation's", model, i, c)
			}
			if sc.Top[0].Class != want.Top[0].Class {
				t.Errorf("%s image %d: top %s, generation said %s", model, i, sc.Top[0].Class, want.Top[0].Class)
			}
			if sc.ClassProb != nil || sc.Class != "" {
				t.Errorf("image %d: a class was scored though none was asked for", i)
			}
		}
	}
	if name, err := svc.ScorerName("cvaegan-birds"); err != nil || name != "classifier-birds" {
		t.Errorf("ScorerName = %q, %v", name, err)
	}
	if _, err := svc.ScoreImages(t.Context(), "nope", pngs); !errors.Is(err, generator.ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := svc.ScoreImages(t.Context(), "classifier-birds", [][]byte{[]byte("not an image")}); !errors.Is(err, generator.ErrBadImage) {
		t.Errorf("bad image: %v", err)
	}
}

func cos(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}
