package generator

import "math"

// Fidelity measures: where an image's fidelity number comes from. Every
// score the studio shows carries one of these names (fidelity_measure).
const (
	// FidelityClassProbability: the calibrated probability of the requested
	// class, softmax of the classifier's logits (the exported graph divides
	// them by a temperature fitted on held-back real images). Only for a
	// class the classifier was trained on.
	FidelityClassProbability = "class_probability"
	// FidelityAttributeAgreement: how much the attribute head agrees with
	// the attributes that were asked for. For each judged group g with
	// asked value v, p_g is the calibrated within-group probability of v
	// (softmax of the head's outputs restricted to g's values); the
	// agreement is their geometric mean, exp(mean_g log max(p_g, 1e-6)), so
	// that one clearly wrong attribute pulls the score down (0.95, 0.95 and
	// 0.03 give 0.30, where an arithmetic mean would give 0.64). The asked
	// attributes are those of the requested class when it has any (a
	// class the classifier was not trained on is judged by the attributes
	// of its description in classes.json), otherwise the groups a prompt
	// names (textenc/lexicon, with the lexicon of the classifier's
	// classes.json). Scores.AttributeGroups has the per-group detail.
	FidelityAttributeAgreement = "attribute_agreement"
	// FidelityDAMSMSimilarity: the DAMSM cosine similarity between image
	// and prompt, clamped to [0,1]. A second measure, primary only for a
	// prompt that names no attribute the lexicon knows, or when the
	// classifier has no lexicon or attribute head. It is a cosine, not a
	// probability: matched pairs of a trained DAMSM typically score 0.2–0.6.
	FidelityDAMSMSimilarity = "damsm_similarity"
)

// Measure names of the first scorer, kept so that code written against it
// compiles; they now hold the new names.
//
// Deprecated: use FidelityClassProbability, FidelityAttributeAgreement and
// FidelityDAMSMSimilarity.
const (
	FidelityClassProb      = FidelityClassProbability
	FidelityAttributeMatch = FidelityAttributeAgreement
	FidelityTextSimilarity = FidelityDAMSMSimilarity
)

// Measures lists the fidelity measures.
var Measures = []string{FidelityClassProbability, FidelityAttributeAgreement, FidelityDAMSMSimilarity}

// Fidelity is one number in [0,1] per image saying how well the image is
// what was asked for, and the measure it comes from (one of the Fidelity*
// constants); measure is empty, and the number 0, when the scorer said
// nothing usable (no scorer, or scoring turned off).
//
// The measure is chosen in this order:
//  1. a requested class the classifier was trained on: class_probability,
//     the direct question "is this that species?";
//  2. a requested class it was not trained on (held out):
//     attribute_agreement over the attributes of the class's description;
//  3. a prompt without a class: attribute_agreement over the attributes
//     the prompt names, when it names at least one the classifier's head
//     has a value for;
//  4. otherwise, for a prompt: damsm_similarity.
func (s Scores) Fidelity() (value float64, measure string) {
	switch {
	case s.ClassProb != nil:
		return clamp01(*s.ClassProb), FidelityClassProbability
	case s.AttributeAgreement != nil:
		return clamp01(*s.AttributeAgreement), FidelityAttributeAgreement
	case s.DAMSMSimilarity != nil:
		return clamp01(*s.DAMSMSimilarity), FidelityDAMSMSimilarity
	case s.TextSimilarity != nil:
		return clamp01(*s.TextSimilarity), FidelityDAMSMSimilarity
	}
	return 0, ""
}

// agreementFloor bounds each group's probability from below in the
// geometric mean, so that one value the head rules out entirely gives a
// low score rather than exactly 0 and the others still count.
const agreementFloor = 1e-6

// geometricMean is exp(mean(log(max(p, agreementFloor)))); NaN for none.
func geometricMean(ps []float64) float64 {
	if len(ps) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, p := range ps {
		if !(p > agreementFloor) { // also NaN
			p = agreementFloor
		}
		sum += math.Log(math.Min(p, 1))
	}
	return math.Exp(sum / float64(len(ps)))
}

func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x >= 0:
		return x
	}
	return 0 // negative, or NaN
}
