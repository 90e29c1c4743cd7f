package evaluate

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/generator/evalstat"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// Rung is one condition of the degradation ladder: a transformation of
// real images at the judge's input size.
type Rung struct {
	Name string `json:"name"`
	What string `json:"what"`
	// Family groups rungs of one kind of damage, mildest first.
	Family string `json:"-"`
	apply  func(p Pixels, id int) Pixels
}

// Rungs is the ladder: clean; Gaussian blur σ = 1 px; Gaussian noise
// σ = 8/255 and 16/255; low-pass to 32 and to 16 px (down, then up to
// the judge's size). All at the judge's input size, 8-bit after each.
func Rungs(seed uint64) []Rung {
	return []Rung{
		{Name: "clean", What: "real test images", apply: func(p Pixels, _ int) Pixels { return p }},
		{Name: "blur1", What: "Gaussian blur, σ = 1 px", Family: "blur", apply: func(p Pixels, _ int) Pixels { return p.Blur(1) }},
		{Name: "noise8", What: "Gaussian noise, σ = 8/255", Family: "noise", apply: func(p Pixels, id int) Pixels { return p.Noise(8, seed^uint64(id)<<8) }},
		{Name: "noise16", What: "Gaussian noise, σ = 16/255", Family: "noise", apply: func(p Pixels, id int) Pixels { return p.Noise(16, seed^uint64(id)<<8) }},
		{Name: "lowpass32", What: "low-pass: down to 32 px and back", Family: "lowpass", apply: func(p Pixels, _ int) Pixels { return p.LowPass(32) }},
		{Name: "lowpass16", What: "low-pass: down to 16 px and back", Family: "lowpass", apply: func(p Pixels, _ int) Pixels { return p.LowPass(16) }},
	}
}

// LadderMetrics are the metrics that apply to images alone, in table order.
var LadderMetrics = []string{"fd", "precision", "recall", "coverage", "top1", "attr_agreement_caption", "attr_agreement_class", "r_precision"}

// lowerIsBetter marks the metrics where lower is better.
var lowerIsBetter = map[string]bool{"fd": true}

// LadderRung is one row of the ladder.
type LadderRung struct {
	Name    string              `json:"name"`
	What    string              `json:"what"`
	Metrics map[string]*float64 `json:"metrics"`
}

// LadderReport is what `studio eval --ladder` writes.
type LadderReport struct {
	Judge           string `json:"judge"`
	FDSpace         string `json:"fd_space"`
	Data            string `json:"data"`
	Seed            uint64 `json:"seed"`
	Images          int    `json:"images"`
	ReferenceImages int    `json:"reference_images"`
	// Metrics lists the metric keys; Rungs the rows, clean first.
	Metrics []string     `json:"metrics"`
	Rungs   []LadderRung `json:"rungs"`
	// Required are the (better, worse) pairs every metric must rank:
	// clean above every rung, and within a family the milder above the
	// harsher. Breaks lists the metric/pair that do not; InOrder is true
	// when there is none.
	Required [][2]string           `json:"required"`
	Breaks   []evalstat.OrderBreak `json:"breaks"`
	InOrder  bool                  `json:"in_order"`
	// ChainBreaks checks the listed order as one chain (clean > blur1 >
	// noise8 > noise16 > lowpass32 > lowpass16), for information: damage
	// of different kinds need not rank that way.
	ChainBreaks []evalstat.OrderBreak `json:"chain_breaks"`
	Seconds     float64               `json:"seconds"`
}

