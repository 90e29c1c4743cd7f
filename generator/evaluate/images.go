package evaluate

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // real data sets may hold JPEGs
	"image/png"
	"math"
	"math/rand/v2"

	"github.com/fgstudio/fgstudio/internal/cub"
)

// Pixels is an RGB image as three planes (CHW) of values on the 0–255
// scale, always whole numbers after each step, as an 8-bit file holds.
type Pixels struct {
	W, H int
	Pix  []float32 // 3·H·W
}

func decodePixels(data []byte) (Pixels, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return Pixels{}, err
	}
	return fromImage(img), nil
}

func fromImage(img image.Image) Pixels {
	b := img.Bounds()
	p := Pixels{W: b.Dx(), H: b.Dy()}
	p.Pix = make([]float32, 3*p.W*p.H)
	plane := p.W * p.H
	for y := 0; y < p.H; y++ {
		for x := 0; x < p.W; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := y*p.W + x
			p.Pix[i], p.Pix[plane+i], p.Pix[2*plane+i] = float32(c.R), float32(c.G), float32(c.B)
		}
	}
	return p
}

// LoadReal reads a data set image as the networks were trained on it
// (cub.Dataset.Load, the reader contract shared with training): a square
// of 1.5× the bounding box's longer side around the box, clipped to the
// image, resized to size×size with Pillow's bicubic filter.
func LoadReal(ds *cub.Dataset, im cub.Image, size int) (Pixels, error) {
	pix, err := ds.Load(im, size)
	if err != nil {
		return Pixels{}, err
	}
	p := Pixels{W: size, H: size, Pix: make([]float32, len(pix))}
	for i, v := range pix {
		p.Pix[i] = float32(v)
	}
	return p, nil
}

// Resize is Pillow's Image.resize with BICUBIC (a = −0.5): a separable
// filter whose support widens with the downscale factor (antialiasing),
// horizontal pass first, each pass rounded and clipped to 8 bits.
func (p Pixels) Resize(w, h int) Pixels {
	if w == p.W && h == p.H {
		return p
	}
	q := p
	if w != p.W {
		q = resample(q, w, true)
	}
	if h != p.H {
		q = resample(q, h, false)
	}
	return q
}

func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// resample is one pass of Pillow's ImagingResample (precompute_coeffs).
func resample(p Pixels, out int, horizontal bool) Pixels {
	in := p.H
	if horizontal {
		in = p.W
	}
	scale := float64(in) / float64(out)
	fscale := math.Max(scale, 1)
	support := 2 * fscale
	type tap struct {
		lo int
		w  []float64
	}
	taps := make([]tap, out)
	for o := range taps {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		w := make([]float64, hi-lo)
		var sum float64
		for k := range w {
			w[k] = bicubic((float64(k+lo) - center + 0.5) / fscale)
			sum += w[k]
		}
		if sum != 0 {
			for k := range w {
				w[k] /= sum
			}
		}
		taps[o] = tap{lo, w}
	}
	q := Pixels{W: p.W, H: p.H}
	if horizontal {
		q.W = out
	} else {
		q.H = out
	}
	q.Pix = make([]float32, 3*q.W*q.H)
	for c := 0; c < 3; c++ {
		src := p.Pix[c*p.W*p.H : (c+1)*p.W*p.H]
		dst := q.Pix[c*q.W*q.H : (c+1)*q.W*q.H]
		if horizontal {
			for y := 0; y < p.H; y++ {
				row := src[y*p.W : (y+1)*p.W]
				for x, t := range taps {
					var s float64
					for k, wk := range t.w {
						s += wk * float64(row[t.lo+k])
					}
					dst[y*q.W+x] = clip8(s)
				}
			}
		} else {
			for y, t := range taps {
				for x := 0; x < p.W; x++ {
					var s float64
					for k, wk := range t.w {
						s += wk * float64(src[(t.lo+k)*p.W+x])
					}
					dst[y*q.W+x] = clip8(s)
				}
			}
		}
	}
	return q
}

func clip8(v float64) float32 {
	v = math.Round(v)
	if v < 0 || v != v {
		return 0
	}
	if v > 255 {
		return 255
	}
	return float32(v)
}

// Input is the image as a network input: CHW in [−1, 1].
func (p Pixels) Input() []float32 {
	res := make([]float32, len(p.Pix))
	for i, v := range p.Pix {
		res[i] = v/127.5 - 1
	}
	return res
}

// Blur is a Gaussian blur of standard deviation sigma pixels (kernel
// radius ⌈3σ⌉, edges replicated), rounded to 8 bits.
func (p Pixels) Blur(sigma float64) Pixels {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	pass := func(src Pixels, horizontal bool) Pixels {
		dst := Pixels{W: src.W, H: src.H, Pix: make([]float32, len(src.Pix))}
		for c := 0; c < 3; c++ {
			off := c * src.W * src.H
			for y := 0; y < src.H; y++ {
				for x := 0; x < src.W; x++ {
					var s float64
					for i, w := range k {
						xx, yy := x, y
						if horizontal {
							xx = min(max(x+i-r, 0), src.W-1)
						} else {
							yy = min(max(y+i-r, 0), src.H-1)
						}
						s += w * float64(src.Pix[off+yy*src.W+xx])
					}
					dst.Pix[off+y*src.W+x] = float32(s)
				}
			}
		}
		return dst
	}
	q := pass(pass(p, true), false)
	for i, v := range q.Pix {
		q.Pix[i] = clip8(float64(v))
	}
	return q
}

// Noise adds Gaussian noise of standard deviation sigma (0–255 scale),
// drawn from a generator seeded by seed, rounded and clipped to 8 bits.
func (p Pixels) Noise(sigma float64, seed uint64) Pixels {
	rng := rand.New(rand.NewPCG(seed, 0x6e6f697365))
	q := Pixels{W: p.W, H: p.H, Pix: make([]float32, len(p.Pix))}
	for i, v := range p.Pix {
		q.Pix[i] = clip8(float64(v) + sigma*rng.NormFloat64())
	}
	return q
}

// LowPass resizes down to side×side and back up (both with Resize): the
// detail finer than the small image holds is gone.
func (p Pixels) LowPass(side int) Pixels {
	return p.Resize(side, side).Resize(p.W, p.H)
}

// Grid writes pairs side by side (a | b), cols pairs per row, as PNG.
func Grid(pairs [][2]Pixels, cols int) ([]byte, error) {
	if len(pairs) == 0 {
		return nil, fmt.Errorf("grid: no images")
	}
	s := pairs[0][0].W
	const gap = 4
	rows := (len(pairs) + cols - 1) / cols
	cw := 2*s + gap
	img := image.NewNRGBA(image.Rect(0, 0, cols*cw+(cols-1)*2*gap, rows*(s+gap)-gap))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for n, pr := range pairs {
		x0 := (n % cols) * (cw + 2*gap)
		y0 := (n / cols) * (s + gap)
		for k, p := range pr {
			if p.W != s || p.H != s {
				p = p.Resize(s, s)
			}
			plane := p.W * p.H
			for y := 0; y < s; y++ {
				for x := 0; x < s; x++ {
					i := y*s + x
					o := img.PixOffset(x0+k*(s+gap)+x, y0+y)
					img.Pix[o], img.Pix[o+1], img.Pix[o+2] = uint8(p.Pix[i]), uint8(p.Pix[plane+i]), uint8(p.Pix[2*plane+i])
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
