package cub

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // CUB's images
	"image/png"
	"math"
	"os"
)

// CropBox is the crop around a bird box (x, y, width, height) in an image
// of the given size: a square of 1.5× the box's longer side around its
// centre, clipped to the image; the whole image without a box, or when
// the clipped square is under 2 pixels wide. It is what training crops
// (training/fgtrain/data.py's crop_box).
func CropBox(width, height int, box [4]float64, hasBox bool) image.Rectangle {
	whole := image.Rect(0, 0, width, height)
	if !hasBox {
		return whole
	}
	x, y, bw, bh := box[0], box[1], box[2], box[3]
	r := int(math.Max(bw, bh) * 0.75)
	cx, cy := int(x+bw/2), int(y+bh/2)
	x1, x2 := max(0, cx-r), min(width, cx+r)
	y1, y2 := max(0, cy-r), min(height, cy+r)
	if x2-x1 >= 2 && y2-y1 >= 2 {
		return image.Rect(x1, y1, x2, y2)
	}
	return whole
}

// Load reads an image of the data set as training sees it: decoded (RGB,
// grayscale or CMYK JPEG, or PNG), converted to RGB, cropped around its
// bounding box (CropBox) and resized to size×size with Pillow's bicubic
// filter. The result is CHW uint8 (3·size·size). From a PNG the bytes
// equal the Python reader's; from a JPEG they differ by the decoders'
// rounding (a level or two).
func (d *Dataset) Load(im Image, size int) ([]uint8, error) {
	raw, err := os.ReadFile(d.ImagePath(im))
	if err != nil {
		return nil, fmt.Errorf("image %d: %w", im.ID, err)
	}
	pix, err := LoadBytes(raw, im.BBox, im.HasBBox, size)
	if err != nil {
		return nil, fmt.Errorf("image %d (%s): %w", im.ID, im.Path, err)
	}
	return pix, nil
}

// LoadPNG is Load encoded as a PNG (for scoring through an API that takes
// image files).
func (d *Dataset) LoadPNG(im Image, size int) ([]byte, error) {
	pix, err := d.Load(im, size)
	if err != nil {
		return nil, err
	}
	return EncodePNG(pix, size)
}

// LoadBytes is Load of an encoded image.
func LoadBytes(raw []byte, box [4]float64, hasBox bool, size int) ([]uint8, error) {
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	rgb, w, h := toRGB(img)
	r := CropBox(w, h, box, hasBox)
	if r != image.Rect(0, 0, w, h) {
		rgb, w, h = cropRGB(rgb, w, r), r.Dx(), r.Dy()
	}
	out := resizeBicubic(rgb, w, h, size, size)
	chw := make([]uint8, 3*size*size)
	for i := 0; i < size*size; i++ {
		chw[i], chw[size*size+i], chw[2*size*size+i] = out[3*i], out[3*i+1], out[3*i+2]
	}
	return chw, nil
}

// EncodePNG encodes CHW uint8 pixels (3·size·size) as an opaque RGB PNG.
func EncodePNG(chw []uint8, size int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	n := size * size
	for i := 0; i < n; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = chw[i], chw[n+i], chw[2*n+i], 255
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// toRGB is Pillow's convert("RGB"): grayscale replicated, CMYK
// multiplied out ((255 − c)(255 − k)/255, rounded), alpha dropped (not
// premultiplied). Returns interleaved RGB.
func toRGB(img image.Image) ([]uint8, int, int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]uint8, 3*w*h)
	set := func(i int, r, g, bl uint8) { out[3*i], out[3*i+1], out[3*i+2] = r, g, bl }
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				set(y*w+x, v, v, v)
			}
		}
	case *image.CMYK:
		mul := func(a, b uint8) uint8 { // Pillow's MULDIV255
			t := int(a)*int(b) + 128
			return uint8(((t >> 8) + t) >> 8)
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := m.Pix[y*m.Stride+4*x : y*m.Stride+4*x+4]
				k := 255 - p[3]
				set(y*w+x, mul(255-p[0], k), mul(255-p[1], k), mul(255-p[2], k))
			}
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				set(y*w+x, r, g, bl)
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := m.Pix[y*m.Stride+4*x:]
				set(y*w+x, p[0], p[1], p[2])
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := m.Pix[y*m.Stride+4*x:]
				set(y*w+x, p[0], p[1], p[2])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				set(y*w+x, uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8))
			}
		}
	}
	return out, w, h
}

