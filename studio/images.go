package studio

import (
	"encoding/json"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// imageKeys parses {k} (and {w} when attention map w is asked for).
func imageKeys(c *fiber.Ctx, withMap bool) (k, w int, err error) {
	if k, err = imageIndex(c, "k"); err != nil || !withMap {
		return k, 0, err
	}
	w, err = imageIndex(c, "w")
	return k, w, err
}

// notStored explains why image k of job j has nothing to serve.
func notStored(j queue.Job, k int) error {
	if k >= j.Total {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "",
			"job %s has images 0 to %d", j.ID, j.Total-1)
	}
	return problem(fiber.StatusNotFound, api.TypeNotFound, "",
		"image %d of job %s is not finished yet (job %s)", k, j.ID, j.State)
}

// imageMetaOf reads the metadata of image k of the caller's job (no pixels).
func (s *Server) imageMetaOf(c *fiber.Ctx, k int) (queue.Job, queue.Result, error) {
	j, err := s.jobs.GetMeta(c.UserContext(), callerOf(c).client, c.Params("id"), []int{k})
	if err != nil {
		return j, queue.Result{}, err
	}
	for _, r := range j.Results {
		if r.Index == k {
			return j, r, nil
		}
	}
	return j, queue.Result{}, notStored(j, k)
}

// sendPNG answers a PNG that never changes once stored.
func sendPNG(c *fiber.Ctx, data []byte) error {
	c.Set(fiber.HeaderContentType, "image/png")
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400, immutable")
	return c.Send(data)
}

// imagePNG is GET /v1/generations/{id}/images/{k}.png: the image with its
// provenance chunk. It reads that image alone from the store.
func (s *Server) imagePNG(c *fiber.Ctx) error {
	k, _, err := imageKeys(c, false)
	if err != nil {
		return err
	}
	j, data, err := s.jobs.GetBlob(c.UserContext(), callerOf(c).client, c.Params("id"), k, 0)
	if err != nil {
		return err
	}
	if data == nil {
		return notStored(j, k)
	}
	return sendPNG(c, data)
}

func attentionOf(r queue.Result) ([]jobspec.WordMap, error) {
	var m jobspec.ImageMeta
	if err := json.Unmarshal(r.Meta, &m); err != nil {
		return nil, fmt.Errorf("image %d metadata: %w", r.Index, err)
	}
	return m.Attention, nil
}

// attention is GET /v1/generations/{id}/images/{k}/attention: the words
// of the prompt with a link to each word's attention map.
func (s *Server) attention(c *fiber.Ctx) error {
	k, _, err := imageKeys(c, false)
	if err != nil {
		return err
	}
	j, r, err := s.imageMetaOf(c, k)
	if err != nil {
		return err
	}
	maps, err := attentionOf(r)
	if err != nil {
		return err
	}
	if len(maps) == 0 {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "",
			"image %d of job %s has no attention maps (only text models make them)", r.Index, j.ID)
	}
	res := api.Attention{Index: r.Index, Maps: make([]api.WordMap, len(maps)), Stages: 1}
	pos := map[int]int{} // stage → words so far
	for i, w := range maps {
		m := api.WordMap{Position: pos[w.Stage], Word: w.Word, Stage: w.Stage,
			PNG: fmt.Sprintf("%s/images/%d/attention/%d.png", jobPath(j.ID), r.Index, i)}
		if w.Peak > 0 {
			p := float64(w.Peak)
			m.Peak = &p
		}
		pos[w.Stage]++
		res.Stages = max(res.Stages, w.Stage+1)
		res.Maps[i] = m
	}
	return c.JSON(res)
}

// attentionPNG is GET /v1/generations/{id}/images/{k}/attention/{w}.png:
// map w is read alone (part w+1 of the image), or, for a result stored
// with its maps inline, from the image's metadata.
func (s *Server) attentionPNG(c *fiber.Ctx) error {
	k, w, err := imageKeys(c, true)
	if err != nil {
		return err
	}
	_, data, err := s.jobs.GetBlob(c.UserContext(), callerOf(c).client, c.Params("id"), k, w+1)
	if err != nil {
		return err
	}
	if data != nil {
		return sendPNG(c, data)
	}
	j, r, err := s.imageMetaOf(c, k)
	if err != nil {
		return err
	}
	maps, err := attentionOf(r)
	if err != nil {
		return err
	}
	if w >= len(maps) || len(maps[w].PNG) == 0 {
		return problem(fiber.StatusNotFound, api.TypeNotFound, "",
			"image %d of job %s has %d attention maps", r.Index, j.ID, len(maps))
	}
	return sendPNG(c, maps[w].PNG)
}
