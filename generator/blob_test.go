//go:build !unit

package generator_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/textenc/lexicon"
)

// TestBlobGetsNoHighBadge is the case of issue 12: a prompt names a red
// crown, the image is a smudge, and the first scorer still showed a green
// "high" badge (DAMSM similarity ~0.8). The scorer v2 judges a prompt by
// the attributes it names, so a real sample image blurred to a blob, and
// a flat colour, score below 0.5 by attribute_agreement, while the sharp
// image scores above the blob with the same prompt.
//
// It runs against the committed classifier; one without a caption lexicon
// (classes.json "lexicon", models exported before sample world v2) is a
// failure, not a skip.
func TestBlobGetsNoHighBadge(t *testing.T) {
	cat := sampleCatalog(t)
	clf := classifierModel(t, cat)
	cls, err := clf.ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	if cls.Lexicon == nil {
		t.Fatalf("%s/classes.json has no \"lexicon\": the committed classifier predates sample world v2, so prompts "+
			"cannot be judged by the attributes they name (re-export it with training/fgtrain/export.py, which copies "+
			"the data set's lexicon)", clf.Manifest.Name)
	}
	svc := loadService(t, cat, generator.Config{})

	name, sharp := exampleImage(t, cls)
	blob := lowPass(t, sharp, 4)
	flat := flatImage(t, sharp)

	// The prompt: the example's class's own attributes where the
	// classifier knows the class, else what the head sees in the sharp
	// image; colours and shapes of several parts.
	want := map[string]string{}
	if c, ok := cls.Lookup(name); ok && len(c.Attributes) > 0 {
		want = c.Attributes
	} else {
		sc, err := svc.ScoreImages(t.Context(), clf.Manifest.Name, [][]byte{sharp})
		if err != nil {
			t.Fatal(err)
		}
		want = sc[0].Attributes
	}
	prompt := describe(t, cls.Lexicon, want)
	named := cls.Lexicon.Named(prompt)
	if len(named) < 3 {
		t.Fatalf("prompt %q names %v: want at least 3 attributes", prompt, named)
	}

	asks := []generator.Ask{{Prompt: prompt}, {Prompt: prompt}, {Prompt: prompt}}
	got, err := svc.ScoreImagesAgainst(t.Context(), clf.Manifest.Name, [][]byte{sharp, blob, flat}, asks)
	if err != nil {
		t.Fatal(err)
	}
	fid := make([]float64, 3)
	for i, what := range []string{"sharp", "blob", "flat"} {
		f, m := got[i].Fidelity()
		fid[i] = f
		detail := []string{}
		for _, g := range got[i].AttributeGroups {
			detail = append(detail, g.Group+": named "+g.Named+", sees "+g.Sees+" ("+ftoa(g.Prob)+")")
		}
		t.Logf("%s %s: %s %.3f (damsm %s) %s", what, name, m, f, ptoa(got[i].DAMSMSimilarity), strings.Join(detail, "; "))
		if m != generator.FidelityAttributeAgreement || got[i].AttributeBasis != "prompt" || len(got[i].AttributeGroups) != len(named) {
			t.Errorf("%s: measure %q basis %q with %d groups; want attribute_agreement over the %d named", what, m, got[i].AttributeBasis, len(got[i].AttributeGroups), len(named))
		}
	}
	if fid[1] >= 0.5 || fid[2] >= 0.5 {
		t.Errorf("prompt %q: blob %.3f, flat colour %.3f; want both below 0.5", prompt, fid[1], fid[2])
	}
	if fid[0] <= fid[1] {
		t.Errorf("prompt %q: sharp image %.3f, not above its blob %.3f", prompt, fid[0], fid[1])
	}
}

func classifierModel(t *testing.T, cat *catalog.Catalog) *catalog.Model {
	t.Helper()
	for _, m := range cat.Models() {
		if m.Manifest.Kind == catalog.KindClassifier {
			return m
		}
	}
	t.Fatal("no classifier among the sample models")
	return nil
}

