package dataset

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// fakeService is a generator and scorer without graphs: an image is its
// seed's bytes, class "hard" passes the fidelity bar one attempt in three
// (by seed), the others always; features are made from the bytes.
type fakeService struct{ scored atomic.Int64 }

func (f *fakeService) Generate(_ context.Context, _ string, reqs []generator.Request) ([][]generator.Image, error) {
	res := make([][]generator.Image, len(reqs))
	for i, r := range reqs {
		p := 0.9
		if strings.Contains(strings.ToLower(r.Class), "hard") && r.Seed%3 != 0 {
			p = 0.1
		}
		png := binary.LittleEndian.AppendUint64([]byte("\x89PNG"), r.Seed)
		res[i] = []generator.Image{{Seed: r.Seed, PNG: png, Scores: generator.Scores{ClassProb: &p, Features: features(png)}}}
	}
	return res, nil
}

func (f *fakeService) ScoreImages(_ context.Context, _ string, images [][]byte) ([]generator.Scores, error) {
	f.scored.Add(int64(len(images)))
	res := make([]generator.Scores, len(images))
	for i, b := range images {
		res[i].Features = features(b)
	}
	return res, nil
}

func features(b []byte) []float32 {
	var s uint64
	for _, c := range b {
		s = s*131 + uint64(c)
	}
	return []float32{float32(s % 97), float32(s % 89), float32(s % 83)}
}

