package evaluate

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"testing"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
)

func constant(w, h int, v float32) Pixels {
	p := Pixels{W: w, H: h, Pix: make([]float32, 3*w*h)}
	for i := range p.Pix {
		p.Pix[i] = v
	}
	return p
}

// checker is a one-pixel checkerboard of 0 and 255: all detail, no
// coarse structure.
func checker(s int) Pixels {
	p := Pixels{W: s, H: s, Pix: make([]float32, 3*s*s)}
	for c := 0; c < 3; c++ {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				if (x+y)%2 == 0 {
					p.Pix[c*s*s+y*s+x] = 255
				}
			}
		}
	}
	return p
}

func stats(p Pixels) (mean, std float64) {
	for _, v := range p.Pix {
		mean += float64(v)
	}
	mean /= float64(len(p.Pix))
	for _, v := range p.Pix {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(p.Pix)))
}

func TestResizeKeepsFlatAndAveragesDetail(t *testing.T) {
	flat := constant(128, 96, 77)
	if m, s := stats(flat.Resize(64, 64)); m != 77 || s != 0 {
		t.Fatalf("flat image resized: mean %g std %g", m, s)
	}
	same := checker(8)
	if r := same.Resize(8, 8); &r.Pix[0] != &same.Pix[0] {
		t.Fatal("same size must be the image itself")
	}
	// Pillow's antialiasing filter averages a checkerboard to grey when
	// halving; plain point sampling would keep it black and white.
	if m, s := stats(checker(64).Resize(32, 32)); math.Abs(m-127.5) > 2 || s > 8 {
		t.Fatalf("checkerboard halved: mean %g std %g, want grey", m, s)
	}
	for _, v := range checker(16).Resize(40, 40).Pix {
		if v < 0 || v > 255 || v != float32(math.Round(float64(v))) {
			t.Fatalf("value %g not an 8-bit level", v)
		}
	}
}

func TestDegradations(t *testing.T) {
	c := checker(64)
	_, s0 := stats(c)
	_, sb := stats(c.Blur(1))
	_, s32 := stats(c.LowPass(32))
	_, s16 := stats(c.LowPass(16))
	if !(sb < s0/2 && s32 < s0/2 && s16 < s0/2) {
		t.Fatalf("detail left: clean %g, blur %g, low-pass 32 %g, 16 %g", s0, sb, s32, s16)
	}
	grey := constant(64, 64, 128)
	if m, s := stats(grey.Blur(1)); m != 128 || s != 0 {
		t.Fatalf("blurred flat image: %g %g", m, s)
	}
	if m, s := stats(grey.LowPass(16)); m != 128 || s != 0 {
		t.Fatalf("low-passed flat image: %g %g", m, s)
	}
	for _, sigma := range []float64{8, 16} {
		n := grey.Noise(sigma, 3)
		m, s := stats(n)
		if math.Abs(m-128) > 1 || math.Abs(s-sigma) > 0.05*sigma+0.3 {
			t.Errorf("noise σ=%g: mean %g std %g", sigma, m, s)
		}
		if again := grey.Noise(sigma, 3); fmt.Sprint(again.Pix[:50]) != fmt.Sprint(n.Pix[:50]) {
			t.Errorf("noise σ=%g not repeatable", sigma)
		}
	}
	if fmt.Sprint(grey.Noise(8, 3).Pix[:50]) == fmt.Sprint(grey.Noise(8, 4).Pix[:50]) {
		t.Error("different seeds, same noise")
	}
	if in := constant(2, 2, 255).Input(); in[0] != 1 || constant(2, 2, 0).Input()[0] != -1 {
		t.Fatalf("input scale: %v", in)
	}
}

func TestGrid(t *testing.T) {
	pairs := [][2]Pixels{{constant(16, 16, 0), constant(32, 32, 255)}, {checker(16), checker(16)}, {checker(16), constant(16, 16, 9)}}
	raw, err := Grid(pairs, 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 2*(2*16+4)+2*4 || b.Dy() != 2*16+4 {
		t.Fatalf("grid %v", b)
	}
}

// The halves are disjoint, class-balanced, and repeat with the seed; the
// held-out set takes only held-out classes.
func TestHalvesAndHeldout(t *testing.T) {
	ds := &cub.Dataset{Root: "x", Classes: map[int]string{}, Seen: map[int]bool{}, Heldout: map[int]bool{}}
	cls := &catalog.Classes{}
	id := 0
	for c := 1; c <= 6; c++ {
		name := fmt.Sprintf("%03d.C%d", c, c)
		ds.Classes[c] = name
		index := c - 1
		if c > 4 {
			ds.Heldout[c], index = true, -1
		} else {
			ds.Seen[c] = true
		}
		cls.Classes = append(cls.Classes, catalog.Class{Index: index, ID: c, Name: name})
		for k := 0; k < 10; k++ {
			id++
			ds.Images = append(ds.Images, cub.Image{ID: id, ClassID: c, Train: k < 3 && c <= 4,
				Captions: []string{"a bird with a red crown", "a bird with a blue crown"}})
		}
	}
	w := &world{ds: ds, byName: map[string]catalog.Class{}, seed: 1}
	for _, c := range cls.Classes {
		w.byName[c.Name] = c
	}
	a, b := w.seenHalves(10)
	if len(a) != 10 || len(b) != 12 { // 4 classes × 7 test images: 16 + 12, the first 10 of A
		t.Fatalf("halves %d + %d", len(a), len(b))
	}
	seen := map[int]bool{}
	per := map[int]int{}
	for _, s := range a {
		seen[s.im.ID] = true
		per[s.im.ClassID]++
		if s.im.Train || ds.Heldout[s.im.ClassID] || s.caption == "" {
			t.Fatalf("half A has %+v", s)
		}
	}
	for c, n := range per {
		if n < 2 || n > 3 {
			t.Fatalf("half A not class-balanced: class %d has %d", c, n)
		}
	}
	for _, s := range b {
		if seen[s.im.ID] {
			t.Fatalf("image %d in both halves", s.im.ID)
		}
	}
	a2, _ := w.seenHalves(10)
	for i := range a {
		if a[i].im.ID != a2[i].im.ID || a[i].caption != a2[i].caption {
			t.Fatal("halves do not repeat")
		}
	}
	// no lexicon here: captions name nothing, so no held-out sample
	if h := w.heldout(5); len(h) != 0 {
		t.Fatalf("held-out without named attributes: %d", len(h))
	}
}
