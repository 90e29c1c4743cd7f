//go:build !unit

package dataset_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// readNames reads a data set's classes.txt: class name by label.
func readNames(t *testing.T, dir string) map[int]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "classes.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		l, name, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(l)
		if !ok || err != nil || n != len(res) {
			t.Fatalf("classes.txt line %q", line)
		}
		res[n] = name
	}
	return res
}

func mustClasses(t *testing.T, name string) *catalog.Classes {
	t.Helper()
	cls, err := model(t, name).ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	return cls
}

func reference(t *testing.T) *dataset.Reference {
	t.Helper()
	ref, err := dataset.BuildReference(t.Context(), svc, "classifier-birds", realSet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref.TrainCount() == 0 || len(ref.Images) != len(realSet.Images) {
		t.Fatalf("reference: %d images, %d train", len(ref.Images), ref.TrainCount())
	}
	return ref
}

// TestLayoutsReadBack makes a small data set and reads each layout back
// the way its users' tools do: folders for ImageFolder, metadata.jsonl
// with a JSON decoder, the WebDataset shards with archive/tar, and the
// manifest's sizes and checksums against every file on disk.
func TestLayoutsReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "set")
	spec := dataset.Spec{Model: "cvaegan-birds", Classes: []string{"54", "046.Yellow_crowned_Warbler", "Brown crowned Grey breasted Grey billed Spoonbill"},
		PerClass: 5, MinFidelity: 0, MinNovelty: 0.01, ShardSize: 4, Seed: 7}
	ref := reference(t)
	var events []dataset.Progress
	rep, err := dataset.Make(t.Context(), svc, model(t, "cvaegan-birds"), spec, dir, dataset.Options{Reference: ref, Batch: 8,
		Progress: func(p dataset.Progress) { events = append(events, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Short) > 0 || rep.Accepted != 15 {
		t.Fatalf("report: %d accepted, short %v", rep.Accepted, rep.Short)
	}
	if last := events[len(events)-1]; last.Phase != "done" || last.Accepted != 15 || last.Target != 15 || last.ClassesDone != 3 {
		t.Errorf("last progress %+v", last)
	}

	// ImageFolder: one folder per class, safe names.
	entries, err := os.ReadDir(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	pngs := map[string][]byte{} // relative to images/
	for _, e := range entries {
		if !e.IsDir() {
			if e.Name() != "metadata.jsonl" {
				t.Errorf("unexpected file images/%s", e.Name())
			}
			continue
		}
		folders = append(folders, e.Name())
		files, _ := os.ReadDir(filepath.Join(dir, "images", e.Name()))
		if len(files) != 5 {
			t.Errorf("class folder %s has %d files, want 5", e.Name(), len(files))
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".png") || strings.Count(f.Name(), ".") != 1 {
				t.Errorf("file %s/%s: want <key>.png", e.Name(), f.Name())
			}
			b, _ := os.ReadFile(filepath.Join(dir, "images", e.Name(), f.Name()))
			if !bytes.HasPrefix(b, []byte("\x89PNG")) {
				t.Errorf("%s is not a PNG", f.Name())
			}
			pngs[e.Name()+"/"+f.Name()] = b
		}
	}
	if len(folders) != 3 || !sort.StringsAreSorted(folders) {
		t.Fatalf("class folders %v", folders)
	}
	for _, f := range folders {
		if f != dataset.SafeName(f) || strings.Contains(f, ".") {
			t.Errorf("folder %q is not a safe name", f)
		}
	}

	// classes.txt names every class of the world by its global label.
	names := readNames(t, dir)
	if len(names) != len(mustClasses(t, "cvaegan-birds").Classes) {
		t.Errorf("classes.txt names %d classes", len(names))
	}

	// Hugging Face imagefolder: metadata.jsonl lists every image once.
	meta := map[string]dataset.Record{}
	mf, err := os.Open(filepath.Join(dir, "images", "metadata.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"file_name", "class", "class_name", "class_id", "label", "seed", "model", "scores"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("metadata line lacks %q: %s", k, sc.Text())
			}
		}
		var r dataset.Record
		json.Unmarshal(sc.Bytes(), &r)
		if _, dup := meta[r.FileName]; dup {
			t.Errorf("%s listed twice", r.FileName)
		}
		meta[r.FileName] = r
		folder, _, _ := strings.Cut(r.FileName, "/")
		if folder != dataset.SafeName(r.Class) || names[r.Label] != r.Class || r.ClassID != r.Label+1 || r.ClassName == "" {
			t.Errorf("%s: class %q (%q, id %d), label %d: classes.txt names label %d %q", r.FileName, r.Class, r.ClassName, r.ClassID, r.Label, r.Label, names[r.Label])
		}
		if r.Scores.Fidelity < spec.MinFidelity || r.Scores.Measure != "class_probability" || r.Scores.ClassProb == nil {
			t.Errorf("%s: scores %+v below the bar or not the class probability", r.FileName, r.Scores)
		}
		if r.Novelty == nil || r.Novelty.Distance < spec.MinNovelty || !isTrainImage(r.Novelty.NeighbourID) {
			t.Errorf("%s: novelty %+v: want a distance ≥ %v to a training image", r.FileName, r.Novelty, spec.MinNovelty)
		}
		if r.Model != "cvaegan-birds" || r.ModelVersion == "" {
			t.Errorf("%s: model %q %q", r.FileName, r.Model, r.ModelVersion)
		}
	}
	if len(meta) != len(pngs) {
		t.Errorf("metadata lists %d images, folders hold %d", len(meta), len(pngs))
	}
	for p := range pngs {
		if _, ok := meta[p]; !ok {
			t.Errorf("%s not in metadata.jsonl", p)
		}
	}

	// WebDataset: every sample once, with .png (the same bytes), .cls
	// (the label) and .json (the metadata).
	shards, _ := filepath.Glob(filepath.Join(dir, "webdataset", "*.tar"))
	if len(shards) != 4 { // 15 samples, 4 per shard
		t.Errorf("%d shards, want 4", len(shards))
	}
	samples := map[string]map[string][]byte{}
	for _, s := range shards {
		f, err := os.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			b, _ := io.ReadAll(tr)
			key, ext, _ := strings.Cut(h.Name, ".")
			if samples[key] == nil {
				samples[key] = map[string][]byte{}
			}
			if _, dup := samples[key][ext]; dup {
				t.Errorf("%s.%s twice in the shards", key, ext)
			}
			samples[key][ext] = b
		}
		f.Close()
	}
	if len(samples) != len(pngs) {
		t.Errorf("shards hold %d samples, want %d", len(samples), len(pngs))
	}
	for key, parts := range samples {
		var r dataset.Record
		if err := json.Unmarshal(parts["json"], &r); err != nil {
			t.Fatalf("%s.json: %v", key, err)
		}
		if !bytes.Equal(parts["png"], pngs[r.FileName]) {
			t.Errorf("%s.png differs from images/%s", key, r.FileName)
		}
		if string(parts["cls"]) != strconv.Itoa(meta[r.FileName].Label) {
			t.Errorf("%s.cls = %q, want %d", key, parts["cls"], meta[r.FileName].Label)
		}
		if want := strings.TrimSuffix(filepath.Base(r.FileName), ".png"); key != want {
			t.Errorf("key %s for %s", key, r.FileName)
		}
	}

	// Manifest: every file but the manifest itself (and the sums file)
	// listed once, with its size and sha256.
	checkManifest(t, dir)
	if _, err := dataset.Verify(dir); err != nil {
		t.Fatal(err)
	}

	// Verify notices a changed byte and a stray file.
	img := filepath.Join(dir, "images", folders[0], strings.TrimPrefix(firstKey(pngs, folders[0]), folders[0]+"/"))
	orig, _ := os.ReadFile(img)
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(img, bad, 0o644)
	if _, err := dataset.Verify(dir); !errors.Is(err, dataset.ErrCorrupt) {
		t.Errorf("a changed byte: %v", err)
	}
	os.WriteFile(img, orig, 0o644)
	os.WriteFile(filepath.Join(dir, "images", "stray.png"), orig, 0o644)
	if _, err := dataset.Verify(dir); !errors.Is(err, dataset.ErrCorrupt) {
		t.Errorf("a stray file: %v", err)
	}
}

