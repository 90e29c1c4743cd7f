package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
)

// Attempt is one image made for a class, kept or not: a line of
// attempts.jsonl.
type Attempt struct {
	Class   string `json:"class"`
	Attempt int    `json:"attempt"`
	Seed    uint64 `json:"seed"`
	Prompt  string `json:"prompt,omitempty"`
	// Scores are the fidelity, its measure and the scorer's numbers
	// behind it, where it gave them; the fields stand inline, as in
	// metadata.jsonl's "scores".
	Scores
	// Novelty is the feature distance to the nearest real training image,
	// Neighbour that image's id in the data set (-1 without a reference).
	Novelty   float64 `json:"novelty"`
	Neighbour int     `json:"neighbour_id"`
	Accepted  bool    `json:"accepted"`
	// Rejected says why an image was not kept: "fidelity" or "novelty".
	Rejected string `json:"rejected,omitempty"`
	// File (relative to the data set directory) and its sha256, if kept.
	File   string `json:"file,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Names of the files in a data set directory (datasetspec's).
const (
	specFile     = datasetspec.SpecFile
	journalFile  = datasetspec.JournalFile
	lockFile     = datasetspec.LockFile
	imagesDir    = datasetspec.ImagesDir
	metadataFile = datasetspec.MetadataFile
	shardsDir    = datasetspec.ShardsDir
	reportFile   = datasetspec.ReportFile
	// ManifestFile lists every other file with its size and sha256.
	ManifestFile = datasetspec.ManifestFile
	// SumsFile is the same list in sha256sum's format.
	SumsFile = datasetspec.SumsFile
)

// journal is attempts.jsonl, appended after each batch.
type journal struct {
	f *os.File
}

// readJournal reads every complete line; a torn last line (the process
// died while writing it) is cut off.
func readJournal(path string) ([]Attempt, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var res []Attempt
	good := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		end := good + len(line) + 1
		if end > len(raw) { // no newline: torn
			break
		}
		var a Attempt
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", journalFile, len(res)+1, err)
		}
		res = append(res, a)
		good = end
	}
	if good < len(raw) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{f: f}, nil
}

// append writes the attempts of one batch as one write, then syncs.
func (j *journal) append(as []Attempt) error {
	if len(as) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, a := range as {
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return j.f.Sync()
}

func (j *journal) close() error { return j.f.Close() }

// lockDir takes an exclusive lock on dir for this process; the kernel
// drops it when the process dies, however it dies.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrBusy, dir)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeAtomic writes a file through a temporary name and a rename, so a
// reader (or a resumed run) never sees half a file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeAtomicFrom is writeAtomic for content produced by a writer.
func writeAtomicFrom(path string, fill func(w io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
