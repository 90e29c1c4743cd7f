package dataset

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"fgstudio/catalog"
)

// Record is one kept image as the layouts describe it: a line of
// images/metadata.jsonl (Hugging Face imagefolder) and the .json of a
// WebDataset sample.
type Record struct {
	FileName     string   `json:"file_name"` // relative to images/
	Class        string   `json:"class"`     // the catalog's class name
	Label        int      `json:"label"`     // torchvision's index: sorted folder names
	Prompt       string   `json:"prompt,omitempty"`
	Seed         uint64   `json:"seed"`
	Attempt      int      `json:"attempt"`
	Model        string   `json:"model"`
	ModelVersion string   `json:"model_version"`
	Scores       Scores   `json:"scores"`
	Novelty      *Novelty `json:"novelty,omitempty"`
}

// Scores are the scorer's numbers of a kept image.
type Scores struct {
	Fidelity       float64  `json:"fidelity"`
	Measure        string   `json:"fidelity_measure"`
	ClassProb      *float64 `json:"class_prob,omitempty"`
	AttributeMatch *float64 `json:"attribute_match,omitempty"`
	TextSimilarity *float64 `json:"text_similarity,omitempty"`
	Top1           string   `json:"top1,omitempty"`
}

// Novelty is the nearest real training image of a kept image.
type Novelty struct {
	Distance    float64 `json:"distance"`
	NeighbourID int     `json:"neighbour_id"`
}

// Manifest is manifest.json: what the data set is and every file in it.
type Manifest struct {
	Format       string          `json:"format"`
	Model        string          `json:"model"`
	ModelVersion string          `json:"model_version"`
	Spec         Spec            `json:"spec"`
	Classes      []ManifestClass `json:"classes"`
	Layouts      Layouts         `json:"layouts"`
	Files        []File          `json:"files"`
}

// ManifestClass is one class of the data set.
type ManifestClass struct {
	Class string `json:"class"`
	Dir   string `json:"dir"` // safe name: folder under images/ and key prefix
	Label int    `json:"label"`
	Count int    `json:"count"`
}

// Layouts says where each layout lives, relative to the directory.
type Layouts struct {
	ImageFolder string   `json:"imagefolder"`    // torchvision ImageFolder root
	HFMetadata  string   `json:"hf_imagefolder"` // its metadata.jsonl (the same root is a Hugging Face imagefolder)
	WebDataset  []string `json:"webdataset"`     // tar shards: <key>.png, <key>.cls, <key>.json
}

// File is one file of the data set.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ManifestFormat names this layout version.
const ManifestFormat = "fgstudio-dataset/1"

// tarTime is the modification time of every tar entry: the shards are
// the same bytes whenever they are written.
var tarTime = time.Unix(0, 0).UTC()

func records(m *catalog.Model, states []*classState) []Record {
	var res []Record
	for _, st := range states {
		for _, a := range st.accepted {
			r := Record{FileName: strings.TrimPrefix(a.File, imagesDir+"/"), Class: a.Class, Label: st.plan.label,
				Prompt: a.Prompt, Seed: a.Seed, Attempt: a.Attempt, Model: m.Manifest.Name, ModelVersion: m.Manifest.Version,
				Scores: Scores{Fidelity: a.Fidelity, Measure: a.Measure, ClassProb: a.ClassProb, AttributeMatch: a.AttributeMatch,
					TextSimilarity: a.TextSimilarity, Top1: a.Top1}}
			if a.Neighbour >= 0 {
				r.Novelty = &Novelty{Distance: a.Novelty, NeighbourID: a.Neighbour}
			}
			res = append(res, r)
		}
	}
	sort.SliceStable(res, func(i, j int) bool {
		if res[i].Label != res[j].Label {
			return res[i].Label < res[j].Label
		}
		return res[i].Attempt < res[j].Attempt
	})
	return res
}

