package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// Real is one real image of a data set in the scorer's feature space.
type Real struct {
	ID       int       // image id in the data set
	Class    string    // class directory name, e.g. "001.Red_crowned_Hookbill"
	Train    bool      // in the training split
	Features []float32 // the classifier's penultimate features
}

// Reference is the real images of a data set, scored once: the training
// images are what novelty is measured against, and every class's images
// give the real diversity that generated images are compared with.
type Reference struct {
	Scorer string
	Images []Real
	train  []int     // indices of training images
	cache  *refCache // the feature cache file it came from, if any
}

// ImageScorer runs a classifier on image files (generator.Service has it).
type ImageScorer interface {
	ScoreImages(ctx context.Context, model string, images [][]byte) ([]generator.Scores, error)
}

// InputSizer is what a scorer that says its input size has
// (*generator.Service): real images are then cropped around the bird and
// resized as training prepared them (cub.Dataset.Load) before scoring.
type InputSizer interface {
	ScorerInputSize(model string) (int, error)
}

// RealImages reads images of ds for scoring by the classifier named
// scorer: cropped around their bounding boxes and resized to the
// classifier's input as training saw them when sc says its input size
// (InputSizer), else the files as they are (centre-cropped by the
// scorer).
func RealImages(sc ImageScorer, scorer string, ds *cub.Dataset, ims []cub.Image) ([][]byte, error) {
	size := 0
	if s, ok := sc.(InputSizer); ok {
		var err error
		if size, err = s.ScorerInputSize(scorer); err != nil {
			return nil, err
		}
	}
	data := make([][]byte, len(ims))
	errs := make([]error, len(ims))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if size > 0 {
					data[i], errs[i] = ds.LoadPNG(ims[i], size)
				} else {
					data[i], errs[i] = os.ReadFile(ds.ImagePath(ims[i]))
				}
			}
		}()
	}
	for i := range ims {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("reference image %d: %w", ims[i].ID, err)
		}
	}
	return data, nil
}

// BuildReference scores every image of ds (reading the files in chunks)
// with the classifier named scorer. keep, if not nil, chooses the images.
func BuildReference(ctx context.Context, sc ImageScorer, scorer string, ds *cub.Dataset, keep func(cub.Image) bool) (*Reference, error) {
	ref := &Reference{Scorer: scorer}
	var chunk []cub.Image
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		data, err := RealImages(sc, scorer, ds, chunk)
		if err != nil {
			return err
		}
		scores, err := sc.ScoreImages(ctx, scorer, data)
		if err != nil {
			return fmt.Errorf("reference images: %w", err)
		}
		for i, im := range chunk {
			ref.Images = append(ref.Images, Real{ID: im.ID, Class: ds.Classes[im.ClassID], Train: im.Train, Features: scores[i].Features})
		}
		chunk = chunk[:0]
		return nil
	}
	for _, im := range ds.Images {
		if keep != nil && !keep(im) {
			continue
		}
		chunk = append(chunk, im)
		if len(chunk) == 256 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	ref.index()
	return ref, nil
}

// NewReference builds a reference from images already scored.
func NewReference(scorer string, images []Real) *Reference {
	r := &Reference{Scorer: scorer, Images: images}
	r.index()
	return r
}

func (r *Reference) index() {
	r.train = r.train[:0]
	for i, im := range r.Images {
		if im.Train {
			r.train = append(r.train, i)
		}
	}
}

// TrainCount is the number of training images novelty is measured against.
func (r *Reference) TrainCount() int { return len(r.train) }

// Nearest finds the training image closest to f (L2 distance); id is -1
// when the reference has no training image.
func (r *Reference) Nearest(f []float32) (id int, dist float64) {
	id, best := -1, math.Inf(1)
	for _, i := range r.train {
		d := sqDist(f, r.Images[i].Features, best)
		if d < best {
			best, id = d, r.Images[i].ID
		}
	}
	return id, math.Sqrt(best)
}

// sqDist is the squared L2 distance, giving up (returning a value ≥
// bound) once the partial sum passes bound.
func sqDist(a, b []float32, bound float64) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
		if i&31 == 31 && s >= bound {
			return s
		}
	}
	return s
}

// nearestAll runs Nearest for many feature vectors on all CPUs.
func (r *Reference) nearestAll(feats [][]float32) (ids []int, dists []float64) {
	ids, dists = make([]int, len(feats)), make([]float64, len(feats))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ids[i], dists[i] = r.Nearest(feats[i])
			}
		}()
	}
	for i := range feats {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids, dists
}

// NearCopyDistance suggests a novelty threshold from the data itself: the
// q-quantile (0 < q < 1) of the distances from each training image to its
// nearest other training image. A generated image closer than that to a
// training image is nearer to it than almost all real images are to
// their nearest neighbour: a near-copy.
func (r *Reference) NearCopyDistance(q float64) float64 {
	if len(r.train) < 2 {
		return 0
	}
	if d, ok := r.cache.nearCopy(q); ok {
		return d
	}
	d := r.nearCopyDistance(q)
	r.cache.remember(q, d)
	return d
}

func (r *Reference) nearCopyDistance(q float64) float64 {
	d := make([]float64, len(r.train))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				fi := r.Images[r.train[k]].Features
				best := math.Inf(1)
				for j, i := range r.train {
					if j != k {
						best = math.Min(best, sqDist(fi, r.Images[i].Features, best))
					}
				}
				d[k] = math.Sqrt(best)
			}
		}()
	}
	for k := range r.train {
		next <- k
	}
	close(next)
	wg.Wait()
	sort.Float64s(d)
	return d[int(q*float64(len(d)-1))]
}

// ClassDiversity is the mean pairwise feature distance of each class's
// real images (all splits), the yardstick for generated diversity.
func (r *Reference) ClassDiversity() map[string]float64 {
	by := map[string][][]float32{}
	for _, im := range r.Images {
		by[im.Class] = append(by[im.Class], im.Features)
	}
	res := map[string]float64{}
	for c, fs := range by {
		if st := pairwise(fs); st.Pairs > 0 {
			res[c] = st.Mean
		}
	}
	return res
}

// pairStats summarises the pairwise L2 distances of a set of features.
type pairStats struct {
	Mean, Min float64
	Pairs     int
}

func pairwise(fs [][]float32) pairStats {
	st := pairStats{Min: math.Inf(1)}
	var sum float64
	for a := range fs {
		for b := a + 1; b < len(fs); b++ {
			d := math.Sqrt(sqDist(fs[a], fs[b], math.Inf(1)))
			sum += d
			st.Min = math.Min(st.Min, d)
			st.Pairs++
		}
	}
	if st.Pairs == 0 {
		return pairStats{}
	}
	st.Mean = sum / float64(st.Pairs)
	return st
}