// fakeModel is a class model of three classes (ids 3, 7, 12) in dir.
func fakeModel(t *testing.T) *catalog.Model {
	t.Helper()
	dir := t.TempDir()
	cls := catalog.Classes{Classes: []catalog.Class{
		{Index: 0, ID: 3, Name: "003.Easy_one", Label: "Easy one"},
		{Index: 1, ID: 7, Name: "007.Hard_one", Label: "Hard one"},
		{Index: 2, ID: 12, Name: "012.Easy_two", Label: "Easy two"},
		{Index: -1, ID: 13, Name: "013.Held_out", Label: "Held out"},
	}}
	man := catalog.Manifest{Schema: 1, Name: "fake-cvaegan", Kind: catalog.KindCVAEGAN, Version: "1", Classes: "classes.json"}
	for name, v := range map[string]any{"classes.json": cls, "model.json": man} {
		raw, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &catalog.Model{Dir: dir, Manifest: &man}
}

// TestBudgetAdapts: a class that passes the bar one time in three gets the
// attempts the easy classes did not need, and fills; the job makes no
// more than MaxAttempts × PerClass × classes; and a job stopped after each
// batch and continued makes the same attempts as one never stopped.
func TestBudgetAdapts(t *testing.T) {
	m := fakeModel(t)
	spec := Spec{Model: "fake-cvaegan", Classes: []string{"3", "007", "012.Easy_two"}, PerClass: 10, MinFidelity: 0.5, MaxAttempts: 2}
	dir := filepath.Join(t.TempDir(), "set")
	rep, err := Make(t.Context(), &fakeService{}, m, spec, dir, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	hard := rep.Classes[1]
	if hard.Class != "007.Hard_one" || hard.Attempts <= 20 {
		t.Errorf("hard class: %+v; want more than its own 20 attempts", hard)
	}
	if rep.Attempts > 60 {
		t.Errorf("%d attempts, budget 60", rep.Attempts)
	}
	if len(rep.Short) > 0 || rep.Accepted != 30 {
		t.Errorf("accepted %d, short %v", rep.Accepted, rep.Short)
	}

	// Stopped after every batch, continued until done: the same journal.
	dir2 := filepath.Join(t.TempDir(), "set")
	for runs := 0; ; runs++ {
		ctx, cancel := context.WithCancel(t.Context())
		batches := 0
		_, err := Make(ctx, &fakeService{}, m, spec, dir2, Options{Batch: 4, Progress: func(p Progress) {
			if p.Phase == "generating" {
				if batches++; batches == 2 {
					cancel()
				}
			}
		}})
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) || runs > 100 {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, journalFile))
	b, _ := os.ReadFile(filepath.Join(dir2, journalFile))
	if string(a) != string(b) {
		t.Errorf("the continued job's journal differs from the uninterrupted one")
	}

	// Too small a budget for anyone to help: the hard class falls short
	// and the report says so; no error.
	spec.Classes, spec.MaxAttempts = []string{"7"}, 1
	rep, err = Make(t.Context(), &fakeService{}, m, spec, filepath.Join(t.TempDir(), "set"), Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Short) != 1 || rep.Classes[0].Accepted >= 10 || rep.Attempts != 10 {
		t.Errorf("short %v, %+v", rep.Short, rep.Classes[0])
	}
}

// TestLabelsAreGlobal: two data sets of different classes give a class the
// same label, its id and name in every record, and name all labels in
// classes.txt.
func TestLabelsAreGlobal(t *testing.T) {
	m := fakeModel(t)
	labels := map[string]int{}
	for _, classes := range [][]string{{"12"}, {"3", "12"}} {
		dir := filepath.Join(t.TempDir(), "set")
		spec := Spec{Model: "fake-cvaegan", Classes: classes, PerClass: 2, MinFidelity: 0.5}
		if _, err := Make(t.Context(), &fakeService{}, m, spec, dir, Options{}); err != nil {
			t.Fatal(err)
		}
		recs, err := ReadRecords(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if l, ok := labels[r.Class]; ok && l != r.Label {
				t.Errorf("%s: label %d in one data set, %d in another", r.Class, l, r.Label)
			}
			labels[r.Class] = r.Label
			if r.ClassName == "" || r.ClassID == 0 || !strings.HasPrefix(r.Class, fmt.Sprintf("%03d.", r.ClassID)) {
				t.Errorf("record %+v: want the class's id and name", r)
			}
		}
		names, _ := os.ReadFile(filepath.Join(dir, "classes.txt"))
		if want := "0 003.Easy_one\n1 007.Hard_one\n2 012.Easy_two\n3 013.Held_out\n"; string(names) != want {
			t.Errorf("classes.txt:\n%s\nwant\n%s", names, want)
		}
		if _, err := Verify(dir); err != nil {
			t.Error(err)
		}
	}
	if labels["012.Easy_two"] != 2 || labels["003.Easy_one"] != 0 {
		t.Errorf("labels %v", labels)
	}
}

// TestPreflightWritesNothing: a bad class, a threshold without a
// reference, or a spec that conflicts with the directory's data set are
// refused before any work, naming what is wrong; a good spec passes, and
// nothing is written either way.
func TestPreflightWritesNothing(t *testing.T) {
	m := fakeModel(t)
	dir := filepath.Join(t.TempDir(), "set")
	spec := Spec{Model: "fake-cvaegan", Classes: []string{"3"}, PerClass: 2, MinFidelity: 0.5, MinNovelty: 0.1}
	if _, err := Make(t.Context(), &fakeService{}, m, spec, dir, Options{Reference: NewReference("s", []Real{{ID: 1, Train: true, Features: []float32{1e6, 1e6, 1e6}}})}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, specFile))
	var se *SpecError
	for _, c := range []struct {
		name   string
		edit   func(*Spec)
		dir    string
		ref    bool
		target error
		field  string
	}{
		{"no such class", func(s *Spec) { s.Classes = []string{"99"} }, t.TempDir(), true, ErrSpec, "classes"},
		{"held-out class for a class model", func(s *Spec) { s.Classes = []string{"013"} }, t.TempDir(), true, ErrSpec, "classes"},
		{"novelty without reference", func(s *Spec) {}, t.TempDir(), false, ErrSpec, "min_novelty"},
		{"auto without reference: no check", func(s *Spec) { s.MinNovelty, s.MinNoveltyAuto = 0, true }, t.TempDir(), false, nil, ""},
		{"another bar in the directory", func(s *Spec) { s.MinFidelity = 0.7 }, dir, true, ErrSpecChanged, ""},
		{"more per class continues", func(s *Spec) { s.PerClass = 5 }, dir, true, nil, ""},
		{"fresh directory", func(s *Spec) {}, filepath.Join(t.TempDir(), "new"), true, nil, ""},
	} {
		s := spec
		c.edit(&s)
		_, err := Preflight(&fakeService{}, m, s, c.dir, c.ref)
		switch {
		case c.target == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.target != nil && !errors.Is(err, c.target):
			t.Errorf("%s: %v, want %v", c.name, err, c.target)
		case c.field != "" && (!errors.As(err, &se) || se.Field != c.field):
			t.Errorf("%s: %v, want field %s", c.name, err, c.field)
		}
		if c.target == ErrSpecChanged && !strings.Contains(err.Error(), "0.5") {
			t.Errorf("%s: %v: want the directory's value", c.name, err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(dir, specFile))
	if string(before) != string(after) {
		t.Error("Preflight changed spec.json")
	}
}

// TestFeatureCache: the second reference of the same model and data is
// read from the cache without scoring; the near-copy distance is kept
// too; a changed image or model is scored anew.
func TestFeatureCache(t *testing.T) {
	m := fakeModel(t)
	root := t.TempDir()
	ds := &cub.Dataset{Root: root, Dir: root, Classes: map[int]string{3: "003.Easy_one", 7: "007.Hard_one"}}
	for i := 1; i <= 6; i++ {
		p := fmt.Sprintf("c/%d.png", i)
		ds.Images = append(ds.Images, cub.Image{ID: i, Path: p, ClassID: 3 + 4*(i%2), Train: i <= 4})
		os.MkdirAll(filepath.Join(root, "images", "c"), 0o755)
		if err := os.WriteFile(filepath.Join(root, "images", p), []byte(fmt.Sprint("image", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := FeatureCache{Dir: filepath.Join(t.TempDir(), "cache")}
	sc := &fakeService{}
	ref, hit, err := cache.Reference(t.Context(), sc, m, ds)
	if err != nil || hit || sc.scored.Load() != 6 {
		t.Fatalf("first: hit %v, scored %d, %v", hit, sc.scored.Load(), err)
	}
	d := ref.NearCopyDistance(0.5)
	ref2, hit, err := cache.Reference(t.Context(), sc, m, ds)
	if err != nil || !hit || sc.scored.Load() != 6 || len(ref2.Images) != 6 || ref2.TrainCount() != 4 {
		t.Fatalf("second: hit %v, scored %d, %d images, %v", hit, sc.scored.Load(), len(ref2.Images), err)
	}
	if c, ok := ref2.cache.nearCopy(0.5); !ok || c != d {
		t.Errorf("near-copy distance %v %v from the cache, want %v", c, ok, d)
	}
	if fmt.Sprint(ref2.Images[2].Features) != fmt.Sprint(ref.Images[2].Features) {
		t.Error("cached features differ")
	}
	os.WriteFile(filepath.Join(root, "images", "c/2.png"), []byte("changed image"), 0o644)
	if _, hit, _ = cache.Reference(t.Context(), sc, m, ds); hit || sc.scored.Load() != 12 {
		t.Errorf("after a changed image: hit %v, scored %d", hit, sc.scored.Load())
	}
	m.Manifest.Version = "2"
	raw, _ := json.Marshal(m.Manifest)
	os.WriteFile(filepath.Join(m.Dir, "model.json"), raw, 0o644)
	if _, hit, _ = cache.Reference(t.Context(), sc, m, ds); hit {
		t.Error("after a changed model: cache hit")
	}
}
