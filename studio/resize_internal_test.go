package studio

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/studio/api"
)

// squareResizeAt is the reference: the same box filter through At and
// color.NRGBAModel, one pixel at a time.
func squareResizeAt(img image.Image, size int) *image.NRGBA {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	out := image.NewNRGBA(image.Rect(0, 0, size, size))
	for ty := 0; ty < size; ty++ {
		sy0, sy1 := ty*side/size, max((ty+1)*side/size, ty*side/size+1)
		for tx := 0; tx < size; tx++ {
			sx0, sx1 := tx*side/size, max((tx+1)*side/size, tx*side/size+1)
			var r, g, bl, n uint64
			for sy := sy0; sy < sy1; sy++ {
				for sx := sx0; sx < sx1; sx++ {
					c := color.NRGBAModel.Convert(img.At(x0+sx, y0+sy)).(color.NRGBA)
					r, g, bl, n = r+uint64(c.R), g+uint64(c.G), bl+uint64(c.B), n+1
				}
			}
			out.SetNRGBA(tx, ty, color.NRGBA{R: uint8(r / n), G: uint8(g / n), B: uint8(bl / n), A: 255})
		}
	}
	return out
}

// testImages are one image of every type squareResize reads directly (and
// one it does not), with random pixels, translucent ones included, and a
// bounds origin away from zero.
func testImages(w, h int) map[string]image.Image {
	rng := rand.New(rand.NewPCG(1, 2))
	r := image.Rect(3, 5, 3+w, 5+h)
	nrgba, rgba := image.NewNRGBA(r), image.NewRGBA(r)
	n64, r64 := image.NewNRGBA64(r), image.NewRGBA64(r)
	gray, g16 := image.NewGray(r), image.NewGray16(r)
	cmyk := image.NewCMYK(r)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White, color.NRGBA{200, 10, 50, 128}, color.RGBA{20, 30, 40, 255}})
	for _, p := range []*[]uint8{&nrgba.Pix, &rgba.Pix, &n64.Pix, &r64.Pix, &gray.Pix, &g16.Pix, &cmyk.Pix} {
		for i := range *p {
			(*p)[i] = uint8(rng.IntN(256))
		}
	}
	// Premultiplied types must have colour ≤ alpha.
	for i := 0; i < len(rgba.Pix); i += 4 {
		a := rgba.Pix[i+3]
		for k := range 3 {
			rgba.Pix[i+k] = uint8(int(rgba.Pix[i+k]) * int(a) / 255)
		}
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := r64.RGBA64At(x, y)
			c.R, c.G, c.B = min(c.R, c.A), min(c.G, c.A), min(c.B, c.A)
			r64.SetRGBA64(x, y, c)
			pal.SetColorIndex(x, y, uint8(rng.IntN(4)))
		}
	}
	out := map[string]image.Image{"nrgba": nrgba, "rgba": rgba, "nrgba64": n64, "rgba64": r64,
		"gray": gray, "gray16": g16, "paletted": pal, "cmyk": cmyk}
	for name, ratio := range map[string]image.YCbCrSubsampleRatio{"ycbcr444": image.YCbCrSubsampleRatio444,
		"ycbcr420": image.YCbCrSubsampleRatio420, "ycbcr422": image.YCbCrSubsampleRatio422} {
		y := image.NewYCbCr(r, ratio)
		for _, p := range [][]uint8{y.Y, y.Cb, y.Cr} {
			for i := range p {
				p[i] = uint8(rng.IntN(256))
			}
		}
		out[name] = y
	}
	return out
}

// The direct row readers give exactly what At and NRGBAModel give, when
// shrinking, enlarging and keeping the size, square or not.
func TestSquareResizeMatchesAt(t *testing.T) {
	for _, dims := range [][3]int{{97, 61, 64}, {64, 64, 64}, {20, 33, 64}, {300, 300, 128}} {
		for name, img := range testImages(dims[0], dims[1]) {
			got, want := squareResize(img, dims[2]), squareResizeAt(img, dims[2])
			if !bytes.Equal(got.Pix, want.Pix) {
				t.Errorf("%s %dx%d → %d: differs from the At reference", name, dims[0], dims[1], dims[2])
			}
		}
	}
}

// A 2048² upload costs a bounded number of allocations (not one per pixel)
// and little memory beyond its decoded pixels.
func TestNormaliseUploadAllocations(t *testing.T) {
	img := image.NewNRGBA64(image.Rect(0, 0, 2048, 2048))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	yc := image.NewYCbCr(image.Rect(0, 0, 2048, 2048), image.YCbCrSubsampleRatio420)
	var jpgBuf bytes.Buffer
	if err := jpeg.Encode(&jpgBuf, yc, nil); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"png16": pngBuf.Bytes(), "jpeg": jpgBuf.Bytes()} {
		allocs := testing.AllocsPerRun(2, func() {
			if _, err := normaliseUpload(data, "image", 64, 8<<20, 2048*2048); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2000 {
			t.Errorf("%s: %v allocations per 2048² upload", name, allocs)
		}
	}
}

func BenchmarkNormaliseUpload(b *testing.B) {
	img := image.NewNRGBA64(image.Rect(0, 0, 2048, 2048))
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := normaliseUpload(buf.Bytes(), "image", 64, 8<<20, 2048*2048); err != nil {
			b.Fatal(err)
		}
	}
}

// Beyond its slots, the decode gate makes a request wait, then refuses it
// with 503 unavailable and a Retry-After; a freed slot is taken at once.
func TestDecodeGate(t *testing.T) {
	g := newDecodeGate(1, 50*time.Millisecond)
	release, err := g.acquire(t.Context(), "image")
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.acquire(t.Context(), "image")
	var ra *retryAfter
	if !errors.As(err, &ra) || ra.Status != 503 || ra.Slug() != api.TypeUnavailable || ra.Field != "image" || ra.after != time.Second {
		t.Fatalf("second decode: %v, want a 503 with Retry-After", err)
	}
	go func() { time.Sleep(10 * time.Millisecond); release() }()
	r2, err := g.acquire(t.Context(), "image")
	if err != nil {
		t.Fatalf("a slot freed while waiting: %v", err)
	}
	r2()
}
