package generator

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/fgstudio/fgstudio/generator/evalstat"
)

// Report holds batch metrics of a set of generated images, measured with
// the model's scorer.
type Report struct {
	Model  string `json:"model"`
	Scorer string `json:"scorer"`
	Images int    `json:"images"`
	// Top1 is the share of images whose requested class is the scorer's
	// top class; MeanClassProb the mean probability of that class.
	Top1          float64 `json:"top1"`
	MeanClassProb float64 `json:"mean_class_prob"`
	// Diversity is the mean pairwise feature distance within a class,
	// averaged over classes.
	Diversity float64 `json:"diversity"`
	// FID is the Fréchet distance in the scorer's feature space to the
	// committed statistics of real test images (FIDTrain: of real train
	// images).
	FID      float64 `json:"fid_test"`
	FIDTrain float64 `json:"fid_train"`
	// IS is the Inception-Score-style score from the scorer's classes.
	IS float64 `json:"inception_score"`
	// RPrecision (prompts): DAMSM retrieval of the true caption among 100.
	RPrecision *float64 `json:"r_precision,omitempty"`
	Seconds    float64  `json:"seconds"`
}

// featureStatsFile is feature_stats.json as the training code writes it.
type featureStatsFile struct {
	TestSeen  evalstat.Stats `json:"test_seen"`
	TrainSeen evalstat.Stats `json:"train_seen"`
}

// Evaluate generates one image per request (N is forced to 1; labels give
// each request's class for diversity and R-precision) and measures them.
func (s *Service) Evaluate(ctx context.Context, modelName string, reqs []Request, labels []int) (Report, error) {
	m, ok := s.models[modelName]
	if !ok {
		return Report{}, s.unknownModel(modelName)
	}
	sc, err := s.scorer(m.info())
	if err != nil || sc == nil {
		return Report{}, fmt.Errorf("evaluate %s: no scorer: %v", modelName, err)
	}
	start := time.Now()
	var feats [][]float32
	var probs [][]float64
	var codes [][]float32
	var prompts []string
	rep := Report{Model: modelName, Scorer: sc.name}
	var hits, withClass int
	for from := 0; from < len(reqs); from += 256 {
		part := append([]Request(nil), reqs[from:min(from+256, len(reqs))]...)
		for i := range part {
			part[i].N = 1
		}
		out, err := s.Generate(ctx, modelName, part)
		if err != nil {
			return rep, err
		}
		for i, imgs := range out {
			sco := imgs[0].Scores
			feats = append(feats, sco.Features)
			probs = append(probs, sco.Probs)
			if sco.ClassProb != nil {
				withClass++
				rep.MeanClassProb += *sco.ClassProb
				if sco.ClassRank == 1 {
					hits++
				}
			}
			if sco.Code != nil {
				codes = append(codes, sco.Code)
				prompts = append(prompts, part[i].Prompt)
			}
		}
	}
	rep.Images = len(feats)
	if withClass > 0 {
		rep.Top1 = float64(hits) / float64(withClass)
		rep.MeanClassProb /= float64(withClass)
	}
	rep.Diversity = evalstat.Diversity(feats, labels)
	rep.IS = evalstat.InceptionScore(probs)
	if real, err := sc.featureStats(); err == nil {
		gen := evalstat.FeatureStats(feats)
		if rep.FID, err = evalstat.FrechetDistance(gen, real.TestSeen); err != nil {
			return rep, err
		}
		if rep.FIDTrain, err = evalstat.FrechetDistance(gen, real.TrainSeen); err != nil {
			return rep, err
		}
	} else {
		rep.FID, rep.FIDTrain = math.NaN(), math.NaN()
	}
	if len(codes) == len(feats) && len(codes) > 0 && sc.textEnc != nil {
		sents, err := encodeSentences(ctx, sc.textEnc, sc.vocab, uniq(prompts))
		if err != nil {
			return rep, err
		}
		sentList := make([][]float32, len(prompts))
		for i, p := range prompts {
			sentList[i] = sents[p]
		}
		r := evalstat.RPrecision(codes, sentList, labels, 100, 0)
		rep.RPrecision = &r
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func (s *Scorer) featureStats() (*featureStatsFile, error) {
	if s.statsPath == "" {
		return nil, fmt.Errorf("scorer %s has no feature statistics", s.name)
	}
	raw, err := os.ReadFile(s.statsPath)
	if err != nil {
		return nil, err
	}
	var f featureStatsFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(s.statsPath), err)
	}
	return &f, nil
}
