package studio

import (
	"encoding/json"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// maxListedJobs bounds the jobs one GET /v1/jobs reads from the queue.
const maxListedJobs = 200

// listJobs is GET /v1/jobs: the caller's queued and running jobs, oldest
// first. The queue has no index by client; the list is the caller's
// active-job set (the quota's, kept for every caller, the quota on or
// off), each job read from the queue: a job that has finished or expired
// leaves the set here, as it does when its owner reads it.
func (s *Server) listJobs(c *fiber.Ctx) error {
	ctx := c.UserContext()
	who := callerOf(c)
	ids, err := s.limiter.Active(ctx, who.client)
	if err != nil {
		return err
	}
	if len(ids) > maxListedJobs {
		ids = ids[len(ids)-maxListedJobs:]
	}
	out := api.JobList{Jobs: []api.JobSummary{}}
	for _, id := range ids {
		j, err := s.jobs.GetMeta(ctx, who.client, id, queue.NoResults)
		if errors.Is(err, queue.ErrNotFound) {
			if err := s.limiter.Release(ctx, who.client, id); err != nil {
				s.log.Warn("release quota slot", "job_id", id, "err", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if j.State.Finished() {
			s.released(ctx, who, j)
			continue
		}
		v := jobSummary(j)
		if (v.Kind == string(jobspec.Dataset) && !who.has(auth.Datasets)) || (v.Kind != string(jobspec.Dataset) && !who.has(auth.Generate)) {
			continue
		}
		out.Jobs = append(out.Jobs, v)
	}
	return c.JSON(out)
}

// jobSummary is a job as GET /v1/jobs lists it.
func jobSummary(j queue.Job) api.JobSummary {
	var spec jobspec.Spec
	_ = json.Unmarshal(j.Spec, &spec)
	lane := j.Lane
	if lane == "" {
		lane = queue.Interactive
	}
	v := api.JobSummary{ID: j.ID, Kind: string(spec.Kind), Model: j.Model, Lane: string(lane), State: string(j.State),
		Progress: api.Progress{Done: j.Done, Total: j.Total}, CancelRequested: j.CancelRequested,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt}
	switch spec.Kind {
	case jobspec.Dataset:
		var ds datasetspec.Spec
		_ = json.Unmarshal(spec.Dataset, &ds)
		v.Classes = ds.Classes
		v.Links = api.JobLinks{Self: datasetPath(j.ID), Events: datasetPath(j.ID) + "/events"}
	default:
		v.Prompt, v.Class, v.N, v.Seed = spec.Prompt, spec.Class, spec.N, spec.Seed
		if spec.Kind == jobspec.Morph {
			v.N = 1
		}
		if spec.From != nil {
			v.From = &api.JobEndpoint{Class: spec.From.Class, Seed: spec.From.Seed}
		}
		if spec.To != nil {
			v.To = &api.JobEndpoint{Class: spec.To.Class, Seed: spec.To.Seed}
		}
		v.Links = api.JobLinks{Self: jobPath(j.ID), Events: jobPath(j.ID) + "/events"}
	}
	return v
}
