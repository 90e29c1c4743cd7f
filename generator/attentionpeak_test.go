//go:build !unit

package generator_test

import (
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// Each word's map says how strong it is (its peak, a share of a region's
// attention: the softmax over words, so in (0, 1]), so that a client can
// put every word of an image on one scale; the maps of one stage cover
// the kept words in order.
func TestAttentionMapsCarryTheirPeak(t *testing.T) {
	cat := sampleCatalog(t)
	svc := loadService(t, cat, generator.Config{})
	for _, m := range generators(cat) {
		if m.Manifest.Kind != catalog.KindAttnGAN {
			continue
		}
		req := exampleRequest(t, m, 1)
		req.Seed = 3
		out, err := svc.Generate(t.Context(), m.Manifest.Name, []generator.Request{req})
		if err != nil {
			t.Fatal(err)
		}
		img := out[0][0]
		if len(img.Attention) == 0 {
			t.Fatalf("%s: no attention maps", m.Manifest.Name)
		}
		stage := img.Attention[0].Stage
		var sum float32
		for i, w := range img.Attention {
			if w.Peak <= 0 || w.Peak > 1 || w.Stage != stage {
				t.Errorf("%s: map %d (%q): peak %v stage %d", m.Manifest.Name, i, w.Word, w.Peak, w.Stage)
			}
			sum += w.Peak
		}
		// Peaks of different words differ: they are not all 1 (each map's
		// own maximum) — the scale a client needs.
		if sum >= float32(len(img.Attention))-1e-3 {
			t.Errorf("%s: every peak is 1", m.Manifest.Name)
		}
		for _, w := range img.CoarseAttention {
			if w.Stage >= stage {
				t.Errorf("%s: a coarse map at stage %d, the finest is %d", m.Manifest.Name, w.Stage, stage)
			}
		}
	}
}
