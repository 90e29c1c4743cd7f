package cub

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Certain is the lowest certainty id of attributes/image_attribute_labels.txt
// that captions are made from: 3 "probably" or 4 "definitely".
const Certain = 3

// attributeCaptions fills every image's Captions from its attribute
// annotations (AttributeCaptions), for a data set without caption files.
func (d *Dataset) attributeCaptions(root string, find func(string) string) error {
	names := find("attributes.txt")
	if names == "" {
		names = find(filepath.Join("attributes", "attributes.txt"))
	}
	if names == "" { // the archive keeps attributes.txt beside CUB_200_2011/
		if p := filepath.Join(filepath.Dir(filepath.Clean(root)), "attributes.txt"); exists(p) {
			names = p
		}
	}
	labels := find(filepath.Join("attributes", "image_attribute_labels.txt"))
	if names == "" || labels == "" {
		return fmt.Errorf("%w: captions from attributes: no attribute annotations in %s (attributes.txt and attributes/image_attribute_labels.txt of CUB-200-2011)", ErrNoCaptions, root)
	}
	byAttr := map[int]string{}
	maxID := 0
	if err := eachLine(names, func(f []string) error {
		id, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			return fmt.Errorf("bad attribute line %q", strings.Join(f, " "))
		}
		byAttr[id] = f[1]
		maxID = max(maxID, id)
		return nil
	}); err != nil {
		return err
	}
	d.Attributes = make([]string, 0, len(byAttr))
	pos := map[int]int{} // attribute id → index in id order
	for id := 1; id <= maxID; id++ {
		if n, ok := byAttr[id]; ok {
			pos[id] = len(d.Attributes)
			d.Attributes = append(d.Attributes, n)
		}
	}
	byID := map[int]int{}
	for i, im := range d.Images {
		byID[im.ID] = i
	}
	certain := make([][]bool, len(d.Images))
	if err := eachLine(labels, func(f []string) error {
		// <image> <attribute> <is_present> <certainty> <time> (a few real lines have one more)
		if len(f) < 3 {
			return fmt.Errorf("bad attribute label line %q", strings.Join(f, " "))
		}
		img, err1 := strconv.Atoi(f[0])
		a, err2 := strconv.Atoi(f[1])
		present, err3 := strconv.Atoi(f[2])
		cert := 4
		var err4 error
		if len(f) > 3 {
			cert, err4 = strconv.Atoi(f[3])
		}
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return fmt.Errorf("bad attribute label line %q", strings.Join(f, " "))
		}
		i, ok := byID[img]
		j, known := pos[a]
		if !ok || !known {
			return nil // an image skipped as missing, or an unnamed attribute
		}
		if certain[i] == nil {
			certain[i] = make([]bool, len(d.Attributes))
		}
		certain[i][j] = present != 0 && cert >= Certain
		return nil
	}); err != nil {
		return err
	}
	for i := range d.Images {
		d.Images[i].Captions = AttributeCaptions(d.Attributes, certain[i], 10)
	}
	return nil
}

var partNouns = map[string]string{"wing": "wings", "eye": "eyes", "leg": "legs", "primary": "body"}

// cleanValue: "small_(5_-_9_in)" → "small", "rounded-wings" → "rounded wings".
func cleanValue(v string) string {
	if i := strings.Index(v, "_("); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(v, "("); i >= 0 {
		v = v[:i]
	}
	v = strings.NewReplacer("_", " ", "-", " ").Replace(v)
	return strings.Join(strings.Fields(v), " ")
}

// attributePhrase is one attribute group in words: kind "size" (a subject
// word) or "part".
func attributePhrase(group string, values []string) (kind, text string) {
	g := strings.TrimPrefix(group, "has_")
	part, aspect := "", g
	if i := strings.LastIndex(g, "_"); i >= 0 {
		part, aspect = g[:i], g[i+1:]
	}
	noun, ok := partNouns[part]
	if !ok {
		noun = strings.ReplaceAll(part, "_", " ")
	}
	var vals []string
	for _, v := range values {
		if c := cleanValue(v); c != "" {
			vals = append(vals, c)
		}
	}
	if len(vals) == 0 {
		return "", ""
	}
	switch {
	case aspect == "size" && part == "":
		return "size", vals[0]
	case aspect == "color" || aspect == "pattern":
		return "part", strings.Join(vals, " and ") + " " + noun
	case aspect == "shape":
		v := vals[0]
		w := strings.Fields(v)
		last := w[len(w)-1]
		if noun == "" {
			return "part", "a " + v + " shape"
		}
		if last == noun || last == strings.TrimRight(noun, "s") || last == part || strings.HasSuffix(noun, last) {
			return "part", v
		}
		return "part", v + " " + noun
	case aspect == "length":
		return "part", noun + " " + vals[0]
	case vals[0] == "yes":
		return "part", noun + " " + aspect
	case vals[0] == "no":
		return "part", "no " + noun + " " + aspect
	}
	return "part", vals[0] + " " + noun + " " + aspect
}

// AttributeCaptions makes up to n captions from the attributes marked
// present and certain (certain[j] for names[j], "group::value"): values
// of one group joined by "and", groups in attribute order, sentences
// "this [size] bird has A, B, C and D" over rotations of the groups. The
// same rules as training/fgtrain/data.py's attribute_captions.
func AttributeCaptions(names []string, certain []bool, n int) []string {
	if certain == nil {
		return nil
	}
	var order []string
	values := map[string][]string{}
	for j, name := range names {
		if j >= len(certain) || !certain[j] {
			continue
		}
		group, value, _ := strings.Cut(name, "::")
		if _, ok := values[group]; !ok {
			order = append(order, group)
		}
		values[group] = append(values[group], value)
	}
	size := ""
	var phrases []string
	for _, g := range order {
		kind, text := attributePhrase(g, values[g])
		switch {
		case kind == "size":
			size = text
		case text != "":
			phrases = append(phrases, text)
		}
	}
	if len(phrases) == 0 {
		return nil
	}
	subject := "this bird has "
	if size != "" {
		subject = "this " + size + " bird has "
	}
	var res []string
	for k := 0; k < min(n, len(phrases)); k++ {
		rot := append(append([]string(nil), phrases[k:]...), phrases[:k]...)
		rot = rot[:min(4, len(rot))]
		body := rot[0]
		if len(rot) > 1 {
			body = strings.Join(rot[:len(rot)-1], ", ") + " and " + rot[len(rot)-1]
		}
		res = append(res, subject+body)
	}
	return res
}