// Ladder measures the judge's metrics on real test images of seen classes
// (half A, cfg.Images of them), clean and degraded, each against the
// clean half B: fd and precision/recall vs half B; top-1 of the true
// class; agreement with the attributes the true caption names and with
// the class's attributes; R-precision of the true caption.
func Ladder(ctx context.Context, judge *generator.Judge, ds *cub.Dataset, cfg Config) (*LadderReport, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	w, err := newWorld(ds, judge, cfg.Seed, cfg.Batch, cfg.Progress)
	if err != nil {
		return nil, err
	}
	a, b := w.seenHalves(cfg.Images)
	if len(a) <= cfg.K || len(b) <= cfg.K {
		return nil, fmt.Errorf("too few seen-class test images in %s that %s knows (%d + %d)", ds.Root, judge.Name(), len(a), len(b))
	}
	rep := &LadderReport{Judge: judge.Name(), Data: ds.Root, Seed: cfg.Seed, Images: len(a), ReferenceImages: len(b), Metrics: LadderMetrics}
	pa, err := w.loadReal("real images, half A", a)
	if err != nil {
		return nil, err
	}
	pb, err := w.loadReal("real images, half B", b)
	if err != nil {
		return nil, err
	}
	rb, err := w.judgeAll(ctx, "judge: real half B", pb)
	if err != nil {
		return nil, err
	}
	rep.FDSpace = fmt.Sprintf("%s features (%d-d)", judge.Name(), len(rb.Features[0]))
	sb := evalstat.FeatureStats(rb.Features)
	labels, named, classAttrs := labelsOf(a), namedOf(a), classAttrsOf(a)
	values := map[string]map[string]float64{}
	rungs := Rungs(cfg.Seed)
	for _, r := range rungs {
		pr := make([]Pixels, len(pa))
		for i, p := range pa {
			pr[i] = r.apply(p, a[i].im.ID)
		}
		j, err := w.judgeAll(ctx, "judge: "+r.Name, pr)
		if err != nil {
			return nil, err
		}
		m := map[string]float64{}
		m["fd"], err = evalstat.FrechetDistance(evalstat.FeatureStats(j.Features), sb)
		if err != nil {
			return nil, err
		}
		m["precision"], m["recall"] = evalstat.PrecisionRecall(rb.Features, j.Features, cfg.K)
		m["coverage"] = evalstat.Coverage(rb.Features, j.Features, cfg.K)
		m["top1"] = top1(j.Logits, a)
		m["attr_agreement_caption"], _ = evalstat.Agreement(w.head, j.Attributes, named)
		m["attr_agreement_class"], _ = evalstat.Agreement(w.head, j.Attributes, classAttrs)
		m["r_precision"], _ = evalstat.AttrRPrecision(w.head, j.Attributes, named, labels, cfg.Candidates, cfg.Seed)
		values[r.Name] = m
		row := LadderRung{Name: r.Name, What: r.What, Metrics: map[string]*float64{}}
		for _, k := range LadderMetrics {
			row.Metrics[k] = num(m[k])
		}
		rep.Rungs = append(rep.Rungs, row)
	}
	var chain [][2]string
	for i, r := range rungs {
		if i > 0 {
			rep.Required = append(rep.Required, [2]string{"clean", r.Name})
			chain = append(chain, [2]string{rungs[i-1].Name, r.Name})
		}
	}
	for i, r := range rungs {
		for _, s := range rungs[i+1:] {
			if r.Family != "" && r.Family == s.Family {
				rep.Required = append(rep.Required, [2]string{r.Name, s.Name})
			}
		}
	}
	rep.Breaks = evalstat.OrderBreaks(values, LadderMetrics, rep.Required, lowerIsBetter)
	rep.ChainBreaks = evalstat.OrderBreaks(values, LadderMetrics, chain, lowerIsBetter)
	if rep.Breaks == nil {
		rep.Breaks = []evalstat.OrderBreak{}
	}
	if rep.ChainBreaks == nil {
		rep.ChainBreaks = []evalstat.OrderBreak{}
	}
	rep.InOrder = len(rep.Breaks) == 0
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// Markdown is the ladder as a table (for a model card), with the order
// check below it.
func (r *LadderReport) Markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Degradation ladder: %d real test images of seen classes per rung, each against %d other real test images (clean), judged by %s (fd in its feature space). ↓ lower is better, ↑ higher.\n\n",
		r.Images, r.ReferenceImages, r.Judge)
	sb.WriteString("| rung |")
	for _, m := range r.Metrics {
		arrow := "↑"
		if lowerIsBetter[m] {
			arrow = "↓"
		}
		fmt.Fprintf(&sb, " %s %s |", m, arrow)
	}
	sb.WriteString("\n|---|")
	for range r.Metrics {
		sb.WriteString("---:|")
	}
	sb.WriteString("\n")
	for _, row := range r.Rungs {
		fmt.Fprintf(&sb, "| %s (%s) |", row.Name, row.What)
		for _, m := range r.Metrics {
			fmt.Fprintf(&sb, " %s |", fmtMetric(m, row.Metrics[m]))
		}
		sb.WriteString("\n")
	}
	sb.WriteString("\n")
	if r.InOrder {
		fmt.Fprintf(&sb, "In order: every metric ranks clean above every rung, and the milder rung of each family (noise 8 > 16, low-pass 32 > 16) above the harsher (%d pairs × %d metrics).\n", len(r.Required), len(r.Metrics))
	} else {
		fmt.Fprintf(&sb, "NOT in order: %d metric/rung pairs break it:\n", len(r.Breaks))
		for _, b := range r.Breaks {
			fmt.Fprintf(&sb, "- %s: %s (%s) should beat %s (%s)\n", b.Metric, b.Better, fmtFloat(b.Metric, b.BValue), b.Worse, fmtFloat(b.Metric, b.WValue))
		}
	}
	if len(r.ChainBreaks) > 0 {
		fmt.Fprintf(&sb, "\nAs one chain in the listed order (for information; different kinds of damage need not rank so): %d adjacent pairs differ:", len(r.ChainBreaks))
		for i, b := range r.ChainBreaks {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(&sb, "%s %s %s < %s", sep, b.Metric, b.Better, b.Worse)
		}
		sb.WriteString(".\n")
	}
	return sb.String()
}

func fmtMetric(m string, v *float64) string {
	if v == nil {
		return "–"
	}
	return fmtFloat(m, *v)
}

func fmtFloat(m string, v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	if lowerIsBetter[m] {
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.3f", v)
}
