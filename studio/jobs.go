package studio

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

func jobPath(id string) string { return "/v1/generations/" + id }

func imagePath(id string, k int) string {
	return fmt.Sprintf("/v1/generations/%s/images/%d.png", id, k)
}

// jobView is a queued job as clients see it. The spec and each result's
// metadata are read leniently: a job always shows, even if a worker wrote
// metadata this version does not know.
func jobView(j queue.Job) api.Job {
	var spec jobspec.Spec
	_ = json.Unmarshal(j.Spec, &spec)
	v := api.Job{
		ID: j.ID, Kind: string(spec.Kind), Model: j.Model, State: string(j.State),
		Progress: api.Progress{Done: j.Done, Total: j.Total},
		Request: api.Request{Prompt: spec.Prompt, Class: spec.Class, N: spec.N, Seed: spec.Seed,
			MinFidelity: spec.MinFidelity, MaxAttempts: spec.MaxAttempts},
		Error: j.Error, CancelRequested: j.CancelRequested,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Images: []api.Image{},
		Links:  api.JobLinks{Self: jobPath(j.ID), Events: jobPath(j.ID) + "/events"},
	}
	if spec.Kind == jobspec.Morph {
		v.Request.N = 1
	}
	if spec.From != nil {
		v.Request.From = &api.JobEndpoint{Class: spec.From.Class, Seed: spec.From.Seed}
	}
	if spec.To != nil {
		v.Request.To = &api.JobEndpoint{Class: spec.To.Class, Seed: spec.To.Seed}
	}
	results := append([]queue.Result(nil), j.Results...)
	sort.Slice(results, func(a, b int) bool { return results[a].Index < results[b].Index })
	for _, r := range results {
		v.Images = append(v.Images, imageView(j.ID, r))
	}
	return v
}

// imageView is one stored image as clients see it, from its metadata
// alone (the job's spec is not read).
func imageView(jobID string, r queue.Result) api.Image {
	var m jobspec.ImageMeta
	_ = json.Unmarshal(r.Meta, &m)
	img := api.Image{Index: r.Index, Seed: m.Seed, Size: m.Size, Attempts: m.Attempts, Fidelity: m.Fidelity,
		FidelityMeasure: m.FidelityMeasure, BelowMin: m.BelowMin, Scores: m.Scores, Links: api.ImageLinks{PNG: imagePath(jobID, r.Index)}}
	if len(img.Scores) == 0 || string(img.Scores) == "null" {
		img.Scores = nil
	}
	if len(m.Attention) > 0 {
		img.Links.Attention = fmt.Sprintf("%s/images/%d/attention", jobPath(jobID), r.Index)
		// The finest stage's maps come first; every stage has the same words.
		for _, w := range m.Attention {
			if w.Stage != m.Attention[0].Stage {
				break
			}
			img.Words = append(img.Words, w.Word)
		}
	}
	return img
}
