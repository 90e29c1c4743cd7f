package generator

import (
	"context"
	"fmt"
)

// ScoreImages gives the judge's features of images (PNG or JPEG,
// centre-cropped and resized to its input as the scorer's ScoreImages
// does), so that the judge can stand in for a fidelity classifier where
// only features are needed (few-shot prototypes on another network's
// features). model must be the judge's name. Only Features and Probs are
// set.
func (j *Judge) ScoreImages(ctx context.Context, model string, images [][]byte) ([]Scores, error) {
	if model != j.name {
		return nil, fmt.Errorf("judge %s asked to score for %s", j.name, model)
	}
	const batch = 64
	res := make([]Scores, 0, len(images))
	for from := 0; from < len(images); from += batch {
		part := images[from:min(from+batch, len(images))]
		chw := make([]float32, 0, len(part)*3*j.size*j.size)
		for i, data := range part {
			x, err := decodeUpload(data, j.size)
			if err != nil {
				return nil, fmt.Errorf("image %d: %w", from+i, err)
			}
			chw = append(chw, x...)
		}
		out, err := j.Run(ctx, chw, len(part))
		if err != nil {
			return nil, err
		}
		for i := range part {
			res = append(res, Scores{Features: out.Features[i], Probs: softmax(out.Logits[i])})
		}
	}
	return res, nil
}

// ScorerInputSize is the judge's input side: real images prepared at that
// size (cropped around the bird as training crops them) are judged
// without a further resize.
func (j *Judge) ScorerInputSize(model string) (int, error) {
	if model != j.name {
		return 0, fmt.Errorf("judge %s asked for the input size of %s", j.name, model)
	}
	return j.size, nil
}
