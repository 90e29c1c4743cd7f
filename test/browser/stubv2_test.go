//go:build !unit

package browser

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/studio/api"
)

// The stub's data sets, job list and attention peaks: the API of studio v2
// (GET /v1/jobs, /v1/datasets, peaks and stages of attention maps).

// stubPeak is a word's attention peak: stop-words get little, the
// bird's parts a lot.
func stubPeak(w string) float64 {
	switch w {
	case "a", "with", "and", "the", "this", "has":
		return 0.08
	case "crown", "bill", "red", "hooked":
		return 0.62
	}
	return 0.3
}

// stubDataset is a data-set job: class i is done after (i+1) steps.
type stubDataset struct {
	id       string
	model    string
	classes  []string
	perClass int
	req      json.RawMessage
	created  time.Time
	cancel   bool
	hold     bool
}

const stubClassStep = 2 * stubStep

func (d *stubDataset) done(now time.Time) int {
	if d.hold {
		return 0
	}
	n := min(len(d.classes), int(now.Sub(d.created)/stubClassStep))
	return n
}

func (d *stubDataset) state(now time.Time) string {
	switch {
	case d.cancel:
		return "cancelled"
	case d.done(now) >= len(d.classes):
		return "succeeded"
	case d.hold:
		return "queued"
	}
	return "running"
}

func (s *stubAPI) datasetView(d *stubDataset, now time.Time) api.Dataset {
	n := d.done(now)
	st := d.state(now)
	total := len(d.classes) + 1
	v := api.Dataset{ID: d.id, Model: d.model, State: st, Progress: api.Progress{Done: n, Total: total}, Request: d.req,
		Classes: []api.DatasetClass{}, CreatedAt: d.created,
		Links: api.DatasetLinks{Self: "/v1/datasets/" + d.id, Events: "/v1/datasets/" + d.id + "/events", Download: "/v1/datasets/" + d.id + "/download"}}
	accepted, attempts := 0, 0
	for i := 0; i < n; i++ {
		kept, made := d.perClass, d.perClass+i%3
		acc := float64(kept) / float64(made)
		accepted += kept
		attempts += made
		v.Classes = append(v.Classes, api.DatasetClass{Class: d.classes[i], Done: true, Kept: &kept, Made: &made, Acceptance: &acc})
	}
	if st == "succeeded" {
		v.Progress.Done = total
		v.Report, _ = json.Marshal(map[string]any{"model": d.model, "per_class": d.perClass, "accepted": accepted, "attempts": attempts,
			"acceptance_rate": float64(accepted) / float64(max(1, attempts)), "diversity": 1.7, "run": map[string]any{"seconds": 1.2}})
	}
	return v
}

