package datasetspec

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Names of the files in a data set directory.
const (
	SpecFile     = "spec.json"      // the spec as Make stored it (classes resolved)
	JournalFile  = "attempts.jsonl" // every attempt, appended after each batch
	LockFile     = ".lock"          // held while a process makes the data set
	ImagesDir    = "images"         // the ImageFolder root
	MetadataFile = "metadata.jsonl" // under ImagesDir: one Record a line
	ShardsDir    = "webdataset"     // WebDataset tar shards
	ReportFile   = "report.json"
	// ManifestFile lists every other file with its size and sha256.
	ManifestFile = "manifest.json"
	// SumsFile is the same list in sha256sum's format.
	SumsFile = "SHA256SUMS"
	// NamesFile lists every class of the model's world, one
	// "<label> <class>" line each in label order (GlobalLabels): the
	// names of the labels of every data set of that world.
	NamesFile = "classes.txt"
)

// Record is one kept image as the layouts describe it: a line of
// images/metadata.jsonl (Hugging Face imagefolder) and the .json of a
// WebDataset sample.
type Record struct {
	FileName     string   `json:"file_name"`  // relative to images/
	Class        string   `json:"class"`      // the catalog's class name, e.g. "005.Blue_crowned_Hookbill"
	ClassName    string   `json:"class_name"` // its label in words, e.g. "Blue crowned Hookbill"
	ClassID      int      `json:"class_id"`   // its id in the data set, e.g. 5
	Label        int      `json:"label"`      // global label (GlobalLabels; classes.txt names them)
	Prompt       string   `json:"prompt,omitempty"`
	Seed         uint64   `json:"seed"`
	Attempt      int      `json:"attempt"`
	Model        string   `json:"model"`
	ModelVersion string   `json:"model_version"`
	Scores       Scores   `json:"scores"`
	Novelty      *Novelty `json:"novelty,omitempty"`
}

