package studio

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// Dataset jobs: POST /v1/datasets validates the spec against the model
// catalogue (datasetspec.Check: no graph, no directory) and queues a jobspec
// Dataset job on the batch lane with one result per class (stored as each
// class is finished) plus the report. The worker makes the data set in
// <DatasetsDir>/<job id>; the download is served from that folder, so it
// works where the API sees the worker's folder (the one-process studio, or
// shared storage under several machines) and answers 409 elsewhere.

func datasetPath(id string) string { return "/v1/datasets/" + id }

// createDataset is POST /v1/datasets.
func (s *Server) createDataset(c *fiber.Ctx) error {
	var req api.DatasetRequest
	if err := decodeJSONBody(c, &req); err != nil {
		return err
	}
	e, err := s.generator(req.Model)
	if err != nil {
		return err
	}
	spec := datasetspec.Spec{Model: req.Model, Classes: req.Classes, PerClass: req.PerClass, MinFidelity: req.MinFidelity,
		Measure: req.FidelityMeasure, MaxAttempts: req.MaxAttempts, MinNovelty: req.MinNovelty, MinNoveltyAuto: req.MinNoveltyAuto,
		Prompts: req.Prompts, ShardSize: req.ShardSize}
	if req.Seed != nil {
		if *req.Seed > jobspec.MaxSeed {
			return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "seed",
				"must be at most %d (2^53−1)", uint64(jobspec.MaxSeed))
		}
		spec.Seed = *req.Seed
	} else {
		spec.Seed = defaultSeed(callerOf(c).client, "", "dataset")
	}
	resolved, err := datasetspec.Check(e.m, spec)
	if err != nil {
		var se *datasetspec.SpecError
		if errors.As(err, &se) {
			slug := api.TypeInvalidField
			if se.Field == "classes" {
				slug = api.TypeUnknownClass
			}
			return problem(fiber.StatusUnprocessableEntity, slug, se.Field, "%s", se.Msg)
		}
		return err
	}
	if n := len(resolved.Classes) * resolved.PerClass; n > s.lim.MaxDatasetImages {
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "per_class",
			"%d classes × %d images is more than this server's limit of %d images per data set", len(resolved.Classes), resolved.PerClass, s.lim.MaxDatasetImages)
	}
	// The queued spec is the caller's (defaults filled, classes as given):
	// resolution is deterministic, so every delivery resolves it alike.
	spec.MaxAttempts, spec.ShardSize = resolved.MaxAttempts, resolved.ShardSize
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.submitOn(c, queue.Batch, jobspec.Spec{Kind: jobspec.Dataset, Model: spec.Model, N: len(resolved.Classes), Dataset: raw}, "",
		func(j queue.Job) (string, any) { v := datasetView(j); return v.Links.Self, v })
}

// datasetJob gets the caller's job and checks that it is a dataset job.
func (s *Server) datasetJob(c *fiber.Ctx) (queue.Job, error) {
	who := callerOf(c)
	j, err := s.jobs.GetMeta(c.UserContext(), who.client, c.Params("id"), nil)
	if err != nil {
		return j, err
	}
	var spec jobspec.Spec
	if json.Unmarshal(j.Spec, &spec) != nil || spec.Kind != jobspec.Dataset {
		return j, errNotFound(c.Path())
	}
	s.released(c.UserContext(), who, j)
	return j, nil
}

// getDataset is GET /v1/datasets/{id}.
func (s *Server) getDataset(c *fiber.Ctx) error {
	j, err := s.datasetJob(c)
	if err != nil {
		return err
	}
	return c.JSON(datasetView(j))
}

// cancelDataset is DELETE /v1/datasets/{id}: the worker stops after the
// batch in flight; the directory stays resumable on the worker's disk.
func (s *Server) cancelDataset(c *fiber.Ctx) error {
	if _, err := s.datasetJob(c); err != nil {
		return err
	}
	who := callerOf(c)
	j, err := s.jobs.Cancel(c.UserContext(), who.client, c.Params("id"))
	if err != nil {
		return err
	}
	s.released(c.UserContext(), who, j)
	return c.JSON(datasetView(j))
}

// datasetEvents is GET /v1/datasets/{id}/events: the generation event
// stream (a "progress" event per finished class, then the report's).
func (s *Server) datasetEvents(c *fiber.Ctx) error {
	if _, err := s.datasetJob(c); err != nil {
		return err
	}
	return s.streamEvents(c, false)
}

