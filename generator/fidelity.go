package generator

// Fidelity measures: where an image's fidelity number comes from.
const (
	// FidelityClassProb: the classifier's probability of the requested
	// class (class requests, and prompts sent with a class).
	FidelityClassProb = "class_prob"
	// FidelityAttributeMatch: the share of the requested class's
	// attributes that the classifier predicts, for a class the classifier
	// was not trained on (an unseen class has no probability of its own).
	FidelityAttributeMatch = "attribute_match"
	// FidelityTextSimilarity: the DAMSM cosine similarity between image
	// and prompt, clamped to [0,1] (prompts without a class).
	FidelityTextSimilarity = "text_similarity"
)

// Fidelity is one number in [0,1] per image saying how well the image is
// what was asked for, and the measure it comes from (one of the Fidelity*
// constants); measure is empty, and the number 0, when the scorer said
// nothing usable (no scorer, or scoring turned off).
//
// The measure is chosen in this order:
//  1. the classifier's probability of the requested class — the direct
//     question "is this that species?";
//  2. for a requested class the classifier was not trained on, the share
//     of that class's attributes the classifier sees in the image;
//  3. for a prompt, the DAMSM image–text cosine similarity with negative
//     values clamped to 0. A prompt carries no class of its own (the
//     studio does not guess one from the words), so the caption–image
//     agreement that AttnGAN was trained on is the honest measure; it is
//     a cosine, not a probability, so its useful bar is lower (matched
//     pairs of a trained DAMSM typically score 0.2–0.6).
func (s Scores) Fidelity() (value float64, measure string) {
	switch {
	case s.ClassProb != nil:
		return clamp01(*s.ClassProb), FidelityClassProb
	case s.Class != "" && s.AttributeMatch != nil:
		return clamp01(*s.AttributeMatch), FidelityAttributeMatch
	case s.TextSimilarity != nil:
		return clamp01(*s.TextSimilarity), FidelityTextSimilarity
	}
	return 0, ""
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
