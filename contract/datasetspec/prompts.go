package datasetspec

import (
	"regexp"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

// maxPromptWords is the caption length AttnGAN reads (the tokenizer cuts
// longer ones).
const maxPromptWords = 18

var tokenRe = regexp.MustCompile(`[a-z0-9_]+`)

func wordCount(s string) int { return len(tokenRe.FindAllString(strings.ToLower(s), -1)) }

// units are the parts a description names, each from one or two attribute
// groups, in the data set captions' own words.
var units = []struct {
	name   string
	groups []string
}{
	{"crown", []string{"has_crown_color"}},
	{"breast", []string{"has_breast_color", "has_breast_pattern"}},
	{"wing", []string{"has_wing_color", "has_wing_pattern"}},
	{"bill", []string{"has_bill_shape", "has_bill_color"}},
	{"upper", []string{"has_upperparts_color"}},
	{"tail", []string{"has_tail_shape"}},
	{"eye", []string{"has_eye_ring"}},
	{"size", []string{"has_size"}},
}

var billShape = map[string]string{"all-purpose": "short pointed", "hooked": "hooked", "needle": "long needle-like",
	"cone": "thick conical", "spatulate": "spoon-shaped"}
var tailShape = map[string]string{"notched": "notched", "rounded": "rounded", "pointed": "long pointed", "fan-shaped": "fan-shaped"}

func article(p string) string {
	if p != "" && strings.ContainsRune("aeiou", rune(p[0])) {
		return "an " + p
	}
	return "a " + p
}

// phrase describes one unit of a class, or "" when the class lacks the
// attributes it needs.
func phrase(unit string, a map[string]string) string {
	switch unit {
	case "crown":
		if c := a["has_crown_color"]; c != "" {
			return article(c + " crown")
		}
	case "upper":
		if c := a["has_upperparts_color"]; c != "" {
			return c + " upperparts"
		}
	case "breast":
		c, p := a["has_breast_color"], a["has_breast_pattern"]
		switch {
		case c == "":
		case p == "streaked" || p == "spotted":
			return "a " + p + " " + c + " breast"
		default:
			return article(c + " breast")
		}
	case "wing":
		c, p := a["has_wing_color"], a["has_wing_pattern"]
		switch {
		case c == "":
		case p == "striped" || p == "spotted":
			return p + " " + c + " wings"
		case p == "wingbars":
			return c + " wings with wingbars"
		default:
			return c + " wings"
		}
	case "bill":
		s, c := billShape[a["has_bill_shape"]], a["has_bill_color"]
		if s != "" || c != "" {
			return article(strings.TrimSpace(s + " " + c + " bill"))
		}
	case "tail":
		if s := tailShape[a["has_tail_shape"]]; s != "" {
			return article(s + " tail")
		}
	case "eye":
		switch a["has_eye_ring"] {
		case "yes":
			return "a white eye ring"
		case "no":
			return "no eye ring"
		}
	}
	return ""
}

// distinguishingUnits lists the units that tell c from its nearest
// classes (those one or two attribute groups away), most telling first:
// the groups that alone separate it from a sibling, then one group of
// each pair that separates it from a class two groups away.
func distinguishingUnits(c catalog.Class, all []catalog.Class) []string {
	unitOf := map[string]string{}
	for _, u := range units {
		for _, g := range u.groups {
			unitOf[g] = u.name
		}
	}
	score := map[string]int{}
	for _, o := range all {
		if o.Name == c.Name || len(o.Attributes) == 0 {
			continue
		}
		var diff []string
		for g, v := range c.Attributes {
			if o.Attributes[g] != v {
				diff = append(diff, g)
			}
		}
		switch len(diff) {
		case 1:
			score[unitOf[diff[0]]] += 10
		case 2:
			sort.Strings(diff)
			score[unitOf[diff[0]]]++
			score[unitOf[diff[1]]]++
		}
	}
	var res []string
	for _, u := range units {
		if score[u.name] > 0 {
			res = append(res, u.name)
		}
	}
	sort.SliceStable(res, func(i, j int) bool { return score[res[i]] > score[res[j]] })
	return res
}

// AttributePrompts writes n descriptions of a class from its attributes,
// in the words of the data set's captions, each at most 18 words: the
// part that best tells the class from its nearest classes (all of all)
// first, then the others in turn, so that the n descriptions together
// name every attribute. It returns nil for a class without attributes.
func AttributePrompts(c catalog.Class, all []catalog.Class, n int) []string {
	if len(c.Attributes) == 0 || n < 1 {
		return nil
	}
	must := distinguishingUnits(c, all)
	// The most telling part leads every description; the other parts
	// follow in turn (telling ones first), so that each one comes right
	// after it in some description and always fits.
	var lead, rest []string
	for _, u := range must {
		if u != "size" {
			if len(lead) == 0 {
				lead = append(lead, u)
			} else {
				rest = append(rest, u)
			}
		}
	}
	for _, u := range units {
		if u.name != "size" && !contains(lead, u.name) && !contains(rest, u.name) && phrase(u.name, c.Attributes) != "" {
			rest = append(rest, u.name)
		}
	}
	size := map[string]string{"small": "small", "medium": "medium-sized", "large": "large"}[c.Attributes["has_size"]]
	var res []string
	seen := map[string]bool{}
	for v := 0; len(res) < n && v < 4*n; v++ {
		order := append([]string(nil), lead...)
		for i := range rest {
			order = append(order, rest[(v+i)%len(rest)])
		}
		subject := "a bird with "
		if size != "" && (contains(must, "size") || v%2 == 1) {
			subject = article(size+" bird") + " with "
		}
		var parts []string
		for _, u := range order {
			p := phrase(u, c.Attributes)
			if p == "" || wordCount(subject+join(append(parts, p))) > maxPromptWords {
				continue
			}
			parts = append(parts, p)
		}
		if len(parts) == 0 {
			continue
		}
		s := subject + join(parts)
		if !seen[s] {
			seen[s] = true
			res = append(res, s)
		}
	}
	return res
}

func join(parts []string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
