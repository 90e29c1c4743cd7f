//go:build !unit

package cub_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/internal/cub"
	"github.com/fgstudio/fgstudio/internal/cub/cubtest"
)

// contract is testdata/contract.json: the shared test vectors that the
// Python reader (training/tests/test_cub_contract.py) checks too.
type contract struct {
	Size  int `json:"size"`
	Cases map[string]struct {
		Missing *struct {
			Count int    `json:"count"`
			Total int    `json:"total"`
			First string `json:"first"`
		} `json:"missing"`
		Classes     map[string]string `json:"classes"`
		MetaDir     string            `json:"meta_dir"`
		CaptionsDir *string           `json:"captions_dir"`
		Seen        []int             `json:"seen"`
		Heldout     []int             `json:"heldout"`
		Images      []struct {
			ID       int       `json:"id"`
			Path     string    `json:"path"`
			Class    int       `json:"class"`
			Train    bool      `json:"train"`
			Crop     [4]int    `json:"crop"`
			Captions int       `json:"captions"`
			Mean     []float64 `json:"mean"`
			SHA256   string    `json:"sha256"`
		} `json:"images"`
		CaptionsOf12      []string            `json:"captions_of_12"`
		AttributeCaptions map[string][]string `json:"attribute_captions"`
	} `json:"cases"`
}

func readContract(t *testing.T) contract {
	raw, err := os.ReadFile(filepath.Join("testdata", "contract.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(m map[int]bool) []int {
	res := []int{}
	for id, ok := range m {
		if ok {
			res = append(res, id)
		}
	}
	sort.Ints(res)
	return res
}

// TestReaderContract opens every fixture of the contract and compares what
// it reads with the shared vectors: layout variants, caption folders,
// class splits, missing files, crop boxes, pixels (grayscale, CMYK, PNG).
func TestReaderContract(t *testing.T) {
	c := readContract(t)
	repo := filepath.Join("..", "..")
	for name, want := range c.Cases {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), name)
			if err := cubtest.Fixture(repo, root, name); err != nil {
				t.Fatal(err)
			}
			d, err := cub.Open(root)
			if want.Missing != nil {
				var me *cub.MissingError
				if !errors.As(err, &me) {
					t.Fatalf("want a MissingError, got %v", err)
				}
				if len(me.Missing) != want.Missing.Count || me.Total != want.Missing.Total || me.Missing[0] != want.Missing.First {
					t.Fatalf("missing %d of %d (first %s), want %+v", len(me.Missing), me.Total, me.Missing[0], want.Missing)
				}
				for _, part := range []string{strconv.Itoa(want.Missing.Count) + " of " + strconv.Itoa(want.Missing.Total) + " images", want.Missing.First, "--skip-missing"} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q lacks %q", err, part)
					}
				}
				d, err = cub.OpenWith(root, cub.Options{SkipMissing: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			classes := map[string]string{}
			for id, n := range d.Classes {
				classes[strconv.Itoa(id)] = n
			}
			if !reflect.DeepEqual(classes, want.Classes) {
				t.Errorf("classes %v, want %v", classes, want.Classes)
			}
			if rel, _ := filepath.Rel(root, d.Root); rel != want.MetaDir {
				t.Errorf("root %s, want %s", rel, want.MetaDir)
			}
			gotText := ""
			if d.TextDir != "" {
				gotText, _ = filepath.Rel(root, d.TextDir)
			}
			if wantText := ""; want.CaptionsDir != nil && *want.CaptionsDir != gotText || want.CaptionsDir == nil && gotText != wantText {
				t.Errorf("captions in %q, want %v", gotText, want.CaptionsDir)
			}
			if !reflect.DeepEqual(ids(d.Seen), want.Seen) || !reflect.DeepEqual(ids(d.Heldout), want.Heldout) {
				t.Errorf("seen %v held out %v, want %v %v", ids(d.Seen), ids(d.Heldout), want.Seen, want.Heldout)
			}
			if len(d.Images) != len(want.Images) {
				t.Fatalf("%d images, want %d", len(d.Images), len(want.Images))
			}
			for i, w := range want.Images {
				im := d.Images[i]
				if im.ID != w.ID || im.Path != w.Path || im.ClassID != w.Class || im.Train != w.Train || len(im.Captions) != w.Captions {
					t.Errorf("image %+v, want %+v", im, w)
				}
				f, err := os.Open(d.ImagePath(im))
				if err != nil {
					t.Fatal(err)
				}
				cfg, _, err := image.DecodeConfig(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				r := cub.CropBox(cfg.Width, cfg.Height, im.BBox, im.HasBBox)
				if got := [4]int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y}; got != w.Crop {
					t.Errorf("image %d: crop %v, want %v", im.ID, got, w.Crop)
				}
				pix, err := d.Load(im, c.Size)
				if err != nil {
					t.Fatal(err)
				}
				n := c.Size * c.Size
				for ch := 0; ch < 3; ch++ {
					var s float64
					for _, v := range pix[ch*n : (ch+1)*n] {
						s += float64(v)
					}
					if m := s / float64(n); math.Abs(m-w.Mean[ch]) > 2 {
						t.Errorf("image %d (%s): channel %d mean %.2f, want %.2f", im.ID, im.Path, ch, m, w.Mean[ch])
					}
				}
				if w.SHA256 != "" {
					sum := sha256.Sum256(pix)
					if got := hex.EncodeToString(sum[:]); got != w.SHA256 {
						t.Errorf("image %d: pixels differ from the Python reader's (sha256 %s, want %s)", im.ID, got, w.SHA256)
					}
				}
			}
			if want.CaptionsOf12 != nil {
				for _, im := range d.Images {
					if im.ID == 12 && !reflect.DeepEqual(im.Captions, want.CaptionsOf12) {
						t.Errorf("captions of 12: %q, want %q", im.Captions, want.CaptionsOf12)
					}
				}
			}
			if len(want.AttributeCaptions) > 0 {
				da, err := cub.OpenWith(root, cub.Options{SkipMissing: true, Captions: "attributes"})
				if err != nil {
					t.Fatal(err)
				}
				for _, im := range da.Images {
					if w, ok := want.AttributeCaptions[strconv.Itoa(im.ID)]; ok && !reflect.DeepEqual(im.Captions, w) {
						t.Errorf("attribute captions of %d:\n%q\nwant\n%q", im.ID, im.Captions, w)
					}
				}
			}
		})
	}
}

func TestNeedCaptionsSaysWhereToGetThem(t *testing.T) {
	root := filepath.Join(t.TempDir(), "partial")
	if err := cubtest.Fixture(filepath.Join("..", ".."), root, "partial"); err != nil {
		t.Fatal(err)
	}
	d, err := cub.OpenWith(root, cub.Options{SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	err = d.NeedCaptions("studio eval of attngan-x")
	if !errors.Is(err, cub.ErrNoCaptions) {
		t.Fatalf("got %v", err)
	}
	for _, part := range []string{"studio eval of attngan-x needs captions", "text_c10", "github.com/reedscot/cvpr2016", "--captions attributes"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%q lacks %q", err, part)
		}
	}
	if _, err := cub.OpenWith(filepath.Join(t.TempDir()), cub.Options{}); err == nil || !strings.Contains(err.Error(), "images.txt not found") {
		t.Errorf("empty folder: %v", err)
	}
}