// downloadDataset is GET /v1/datasets/{id}/download: a tar of the
// finished data set, checked against its manifest first
// (datasetspec.Verify): manifest.json, then SHA256SUMS, then every file
// the manifest lists.
func (s *Server) downloadDataset(c *fiber.Ctx) error {
	j, err := s.datasetJob(c)
	if err != nil {
		return err
	}
	if j.State != queue.Succeeded {
		return problem(fiber.StatusConflict, api.TypeConflict, "", "the data set is %s; it can be downloaded once it succeeded", j.State)
	}
	if s.cfg.DatasetsDir == "" {
		return problem(fiber.StatusConflict, api.TypeConflict, "",
			"this server has no datasets folder: downloads are served only where the workers' folder is reachable (--datasets-dir, shared storage)")
	}
	dir := filepath.Join(s.cfg.DatasetsDir, j.ID)
	m, err := datasetspec.Verify(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return problem(fiber.StatusConflict, api.TypeConflict, "",
				"the data set is not in this server's datasets folder: downloads are served only where the workers' folder is reachable (shared storage)")
		}
		return err
	}
	files := []string{datasetspec.ManifestFile}
	for _, f := range m.Files {
		files = append(files, f.Path)
	}
	sort.Strings(files[1:])
	if _, err := os.Stat(filepath.Join(dir, datasetspec.SumsFile)); err == nil {
		// The sums file (sha256sum -c) follows the manifest it repeats.
		files = append(files[:1], append([]string{datasetspec.SumsFile}, files[1:]...)...)
	}
	c.Set(fiber.HeaderContentType, "application/x-tar")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="dataset-`+j.ID+`.tar"`)
	log := s.log.With("job_id", j.ID)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		tw := tar.NewWriter(w)
		for _, name := range files {
			if err := tarFile(tw, dir, name); err != nil {
				log.Warn("dataset download", "file", name, "err", err)
				return
			}
		}
		if err := tw.Close(); err == nil {
			_ = w.Flush()
		}
	})
	return nil
}

func tarFile(tw *tar.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// datasetView is a dataset job as clients see it.
func datasetView(j queue.Job) api.Dataset {
	var spec jobspec.Spec
	_ = json.Unmarshal(j.Spec, &spec)
	v := api.Dataset{ID: j.ID, Model: j.Model, State: string(j.State), Progress: api.Progress{Done: j.Done, Total: j.Total},
		Request: spec.Dataset, Classes: []api.DatasetClass{}, Error: j.Error, CancelRequested: j.CancelRequested,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Links: api.DatasetLinks{Self: datasetPath(j.ID), Events: datasetPath(j.ID) + "/events", Download: datasetPath(j.ID) + "/download"}}
	if len(v.Request) == 0 {
		v.Request = json.RawMessage("{}")
	}
	results := append([]queue.Result(nil), j.Results...)
	sort.Slice(results, func(a, b int) bool { return results[a].Index < results[b].Index })
	// Each class's result carries the job's running totals when it was
	// done; while classes finish in order, the difference with the one
	// before is the class's own count.
	var prev jobspec.DatasetClass
	inOrder := true
	for _, r := range results {
		if r.Index == spec.N {
			v.Report = r.Meta
			continue
		}
		var m jobspec.DatasetClass
		_ = json.Unmarshal(r.Meta, &m)
		dc := api.DatasetClass{Class: m.Class, Done: true}
		inOrder = inOrder && r.Index == len(v.Classes) && m.Attempts >= prev.Attempts && m.Accepted >= prev.Accepted
		if inOrder && m.Attempts > 0 {
			kept, made := m.Accepted-prev.Accepted, m.Attempts-prev.Attempts
			dc.Kept, dc.Made = &kept, &made
			if made > 0 {
				acc := float64(kept) / float64(made)
				dc.Acceptance = &acc
			}
		}
		prev = m
		v.Classes = append(v.Classes, dc)
	}
	var rep datasetspec.Report
	if len(v.Report) > 0 && json.Unmarshal(v.Report, &rep) == nil {
		v.Classes = v.Classes[:0]
		for _, c := range rep.Classes {
			kept, made, acc := c.Accepted, c.Attempts, c.AcceptanceRate
			v.Classes = append(v.Classes, api.DatasetClass{Class: c.Class, Done: true, Kept: &kept, Made: &made, Acceptance: &acc})
		}
	}
	return v
}
