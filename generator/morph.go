package generator

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // morph inputs may be JPEG
	_ "image/png"

	"github.com/fgstudio/fgstudio/internal/ort"
)

// MaxUploadPixels bounds a decoded morph input (checked from the header,
// before the pixels are decoded).
const MaxUploadPixels = 4096 * 4096

// Morph encodes an uploaded image (PNG or JPEG) with the CVAE-GAN encoder
// and decodes it as the target class: same pose and style, other class.
func (s *Service) Morph(ctx context.Context, modelName string, data []byte, target string) (Image, error) {
	c, err := s.cvae(modelName)
	if err != nil {
		return Image{}, err
	}
	if c.enc == nil {
		return Image{}, fieldErr("model", ErrWrongKind, modelName+" has no encoder graph, so it cannot morph")
	}
	tcl, err := c.class("target_class", target)
	if err != nil {
		return Image{}, err
	}
	chw, err := decodeUpload(data, c.size)
	if err != nil {
		return Image{}, err
	}
	k := len(c.trained)
	src, err := c.sourceClass(ctx, chw)
	if err != nil {
		return Image{}, err
	}
	out, err := c.enc.run(ctx, map[string]ort.Tensor{
		"image":        ort.F32Tensor(chw, 1, 3, int64(c.size), int64(c.size)),
		"class_onehot": ort.F32Tensor(src, 1, int64(k)),
	})
	if err != nil {
		return Image{}, err
	}
	onehot := make([]float32, k)
	onehot[tcl.Index] = 1
	imgs, err := c.decode(ctx, out["z_mu"].F32, onehot, []imageMeta{{class: &tcl}})
	if err != nil {
		return Image{}, err
	}
	return imgs[0], nil
}

// sourceClass is the class vector the encoder is given for an image of
// unknown class: the scorer's belief mapped onto this model's classes, or
// uniform without a scorer.
func (c *cvaeGAN) sourceClass(ctx context.Context, chw []float32) ([]float32, error) {
	k := len(c.trained)
	v := make([]float32, k)
	if c.scorer == nil {
		for i := range v {
			v[i] = 1 / float32(k)
		}
		return v, nil
	}
	in := chw
	if c.size != c.scorer.size {
		in = resizeBatch(chw, 1, c.size, c.scorer.size)
	}
	out, err := c.scorer.classifier.run(ctx, map[string]ort.Tensor{"image": ort.F32Tensor(in, 1, 3, int64(c.scorer.size), int64(c.scorer.size))})
	if err != nil {
		return nil, err
	}
	probs := softmax(out["logits"].F32)
	var sum float32
	for si, p := range probs {
		if si >= len(c.scorer.trained) {
			break
		}
		sc := c.scorer.trained[si]
		for i, t := range c.trained {
			if t.ID == sc.ID {
				v[i] += float32(p)
				sum += float32(p)
			}
		}
	}
	if sum == 0 {
		for i := range v {
			v[i] = 1 / float32(k)
		}
		return v, nil
	}
	for i := range v {
		v[i] /= sum
	}
	return v, nil
}

// Endpoint is one end of an interpolation.
type Endpoint struct {
	Class string `json:"class"`
	Seed  uint64 `json:"seed"`
}

// Interpolate makes steps images along the straight line from one
// (class, seed) to another, in z and in the class vector at once.
func (s *Service) Interpolate(ctx context.Context, modelName string, from, to Endpoint, steps int) ([]Image, error) {
	c, err := s.cvae(modelName)
	if err != nil {
		return nil, err
	}
	if steps < 2 || steps > s.cfg.MaxBatch {
		return nil, fieldErr("steps", ErrTooMany, fmt.Sprintf("steps must be between 2 and %d, got %d", s.cfg.MaxBatch, steps))
	}
	a, err := c.class("from.class", from.Class)
	if err != nil {
		return nil, err
	}
	b, err := c.class("to.class", to.Class)
	if err != nil {
		return nil, err
	}
	k := len(c.trained)
	za, zb := make([]float32, c.zDim), make([]float32, c.zDim)
	NewNoise(from.Seed).Fill(za)
	NewNoise(to.Seed).Fill(zb)
	z := make([]float32, steps*c.zDim)
	onehot := make([]float32, steps*k)
	meta := make([]imageMeta, steps)
	for i := 0; i < steps; i++ {
		t := float32(i) / float32(steps-1)
		for j := range za {
			z[i*c.zDim+j] = (1-t)*za[j] + t*zb[j]
		}
		onehot[i*k+a.Index] += 1 - t
		onehot[i*k+b.Index] += t
		cl := a
		if t >= 0.5 {
			cl = b
		}
		meta[i] = imageMeta{seed: from.Seed, class: &cl}
	}
	return c.decode(ctx, z, onehot, meta)
}

func (s *Service) cvae(name string) (*cvaeGAN, error) {
	m, ok := s.models[name]
	if !ok {
		return nil, s.unknownModel(name)
	}
	c, ok := m.(*cvaeGAN)
	if !ok {
		return nil, fieldErr("model", ErrWrongKind, name+" is not a class-conditional (cvaegan) model")
	}
	return c, nil
}

// decodeUpload reads a PNG or JPEG, refuses oversized ones from the header
// alone, centre-crops to a square and resizes to size, as CHW in [-1, 1].
func decodeUpload(data []byte, size int) ([]float32, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fieldErr("image", ErrBadImage, "not a PNG or JPEG image: "+err.Error())
	}
	if format != "png" && format != "jpeg" {
		return nil, fieldErr("image", ErrBadImage, "format "+format+" is not accepted; send PNG or JPEG")
	}
	if cfg.Width < 16 || cfg.Height < 16 {
		return nil, fieldErr("image", ErrBadImage, fmt.Sprintf("image is %dx%d; at least 16x16 is needed", cfg.Width, cfg.Height))
	}
	if cfg.Width*cfg.Height > MaxUploadPixels {
		return nil, fieldErr("image", ErrBadImage, fmt.Sprintf("image is %dx%d; at most %d pixels are accepted", cfg.Width, cfg.Height, MaxUploadPixels))
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fieldErr("image", ErrBadImage, "corrupt image: "+err.Error())
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	sq := make([]float32, 3*side*side)
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			r, g, bl, _ := img.At(x0+x, y0+y).RGBA()
			i := y*side + x
			sq[i] = float32(r)/32767.5 - 1
			sq[side*side+i] = float32(g)/32767.5 - 1
			sq[2*side*side+i] = float32(bl)/32767.5 - 1
		}
	}
	if side == size {
		return sq, nil
	}
	return resizeBatch(sq, 1, side, size), nil
}