func firstKey(m map[string][]byte, prefix string) string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys[0]
}

func isTrainImage(id int) bool {
	for _, im := range realSet.Images {
		if im.ID == id {
			return im.Train
		}
	}
	return false
}

// checkManifest compares manifest.json and SHA256SUMS with the files on
// disk, computing every checksum itself.
func checkManifest(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Format string
		Files  []struct {
			Path   string
			Size   int64
			SHA256 string
		}
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, f := range man.Files {
		if _, dup := listed[f.Path]; dup {
			t.Errorf("%s listed twice", f.Path)
		}
		listed[f.Path] = f.SHA256
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("listed file: %v", err)
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
			t.Errorf("%s: sha256 or size differ from the manifest", f.Path)
		}
	}
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch rel {
		case "manifest.json", "SHA256SUMS", ".lock":
			return nil
		}
		n++
		if _, ok := listed[rel]; !ok {
			t.Errorf("%s is not in the manifest", rel)
		}
		return nil
	})
	for _, want := range []string{"images/metadata.jsonl", "report.json", "spec.json", "attempts.jsonl", "webdataset/shard-000000.tar"} {
		if _, ok := listed[want]; !ok {
			t.Errorf("manifest lacks %s", want)
		}
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != len(man.Files) || n != len(man.Files) {
		t.Errorf("SHA256SUMS %d lines, manifest %d files, disk %d files", len(lines), len(man.Files), n)
	}
	for _, l := range lines {
		sum, path, _ := strings.Cut(l, "  ")
		if listed[path] != sum {
			t.Errorf("SHA256SUMS: %s", l)
		}
	}
}

