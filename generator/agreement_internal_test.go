package generator

import (
	"math"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// agreementScorer is a scorer with only what attributeScores reads: the
// attribute names of the sample world and the lexicon of the golden
// vectors. logit builds attribute logits in which each listed group puts
// probability p on one value and shares 1-p evenly over the others.
func agreementScorer(t *testing.T) (*Scorer, func(map[string]string, float64) []float32) {
	t.Helper()
	lex, err := lexicon.Read("../samples/cubmaker/testdata/lexicon.json")
	if err != nil {
		t.Fatal(err)
	}
	colours := []string{"red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white", "grey"}
	groups := []struct {
		g      string
		values []string
	}{
		{"has_bill_shape", []string{"all-purpose", "hooked", "needle", "cone", "spatulate"}},
		{"has_bill_color", []string{"black", "orange", "grey"}},
		{"has_crown_color", colours},
		{"has_breast_color", colours},
		{"has_breast_pattern", []string{"solid", "streaked", "spotted"}},
		{"has_size", []string{"small", "medium", "large"}},
	}
	s := &Scorer{lex: lex, groups: map[string][]int{}, attrIdx: map[string]int{}}
	for _, g := range groups {
		for _, v := range g.values {
			a := g.g + "::" + v
			s.groups[g.g] = append(s.groups[g.g], len(s.attrs))
			s.attrIdx[a] = len(s.attrs)
			s.attrs = append(s.attrs, a)
		}
	}
	logits := func(sees map[string]string, p float64) []float32 {
		x := make([]float32, len(s.attrs))
		for g, idxs := range s.groups {
			v, ok := sees[g]
			if !ok {
				continue // uniform
			}
			rest := (1 - p) / float64(len(idxs)-1)
			for _, i := range idxs {
				x[i] = float32(math.Log(rest))
			}
			x[s.attrIdx[g+"::"+v]] = float32(math.Log(p))
		}
		return x
	}
	return s, logits
}

func TestAttributeAgreementOfAPrompt(t *testing.T) {
	s, logits := agreementScorer(t)
	prompt := "a small bird with a red crown and a hooked black bill"
	asked := map[string]string{"has_size": "small", "has_crown_color": "red", "has_bill_shape": "hooked", "has_bill_color": "black"}

	// The head sees everything the prompt names at 0.9: agreement 0.9.
	var sc Scores
	s.attributeScores(&sc, logits(asked, 0.9), scoreRequest{prompt: prompt})
	if sc.AttributeAgreement == nil || math.Abs(*sc.AttributeAgreement-0.9) > 1e-5 || sc.AttributeBasis != "prompt" || len(sc.AttributeGroups) != 4 {
		t.Fatalf("all seen: %+v", sc)
	}
	if f, m := sc.Fidelity(); m != FidelityAttributeAgreement || math.Abs(f-0.9) > 1e-5 {
		t.Fatalf("Fidelity = %v %s", f, m)
	}

	// The crown reads black: that group's probability of red is
	// 0.1/9, and the geometric mean drops far below the bar.
	sees := map[string]string{"has_size": "small", "has_crown_color": "black", "has_bill_shape": "hooked", "has_bill_color": "black"}
	sc = Scores{}
	s.attributeScores(&sc, logits(sees, 0.9), scoreRequest{prompt: prompt})
	want := math.Pow(0.9*0.9*0.9*(0.1/9), 0.25)
	if sc.AttributeAgreement == nil || math.Abs(*sc.AttributeAgreement-want) > 1e-5 || *sc.AttributeAgreement > 0.3 {
		t.Fatalf("black crown: agreement %v, want %v", sc.AttributeAgreement, want)
	}
	var crown *AttributeCheck
	for i := range sc.AttributeGroups {
		if sc.AttributeGroups[i].Group == "has_crown_color" {
			crown = &sc.AttributeGroups[i]
		}
	}
	if crown == nil || crown.Named != "red" || crown.Word != "red" || crown.Token == nil || *crown.Token != 5 ||
		crown.Sees != "black" || math.Abs(crown.SeesProb-0.9) > 1e-5 || math.Abs(crown.Prob-0.1/9) > 1e-5 {
		t.Fatalf("crown detail: %+v", crown)
	}

	// The arithmetic mean would have called this image good.
	if arith := (0.9*3 + 0.1/9) / 4; arith < 0.6 {
		t.Fatalf("arithmetic %v", arith)
	}
}

func TestAttributeAgreementFallsBack(t *testing.T) {
	s, logits := agreementScorer(t)
	x := logits(map[string]string{"has_crown_color": "red"}, 0.9)

	// A prompt naming no attribute the lexicon knows: no agreement, the
	// DAMSM similarity is the measure.
	var sc Scores
	s.attributeScores(&sc, x, scoreRequest{prompt: "a lovely little thing"})
	d := 0.4
	sc.DAMSMSimilarity = &d
	if sc.AttributeAgreement != nil || sc.AttributeBasis != "" {
		t.Fatalf("no named attribute: %+v", sc)
	}
	if _, m := sc.Fidelity(); m != FidelityDAMSMSimilarity {
		t.Fatalf("measure %s", m)
	}

	// Named only in groups or values the head lacks: unjudged, not scored.
	sc = Scores{}
	s.attributeScores(&sc, x, scoreRequest{prompt: "a bird with a notched tail and a chest with bars"})
	if sc.AttributeAgreement != nil || len(sc.AttributeUnjudged) != 2 {
		t.Fatalf("unjudged: %+v", sc)
	}

	// No lexicon (models of the first sample world): no agreement.
	s.lex = nil
	sc = Scores{}
	s.attributeScores(&sc, x, scoreRequest{prompt: "a red crown"})
	if sc.AttributeAgreement != nil || sc.Attributes["has_crown_color"] != "red" {
		t.Fatalf("no lexicon: %+v", sc)
	}
}

// A class the classifier was not trained on is judged by all the
// attributes of its description, whatever the prompt says.
func TestAttributeAgreementOfAHeldOutClass(t *testing.T) {
	s, logits := agreementScorer(t)
	cls := &catalog.Class{Index: -1, Name: "199.Held", Attributes: map[string]string{
		"has_crown_color": "red", "has_breast_color": "white", "has_breast_pattern": "streaked", "has_size": "large"}}
	sees := map[string]string{"has_crown_color": "red", "has_breast_color": "white", "has_breast_pattern": "solid", "has_size": "large"}
	var sc Scores
	sc.Class = cls.Name
	s.attributeScores(&sc, logits(sees, 0.8), scoreRequest{class: cls, prompt: "a bird with a green crown"})
	want := math.Pow(0.8*0.8*0.1*0.8, 0.25)
	if sc.AttributeBasis != "class" || sc.AttributeAgreement == nil || math.Abs(*sc.AttributeAgreement-want) > 1e-5 ||
		sc.AttributeMatch == nil || *sc.AttributeMatch != 0.75 {
		t.Fatalf("held out: %+v (want agreement %v)", sc, want)
	}
	if f, m := sc.Fidelity(); m != FidelityAttributeAgreement || f > 0.5 {
		t.Fatalf("Fidelity = %v %s", f, m)
	}
	for _, c := range sc.AttributeGroups {
		if c.Token != nil || c.Word != "" {
			t.Fatalf("class attribute with a prompt word: %+v", c)
		}
	}
}

func TestGeometricMean(t *testing.T) {
	if g := geometricMean([]float64{0.95, 0.95, 0.03}); math.Abs(g-0.3) > 0.01 {
		t.Fatalf("%v", g)
	}
	if g := geometricMean([]float64{0, 1}); g <= 0 || g > 1e-2 {
		t.Fatalf("floor: %v", g)
	}
	if g := geometricMean([]float64{math.NaN(), 1}); math.IsNaN(g) {
		t.Fatal("NaN")
	}
	if !math.IsNaN(geometricMean(nil)) {
		t.Fatal("empty")
	}
}
