// Package cub reads a data set in the CUB-200-2011 layout, with captions
// in the layout of Reed et al. (text/ or text_c10/<class>/<image>.txt) and
// their class split files trainvalclasses.txt / testclasses.txt: the sample
// data set that samples/cubmaker writes, or the real CUB-200-2011 as it is
// downloaded.
//
// The reader contract is the same as the Python reader's
// (training/fgtrain/data.py), held equal by shared test vectors
// (testdata/contract.json, fixtures made by testdata/cubfixture.py):
//
//   - every file is looked for in the folder given, then in its
//     CUB_200_2011/ (the archive's folder); attributes.txt also beside it;
//   - captions come from text/, else text_c10/ (one caption a line, blank
//     lines dropped); a data set may have none;
//   - trainvalclasses.txt lists the seen classes and testclasses.txt the
//     held-out ones; either alone splits all classes into it and the
//     rest; neither: every class is seen;
//   - images listed in images.txt but missing are found by Open, before any
//     pixel is read: a *MissingError, or skipped with Options.SkipMissing;
//   - an image is cropped around its bounding box (a square of 1.5× the
//     box's longer side, clipped to the image) and resized with Pillow's
//     bicubic filter (Load); grayscale and CMYK JPEGs become RGB.
package cub

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Image is one image of the data set.
type Image struct {
	ID       int
	Path     string // relative to images/
	ClassID  int
	Train    bool
	Captions []string
	// BBox is the bird's bounding box (x, y, width, height in pixels)
	// from bounding_boxes.txt; HasBBox is false without one.
	BBox    [4]float64
	HasBBox bool
}

// Dataset is the index of a data set (no pixels are read).
type Dataset struct {
	// Root is the folder that holds images.txt and images/: the folder
	// given to Open, or its CUB_200_2011/.
	Root string
	// Dir is the folder given to Open.
	Dir string
	// TextDir is the caption folder (text/ or text_c10/), "" without one.
	TextDir string
	Classes map[int]string // id → directory name, e.g. "001.Black_footed_Albatross"
	Images  []Image
	// Seen and Heldout are the class split (see the package comment). A
	// class in neither split file is in neither map.
	Seen    map[int]bool
	Heldout map[int]bool
	// Missing lists the images of images.txt whose files are not there
	// (paths relative to images/), skipped with Options.SkipMissing.
	Missing []string
	// Listed is the number of images in images.txt.
	Listed int
	// Attributes are the attribute names of attributes.txt
	// ("has_wing_color::blue"), read with Options.Captions = "attributes".
	Attributes []string
}

// Options change how Open reads a data set.
type Options struct {
	// SkipMissing leaves out the images whose files are missing instead
	// of failing (a partial download).
	SkipMissing bool
	// Captions is where Image.Captions come from: "" or "text" (the
	// caption files, none without them) or "attributes" (sentences made
	// from each image's certain attribute annotations: AttributeCaptions).
	Captions string
}

// MissingError is a data set whose images.txt lists files that are not
// there.
type MissingError struct {
	Dir     string   // the images folder
	Missing []string // relative to Dir
	Total   int      // images listed
}

func (e *MissingError) Error() string {
	ex := e.Missing[:min(3, len(e.Missing))]
	return fmt.Sprintf("%d of %d images listed in images.txt are missing under %s (e.g. %s): a partial download? Pass --skip-missing to use the %d that are there",
		len(e.Missing), e.Total, e.Dir, strings.Join(ex, ", "), e.Total-len(e.Missing))
}

// ErrNoCaptions marks a data set without captions where they are needed.
var ErrNoCaptions = errors.New("no captions")

// Open reads the index files and captions under root; missing image files
// are an error (*MissingError).
func Open(root string) (*Dataset, error) { return OpenWith(root, Options{}) }

// OpenWith reads the index files and captions under root.
func OpenWith(root string, opt Options) (*Dataset, error) {
	loc := finder{root: root}
	imagesTxt := loc.find("images.txt")
	if imagesTxt == "" {
		return nil, fmt.Errorf("images.txt not found under %s or %s: a CUB-200-2011 folder holds images.txt, classes.txt, image_class_labels.txt, train_test_split.txt and images/ (docs/real-cub.md)",
			root, filepath.Join(root, "CUB_200_2011"))
	}
	d := &Dataset{Dir: root, Root: filepath.Dir(imagesTxt), Classes: map[int]string{}, Seen: map[int]bool{}, Heldout: map[int]bool{}}
	if err := d.readIndex(loc, imagesTxt); err != nil {
		return nil, err
	}
	if err := d.readSplit(loc.find("trainvalclasses.txt"), loc.find("testclasses.txt")); err != nil {
		return nil, err
	}
	if err := d.dropMissing(opt.SkipMissing); err != nil {
		return nil, err
	}
	for _, name := range []string{"text", "text_c10"} {
		if p := loc.find(name); p != "" && d.TextDir == "" {
			d.TextDir = p
		}
	}
	if err := d.fillCaptions(loc, opt.Captions); err != nil {
		return nil, err
	}
	return d, nil
}

