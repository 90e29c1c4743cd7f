package client

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/fgstudio/fgstudio/studio/api"
)

// CreateDataset queues a dataset job (POST /v1/datasets) and returns it at
// once.
func (c *Client) CreateDataset(ctx context.Context, req api.DatasetRequest) (api.Dataset, error) {
	var d api.Dataset
	return d, c.postJSON(ctx, "/v1/datasets", req, &d)
}

// GetDataset reads a dataset job: state, progress per class, report.
func (c *Client) GetDataset(ctx context.Context, id string) (api.Dataset, error) {
	var d api.Dataset
	_, err := c.request(ctx, http.MethodGet, "/v1/datasets/"+url.PathEscape(id), "", nil, nil, &d)
	return d, err
}

// CancelDataset cancels a dataset job; the worker stops after its batch.
func (c *Client) CancelDataset(ctx context.Context, id string) (api.Dataset, error) {
	var d api.Dataset
	_, err := c.request(ctx, http.MethodDelete, "/v1/datasets/"+url.PathEscape(id), "", nil, nil, &d)
	return d, err
}

// DatasetEvents follows a dataset job's event stream (a progress event per
// finished class, then finished), as Events does for generations.
func (c *Client) DatasetEvents(ctx context.Context, id string, fn func(api.Event) error) error {
	return c.events(ctx, id, "/v1/datasets/"+url.PathEscape(id)+"/events", fn)
}

// WaitDataset follows the dataset job until it finishes and returns it;
// progress (may be nil) sees every event.
func (c *Client) WaitDataset(ctx context.Context, id string, progress func(api.Event)) (api.Dataset, error) {
	if err := c.follow(ctx, id, c.DatasetEvents, progress); err != nil {
		return api.Dataset{}, err
	}
	return c.GetDataset(ctx, id)
}

// DownloadDataset streams the tar of a finished data set (manifest.json
// first, then every file it lists) into w.
func (c *Client) DownloadDataset(ctx context.Context, id string, w io.Writer) error {
	p := "/v1/datasets/" + url.PathEscape(id) + "/download"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+p, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return problemError(resp, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", p, err)
	}
	return nil
}

// ExtractDataset downloads a finished data set and unpacks it into dir
// (created if missing; it should be new or empty). It checks that the
// archive is whole (a broken stream ends before the tar's end marker) and
// that manifest.json came first and lists every file that followed; the
// checksums are the caller's to verify (generator/dataset.Verify). It
// returns the number of files written.
func (c *Client) ExtractDataset(ctx context.Context, id, dir string) (int, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.DownloadDataset(ctx, id, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	n, err := extractTar(pr, dir)
	pr.CloseWithError(errors.New("extract stopped"))
	if derr := <-done; derr != nil {
		return n, derr
	}
	return n, err
}

func extractTar(r io.Reader, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	tr := tar.NewReader(r)
	var listed map[string]bool
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("data set archive: %w", err)
		}
		name := h.Name
		if h.Typeflag != tar.TypeReg || name == "" || path.IsAbs(name) || path.Clean(name) != name ||
			name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "\\") {
			return n, fmt.Errorf("data set archive: unexpected entry %q", name)
		}
		if n == 0 {
			if name != "manifest.json" {
				return n, fmt.Errorf("data set archive: first entry is %q, want manifest.json", name)
			}
		} else if !listed[name] && name != "SHA256SUMS" {
			return n, fmt.Errorf("data set archive: %s is not in the manifest", name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return n, err
		}
		if err := writeFile(dst, tr); err != nil {
			return n, fmt.Errorf("data set archive: %s: %w", name, err)
		}
		if n == 0 {
			raw, err := os.ReadFile(dst)
			if err != nil {
				return n, err
			}
			var m struct {
				Files []struct {
					Path string `json:"path"`
				} `json:"files"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				return n, fmt.Errorf("data set archive: manifest.json: %w", err)
			}
			listed = map[string]bool{}
			for _, f := range m.Files {
				listed[f.Path] = true
			}
		}
		n++
	}
	if n == 0 {
		return 0, errors.New("data set archive is empty")
	}
	return n, nil
}

func writeFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
