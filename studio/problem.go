package studio

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// Problem is an RFC 9457 problem document (see api.Problem).
type Problem = api.Problem

// problem makes a problem document; slug is one of the api.Type* constants.
func problem(status int, slug, field, format string, args ...any) *Problem {
	return &Problem{Type: api.TypeBase + slug, Title: statusTitle(status), Status: status, Field: field,
		Detail: fmt.Sprintf(format, args...)}
}

func errNotFound(path string) *Problem {
	return problem(fiber.StatusNotFound, api.TypeNotFound, "", "no such resource: %s", clip(path, 200))
}

// retryAfter carries a Retry-After hint with a problem.
type retryAfter struct {
	*Problem
	after time.Duration
}

func (r *retryAfter) Unwrap() error { return r.Problem }

// handleError is Fiber's one error handler: every error becomes a problem
// document; 5xx are logged with the request id and never show internals.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	p := s.toProblem(c, err)
	var ra *retryAfter
	var full *queue.FullError
	switch {
	case errors.As(err, &ra):
		setRetryAfter(c, ra.after)
	case errors.As(err, &full):
		setRetryAfter(c, full.RetryAfter)
	case p.Status == fiber.StatusServiceUnavailable:
		setRetryAfter(c, unavailableRetryAfter)
	}
	cp := *p
	if !strings.HasPrefix(cp.Type, "https://") {
		cp.Type = api.TypeBase + cp.Type
	}
	if cp.Title == "" {
		cp.Title = statusTitle(cp.Status)
	}
	cp.RequestID = requestIDOf(c)
	if cp.RequestID == "" {
		// Refused before any middleware ran (a body over the limit).
		cp.RequestID = uuid.NewString()
		c.Set(headerRequestID, cp.RequestID)
	}
	if cp.Status >= 500 {
		s.log.Error("request failed", "request_id", cp.RequestID, "method", c.Method(), "path", c.Path(), "status", cp.Status, "err", err)
	}
	s.metrics.problems.WithLabelValues(strings.TrimPrefix(cp.Type, api.TypeBase), strconv.Itoa(cp.Status)).Inc()
	if cp.Status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="fgstudio"`)
	}
	// A stream (SSE) handler may have set another type before failing.
	c.Response().ResetBody()
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(cp.Status).JSON(cp, "application/problem+json")
}

// toProblem maps an error to its problem: problems as they are, sentinel
// errors of the queue and the key store by errors.Is, the rest as 500.
func (s *Server) toProblem(c *fiber.Ctx, err error) *Problem {
	var (
		p    *Problem
		fe   *fiber.Error
		qinv *queue.InvalidError
		ainv *auth.FieldError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &fe):
		p = problem(fe.Code, slugForStatus(fe.Code), "", "%s", fe.Message)
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			p.Detail = fmt.Sprintf("request body is larger than %d bytes", s.cfg.BodyLimit)
		case fiber.StatusMethodNotAllowed:
			p.Detail = fmt.Sprintf("%s is not allowed on %s", c.Method(), clip(c.Path(), 200))
		}
		return p
	case errors.Is(err, queue.ErrNotFound):
		return errNotFound(c.Path())
	case errors.Is(err, queue.ErrFull):
		return problem(fiber.StatusTooManyRequests, api.TypeQueueFull, "", "the queue is full; try again later")
	case errors.As(err, &qinv):
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, qinv.Field, "%s", qinv.Reason)
	case errors.As(err, &ainv):
		return problem(fiber.StatusUnprocessableEntity, api.TypeInvalidField, ainv.Field, "%s", ainv.Reason)
	case errors.Is(err, auth.ErrNotFound):
		return errNotFound(c.Path())
	case errors.Is(err, queue.ErrClosed), errors.Is(err, context.DeadlineExceeded), queue.Unavailable(err):
		// Redis (jobs, keys, rates, quotas) is unreachable or restarting.
		return problem(fiber.StatusServiceUnavailable, api.TypeUnavailable, "",
			"the job and key store is unavailable; try again shortly")
	}
	return problem(fiber.StatusInternalServerError, api.TypeInternal, "", "the server failed to answer; quote the request id when reporting it")
}

// unavailableRetryAfter is the Retry-After of a 503 that names none: long
// enough for a Redis restart or failover to finish.
const unavailableRetryAfter = 2 * time.Second

func setRetryAfter(c *fiber.Ctx, d time.Duration) {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

func slugForStatus(code int) string {
	switch code {
	case fiber.StatusNotFound:
		return api.TypeNotFound
	case fiber.StatusMethodNotAllowed:
		return api.TypeMethodNotAllowed
	case fiber.StatusRequestEntityTooLarge:
		return api.TypeBodyTooLarge
	case fiber.StatusBadRequest:
		return api.TypeMalformed
	case fiber.StatusUnsupportedMediaType:
		return api.TypeMediaType
	}
	if code >= 500 {
		return api.TypeInternal
	}
	return "client-error"
}

func statusTitle(code int) string { return fiber.NewError(code).Message }

const headerRequestID = "X-Request-ID"

// requestID keeps a well-formed incoming X-Request-ID or makes one, and
// returns it on the response.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(headerRequestID)
	if len(id) == 0 || len(id) > 64 || !printableASCII(id) {
		id = uuid.NewString()
	}
	c.Locals(headerRequestID, id)
	c.Set(headerRequestID, id)
	return c.Next()
}

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(headerRequestID).(string)
	return id
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recoverPanic turns a handler panic into a logged 500 instead of a crash.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic", "request_id", requestIDOf(c), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
