package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/generator/dataset"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/client"
)

// inProcessDatasetFlags are the `studio dataset make` flags that only mean
// something when the data set is made in this process.
var inProcessDatasetFlags = []string{"data", "batch", "models-dir", "ort-lib", "threads", "feature-cache"}

// remoteDatasetMake is `studio dataset make --server URL`: the job runs on
// the server's workers; this process follows it, downloads the tar and
// unpacks it into out, then checks every file against the manifest.
// Ctrl-C or SIGTERM cancels the remote job (its folder stays resumable on
// the server) and prints its id.
func remoteDatasetMake(ctx context.Context, fs *flag.FlagSet, server, token string, req api.DatasetRequest, out, progress string, stdout, stderr io.Writer) error {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		for _, n := range inProcessDatasetFlags {
			if f.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	if len(set) > 0 {
		sort.Strings(set)
		return &usageError{fmt.Sprintf("%s: only for a data set made in this process, not with --server (the server's workers use their own models, data and threads)", strings.Join(set, ", "))}
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return &usageError{fmt.Sprintf("invalid --out=%q: with --server, want a new or empty directory (the data set is downloaded into it)", out)}
	}
	c, err := client.New(server, token, nil)
	if err != nil {
		return &usageError{err.Error()}
	}
	job, err := c.CreateDataset(ctx, req)
	if err != nil {
		return err
	}
	id := job.ID
	fmt.Fprintf(stderr, "dataset job %s queued on %s\n", id, server)
	t0 := time.Now()
	job, err = c.WaitDataset(ctx, id, func(ev api.Event) {
		if progress == "none" {
			return
		}
		switch ev.Type {
		case api.EventStarted:
			fmt.Fprintf(stderr, "started\n")
		case api.EventProgress:
			// One result per finished class, then one for the report.
			if ev.Done >= ev.Total {
				return
			}
			fmt.Fprintf(stderr, "%d/%d classes done  %.0fs\n", ev.Done, ev.Total-1, time.Since(t0).Seconds())
		case api.EventRetrying:
			fmt.Fprintf(stderr, "retrying: %s\n", ev.Error)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, cerr := c.CancelDataset(cctx, id); cerr != nil {
				return fmt.Errorf("%w; cancelling dataset job %s on %s failed: %v", err, id, server, cerr)
			}
			return fmt.Errorf("%w: dataset job %s cancelled on %s", err, id, server)
		}
		return fmt.Errorf("dataset job %s: %w", id, err)
	}
	if job.State != "succeeded" {
		return fmt.Errorf("dataset job %s %s: %s", job.ID, job.State, job.Error)
	}
	fmt.Fprintf(stderr, "downloading data set %s into %s ...\n", job.ID, out)
	n, err := c.ExtractDataset(ctx, job.ID, out)
	if err != nil {
		return fmt.Errorf("download of dataset job %s: %w (download again with a new --out: GET %s)", job.ID, err, job.Links.Download)
	}
	if err := writeSums(out); err != nil {
		return fmt.Errorf("downloaded data set %s: %w", out, err)
	}
	m, err := dataset.Verify(out)
	if err != nil {
		return fmt.Errorf("downloaded data set %s: %w", out, err)
	}
	var rep dataset.Report
	if len(job.Report) > 0 && json.Unmarshal(job.Report, &rep) == nil {
		rep.Dir = out
		printDatasetReport(stdout, &rep)
	}
	imgs := 0
	for _, cl := range m.Classes {
		imgs += cl.Count
	}
	fmt.Fprintf(stdout, "%s: %d files downloaded from dataset job %s match the manifest (%d images, %d classes)\n", out, n, job.ID, imgs, len(m.Classes))
	printShort(stderr, &rep, "make it again with a larger --max-attempts, or a lower --min-fidelity")
	return nil
}

// writeSums writes SHA256SUMS from the manifest when the download had
// none (a server from before it served them); Verify then checks it.
func writeSums(dir string) error {
	p := filepath.Join(dir, datasetspec.SumsFile)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	m, err := dataset.ReadManifest(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(datasetspec.Sums(m)), 0o644)
}
