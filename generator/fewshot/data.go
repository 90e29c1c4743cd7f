package fewshot

import (
	"context"
	"fmt"
	"os"

	"github.com/fgstudio/fgstudio/generator/dataset"
)

// Synthetic reads a data set made by dataset.Make — its manifest must
// match its files — and scores its images with the classifier named
// scorer: features by class name.
func Synthetic(ctx context.Context, sc dataset.ImageScorer, scorer, dir string) (map[string][][]float32, *dataset.Manifest, error) {
	man, err := dataset.Verify(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
	}
	recs, err := dataset.ReadRecords(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
	}
	res := map[string][][]float32{}
	for from := 0; from < len(recs); from += 256 {
		part := recs[from:min(from+256, len(recs))]
		data := make([][]byte, len(part))
		for i, r := range part {
			if data[i], err = os.ReadFile(dataset.ImagePath(dir, r)); err != nil {
				return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
			}
		}
		scores, err := sc.ScoreImages(ctx, scorer, data)
		if err != nil {
			return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
		}
		for i, r := range part {
			res[r.Class] = append(res[r.Class], scores[i].Features)
		}
	}
	return res, man, nil
}

// HeldOut is the group of held-out classes: queries are their test-split
// images; supports their training-split images, or, for a class without
// any (the sample world holds every image of a held-out class out), the
// same test images, drawn without overlap with the queries.
func HeldOut(ref *dataset.Reference, heldout map[string]bool, synthetic map[string][][]float32) Group {
	g := Group{Name: "held-out", Support: map[string][][]float32{}, Query: map[string][][]float32{}, Synthetic: synthetic}
	train := map[string][][]float32{}
	for _, im := range ref.Images {
		switch {
		case !heldout[im.Class]:
		case im.Train:
			train[im.Class] = append(train[im.Class], im.Features)
		default:
			g.Query[im.Class] = append(g.Query[im.Class], im.Features)
		}
	}
	for c, q := range g.Query {
		if len(train[c]) > 0 {
			g.Support[c] = train[c]
		} else {
			g.Support[c] = q
		}
	}
	return g
}

// Seen is the group of the classes the classifier was trained on:
// supports from the training split, queries from the test split.
func Seen(ref *dataset.Reference, heldout map[string]bool, synthetic map[string][][]float32) Group {
	g := Group{Name: "seen", Support: map[string][][]float32{}, Query: map[string][][]float32{}, Synthetic: synthetic}
	for _, im := range ref.Images {
		switch {
		case heldout[im.Class]:
		case im.Train:
			g.Support[im.Class] = append(g.Support[im.Class], im.Features)
		default:
			g.Query[im.Class] = append(g.Query[im.Class], im.Features)
		}
	}
	return g
}
