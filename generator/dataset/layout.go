package dataset

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// The on-disk format lives in datasetspec (the API verifies and serves
// data sets without linking the generator); these are the same types.
type (
	// Record is one kept image as the layouts describe it.
	Record = datasetspec.Record
	// Scores are the scorer's numbers of a kept image.
	Scores = datasetspec.Scores
	// Novelty is the nearest real training image of a kept image.
	Novelty = datasetspec.Novelty
	// Manifest is manifest.json.
	Manifest = datasetspec.Manifest
	// ManifestClass is one class of the data set.
	ManifestClass = datasetspec.ManifestClass
	// Layouts says where each layout lives, relative to the directory.
	Layouts = datasetspec.Layouts
	// File is one file of the data set.
	File = datasetspec.File
	// Report is report.json.
	Report = datasetspec.Report
	// ClassReport is one class of the report.
	ClassReport = datasetspec.ClassReport
	// RunStats is the throughput of the Make call that wrote the report.
	RunStats = datasetspec.RunStats
)

// ManifestFormat names this layout version.
const ManifestFormat = datasetspec.ManifestFormat

// ErrCorrupt marks a data set whose files do not match its manifest.
var ErrCorrupt = datasetspec.ErrCorrupt

// ReadManifest reads a data set's manifest.json (datasetspec.ReadManifest).
func ReadManifest(dir string) (*Manifest, error) { return datasetspec.ReadManifest(dir) }

// Verify checks a finished data set against its manifest
// (datasetspec.Verify).
func Verify(dir string) (*Manifest, error) { return datasetspec.Verify(dir) }

// ReadRecords reads images/metadata.jsonl of a data set.
func ReadRecords(dir string) ([]Record, error) { return datasetspec.ReadRecords(dir) }

// ImagePath is where a record's image lives.
func ImagePath(dir string, r Record) string { return datasetspec.ImagePath(dir, r) }

// ReadSpec reads the spec a data set directory was made with
// (datasetspec.ReadSpec).
func ReadSpec(dir string) (*Spec, error) { return datasetspec.ReadSpec(dir) }

// ReadReport reads a data set's report.json.
func ReadReport(dir string) (*Report, error) { return datasetspec.ReadReport(dir) }

func fileSHA256(path string) (string, int64, error) { return datasetspec.FileSHA256(path) }

// tarTime is the modification time of every tar entry: the shards are
// the same bytes whenever they are written.
var tarTime = time.Unix(0, 0).UTC()

func records(m *catalog.Model, states []*classState) []Record {
	var res []Record
	for _, st := range states {
		for _, a := range st.accepted {
			r := Record{FileName: strings.TrimPrefix(a.File, imagesDir+"/"), Class: a.Class, Label: st.plan.Label,
				ClassName: st.plan.Class.Label, ClassID: st.plan.Class.ID,
				Prompt: a.Prompt, Seed: a.Seed, Attempt: a.Attempt, Model: m.Manifest.Name, ModelVersion: m.Manifest.Version,
				Scores: a.Scores}
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
	if err := writeAtomic(filepath.Join(dir, SumsFile), []byte(datasetspec.Sums(man))); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestFile), append(raw, '\n'))
}

// finish writes everything but the images: layouts, report, manifest.
func finish(ctx context.Context, svc Service, m *catalog.Model, spec Spec, dir string, states []*classState, ref *Reference) (*Report, error) {
	recs := records(m, states)
	if err := writeNames(dir, m); err != nil {
		return nil, fmt.Errorf("data set %s: %w", dir, err)
	}
	shards, err := writeLayouts(dir, spec, recs)
	if err != nil {
		return nil, fmt.Errorf("data set %s: %w", dir, err)
	}
	rep, err := buildReport(ctx, svc, m, spec, dir, states, ref)
	if err != nil {
		return nil, err
	}
	man := &Manifest{Format: ManifestFormat, Model: m.Manifest.Name, ModelVersion: m.Manifest.Version, Spec: spec,
		Layouts: Layouts{ImageFolder: imagesDir, HFMetadata: imagesDir + "/" + metadataFile, WebDataset: shards}}
	for _, st := range states {
		man.Classes = append(man.Classes, ManifestClass{Class: st.plan.Class.Name, Name: st.plan.Class.Label, ID: st.plan.Class.ID,
			Dir: st.plan.Dir, Label: st.plan.Label, Count: len(st.accepted)})
	}
	sort.Slice(man.Classes, func(i, j int) bool { return man.Classes[i].Label < man.Classes[j].Label })
	rep.SetManifest(man)
	return rep, nil
}

// writeNames writes classes.txt: every class of the model's world,
// "<label> <class>" in label order, so that the labels of every data set
// of that world have the same names.
func writeNames(dir string, m *catalog.Model) error {
	cls, err := m.ReadClasses()
	if err != nil {
		return err
	}
	labels := datasetspec.GlobalLabels(cls)
	names := make([]string, len(labels))
	for name, l := range labels {
		names[l] = name
	}
	var b strings.Builder
	for l, name := range names {
		fmt.Fprintf(&b, "%d %s\n", l, name)
	}
	return writeAtomic(filepath.Join(dir, datasetspec.NamesFile), []byte(b.String()))
}
