package generator

import (
	"context"
	"fmt"
)

// ScoreImages runs a fidelity classifier on images that were not made
// here — real images of a data set, files of a synthetic one — so that
// they can be compared with generated images in the same feature space
// (novelty against training images, few-shot prototypes). Each PNG or
// JPEG is centre-cropped and resized to the classifier's input, as a
// morph input is. model names a classifier model, or a generator model
// whose scorer is used. No class is asked for, so the Scores carry Top,
// Probs, Attributes and Features (not ClassProb or TextSimilarity).
func (s *Service) ScoreImages(ctx context.Context, model string, images [][]byte) ([]Scores, error) {
	return s.ScoreImagesAgainst(ctx, model, images, nil)
}

// Ask is what an image is judged against by ScoreImagesAgainst: a class
// (name, label or id of the scorer's classes) and/or a prompt.
type Ask struct {
	Class  string `json:"class,omitempty"`
	Prompt string `json:"prompt,omitempty"`
}

// ScoreImagesAgainst scores images (PNG or JPEG, as ScoreImages) against
// what each was meant to show, asks[i] for images[i], with every measure
// a generated image gets: class_probability for a trained class,
// attribute_agreement for a held-out class or a prompt naming attributes,
// damsm_similarity for a prompt (see Scores.Fidelity). asks may be nil
// (nothing asked); an unknown class is an error.
func (s *Service) ScoreImagesAgainst(ctx context.Context, model string, images [][]byte, asks []Ask) ([]Scores, error) {
	sc, err := s.scorerFor(model)
	if err != nil {
		return nil, err
	}
	if asks != nil && len(asks) != len(images) {
		return nil, fmt.Errorf("%d images but %d asks", len(images), len(asks))
	}
	reqs := make([]scoreRequest, len(images))
	for i, a := range asks {
		reqs[i].prompt = a.Prompt
		if a.Class != "" {
			c, ok := sc.classes.Lookup(a.Class)
			if !ok {
				return nil, fieldErr("class", ErrUnknownClass, fmt.Sprintf("image %d: no class %q in %s", i, a.Class, sc.name))
			}
			reqs[i].class = &c
		}
	}
	res := make([]Scores, 0, len(images))
	for from := 0; from < len(images); from += s.cfg.MaxBatch {
		part := images[from:min(from+s.cfg.MaxBatch, len(images))]
		chw := make([]float32, 0, len(part)*3*sc.size*sc.size)
		for i, data := range part {
			x, err := decodeUpload(data, sc.size)
			if err != nil {
				return nil, fmt.Errorf("image %d: %w", from+i, err)
			}
			chw = append(chw, x...)
		}
		out, err := sc.score(ctx, chw, sc.size, reqs[from:from+len(part)])
		if err != nil {
			return nil, err
		}
		res = append(res, out...)
	}
	return res, nil
}

// ScorerInputSize is the image side the classifier that scores model's
// images takes: real images prepared at that size (cub.Dataset.LoadPNG,
// cropped around the bird as training crops them) are scored without a
// further resize.
func (s *Service) ScorerInputSize(model string) (int, error) {
	sc, err := s.scorerFor(model)
	if err != nil {
		return 0, err
	}
	return sc.size, nil
}

// ScorerName names the classifier that scores a model's images: the model
// itself for a classifier, else the scorer its manifest names.
func (s *Service) ScorerName(model string) (string, error) {
	sc, err := s.scorerFor(model)
	if err != nil {
		return "", err
	}
	return sc.name, nil
}

func (s *Service) scorerFor(model string) (*Scorer, error) {
	if sc, ok := s.scorers[model]; ok {
		return sc, nil
	}
	m, ok := s.models[model]
	if !ok {
		if err, failed := s.failed[model]; failed {
			return nil, fieldErr("model", ErrUnknownModel, fmt.Sprintf("model %q is not loaded: %v", model, err))
		}
		return nil, s.unknownModel(model)
	}
	sc, err := s.scorer(m.info())
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, fieldErr("model", ErrWrongKind, model+" names no scorer in its manifest")
	}
	return sc, nil
}
