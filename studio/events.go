package studio

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// events is GET /v1/generations/{id}/events: the job's progress as
// server-sent events — its current state first (queued, started or
// finished), then started, image and progress per stored image,
// retrying, and finished, after which the stream ends. Idle streams get a
// comment every Heartbeat; a client that left is noticed at the next write.
func (s *Server) events(c *fiber.Ctx) error { return s.streamEvents(c, true) }

// streamEvents streams a job's events; without images (dataset jobs,
// whose results are classes), a stored result is a progress event only.
func (s *Server) streamEvents(c *fiber.Ctx, withImages bool) error {
	who := callerOf(c)
	id := c.Params("id")
	// GetMeta checks that the job is the caller's (Events does not).
	if _, err := s.jobs.GetMeta(c.UserContext(), who.client, id, queue.NoResults); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.jobs.Events(ctx, id)
	if err != nil {
		cancel()
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	heartbeat, stop, log := s.lim.Heartbeat, s.stop, s.log
	images := &imageMeta{jobs: s.jobs, client: who.client, id: id, log: log}
	c.Context().SetBodyStreamWriter(fasthttp.StreamWriter(func(w *bufio.Writer) {
		defer cancel()
		seq := 0
		sent := map[int]bool{} // images sent: each goes once
		send := func(ev api.Event) error {
			seq++
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, ev.Type, data); err != nil {
				return err
			}
			return w.Flush()
		}
		if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil || w.Flush() != nil {
			return
		}
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case qe, ok := <-ch:
				if !ok {
					return
				}
				for _, ev := range sseEvents(qe) {
					if ev.Type == api.EventImage && !withImages {
						continue
					}
					if ev.Type == api.EventImage {
						if sent[*ev.Index] {
							continue
						}
						sent[*ev.Index] = true
						ev.Image = images.get(ctx, *ev.Index)
					}
					if err := send(ev); err != nil {
						return
					}
				}
				if qe.Terminal() {
					return
				}
			case <-tick.C:
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || w.Flush() != nil {
					return
				}
			case <-stop:
				log.Debug("event stream closed by shutdown", "job_id", id)
				return
			}
		}
	}))
	return nil
}

// sseEvents maps one queue event to the API's events.
func sseEvents(qe queue.Event) []api.Event {
	base := api.Event{JobID: qe.JobID, Done: qe.Done, Total: qe.Total, At: qe.At, Error: qe.Error}
	with := func(typ, state string) api.Event {
		e := base
		e.Type, e.State = typ, state
		return e
	}
	switch qe.Type {
	case queue.EventQueued:
		return []api.Event{with(api.EventQueued, string(queue.Queued))}
	case queue.EventStarted:
		return []api.Event{with(api.EventStarted, string(queue.Running))}
	case queue.EventRetrying:
		return []api.Event{with(api.EventRetrying, string(queue.Queued))}
	case queue.EventResult:
		img := with(api.EventImage, string(queue.Running))
		k := qe.Index
		img.Index, img.PNG = &k, imagePath(qe.JobID, k)
		return []api.Event{img, with(api.EventProgress, string(queue.Running))}
	case queue.EventSucceeded, queue.EventFailed, queue.EventCancelled:
		return []api.Event{with(api.EventFinished, qe.Type)}
	}
	return nil
}

// imageMeta reads the metadata of stored image k of one job (one small
// read: no pixels, no other image), so that an image event carries the
// image's seed, fidelity and scores; nil when it cannot be read now (the
// client still has the job's link to read it from).
type imageMeta struct {
	jobs       Jobs
	client, id string
	log        *slog.Logger
}

func (m *imageMeta) get(ctx context.Context, k int) *api.Image {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	j, err := m.jobs.GetMeta(ctx, m.client, m.id, []int{k})
	if err != nil {
		m.log.Debug("event stream: image metadata not read", "job_id", m.id, "index", k, "err", err)
		return nil
	}
	for _, r := range j.Results {
		if r.Index == k {
			img := imageView(j.ID, r)
			return &img
		}
	}
	return nil
}
