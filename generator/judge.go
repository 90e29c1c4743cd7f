package generator

import (
	"context"
	"fmt"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// Judge is an evaluation network (a model of kind evaluator): a classifier
// that no generator trained against and that the fidelity scorer does not
// share, used by `studio eval` only. Its one graph maps images to
// (calibrated) class logits, features and attribute logits.
type Judge struct {
	name    string
	size    int
	classes *catalog.Classes
	trained []catalog.Class
	graph   *graph
}

// JudgeOutput is what the judge says of a batch of images, one row each.
type JudgeOutput struct {
	Logits     [][]float32 // by the judge's class index (Classes().Trained())
	Features   [][]float32
	Attributes [][]float32 // by Classes().Attributes
}

// LoadJudge loads an evaluator model directory.
func LoadJudge(rt Runtime, m *catalog.Model, poolSize int) (*Judge, error) {
	if m.Manifest.Kind != catalog.KindEvaluator {
		return nil, fmt.Errorf("%w: %s is a %s, not an evaluator", ErrModel, m.Manifest.Name, m.Manifest.Kind)
	}
	cls, err := m.ReadClasses()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	j := &Judge{name: m.Manifest.Name, size: m.Manifest.Size("image_size", 64), classes: cls, trained: cls.Trained()}
	if len(j.trained) == 0 || len(cls.Attributes) == 0 {
		return nil, fmt.Errorf("%w: %s: classes.json needs trained classes and attributes", ErrModel, m.Manifest.Name)
	}
	if j.graph, err = loadGraph(rt, m, "classifier", max(poolSize, 1), []string{"image"}, []string{"logits", "features", "attributes"}); err != nil {
		return nil, err
	}
	return j, nil
}

// Name is the judge's model name.
func (j *Judge) Name() string { return j.name }

// Size is the side of the judge's input images.
func (j *Judge) Size() int { return j.size }

// Classes is the judge's classes.json: class index -1 for classes it was
// not trained on (held out), the attribute names, the lexicon.
func (j *Judge) Classes() *catalog.Classes { return j.classes }

// Trained lists the classes by the judge's output index.
func (j *Judge) Trained() []catalog.Class { return j.trained }

// Run judges n CHW images of side Size() in [-1, 1].
func (j *Judge) Run(ctx context.Context, chw []float32, n int) (JudgeOutput, error) {
	if len(chw) != n*3*j.size*j.size {
		return JudgeOutput{}, fmt.Errorf("%s: %d values for %d images of side %d", j.name, len(chw), n, j.size)
	}
	out, err := j.graph.run(ctx, map[string]ort.Tensor{"image": ort.F32Tensor(chw, int64(n), 3, int64(j.size), int64(j.size))})
	if err != nil {
		return JudgeOutput{}, err
	}
	rows := func(t ort.Tensor, want int, what string) ([][]float32, error) {
		if len(t.Shape) != 2 || int(t.Shape[0]) != n || (want > 0 && int(t.Shape[1]) != want) {
			return nil, fmt.Errorf("%s: %s has shape %v, want [%d, %d]", j.name, what, t.Shape, n, want)
		}
		d := int(t.Shape[1])
		res := make([][]float32, n)
		for i := range res {
			res[i] = append([]float32(nil), t.F32[i*d:(i+1)*d]...)
		}
		return res, nil
	}
	var res JudgeOutput
	if res.Logits, err = rows(out["logits"], len(j.trained), "logits"); err != nil {
		return res, err
	}
	if res.Features, err = rows(out["features"], 0, "features"); err != nil {
		return res, err
	}
	if res.Attributes, err = rows(out["attributes"], len(j.classes.Attributes), "attributes"); err != nil {
		return res, err
	}
	return res, nil
}

// Close releases the judge's sessions.
func (j *Judge) Close() { j.graph.close() }