// finder looks a data set file up in the folder given to Open, then in
// its CUB_200_2011/.
type finder struct{ root string }

// find is the path of name, "" when it is in neither folder.
func (f finder) find(name string) string {
	for _, b := range []string{f.root, filepath.Join(f.root, "CUB_200_2011")} {
		if p := filepath.Join(b, name); exists(p) {
			return p
		}
	}
	return ""
}

// required is the path of name, an error when it is in neither folder.
func (f finder) required(name string) (string, error) {
	if p := f.find(name); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%s not found under %s or %s", name, f.root, filepath.Join(f.root, "CUB_200_2011"))
}

// readIndex reads the classes, the images with their labels and split,
// and the bounding boxes where there are any.
func (d *Dataset) readIndex(loc finder, imagesTxt string) error {
	p, err := loc.required("classes.txt")
	if err != nil {
		return err
	}
	if err := d.readClasses(p); err != nil {
		return err
	}
	byID, err := d.readImages(imagesTxt)
	if err != nil {
		return err
	}
	if err := d.readLabels(loc, byID); err != nil {
		return err
	}
	if p := loc.find("bounding_boxes.txt"); p != "" {
		return d.readBoxes(p, byID)
	}
	return nil
}

// readClasses reads classes.txt (id, directory name).
func (d *Dataset) readClasses(path string) error {
	return eachLine(path, func(f []string) error {
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			return fmt.Errorf("bad class line %q", strings.Join(f, " "))
		}
		d.Classes[id] = f[1]
		return nil
	})
}

