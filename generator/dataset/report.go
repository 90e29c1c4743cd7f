package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fgstudio/fgstudio/internal/catalog"
)

func buildReport(ctx context.Context, svc Service, m *catalog.Model, spec Spec, dir string, states []*classState, ref *Reference) (*Report, error) {
	rep := &Report{Model: m.Manifest.Name, Dir: dir, PerClass: spec.PerClass, MinFidelity: spec.MinFidelity, MinNovelty: spec.MinNovelty}
	var realDiv map[string]float64
	if ref != nil {
		rep.ReferenceImages = ref.TrainCount()
		realDiv = ref.ClassDiversity()
	}
	var divSum, realSum float64
	var divN, realN int
	for _, st := range states {
		cr := ClassReport{Class: st.plan.Class.Name, Dir: st.plan.Dir, Label: st.plan.Label, Accepted: len(st.accepted),
			Attempts: st.attempts, RejectedFidelity: st.rejFid, RejectedNovelty: st.rejNov, RealDiversity: realDiv[st.plan.Class.Name]}
		if st.attempts > 0 {
			cr.AcceptanceRate = float64(cr.Accepted) / float64(st.attempts)
		}
		var names []string
		for m, n := range st.measures {
			names = append(names, m)
			if rep.FidelityMeasures == nil {
				rep.FidelityMeasures = map[string]int{}
			}
			rep.FidelityMeasures[m] += n
		}
		sort.Strings(names)
		cr.FidelityMeasure = strings.Join(names, ",")
		// Diversity is measured on the files as written (8-bit PNGs).
		data := make([][]byte, len(st.accepted))
		cr.NoveltyMin = math.Inf(1)
		for i, a := range st.accepted {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(a.File)))
			if err != nil {
				return nil, err
			}
			data[i] = b
			cr.MeanFidelity += a.Fidelity / float64(len(st.accepted))
			if a.Neighbour >= 0 {
				cr.NoveltyMin = math.Min(cr.NoveltyMin, a.Novelty)
				cr.NoveltyMean += a.Novelty / float64(len(st.accepted))
			}
		}
		if math.IsInf(cr.NoveltyMin, 1) {
			cr.NoveltyMin = 0
		}
		if len(data) > 1 {
			scores, err := svc.ScoreImages(ctx, spec.Model, data)
			if err != nil {
				return nil, fmt.Errorf("data set %s: diversity of %s: %w", dir, st.plan.Class.Name, err)
			}
			feats := make([][]float32, len(scores))
			for i, s := range scores {
				feats[i] = s.Features
			}
			ps := pairwise(feats)
			cr.DiversityMean, cr.DiversityMin = ps.Mean, ps.Min
			divSum += ps.Mean
			divN++
			if cr.RealDiversity > 0 {
				realSum += cr.RealDiversity
				realN++
			}
		}
		if cr.Accepted < spec.PerClass {
			rep.Short = append(rep.Short, cr.Class)
		}
		rep.Accepted += cr.Accepted
		rep.Attempts += cr.Attempts
		rep.Classes = append(rep.Classes, cr)
	}
	if rep.Attempts > 0 {
		rep.AcceptanceRate = float64(rep.Accepted) / float64(rep.Attempts)
	}
	if divN > 0 {
		rep.Diversity = divSum / float64(divN)
	}
	if realN > 0 {
		rep.RealDiversity = realSum / float64(realN)
	}
	return rep, nil
}

// writeReport writes report.json, then the manifest that lists it.
func writeReport(dir string, rep *Report) error {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, reportFile), append(raw, '\n')); err != nil {
		return err
	}
	return writeManifest(dir, rep.Manifest())
}
