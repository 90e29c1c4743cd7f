package generator_test

import (
	"math"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
)

func TestFidelityMeasure(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name    string
		s       generator.Scores
		want    float64
		measure string
	}{
		{"class probability first", generator.Scores{Class: "cardinal", ClassProb: f(0.8), AttributeMatch: f(0.2), TextSimilarity: f(0.1)},
			0.8, generator.FidelityClassProb},
		{"unseen class: attribute match", generator.Scores{Class: "vermilion_flycatcher", AttributeMatch: f(0.75)},
			0.75, generator.FidelityAttributeMatch},
		{"prompt: text similarity", generator.Scores{TextSimilarity: f(0.42), AttributeMatch: f(0.9)},
			0.42, generator.FidelityTextSimilarity},
		{"negative similarity clamps to 0", generator.Scores{TextSimilarity: f(-0.3)}, 0, generator.FidelityTextSimilarity},
		{"NaN clamps to 0", generator.Scores{ClassProb: f(math.NaN())}, 0, generator.FidelityClassProb},
		{"nothing scored", generator.Scores{}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, m := c.s.Fidelity()
			if got != c.want || m != c.measure {
				t.Fatalf("Fidelity() = %v, %q; want %v, %q", got, m, c.want, c.measure)
			}
		})
	}
}