// readImages reads images.txt (id, path; a repeated id takes the last
// path) and indexes d.Images by id.
func (d *Dataset) readImages(path string) (map[int]int, error) {
	byID := map[int]int{}
	err := eachLine(path, func(f []string) error {
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			return fmt.Errorf("bad image line %q", strings.Join(f, " "))
		}
		if i, ok := byID[id]; ok {
			d.Images[i].Path = f[1]
			return nil
		}
		byID[id] = len(d.Images)
		d.Images = append(d.Images, Image{ID: id, Path: f[1]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return byID, nil
}

// readLabels reads image_class_labels.txt and train_test_split.txt; every
// image needs both.
func (d *Dataset) readLabels(loc finder, byID map[int]int) error {
	labelled, split := map[int]bool{}, map[int]bool{}
	if err := d.readPairs(loc, "image_class_labels.txt", byID, func(im *Image, v int) { im.ClassID = v; labelled[im.ID] = true }); err != nil {
		return err
	}
	if err := d.readPairs(loc, "train_test_split.txt", byID, func(im *Image, v int) { im.Train = v == 1; split[im.ID] = true }); err != nil {
		return err
	}
	var unlabelled []int
	for _, im := range d.Images {
		if !labelled[im.ID] || !split[im.ID] {
			unlabelled = append(unlabelled, im.ID)
		}
	}
	if len(unlabelled) > 0 {
		return fmt.Errorf("images without label or split: %v", unlabelled[:min(5, len(unlabelled))])
	}
	return nil
}

// readPairs reads a required file of (image id, number) lines, handing
// each number to set with its image.
func (d *Dataset) readPairs(loc finder, name string, byID map[int]int, set func(im *Image, v int)) error {
	p, err := loc.required(name)
	if err != nil {
		return err
	}
	return eachLine(p, func(f []string) error {
		id, err1 := strconv.Atoi(f[0])
		v, err2 := strconv.Atoi(f[len(f)-1])
		i, ok := byID[id]
		if err1 != nil || err2 != nil || len(f) != 2 || !ok {
			return fmt.Errorf("%s: bad line %q", name, strings.Join(f, " "))
		}
		set(&d.Images[i], v)
		return nil
	})
}

// readBoxes reads bounding_boxes.txt (id, x, y, width, height).
func (d *Dataset) readBoxes(path string, byID map[int]int) error {
	return eachLine(path, func(f []string) error {
		id, err := strconv.Atoi(f[0])
		i, ok := byID[id]
		if err != nil || !ok || len(f) < 5 {
			return fmt.Errorf("bad bounding box line %q", strings.Join(f, " "))
		}
		im := &d.Images[i]
		for k := range im.BBox {
			if im.BBox[k], err = strconv.ParseFloat(f[k+1], 64); err != nil {
				return fmt.Errorf("bad bounding box line %q", strings.Join(f, " "))
			}
		}
		im.HasBBox = true
		return nil
	})
}

// fillCaptions fills Image.Captions from where Options.Captions says.
func (d *Dataset) fillCaptions(loc finder, from string) error {
	switch from {
	case "", "text":
		return d.readCaptions()
	case "attributes":
		return d.attributeCaptions(loc.root, loc.find)
	}
	return fmt.Errorf("captions %q: want text or attributes", from)
}

// readSplit reads the class split files (either may be "").
func (d *Dataset) readSplit(seenPath, heldPath string) error {
	byName := map[string]int{}
	for id, n := range d.Classes {
		byName[n] = id
	}
	list := func(path string) (map[int]bool, error) {
		res := map[int]bool{}
		err := eachLine(path, func(f []string) error {
			name := strings.Join(f, " ")
			id, ok := byName[name]
			if !ok {
				return fmt.Errorf("unknown class %q (not in classes.txt)", name)
			}
			res[id] = true
			return nil
		})
		return res, err
	}
	var err error
	if seenPath != "" {
		if d.Seen, err = list(seenPath); err != nil {
			return err
		}
	}
	if heldPath != "" {
		if d.Heldout, err = list(heldPath); err != nil {
			return err
		}
	}
	for id := range d.Classes {
		switch {
		case seenPath == "" && !d.Heldout[id]:
			d.Seen[id] = true
		case heldPath == "" && seenPath != "" && !d.Seen[id]:
			d.Heldout[id] = true
		}
	}
	var both []int
	for id := range d.Seen {
		if d.Heldout[id] {
			both = append(both, id)
		}
	}
	if len(both) > 0 {
		sort.Ints(both)
		return fmt.Errorf("classes both seen and held out: %v", both)
	}
	return nil
}

// dropMissing finds the listed images whose files are not there.
func (d *Dataset) dropMissing(skip bool) error {
	d.Listed = len(d.Images)
	dir := filepath.Join(d.Root, "images")
	kept := d.Images[:0:0]
	for _, im := range d.Images {
		if st, err := os.Stat(filepath.Join(dir, im.Path)); err != nil || st.IsDir() {
			d.Missing = append(d.Missing, im.Path)
			continue
		}
		kept = append(kept, im)
	}
	if len(d.Missing) > 0 && !skip {
		return &MissingError{Dir: dir, Missing: d.Missing, Total: d.Listed}
	}
	d.Images = kept
	return nil
}

func (d *Dataset) readCaptions() error {
	if d.TextDir == "" {
		return nil
	}
	for i := range d.Images {
		im := &d.Images[i]
		p := filepath.Join(d.TextDir, strings.TrimSuffix(im.Path, filepath.Ext(im.Path))+".txt")
		raw, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				im.Captions = append(im.Captions, line)
			}
		}
	}
	return nil
}

// ImagePath is the file of an image.
func (d *Dataset) ImagePath(im Image) string {
	return filepath.Join(d.Root, "images", im.Path)
}

// HasCaptions reports whether any image has a caption.
func (d *Dataset) HasCaptions() bool {
	for _, im := range d.Images {
		if len(im.Captions) > 0 {
			return true
		}
	}
	return false
}

// NeedCaptions is nil when some image has a caption, else an error that
// says what needs them (what, e.g. "studio eval of a text-to-image
// model"), where to get Reed et al.'s captions, and that a model trained
// on attribute captions can be measured with them instead.
func (d *Dataset) NeedCaptions(what string) error {
	if d.HasCaptions() {
		return nil
	}
	return fmt.Errorf("%w in %s: %s needs captions, one file per image, text/<class>/<image>.txt or text_c10/<class>/<image>.txt, in the data folder or its CUB_200_2011/. CUB-200-2011 has none of its own: they are Reed et al.'s (CVPR 2016), the cvpr2016_cub archive linked from https://github.com/reedscot/cvpr2016 — unpack it and move its text_c10/ (and trainvalclasses.txt, testclasses.txt) into %s (docs/real-cub.md). A model trained with --captions attributes is measured on captions made from the attribute annotations the same way (--captions attributes)",
		ErrNoCaptions, d.Dir, what, d.Dir)
}

// TestSeen lists the test images of seen classes: the split that metrics
// of trained generators are measured on.
func (d *Dataset) TestSeen() []Image {
	var res []Image
	for _, im := range d.Images {
		if !im.Train && d.Seen[im.ClassID] {
			res = append(res, im)
		}
	}
	return res
}

// TestHeldout lists the test images of held-out classes: what a text
// model is measured on for classes it never saw.
func (d *Dataset) TestHeldout() []Image {
	var res []Image
	for _, im := range d.Images {
		if !im.Train && d.Heldout[im.ClassID] {
			res = append(res, im)
		}
	}
	return res
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func eachLine(path string, f func(fields []string) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if err := f(fields); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}