func (s *stubAPI) createDataset(w http.ResponseWriter, r *http.Request) {
	var req api.DatasetRequest
	raw, _ := readAll(r)
	_ = json.Unmarshal(raw, &req)
	if len(req.Classes) == 0 {
		writeProblem(w, stubFailure{status: 422, slug: api.TypeInvalidField, field: "classes", detail: "name at least one class"})
		return
	}
	s.mu.Lock()
	s.seq++
	d := &stubDataset{id: fmt.Sprintf("ds-%d", s.seq), model: req.Model, classes: req.Classes, perClass: req.PerClass, req: raw,
		created: time.Now(), hold: s.hold >= 0}
	s.datasets[d.id] = d
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	s.posted = append(s.posted, m)
	s.mu.Unlock()
	w.Header().Set("Location", "/v1/datasets/"+d.id)
	writeJSON(w, 202, s.datasetView(d, time.Now()))
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func (s *stubAPI) dataset(w http.ResponseWriter, r *http.Request, parts []string) {
	s.mu.Lock()
	d, ok := s.datasets[parts[0]]
	s.mu.Unlock()
	if !ok {
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such data set"})
		return
	}
	now := time.Now()
	switch {
	case len(parts) == 1 && r.Method == "GET":
		s.mu.Lock()
		v := s.datasetView(d, now)
		s.mu.Unlock()
		writeJSON(w, 200, v)
	case len(parts) == 1 && r.Method == "DELETE":
		s.mu.Lock()
		if d.state(now) != "succeeded" {
			d.cancel = true
		}
		v := s.datasetView(d, now)
		s.mu.Unlock()
		writeJSON(w, 200, v)
	case len(parts) == 2 && parts[1] == "events":
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		sent := -1
		for {
			s.mu.Lock()
			n, st := d.done(time.Now()), d.state(time.Now())
			s.mu.Unlock()
			if n != sent {
				sent = n
				fmt.Fprintf(w, "event: progress\ndata: {\"type\":\"progress\",\"job_id\":%q,\"done\":%d,\"total\":%d}\n\n", d.id, n, len(d.classes)+1)
				fl.Flush()
			}
			if st == "succeeded" || st == "cancelled" {
				fmt.Fprintf(w, "event: finished\ndata: {\"type\":\"finished\",\"job_id\":%q,\"state\":%q}\n\n", d.id, st)
				fl.Flush()
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	case len(parts) == 2 && parts[1] == "download":
		if d.state(now) != "succeeded" {
			writeProblem(w, stubFailure{status: 409, slug: api.TypeConflict, detail: "the data set is not finished"})
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add := func(name string, b []byte) {
			_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
			_, _ = tw.Write(b)
		}
		man, _ := json.Marshal(map[string]any{"model": d.model, "classes": d.classes})
		add("manifest.json", man)
		for i, c := range d.classes {
			for k := 0; k < d.perClass; k++ {
				add(fmt.Sprintf("train/%s/%03d.png", c, k), stubImage(&stubJob{req: api.Request{Seed: uint64(100*i + k)}}, 0))
			}
		}
		_ = tw.Close()
		w.Header().Set("Content-Type", "application/x-tar")
		_, _ = w.Write(buf.Bytes())
	default:
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such resource"})
	}
}

// jobList is GET /v1/jobs: the unfinished jobs, oldest first.
func (s *stubAPI) jobList(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noJobList {
		writeProblem(w, stubFailure{status: 404, slug: api.TypeNotFound, detail: "no such resource: /v1/jobs"})
		return
	}
	now := time.Now()
	out := api.JobList{Jobs: []api.JobSummary{}}
	for _, j := range s.jobs {
		st := j.state(now)
		if st != "queued" && st != "running" {
			continue
		}
		out.Jobs = append(out.Jobs, api.JobSummary{ID: j.id, Kind: j.kind, Model: j.model, Lane: "interactive", State: st,
			Progress: api.Progress{Done: j.done(now), Total: j.n}, Prompt: j.req.Prompt, Class: j.req.Class, N: j.n, Seed: j.req.Seed,
			From: j.req.From, To: j.req.To, CreatedAt: j.created, Links: api.JobLinks{Self: "/v1/generations/" + j.id, Events: "/v1/generations/" + j.id + "/events"}})
	}
	for _, d := range s.datasets {
		st := d.state(now)
		if st != "queued" && st != "running" {
			continue
		}
		out.Jobs = append(out.Jobs, api.JobSummary{ID: d.id, Kind: "dataset", Model: d.model, Lane: "batch", State: st,
			Progress: api.Progress{Done: d.done(now), Total: len(d.classes) + 1}, Classes: d.classes, CreatedAt: d.created,
			Links: api.JobLinks{Self: "/v1/datasets/" + d.id, Events: "/v1/datasets/" + d.id + "/events"}})
	}
	sort.Slice(out.Jobs, func(a, b int) bool { return out.Jobs[a].CreatedAt.Before(out.Jobs[b].CreatedAt) })
	writeJSON(w, 200, out)
}

// stubClassByLabel finds a stub class's name by a piece of its label.
func stubClassByLabel(part string) string {
	for _, c := range stubClasses {
		if strings.Contains(c.Label, part) {
			return c.Name
		}
	}
	return ""
}
