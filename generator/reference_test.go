//go:build !unit

package generator_test

import (
	"bytes"
	"image/png"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// TestReferenceShapeLoads: a graph in the shape of the reference AttnGAN
// bird model (three stages to 256×256, gf_dim 32, 5,450 words, captions of
// up to 25 words), written by the training code with random weights, loads
// from its manifest with no code change and generates every stage and a
// 128×128 attention map per word. The training code is part of this
// repository, so the test builds the graph itself.
func TestReferenceShapeLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("exports a 256×256 AttnGAN with PyTorch")
	}
	python := os.Getenv("PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	root := t.TempDir()
	dir := filepath.Join(root, "attngan-reference")
	cmd := exec.CommandContext(t.Context(), python, "-m", "fgtrain", "attngan", "--export-reference", dir, "--no-verify")
	cmd.Dir = filepath.Join("..", "training")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export reference graph: %v\n%s", err, out)
	}
	cat, err := catalog.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if p := cat.Problems(); len(p) > 0 {
		t.Fatalf("catalog problems: %v", p)
	}
	// A scorer is optional: this model names none, so images carry no scores.
	svc := generator.Load(rt, cat, generator.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer svc.Close()
	if err := svc.Failed()["attngan-reference"]; err != nil {
		t.Fatalf("load: %v", err)
	}
	m, _ := cat.Get("attngan-reference")
	if got, _ := m.Manifest.Sizes["vocab_size"].(float64); got < 5000 {
		t.Fatalf("vocabulary of %v words, want the reference's ~5,450", got)
	}
	// 25 known words: the reference's longest caption.
	words := strings.Fields("this bird has a small red crown long pointed bill black wings with white " +
		"spotted feathers and a short blue tail the belly is grey")
	if len(words) != 25 {
		t.Fatalf("prompt has %d words", len(words))
	}
	imgs, err := svc.Generate(t.Context(), "attngan-reference", []generator.Request{{Prompt: strings.Join(words, " "), N: 2, Seed: 7}})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || len(imgs[0]) != 2 {
		t.Fatalf("got %d requests", len(imgs))
	}
	for _, im := range imgs[0] {
		if got := pngSide(t, im.PNG); got != 256 {
			t.Fatalf("final image %d px, want 256", got)
		}
		if len(im.Stages) != 2 || pngSide(t, im.Stages[0]) != 64 || pngSide(t, im.Stages[1]) != 128 {
			t.Fatalf("stages: %d, want 64 and 128 px", len(im.Stages))
		}
		if len(im.Attention) != 25 {
			t.Fatalf("%d attention maps, want one per word (25)", len(im.Attention))
		}
		if got := pngSide(t, im.Attention[0].PNG); got != 128 {
			t.Fatalf("attention map %d px, want the last attentional stage's 128", got)
		}
	}
}

func pngSide(t *testing.T, b []byte) int {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := img.Bounds()
	if r.Dx() != r.Dy() {
		t.Fatalf("image %v is not square", r)
	}
	return r.Dx()
}
