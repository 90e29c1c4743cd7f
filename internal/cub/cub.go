// Package cub reads a data set in the CUB-200-2011 layout, with captions
// in the layout of Reed et al. (text/<class>/<image>.txt) and the class
// split files trainvalclasses.txt / testclasses.txt: the sample data set
// that samples/cubmaker writes, or the real CUB-200-2011.
package cub

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	Root    string
	Classes map[int]string // id → directory name, e.g. "001.Black_footed_Albatross"
	Images  []Image
	// Heldout lists the classes in testclasses.txt (none if absent).
	Heldout map[int]bool
}

// Open reads the index files and captions under root.
func Open(root string) (*Dataset, error) {
	d := &Dataset{Root: root, Classes: map[int]string{}, Heldout: map[int]bool{}}
	if err := eachLine(filepath.Join(root, "classes.txt"), func(f []string) error {
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			return fmt.Errorf("bad class line %q", strings.Join(f, " "))
		}
		d.Classes[id] = f[1]
		return nil
	}); err != nil {
		return nil, err
	}
	byID := map[int]int{}
	if err := eachLine(filepath.Join(root, "images.txt"), func(f []string) error {
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			return fmt.Errorf("bad image line %q", strings.Join(f, " "))
		}
		byID[id] = len(d.Images)
		d.Images = append(d.Images, Image{ID: id, Path: f[1]})
		return nil
	}); err != nil {
		return nil, err
	}
	pairs := func(name string, set func(im *Image, v int)) error {
		return eachLine(filepath.Join(root, name), func(f []string) error {
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
	if err := pairs("image_class_labels.txt", func(im *Image, v int) { im.ClassID = v }); err != nil {
		return nil, err
	}
	if err := pairs("train_test_split.txt", func(im *Image, v int) { im.Train = v == 1 }); err != nil {
		return nil, err
	}
	err := eachLine(filepath.Join(root, "bounding_boxes.txt"), func(f []string) error {
		id, err := strconv.Atoi(f[0])
		i, ok := byID[id]
		if err != nil || !ok || len(f) != 5 {
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
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	err = eachLine(filepath.Join(root, "testclasses.txt"), func(f []string) error {
		for id, name := range d.Classes {
			if name == f[0] {
				d.Heldout[id] = true
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for i := range d.Images {
		im := &d.Images[i]
		p := filepath.Join(root, "text", strings.TrimSuffix(im.Path, filepath.Ext(im.Path))+".txt")
		raw, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				im.Captions = append(im.Captions, line)
			}
		}
	}
	return d, nil
}

// TestSeen lists the test images of classes that are not held out: the
// split that metrics of trained generators are measured on.
func (d *Dataset) TestSeen() []Image {
	var res []Image
	for _, im := range d.Images {
		if !im.Train && !d.Heldout[im.ClassID] {
			res = append(res, im)
		}
	}
	return res
}

// TestHeldout lists the images of held-out classes (all of them test
// images): what a text model is measured on for classes it never saw.
func (d *Dataset) TestHeldout() []Image {
	var res []Image
	for _, im := range d.Images {
		if !im.Train && d.Heldout[im.ClassID] {
			res = append(res, im)
		}
	}
	return res
}

func eachLine(path string, f func(fields []string) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
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
