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
	sc, err := s.scorerFor(model)
	if err != nil {
		return nil, err
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
		out, err := sc.score(ctx, chw, sc.size, make([]scoreRequest, len(part)))
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