// Scores are the scorer's numbers of a kept image: its fidelity and the
// measure it is (class_probability, attribute_agreement or
// damsm_similarity), and each measure the scorer gave.
type Scores struct {
	Fidelity float64 `json:"fidelity"`
	Measure  string  `json:"fidelity_measure"`
	// ClassProb is class_probability (absent for held-out classes).
	ClassProb *float64 `json:"class_prob,omitempty"`
	// AttributeAgreement is attribute_agreement, judged on AttributeBasis:
	// "class" (the class's attributes) or "prompt".
	AttributeAgreement *float64 `json:"attribute_agreement,omitempty"`
	AttributeBasis     string   `json:"attribute_basis,omitempty"`
	// DAMSMSimilarity is damsm_similarity (prompts).
	DAMSMSimilarity *float64 `json:"damsm_similarity,omitempty"`
	// AttributeMatch (share of the class's attributes at the head's top
	// value) and TextSimilarity (the DAMSM cosine, unclamped) are the
	// first scorer's numbers, kept as information.
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
	Name  string `json:"name"` // the class's label in words
	ID    int    `json:"id"`
	Dir   string `json:"dir"`   // safe name: folder under images/ and key prefix
	Label int    `json:"label"` // global label (classes.txt)
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

// Report is report.json: acceptance, novelty and diversity per class, and
// the throughput of the run that finished the data set.
type Report struct {
	Model    string `json:"model"`
	Dir      string `json:"-"`
	PerClass int    `json:"per_class"`
	Accepted int    `json:"accepted"`
	Attempts int    `json:"attempts"`
	// AcceptanceRate is Accepted / Attempts over all classes.
	AcceptanceRate float64 `json:"acceptance_rate"`
	MinFidelity    float64 `json:"min_fidelity"`
	// FidelityMeasures counts the attempts judged by each fidelity measure
	// (class_probability, attribute_agreement, damsm_similarity).
	FidelityMeasures map[string]int `json:"fidelity_measures,omitempty"`
	MinNovelty       float64        `json:"min_novelty"`
	// ReferenceImages is the number of real training images novelty was
	// measured against (0: none).
	ReferenceImages int `json:"reference_images"`
	// Diversity is the mean over classes of the mean pairwise feature
	// distance of kept images; RealDiversity the same for the real images
	// of those classes (all splits).
	Diversity     float64       `json:"diversity"`
	RealDiversity float64       `json:"real_diversity,omitempty"`
	Classes       []ClassReport `json:"classes"`
	// Short lists the classes that ran out of budget before PerClass.
	Short []string `json:"short,omitempty"`
	Run   RunStats `json:"run"`

	manifest *Manifest // set by SetManifest; not in report.json
}

// ClassReport is one class of the report.
type ClassReport struct {
	Class    string `json:"class"`
	Dir      string `json:"dir"`
	Label    int    `json:"label"`
	Accepted int    `json:"accepted"`
	Attempts int    `json:"attempts"`
	// AcceptanceRate is Accepted / Attempts.
	AcceptanceRate   float64 `json:"acceptance_rate"`
	RejectedFidelity int     `json:"rejected_fidelity"`
	RejectedNovelty  int     `json:"rejected_novelty"`
	// FidelityMeasure is what fidelity means for this class: the measure
	// its attempts were judged by (several, comma-separated, when they
	// differ); MeanFidelity is the mean over kept images.
	FidelityMeasure string  `json:"fidelity_measure,omitempty"`
	MeanFidelity    float64 `json:"mean_fidelity"`
	// Novelty of kept images: distance to the nearest real training image.
	NoveltyMin  float64 `json:"novelty_min,omitempty"`
	NoveltyMean float64 `json:"novelty_mean,omitempty"`
	// Diversity: pairwise feature distances between kept images (mean,
	// and the closest pair), and the real images' mean for comparison.
	DiversityMean float64 `json:"diversity_mean"`
	DiversityMin  float64 `json:"diversity_min"`
	RealDiversity float64 `json:"real_diversity,omitempty"`
}

// RunStats is the throughput of the Make call that wrote the report.
type RunStats struct {
	Seconds         float64 `json:"seconds"`          // wall clock of the call
	GenerateSeconds float64 `json:"generate_seconds"` // inside the generator (graphs and scoring)
	Made            int     `json:"made"`             // images generated by this call
	Kept            int     `json:"kept"`             // of which kept
	Resumed         int     `json:"resumed"`          // kept images found from an earlier call
	KeptPerSec      float64 `json:"kept_per_sec"`
	MadePerSec      float64 `json:"made_per_sec"`
	// GeneratorPerSec is Made / GenerateSeconds: the generator alone.
	GeneratorPerSec float64 `json:"generator_per_sec"`
}

// Manifest is what the report's data set manifest says.
func (r *Report) Manifest() *Manifest { return r.manifest }

// SetManifest attaches the data set manifest that the report goes with
// (generator/dataset.Make, before it writes both).
func (r *Report) SetManifest(m *Manifest) { r.manifest = m }

// FileSHA256 is the sha256 (hex) and size of a file.
func FileSHA256(path string) (string, int64, error) {
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
// there with its size and sha256, no other file is, and SHA256SUMS, when
// there, lists the same sums.
func Verify(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		sum, size, err := FileSHA256(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return m, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if sum != f.SHA256 || size != f.Size {
			return m, fmt.Errorf("%w: %s has sha256 %s (%d bytes), manifest says %s (%d bytes)", ErrCorrupt, f.Path, sum, size, f.SHA256, f.Size)
		}
	}
	if raw, err := os.ReadFile(filepath.Join(dir, SumsFile)); err == nil && string(raw) != Sums(m) {
		return m, fmt.Errorf("%w: %s does not list the manifest's sums", ErrCorrupt, SumsFile)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if !listed[rel] && rel != ManifestFile && rel != SumsFile && rel != LockFile {
			return fmt.Errorf("%w: %s is not in the manifest", ErrCorrupt, rel)
		}
		return nil
	})
	return m, err
}

// Sums is the SHA256SUMS of a manifest: "<sha256>  <path>" a file, in
// the manifest's order (sha256sum -c checks it).
func Sums(m *Manifest) string {
	var b strings.Builder
	for _, f := range m.Files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Path)
	}
	return b.String()
}

// ReadRecords reads images/metadata.jsonl of a data set.
func ReadRecords(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, ImagesDir, MetadataFile))
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
			return nil, fmt.Errorf("%s: record %d: %w", MetadataFile, len(res)+1, err)
		}
		res = append(res, r)
	}
}

// ImagePath is where a record's image lives.
func ImagePath(dir string, r Record) string {
	return filepath.Join(dir, ImagesDir, filepath.FromSlash(r.FileName))
}

// ReadSpec reads the spec a data set directory was made with (as Make
// stored it, classes resolved); fs.ErrNotExist when there is none.
func ReadSpec(dir string) (*Spec, error) {
	raw, err := os.ReadFile(filepath.Join(dir, SpecFile))
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SpecFile), err)
	}
	return &s, nil
}

// ReadReport reads a data set's report.json.
func ReadReport(dir string) (*Report, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ReportFile), err)
	}
	r.Dir = dir
	return &r, nil
}
