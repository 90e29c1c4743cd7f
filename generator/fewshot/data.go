package fewshot

import (
	"context"
	"fmt"
	"os"

	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// Synthetic reads a data set made by dataset.Make — its manifest must
// match its files — and scores its images with the classifier named
// scorer: features by class name.
func Synthetic(ctx context.Context, sc dataset.ImageScorer, scorer, dir string) (map[string][][]float32, *dataset.Manifest, error) {
	ims, man, err := SyntheticImages(ctx, sc, scorer, dir)
	if err != nil {
		return nil, nil, err
	}
	return Above(ims, 0), man, nil
}

// SynthImage is one synthetic image: its features and the fidelity its
// data set recorded (by the set's measure).
type SynthImage struct {
	Features []float32
	Fidelity float64
}

// SyntheticImages reads a data set made by dataset.Make (verified
// against its manifest) and scores its images with the classifier named
// scorer, by class name.
func SyntheticImages(ctx context.Context, sc dataset.ImageScorer, scorer, dir string) (map[string][]SynthImage, *dataset.Manifest, error) {
	man, err := dataset.Verify(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
	}
	recs, err := dataset.ReadRecords(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("synthetic set %s: %w", dir, err)
	}
	res := map[string][]SynthImage{}
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
			res[r.Class] = append(res[r.Class], SynthImage{Features: scores[i].Features, Fidelity: r.Scores.Fidelity})
		}
	}
	return res, man, nil
}

// AsSynthImages wraps synthetic features that carry no fidelity (made
// without an image, e.g. Described): every bar keeps them.
func AsSynthImages(feats map[string][][]float32) map[string][]SynthImage {
	res := map[string][]SynthImage{}
	for c, fs := range feats {
		for _, f := range fs {
			res[c] = append(res[c], SynthImage{Features: f, Fidelity: 1})
		}
	}
	return res
}

// Above keeps the synthetic images whose recorded fidelity reaches bar.
func Above(ims map[string][]SynthImage, bar float64) map[string][][]float32 {
	res := map[string][][]float32{}
	for c, list := range ims {
		for _, im := range list {
			if im.Fidelity >= bar {
				res[c] = append(res[c], im.Features)
			}
		}
	}
	return res
}

// Attributes are the attributes of each class of cls by class name, for
// fine-grained episodes (Group.Attributes).
func Attributes(cls *catalog.Classes) map[string]map[string]string {
	res := map[string]map[string]string{}
	for _, c := range cls.Classes {
		if len(c.Attributes) > 0 {
			res[c.Name] = c.Attributes
		}
	}
	return res
}

// HeldOutWithSiblings is the held-out classes among all classes: every
// episode is built around a held-out class (Anchors) with the classes
// nearest to it in attributes, seen or held out — in the sample world its
// siblings, one or two attributes from it or from their common base.
// Held-out classes draw supports and queries as in HeldOut, seen ones
// supports from the training split and queries from the test split.
func HeldOutWithSiblings(ref *dataset.Reference, heldout map[string]bool, synthetic map[string][][]float32) Group {
	h, s := HeldOut(ref, heldout, synthetic), Seen(ref, heldout, synthetic)
	g := Group{Name: "held-out+siblings", Support: h.Support, Query: h.Query, Synthetic: synthetic, Anchors: map[string]bool{}}
	for c := range h.Query {
		g.Anchors[c] = true
	}
	for c, sup := range s.Support {
		g.Support[c], g.Query[c] = sup, s.Query[c]
	}
	return g
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
