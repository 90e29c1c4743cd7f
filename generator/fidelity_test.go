package generator_test

import (
	"encoding/json"
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
		{"trained class: class probability first", generator.Scores{Class: "cardinal", ClassProb: f(0.8), AttributeAgreement: f(0.2), DAMSMSimilarity: f(0.1)},
			0.8, generator.FidelityClassProbability},
		{"held-out class: attribute agreement", generator.Scores{Class: "vermilion_flycatcher", AttributeAgreement: f(0.75), AttributeBasis: "class", AttributeMatch: f(1)},
			0.75, generator.FidelityAttributeAgreement},
		{"prompt naming attributes: attribute agreement", generator.Scores{AttributeAgreement: f(0.12), AttributeBasis: "prompt", DAMSMSimilarity: f(0.8), TextSimilarity: f(0.8)},
			0.12, generator.FidelityAttributeAgreement},
		{"prompt naming none: DAMSM similarity", generator.Scores{DAMSMSimilarity: f(0.42), TextSimilarity: f(0.42)},
			0.42, generator.FidelityDAMSMSimilarity},
		{"negative similarity clamps to 0", generator.Scores{DAMSMSimilarity: f(0), TextSimilarity: f(-0.3)}, 0, generator.FidelityDAMSMSimilarity},
		{"raw cosine only (old scores)", generator.Scores{TextSimilarity: f(-0.3)}, 0, generator.FidelityDAMSMSimilarity},
		{"NaN clamps to 0", generator.Scores{ClassProb: f(math.NaN())}, 0, generator.FidelityClassProbability},
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

// TestScoresJSONNamesTheMeasure: the scores object carries its fidelity
// with the measure's name, and class_probability beside the old class_prob.
func TestScoresJSONNamesTheMeasure(t *testing.T) {
	p := 0.25
	raw, err := json.Marshal(generator.Scores{Class: "c", ClassProb: &p, ClassRank: 2})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["fidelity_measure"] != "class_probability" || m["fidelity"] != 0.25 || m["class_probability"] != 0.25 || m["class_prob"] != 0.25 {
		t.Fatalf("%s", raw)
	}
	raw, _ = json.Marshal(generator.Scores{})
	if string(raw) != `{"top":null}` {
		t.Fatalf("unscored: %s", raw)
	}
	var back generator.Scores
	if err := json.Unmarshal([]byte(`{"class":"c","class_prob":0.5,"fidelity_measure":"class_probability"}`), &back); err != nil || *back.ClassProb != 0.5 {
		t.Fatalf("read back: %+v %v", back, err)
	}
}