// writeLayouts writes metadata.jsonl and the WebDataset shards (the
// ImageFolder is the images themselves) and removes stale shards.
func writeLayouts(dir string, spec Spec, recs []Record) ([]string, error) {
	err := writeAtomicFrom(filepath.Join(dir, imagesDir, metadataFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Shards hold a seeded shuffle, so each shard mixes the classes.
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x7a9))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	if err := os.MkdirAll(filepath.Join(dir, shardsDir), 0o755); err != nil {
		return nil, err
	}
	var shards []string
	for from := 0; from < len(order); from += spec.ShardSize {
		name := fmt.Sprintf("%s/shard-%06d.tar", shardsDir, len(shards))
		part := order[from:min(from+spec.ShardSize, len(order))]
		err := writeAtomicFrom(filepath.Join(dir, filepath.FromSlash(name)), func(w io.Writer) error {
			return writeShard(w, dir, recs, part)
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		shards = append(shards, name)
	}
	keep := map[string]bool{}
	for _, s := range shards {
		keep[filepath.Base(s)] = true
	}
	entries, err := os.ReadDir(filepath.Join(dir, shardsDir))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, shardsDir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return shards, nil
}

func writeShard(w io.Writer, dir string, recs []Record, idx []int) error {
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: tarTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, i := range idx {
		r := recs[i]
		key := strings.TrimSuffix(filepath.Base(r.FileName), ".png")
		img, err := os.ReadFile(filepath.Join(dir, imagesDir, filepath.FromSlash(r.FileName)))
		if err != nil {
			return err
		}
		meta, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := put(key+".png", img); err != nil {
			return err
		}
		if err := put(key+".cls", []byte(fmt.Sprint(r.Label))); err != nil {
			return err
		}
		if err := put(key+".json", meta); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeManifest lists every file of dir but the manifest and the sums
// file, with sizes and sha256, in manifest.json and SHA256SUMS.
func writeManifest(dir string, man *Manifest) error {
	man.Files = nil
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if rel == ManifestFile || rel == SumsFile || rel == lockFile || strings.HasSuffix(rel, ".tmp") {
			return nil
		}
		sum, size, err := fileSHA256(path)
		if err != nil {
			return err
		}
		man.Files = append(man.Files, File{Path: rel, Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(man.Files, func(i, j int) bool { return man.Files[i].Path < man.Files[j].Path })
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	var sums strings.Builder
	for _, f := range man.Files {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Path)
	}
	if err := writeAtomic(filepath.Join(dir, SumsFile), []byte(sums.String())); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestFile), append(raw, '\n'))
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ReadManifest reads a data set's manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", filepath.Join(dir, ManifestFile), m.Format, ManifestFormat)
	}
	return &m, nil
}

// ErrCorrupt marks a data set whose files do not match its manifest.
var ErrCorrupt = errors.New("data set does not match its manifest")

// Verify checks a finished data set: every file the manifest lists is
// there with its size and sha256, and no other file is.
func Verify(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		sum, size, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return m, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if sum != f.SHA256 || size != f.Size {
			return m, fmt.Errorf("%w: %s has sha256 %s (%d bytes), manifest says %s (%d bytes)", ErrCorrupt, f.Path, sum, size, f.SHA256, f.Size)
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if !listed[rel] && rel != ManifestFile && rel != SumsFile && rel != lockFile {
			return fmt.Errorf("%w: %s is not in the manifest", ErrCorrupt, rel)
		}
		return nil
	})
	return m, err
}

// ReadRecords reads images/metadata.jsonl of a data set.
func ReadRecords(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, imagesDir, metadataFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res []Record
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var r Record
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", metadataFile, len(res)+1, err)
		}
		res = append(res, r)
	}
}

// ImagePath is where a record's image lives.
func ImagePath(dir string, r Record) string {
	return filepath.Join(dir, imagesDir, filepath.FromSlash(r.FileName))
}

// finish writes everything but the images: layouts, report, manifest.
func finish(ctx context.Context, svc Service, m *catalog.Model, spec Spec, dir string, states []*classState, ref *Reference) (*Report, error) {
	recs := records(m, states)
	shards, err := writeLayouts(dir, spec, recs)
	if err != nil {
		return nil, fmt.Errorf("data set %s: %w", dir, err)
	}
	rep, err := buildReport(ctx, svc, m, spec, dir, states, ref)
	if err != nil {
		return nil, err
	}
	rep.manifest = &Manifest{Format: ManifestFormat, Model: m.Manifest.Name, ModelVersion: m.Manifest.Version, Spec: spec,
		Layouts: Layouts{ImageFolder: imagesDir, HFMetadata: imagesDir + "/" + metadataFile, WebDataset: shards}}
	for _, st := range states {
		rep.manifest.Classes = append(rep.manifest.Classes, ManifestClass{Class: st.plan.class.Name, Dir: st.plan.dir, Label: st.plan.label, Count: len(st.accepted)})
	}
	sort.Slice(rep.manifest.Classes, func(i, j int) bool { return rep.manifest.Classes[i].Label < rep.manifest.Classes[j].Label })
	return rep, nil
}