func cropRGB(rgb []uint8, w int, r image.Rectangle) []uint8 {
	out := make([]uint8, 0, 3*r.Dx()*r.Dy())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		out = append(out, rgb[3*(y*w+r.Min.X):3*(y*w+r.Max.X)]...)
	}
	return out
}

// Pillow's resampling (libImaging/Resample.c): bicubic (a = −0.5), support
// scaled by the reduction, coefficients in 22-bit fixed point, a
// horizontal pass (rounded to 8 bits) then a vertical one.
const precisionBits = 32 - 8 - 2

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

// coeffs gives, per output pixel, the first input pixel, the tap count
// and the fixed-point weights (ksize apart).
func coeffs(in, out int) (bounds []int, kk []int32, ksize int) {
	scale := float64(in) / float64(out)
	filterscale := math.Max(scale, 1)
	support := 2 * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*out)
	kk = make([]int32, out*ksize)
	k := make([]float64, ksize)
	for xx := 0; xx < out; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			k[x] = bicubic((float64(x+xmin) - center + 0.5) * ss)
			ww += k[x]
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				k[x] /= ww
			}
			v := k[x] * (1 << precisionBits)
			if v < 0 {
				kk[xx*ksize+x] = int32(-0.5 + v)
			} else {
				kk[xx*ksize+x] = int32(0.5 + v)
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, kk, ksize
}

func clip8(v int64) uint8 {
	v >>= precisionBits
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// resizeBicubic resizes interleaved RGB from w×h to ow×oh.
func resizeBicubic(src []uint8, w, h, ow, oh int) []uint8 {
	vb, vk, vks := coeffs(h, oh)
	if ow != w {
		// the rows the vertical pass reads
		first, last := vb[0], vb[2*oh-2]+vb[2*oh-1]
		hb, hk, hks := coeffs(w, ow)
		tmp := make([]uint8, 3*ow*(last-first))
		for y := first; y < last; y++ {
			row := src[3*y*w:]
			for xx := 0; xx < ow; xx++ {
				xmin, n := hb[2*xx], hb[2*xx+1]
				k := hk[xx*hks:]
				var s0, s1, s2 int64 = 1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1)
				for x := 0; x < n; x++ {
					p := row[3*(x+xmin):]
					s0 += int64(p[0]) * int64(k[x])
					s1 += int64(p[1]) * int64(k[x])
					s2 += int64(p[2]) * int64(k[x])
				}
				o := 3 * ((y-first)*ow + xx)
				tmp[o], tmp[o+1], tmp[o+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		for i := 0; i < oh; i++ {
			vb[2*i] -= first
		}
		src, w = tmp, ow
	}
	if oh == h { // no vertical pass (Pillow copies)
		return src
	}
	out := make([]uint8, 3*ow*oh)
	for yy := 0; yy < oh; yy++ {
		ymin, n := vb[2*yy], vb[2*yy+1]
		k := vk[yy*vks:]
		for xx := 0; xx < ow; xx++ {
			var s0, s1, s2 int64 = 1 << (precisionBits - 1), 1 << (precisionBits - 1), 1 << (precisionBits - 1)
			for y := 0; y < n; y++ {
				p := src[3*((y+ymin)*w+xx):]
				s0 += int64(p[0]) * int64(k[y])
				s1 += int64(p[1]) * int64(k[y])
				s2 += int64(p[2]) * int64(k[y])
			}
			o := 3 * (yy*ow + xx)
			out[o], out[o+1], out[o+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
	return out
}
