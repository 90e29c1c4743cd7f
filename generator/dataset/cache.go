package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/cub"
)

// featureCacheVersion changes whenever the way real images are prepared
// or scored changes, so that an old cache file is never read as new.
const featureCacheVersion = 1

// FeatureCache keeps the scored real images of a data set (a Reference)
// on disk, one file per scorer, keyed by the scorer model's hash and the
// data's: the first run that needs them scores every image, later runs
// (of any command) read them back in a fraction of a second. A changed
// model or data set gives a new key, so a stale file is never used.
type FeatureCache struct {
	// Dir is the cache folder; "" keeps nothing (every call scores).
	Dir string
}

// DefaultFeatureCacheDir is <user cache dir>/fgstudio/features
// ($XDG_CACHE_HOME or ~/.cache on Linux), or "" when there is none.
func DefaultFeatureCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "fgstudio", "features")
}

// ModelHash identifies a model's graphs and classes: the sha256 of its
// model.json (which holds the sha256 of every graph file) and
// classes.json.
func ModelHash(m *catalog.Model) (string, error) {
	h := sha256.New()
	for _, name := range []string{"model.json", m.Manifest.Classes} {
		if name == "" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(m.Dir, name))
		if err != nil {
			return "", fmt.Errorf("hash of model %s: %w", m.Manifest.Name, err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(raw))
		h.Write(raw)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DataHash identifies the images of a data set as a Reference sees them:
// each image's id, file, class, split and box, and its file's size and
// modification time (the files are not read: hashing is a stat each).
func DataHash(ds *cub.Dataset) (string, error) {
	h := sha256.New()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	for _, im := range ds.Images {
		st, err := os.Stat(ds.ImagePath(im))
		if err != nil {
			return "", fmt.Errorf("hash of data set %s: %w", ds.Dir, err)
		}
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", im.ID, im.Path, ds.Classes[im.ClassID])
		put(uint64(im.ClassID))
		if im.Train {
			put(1)
		} else {
			put(0)
		}
		for _, v := range im.BBox {
			put(math.Float64bits(v))
		}
		put(uint64(st.Size()))
		put(uint64(st.ModTime().UnixNano()))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cacheFile is what a cache file holds.
type cacheFile struct {
	Version  int
	Key      string
	Scorer   string
	Images   []Real
	NearCopy map[float64]float64 // NearCopyDistance by quantile
}

// Reference returns the reference of ds scored by the classifier named
// scorer whose model is m: read from the cache when the model and data
// hashes match, else scored (BuildReference) and written to the cache.
// hit says whether the cache answered. A cache that cannot be written is
// no error (the reference is still returned).
func (c FeatureCache) Reference(ctx context.Context, sc ImageScorer, m *catalog.Model, ds *cub.Dataset) (ref *Reference, hit bool, err error) {
	scorer := m.Manifest.Name
	key, path, err := c.key(m, ds)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		if f, err := readCache(path); err == nil && f.Version == featureCacheVersion && f.Key == key && f.Scorer == scorer {
			ref := NewReference(scorer, f.Images)
			ref.cache = &refCache{path: path, file: f}
			return ref, true, nil
		}
	}
	ref, err = BuildReference(ctx, sc, scorer, ds, nil)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		rc := &refCache{path: path, file: cacheFile{Version: featureCacheVersion, Key: key, Scorer: scorer, Images: ref.Images}}
		if rc.write() == nil {
			ref.cache = rc
		}
	}
	return ref, false, nil
}

// key is the cache key of (m, ds) and the file that holds it ("" without
// a cache folder).
func (c FeatureCache) key(m *catalog.Model, ds *cub.Dataset) (key, path string, err error) {
	mh, err := ModelHash(m)
	if err != nil {
		return "", "", err
	}
	dh, err := DataHash(ds)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("v%d\x00%s\x00%s\x00%s", featureCacheVersion, m.Manifest.Name, mh, dh)))
	key = hex.EncodeToString(sum[:])
	if c.Dir == "" {
		return key, "", nil
	}
	return key, filepath.Join(c.Dir, SafeName(m.Manifest.Name)+"-"+key[:16]+".gob"), nil
}

// refCache is the cache file a Reference came from or was written to:
// NearCopyDistance adds its result to it.
type refCache struct {
	mu   sync.Mutex
	path string
	file cacheFile
}

func readCache(path string) (cacheFile, error) {
	var f cacheFile
	raw, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	err = gob.NewDecoder(bytes.NewReader(raw)).Decode(&f)
	return f, err
}

// write writes the cache file atomically (a reader never sees half).
func (rc *refCache) write() error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&rc.file); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(rc.path), 0o755); err != nil {
		return err
	}
	return writeAtomic(rc.path, buf.Bytes())
}

// nearCopy is the cached NearCopyDistance of quantile q.
func (rc *refCache) nearCopy(q float64) (float64, bool) {
	if rc == nil {
		return 0, false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d, ok := rc.file.NearCopy[q]
	return d, ok
}

// remember stores NearCopyDistance(q) in the cache file.
func (rc *refCache) remember(q, d float64) {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.file.NearCopy == nil {
		rc.file.NearCopy = map[float64]float64{}
	}
	rc.file.NearCopy[q] = d
	_ = rc.write()
}