// exampleImage is a real image of the sample world: the first class
// example (samples/examples/birds) the classifier was trained on, else
// the first one.
func exampleImage(t *testing.T, cls *catalog.Classes) (string, []byte) {
	t.Helper()
	dir := filepath.Join("..", "samples", "examples", "birds")
	files, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example images in %s (%v)", dir, err)
	}
	sort.Strings(files)
	pick := files[0]
	for _, f := range files {
		if c, ok := cls.Lookup(strings.TrimSuffix(filepath.Base(f), ".png")); ok && c.Index >= 0 {
			pick = f
			break
		}
	}
	raw, err := os.ReadFile(pick)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(filepath.Base(pick), ".png"), raw
}

// describe writes a caption naming the colour groups and shapes of want
// with the lexicon's own words ("a bird with a red crown, a white breast,
// green wings, a hooked bill and a notched tail").
func describe(t *testing.T, lex *lexicon.Lexicon, want map[string]string) string {
	t.Helper()
	parts := []struct{ group, noun string }{
		{"has_crown_color", "crown"}, {"has_breast_color", "breast"}, {"has_wing_color", "wings"},
		{"has_bill_shape", "bill"}, {"has_tail_shape", "tail"},
	}
	var phrases []string
	for _, p := range parts {
		if w, ok := lex.EditWords[p.group][want[p.group]]; ok {
			phrases = append(phrases, w+" "+p.noun)
		}
	}
	if len(phrases) < 3 {
		t.Fatalf("cannot describe %v with the lexicon", want)
	}
	return "a bird with " + strings.Join(phrases[:len(phrases)-1], ", ") + " and " + phrases[len(phrases)-1]
}

func decodePNG(t *testing.T, raw []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lowPass averages the image over an n×n grid of cells and smooths the
// cells back to full size (bilinear): a blob with the image's colours.
func lowPass(t *testing.T, raw []byte, n int) []byte {
	t.Helper()
	src := decodePNG(t, raw)
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	cells := make([][3]float64, n*n)
	counts := make([]float64, n*n)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
			k := (y*n/h)*n + x*n/w
			cells[k][0] += float64(r >> 8)
			cells[k][1] += float64(g >> 8)
			cells[k][2] += float64(bl >> 8)
			counts[k]++
		}
	}
	for k := range cells {
		for c := range 3 {
			cells[k][c] /= counts[k]
		}
	}
	at := func(i, j int) [3]float64 {
		return cells[min(max(j, 0), n-1)*n+min(max(i, 0), n-1)]
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx := (float64(x)+0.5)*float64(n)/float64(w) - 0.5
			fy := (float64(y)+0.5)*float64(n)/float64(h) - 0.5
			i, j := int(fx+1)-1, int(fy+1)-1 // floor, also below 0
			ax, ay := fx-float64(i), fy-float64(j)
			var px [3]float64
			for c := range 3 {
				px[c] = (1-ay)*((1-ax)*at(i, j)[c]+ax*at(i+1, j)[c]) + ay*((1-ax)*at(i, j+1)[c]+ax*at(i+1, j+1)[c])
			}
			dst.Set(x, y, color.RGBA{uint8(px[0] + 0.5), uint8(px[1] + 0.5), uint8(px[2] + 0.5), 255})
		}
	}
	return encodePNG(t, dst)
}

// flatImage is the image's mean colour everywhere.
func flatImage(t *testing.T, raw []byte) []byte {
	t.Helper()
	src := decodePNG(t, raw)
	b := src.Bounds()
	var sum [3]float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := src.At(x, y).RGBA()
			sum[0] += float64(r >> 8)
			sum[1] += float64(g >> 8)
			sum[2] += float64(bl >> 8)
		}
	}
	n := float64(b.Dx() * b.Dy())
	c := color.RGBA{uint8(sum[0]/n + 0.5), uint8(sum[1]/n + 0.5), uint8(sum[2]/n + 0.5), 255}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			dst.Set(x, y, c)
		}
	}
	return encodePNG(t, dst)
}

func ftoa(f float64) string { return fmt.Sprintf("%.3f", f) }

func ptoa(p *float64) string {
	if p == nil {
		return "-"
	}
	return ftoa(*p)
}