// TestHeldOutClassesFromDescriptions makes held-out classes with the text
// model from descriptions written from their attributes; fidelity is the
// attribute agreement over the class's attributes (the classifier has no
// probability for them).
func TestHeldOutClassesFromDescriptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "held")
	spec := dataset.Spec{Model: "attngan-birds", Classes: []string{"heldout"}, PerClass: 2, MinFidelity: 0}
	rep, err := dataset.Make(t.Context(), svc, model(t, "attngan-birds"), spec, dir, dataset.Options{Reference: reference(t)})
	if err != nil {
		t.Fatal(err)
	}
	// The bar is the honest one now: a class whose images do not show its
	// attributes runs out of budget short rather than passing.
	cls, err := model(t, "attngan-birds").ReadClasses()
	if err != nil {
		t.Fatal(err)
	}
	held := len(cls.Classes) - len(cls.Trained())
	short := 0
	for _, c := range rep.Classes {
		if c.Accepted < spec.PerClass {
			short++
			if c.Attempts != 4*spec.PerClass {
				t.Errorf("class %s short after %d attempts", c.Class, c.Attempts)
			}
		}
	}
	if len(rep.Classes) != held || rep.Attempts == 0 || short != len(rep.Short) {
		t.Fatalf("%d classes (want %d), %d accepted, short %v", len(rep.Classes), held, rep.Accepted, rep.Short)
	}
	recs, err := dataset.ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Scores.Measure != "attribute_agreement" || r.Scores.AttributeBasis != "class" || r.Scores.AttributeAgreement == nil ||
			r.Scores.Fidelity != *r.Scores.AttributeAgreement || r.Scores.Fidelity < spec.MinFidelity || r.Scores.ClassProb != nil || r.Scores.DAMSMSimilarity == nil {
			t.Errorf("%s: scores %+v", r.FileName, r.Scores)
		}
		if r.Prompt == "" || r.Novelty == nil {
			t.Errorf("%s: prompt %q novelty %v", r.FileName, r.Prompt, r.Novelty)
		}
	}
	for _, c := range rep.Classes {
		if c.Attempts < c.Accepted || c.AcceptanceRate != float64(c.Accepted)/float64(c.Attempts) ||
			c.Attempts != c.Accepted+c.RejectedFidelity+c.RejectedNovelty || c.FidelityMeasure != "attribute_agreement" {
			t.Errorf("class %s: %+v", c.Class, c)
		}
	}
	if len(rep.FidelityMeasures) != 1 || rep.FidelityMeasures["attribute_agreement"] != rep.Attempts {
		t.Errorf("report measures %v, want every attempt judged by attribute_agreement", rep.FidelityMeasures)
	}
	if _, err := dataset.Verify(dir); err != nil {
		t.Fatal(err)
	}
}

