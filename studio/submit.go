package studio

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

const (
	maxN           = jobspec.MaxN
	maxPromptBytes = jobspec.MaxPromptBytes
	maxIdemKey     = 255
	// defaultSeeds is how many default seeds there are: every seed of a
	// job that starts from one stays within jobspec.MaxSeed, however many
	// images and tries it makes.
	defaultSeeds = jobspec.MaxSeed + 1 - jobspec.MaxN*jobspec.MaxAttempts
)

// idempotencyKey takes the key from the body or the Idempotency-Key
// header (they must agree when both are given).
func idempotencyKey(c *fiber.Ctx, fromBody string) (string, error) {
	h := c.Get("Idempotency-Key")
	key := fromBody
	switch {
	case h != "" && fromBody != "" && h != fromBody:
		return "", problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "idempotency_key",
			"the Idempotency-Key header and the idempotency_key field differ")
	case h != "":
		key = h
	}
	if len(key) > maxIdemKey || (key != "" && !printableASCII(key)) {
		return "", problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "idempotency_key",
			"must be 1 to %d printable ASCII characters without spaces", maxIdemKey)
	}
	return key, nil
}

// defaultSeed is random, or derived from the idempotency key so that a
// retried request asks for the same job.
func defaultSeed(client, idemKey, salt string) uint64 {
	if idemKey != "" {
		sum := sha256.Sum256([]byte(client + "\x00" + idemKey + "\x00" + salt))
		return binary.BigEndian.Uint64(sum[:8]) % defaultSeeds
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) % defaultSeeds
}

// submit enqueues spec for the caller, within its active-job quota, and
// answers 202 with the job (200 when an idempotency key repeats a job).
func (s *Server) submit(c *fiber.Ctx, spec jobspec.Spec, idemKey string) error {
	return s.submitOn(c, queue.Interactive, spec, idemKey, func(j queue.Job) (string, any) {
		v := jobView(j)
		return v.Links.Self, v
	})
}

// submitOn is submit on a lane, answering with view's rendering of the
// job (its self link and body).
func (s *Server) submitOn(c *fiber.Ctx, lane queue.Lane, spec jobspec.Spec, idemKey string, view func(queue.Job) (string, any)) error {
	raw, err := spec.Marshal()
	if err != nil {
		var fe *jobspec.FieldError
		if errors.As(err, &fe) {
			return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, fe.Field, "%s", fe.Reason)
		}
		return err
	}
	ctx := c.UserContext()
	who := callerOf(c)
	limit := s.lim.MaxActiveJobs
	if who.key.MaxActiveJobs > 0 {
		limit = who.key.MaxActiveJobs
	}
	var slot string
	if limit > 0 {
		if slot, err = s.acquire(ctx, who, limit); err != nil {
			return err
		}
	}
	job, created, err := s.jobs.Enqueue(ctx, queue.NewJob{Client: who.client, Lane: lane, Model: spec.Model,
		Spec: raw, Total: spec.Total(), IdempotencyKey: idemKey})
	switch {
	case slot != "":
		if err == nil && created {
			err = s.limiter.Bind(ctx, who.client, slot, job.ID)
		} else if rerr := s.limiter.Release(ctx, who.client, slot); rerr != nil && err == nil {
			err = rerr
		}
	case err == nil && created:
		// No quota: the job is still recorded in the caller's active set,
		// which GET /v1/jobs lists.
		err = s.limiter.Bind(ctx, who.client, "", job.ID)
	}
	if err != nil {
		return err
	}
	if !created && !sameJSON(job.Spec, raw) {
		return problem(fiber.StatusUnprocessableEntity, api.TypeIdempotency, "idempotency_key",
			"this idempotency key was used for another request (job %s)", job.ID)
	}
	self, body := view(job)
	c.Location(self)
	if !created {
		c.Set("Idempotent-Replayed", "true")
		return c.Status(fiber.StatusOK).JSON(body)
	}
	return c.Status(fiber.StatusAccepted).JSON(body)
}

// acquire reserves an active-job slot; when the quota is full it first
// releases the caller's jobs that have finished or expired.
func (s *Server) acquire(ctx context.Context, who caller, limit int) (string, error) {
	slot, err := s.limiter.Acquire(ctx, who.client, limit)
	var qe *auth.QuotaError
	if !errors.As(err, &qe) {
		return slot, err
	}
	freed := false
	for _, id := range qe.Jobs {
		j, err := s.jobs.GetMeta(ctx, who.client, id, queue.NoResults)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			return "", err
		}
		if err != nil || j.State.Finished() {
			if err := s.limiter.Release(ctx, who.client, id); err != nil {
				return "", err
			}
			freed = true
		}
	}
	if freed {
		slot, err = s.limiter.Acquire(ctx, who.client, limit)
	}
	if errors.As(err, &qe) {
		return "", &retryAfter{problem(fiber.StatusTooManyRequests, api.TypeQuotaExceeded, "",
			"this API key has %d unfinished jobs, its limit; wait for one to finish or cancel one", limit), s.lim.QuotaRetryAfter}
	}
	return slot, err
}

// released drops a finished job from its caller's quota.
func (s *Server) released(ctx context.Context, who caller, j queue.Job) {
	if !j.State.Finished() {
		return
	}
	if err := s.limiter.Release(ctx, who.client, j.ID); err != nil {
		s.log.Warn("release quota slot", "job_id", j.ID, "err", err)
	}
}

func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// required is the problem of a missing field.
func required(field, why string) *Problem {
	return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, field, "is required%s", why)
}

func outOfRange(field string, lo, hi int) *Problem {
	return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, field, "must be between %d and %d", lo, hi)
}

// generator finds a model that generates images.
func (s *Server) generator(name string) (*modelEntry, error) {
	idx := s.models.Load()
	if name == "" {
		return nil, required("model", fmt.Sprintf(" (one of %v)", idx.generators()))
	}
	e, ok := idx.get(name)
	if !ok {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeUnknownModel, "model",
			"no model %q; models that generate: %v", clip(name, 80), idx.generators())
	}
	if e.input() == "" {
		return nil, problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, "model",
			"%s is a %s: it scores images and generates none; use one of %v", name, e.kind(), idx.generators())
	}
	return e, nil
}
