package generator

import (
	"context"
	"fmt"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// cvaeGAN is a class-conditional model: generator G(z, class) and encoder
// E(image, class) → z, which together morph an image into another class.
type cvaeGAN struct {
	m       *catalog.Model
	svc     *Service
	classes *catalog.Classes
	trained []catalog.Class
	scorer  *Scorer
	gen     *graph
	enc     *graph // optional
	zDim    int
	size    int
}

func loadCVAEGAN(rt Runtime, m *catalog.Model, svc *Service) (*cvaeGAN, error) {
	c := &cvaeGAN{m: m, svc: svc, zDim: m.Manifest.Size("z_dim", 100), size: m.Manifest.Size("image_size", 64)}
	var err error
	if c.classes, err = m.ReadClasses(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	c.trained = c.classes.Trained()
	if len(c.trained) == 0 {
		return nil, fmt.Errorf("%w: %s: classes.json has no trained class", ErrModel, m.Manifest.Name)
	}
	if c.scorer, err = svc.scorer(m); err != nil {
		return nil, err
	}
	pool := svc.cfg.PoolSize
	if c.gen, err = loadGraph(rt, m, "generator", pool, []string{"z", "class_onehot"}, []string{"image"}); err != nil {
		return nil, err
	}
	if _, ok := m.Manifest.Graphs["encoder"]; ok {
		if c.enc, err = loadGraph(rt, m, "encoder", pool, []string{"image", "class_onehot"}, []string{"z_mu", "z_logvar"}); err != nil {
			c.gen.close()
			return nil, err
		}
	}
	return c, nil
}

func (c *cvaeGAN) info() *catalog.Model { return c.m }

func (c *cvaeGAN) warmRequest() Request { return Request{Class: c.trained[0].Name, N: 1} }

// warmMore runs the encoder, which only morphs use, sessions times at
// once (a grey image, every class equally likely), so that the first
// morph creates no session either.
func (c *cvaeGAN) warmMore(ctx context.Context, sessions int) error {
	if c.enc == nil {
		return nil
	}
	k := len(c.trained)
	img := make([]float32, 3*c.size*c.size)
	uniform := make([]float32, k)
	for i := range uniform {
		uniform[i] = 1 / float32(k)
	}
	err := concurrently(sessions, func(int) error {
		_, err := c.enc.run(ctx, map[string]ort.Tensor{
			"image":        ort.F32Tensor(img, 1, 3, int64(c.size), int64(c.size)),
			"class_onehot": ort.F32Tensor(uniform, 1, int64(k)),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("encoder: %w", err)
	}
	return nil
}

func (c *cvaeGAN) close() {
	c.gen.close()
	if c.enc != nil {
		c.enc.close()
	}
}

// class resolves a class name for this model; held-out classes exist in
// the data set but the generator cannot draw them.
func (c *cvaeGAN) class(field, name string) (catalog.Class, error) {
	if name == "" {
		return catalog.Class{}, fieldErr(field, ErrUnknownClass, "a class is required for "+c.m.Manifest.Name)
	}
	cl, ok := c.classes.Lookup(name)
	if !ok {
		return cl, fieldErr(field, ErrUnknownClass, fmt.Sprintf("no class %q in %s", name, c.m.Manifest.Name))
	}
	if cl.Index < 0 || cl.Index >= len(c.trained) {
		return cl, fieldErr(field, ErrUnseenClass, fmt.Sprintf("class %q is held out: %s was not trained on it (describe it to a text model instead)", cl.Name, c.m.Manifest.Name))
	}
	return cl, nil
}

func (c *cvaeGAN) validate(r Request) error {
	_, err := c.class("class", r.Class)
	return err
}

func (c *cvaeGAN) generate(ctx context.Context, reqs []Request) ([][]Image, error) {
	res := make([][]Image, len(reqs))
	items := flatten(reqs)
	k := len(c.trained)
	for start := 0; start < len(items); start += c.svc.cfg.MaxBatch {
		chunk := items[start:min(start+c.svc.cfg.MaxBatch, len(items))]
		b := len(chunk)
		z := make([]float32, b*c.zDim)
		onehot := make([]float32, b*k)
		meta := make([]imageMeta, b)
		for i, it := range chunk {
			cl, _ := c.class("class", reqs[it.req].Class) // validated by the caller
			NewNoise(it.seed).Fill(z[i*c.zDim : (i+1)*c.zDim])
			onehot[i*k+cl.Index] = 1
			meta[i] = imageMeta{seed: it.seed, class: &cl}
		}
		imgs, err := c.decode(ctx, z, onehot, meta)
		if err != nil {
			return nil, err
		}
		for i, it := range chunk {
			res[it.req] = append(res[it.req], imgs[i])
		}
	}
	return res, nil
}

type imageMeta struct {
	seed  uint64
	class *catalog.Class
}

// decode runs G on a batch of z and class vectors, scores and encodes.
func (c *cvaeGAN) decode(ctx context.Context, z, onehot []float32, meta []imageMeta) ([]Image, error) {
	b, k := len(meta), len(c.trained)
	out, err := c.gen.run(ctx, map[string]ort.Tensor{
		"z":            ort.F32Tensor(z, int64(b), int64(c.zDim)),
		"class_onehot": ort.F32Tensor(onehot, int64(b), int64(k)),
	})
	if err != nil {
		return nil, err
	}
	img := out["image"]
	size := int(img.Shape[2])
	var scores []Scores
	if c.scorer != nil && !c.svc.cfg.NoScore {
		sreqs := make([]scoreRequest, b)
		for i := range meta {
			sreqs[i].class = meta[i].class
		}
		if scores, err = c.scorer.score(ctx, img.F32, size, sreqs); err != nil {
			return nil, err
		}
	}
	res := make([]Image, b)
	plane := 3 * size * size
	for i := range meta {
		res[i] = Image{Seed: meta[i].seed, Size: size}
		if scores != nil {
			res[i].Scores = scores[i]
		}
		cls := ""
		if meta[i].class != nil {
			cls = meta[i].class.Name
		}
		res[i].PNG, err = EncodePNG(ToImage(img.F32[i*plane:(i+1)*plane], size), Provenance{
			Model: c.m.Manifest.Name, ModelVersion: c.m.Manifest.Version, GraphSHA256: c.gen.sha256,
			Runtime: c.svc.runtime, Kind: c.m.Manifest.Kind, Class: cls, Seed: meta[i].seed, Scores: &res[i].Scores,
		})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}