// TestResumedRunMatchesUninterrupted cancels a job after its first batch,
// runs it again, and compares with a job that ran through: the same
// images, byte for byte, and exactly PerClass per class.
func TestResumedRunMatchesUninterrupted(t *testing.T) {
	spec := dataset.Spec{Model: "cvaegan-birds", Classes: []string{"54", "46", "31"}, PerClass: 6, MinFidelity: 0, MaxAttempts: 10, Seed: 3}
	m := model(t, "cvaegan-birds")
	whole := filepath.Join(t.TempDir(), "whole")
	if _, err := dataset.Make(t.Context(), svc, m, spec, whole, dataset.Options{Batch: 4}); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut")
	ctx, cancel := context.WithCancel(t.Context())
	batches := 0
	_, err := dataset.Make(ctx, svc, m, spec, cut, dataset.Options{Batch: 4, Progress: func(p dataset.Progress) {
		if p.Phase == "generating" && p.Attempts > 0 {
			batches++
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || batches != 1 {
		t.Fatalf("cancelled run: %v after %d batches", err, batches)
	}
	// A torn journal line, as a crash in mid-write leaves it.
	f, _ := os.OpenFile(filepath.Join(cut, "attempts.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"class":"001.White_crowned`)
	f.Close()
	var first dataset.Progress
	rep, err := dataset.Make(t.Context(), svc, m, spec, cut, dataset.Options{Batch: 4, Progress: func(p dataset.Progress) {
		if first.Phase == "" {
			first = p
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Resumed == 0 || first.Resumed >= 18 || rep.Run.Resumed != first.Resumed {
		t.Errorf("resumed %d images (report %d), want some but not all", first.Resumed, rep.Run.Resumed)
	}
	a, b := images(t, whole), images(t, cut)
	if len(a) != 18 || len(b) != 18 {
		t.Fatalf("%d and %d images, want 18", len(a), len(b))
	}
	for p, sum := range a {
		if b[p] != sum {
			t.Errorf("%s differs between the resumed and the uninterrupted run", p)
		}
	}
	checkManifest(t, cut)
	// Running a finished job again changes nothing.
	rep2, err := dataset.Make(t.Context(), svc, m, spec, cut, dataset.Options{Batch: 4})
	if err != nil || rep2.Run.Made != 0 || rep2.Accepted != 18 {
		t.Fatalf("re-run of a finished job: %v, made %d", err, rep2.Run.Made)
	}
}

// images maps each image file of a data set to its sha256 (from disk).
func images(t *testing.T, dir string) map[string]string {
	t.Helper()
	res := map[string]string{}
	filepath.WalkDir(filepath.Join(dir, "images"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".png") {
			return err
		}
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		res[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	return res
}

func TestRefusals(t *testing.T) {
	m := model(t, "cvaegan-birds")
	good := dataset.Spec{Model: "cvaegan-birds", Classes: []string{"2"}, PerClass: 1} // class 1 is held out
	dir := filepath.Join(t.TempDir(), "d")
	if _, err := dataset.Make(t.Context(), svc, m, good, dir, dataset.Options{}); err != nil {
		t.Fatal(err)
	}
	var se *dataset.SpecError
	cases := []struct {
		name  string
		spec  func(s *dataset.Spec)
		dir   string
		want  error
		field string
	}{
		{"held-out class for a class model", func(s *dataset.Spec) { s.Classes = []string{"heldout"} }, "", dataset.ErrSpec, "classes"},
		{"unknown class", func(s *dataset.Spec) { s.Classes = []string{"no such bird"} }, "", dataset.ErrSpec, "classes"},
		{"per class zero", func(s *dataset.Spec) { s.PerClass = 0 }, "", dataset.ErrSpec, "per_class"},
		{"fidelity above one", func(s *dataset.Spec) { s.MinFidelity = 1.5 }, "", dataset.ErrSpec, "min_fidelity"},
		{"unknown measure", func(s *dataset.Spec) { s.Measure = "vibes" }, "", dataset.ErrSpec, "fidelity_measure"},
		{"novelty without reference", func(s *dataset.Spec) { s.MinNovelty = 1 }, "", dataset.ErrSpec, "min_novelty"},
		{"another spec in the directory", func(s *dataset.Spec) { s.MinFidelity = 0.9 }, dir, dataset.ErrSpecChanged, ""},
		{"a directory of other files", func(s *dataset.Spec) {}, filepath.Join(dir, "images"), dataset.ErrNotEmpty, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good
			c.spec(&s)
			d := c.dir
			if d == "" {
				d = filepath.Join(t.TempDir(), "x")
			}
			_, err := dataset.Make(t.Context(), svc, m, s, d, dataset.Options{})
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.field != "" && (!errors.As(err, &se) || se.Field != c.field) {
				t.Errorf("err %v does not name field %s", err, c.field)
			}
		})
	}
}

// TestMoreImagesContinueTheJob: a larger per-class count (or budget) on
// the same directory keeps the images made and adds to them; a smaller
// one is refused.
func TestMoreImagesContinueTheJob(t *testing.T) {
	m := model(t, "cvaegan-birds")
	spec := dataset.Spec{Model: "cvaegan-birds", Classes: []string{"54"}, PerClass: 2, MinFidelity: 0}
	dir := filepath.Join(t.TempDir(), "d")
	if _, err := dataset.Make(t.Context(), svc, m, spec, dir, dataset.Options{}); err != nil {
		t.Fatal(err)
	}
	first := images(t, dir)
	spec.PerClass, spec.MaxAttempts = 4, 6
	rep, err := dataset.Make(t.Context(), svc, m, spec, dir, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 4 || rep.Run.Resumed != 2 {
		t.Fatalf("%d images, %d resumed", rep.Accepted, rep.Run.Resumed)
	}
	now := images(t, dir)
	for p, sum := range first {
		if now[p] != sum {
			t.Errorf("%s changed", p)
		}
	}
	spec.PerClass = 3
	if _, err := dataset.Make(t.Context(), svc, m, spec, dir, dataset.Options{}); !errors.Is(err, dataset.ErrSpecChanged) {
		t.Errorf("fewer images: %v", err)
	}
}

// TestUnusablePromptIsRefusedBeforeWork: a user's description without a
// word the text model knows is refused up front, naming the field.
func TestUnusablePromptIsRefusedBeforeWork(t *testing.T) {
	spec := dataset.Spec{Model: "attngan-birds", Classes: []string{"5"}, PerClass: 1,
		Prompts: map[string][]string{"5": {"a bird with a blue crown", "zxqv qqq"}}}
	dir := filepath.Join(t.TempDir(), "d")
	_, err := dataset.Make(t.Context(), svc, model(t, "attngan-birds"), spec, dir, dataset.Options{})
	var se *dataset.SpecError
	if !errors.As(err, &se) || se.Field != "prompts" || !strings.Contains(err.Error(), "zxqv") {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a refused job left a directory")
	}
}

// TestBudgetRunsOut asks for a bar no image can pass: each class stops at
// its budget and the report says which classes are short.
func TestBudgetRunsOut(t *testing.T) {
	spec := dataset.Spec{Model: "cvaegan-birds", Classes: []string{"54", "46"}, PerClass: 3, MinFidelity: 1, MaxAttempts: 2}
	rep, err := dataset.Make(t.Context(), svc, model(t, "cvaegan-birds"), spec, filepath.Join(t.TempDir(), "d"), dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Short) != 2 {
		t.Fatalf("short %v", rep.Short)
	}
	for _, c := range rep.Classes {
		if c.Attempts != 6 || c.Accepted+c.RejectedFidelity != 6 {
			t.Errorf("class %s: %d attempts (budget 6), %d kept, %d rejected", c.Class, c.Attempts, c.Accepted, c.RejectedFidelity)
		}
	}
}
