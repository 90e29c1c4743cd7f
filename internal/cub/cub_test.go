//go:build !unit

package cub_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
)

// TestReadsMakerOutput makes a tiny data set with the project's maker and
// reads it back.
func TestReadsMakerOutput(t *testing.T) {
	d, err := cubtest.Make(filepath.Join("..", ".."), filepath.Join(t.TempDir(), "birds"), "--classes", "10", "--per-class", "4", "--size", "64")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Classes) != 10 || len(d.Images) != 40 {
		t.Fatalf("%d classes, %d images", len(d.Classes), len(d.Images))
	}
	if len(d.Heldout) != 2 {
		t.Fatalf("held out %v, want 2 of 10", d.Heldout)
	}
	for _, im := range d.Images {
		if len(im.Captions) != 10 || im.ClassID < 1 || im.ClassID > 10 {
			t.Fatalf("image %+v", im)
		}
		if _, err := os.Stat(filepath.Join(d.Root, "images", im.Path)); err != nil {
			t.Fatal(err)
		}
		if !im.HasBBox || im.BBox[2] <= 0 || im.BBox[3] <= 0 {
			t.Fatalf("image %d: no bounding box %v", im.ID, im.BBox)
		}
		if d.Heldout[im.ClassID] && im.Train {
			t.Fatalf("held-out class image %d in train split", im.ID)
		}
	}
	for _, im := range d.TestSeen() {
		if im.Train || d.Heldout[im.ClassID] {
			t.Fatalf("TestSeen returned %+v", im)
		}
	}
	if len(d.TestSeen()) == 0 {
		t.Fatal("no seen test images")
	}
	for _, im := range d.TestHeldout() {
		if im.Train || !d.Heldout[im.ClassID] {
			t.Fatalf("TestHeldout returned %+v", im)
		}
	}
	if len(d.TestHeldout()) != 8 {
		t.Fatalf("%d held-out test images, want 8", len(d.TestHeldout()))
	}
}

func TestMissingFiles(t *testing.T) {
	if _, err := cub.Open(t.TempDir()); err == nil {
		t.Fatal("opened an empty folder")
	}
}
