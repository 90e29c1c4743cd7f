package studio

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// Problem is an RFC 9457 problem document. Type is stable and documented;
// Detail is for people; Field names the request field at fault, if any.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (p *Problem) Error() string { return p.Detail }

const problemBase = "https://fgstudio.dev/problems/"

func errNotFound(path string) *Problem {
	return &Problem{Type: problemBase + "not-found", Title: "Not found", Status: fiber.StatusNotFound,
		Detail: fmt.Sprintf("no such resource: %s", path)}
}

// handleError is Fiber's one error handler: every error becomes a problem
// document; 5xx are logged with the request id and never show internals.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var p *Problem
	var fe *fiber.Error
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		p = &Problem{Type: problemBase + slugForStatus(fe.Code), Title: statusTitle(fe.Code), Status: fe.Code, Detail: fe.Message}
		if fe.Code == fiber.StatusRequestEntityTooLarge {
			p.Detail = fmt.Sprintf("request body is larger than %d bytes", s.cfg.BodyLimit)
		}
	default:
		p = &Problem{Type: problemBase + "internal", Title: "Internal error", Status: fiber.StatusInternalServerError,
			Detail: "the server failed to answer; quote the request id when reporting it"}
	}
	cp := *p
	cp.RequestID = requestIDOf(c)
	if cp.Status >= 500 {
		s.log.Error("request failed", "request_id", cp.RequestID, "method", c.Method(), "path", c.Path(), "status", cp.Status, "err", err)
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(cp.Status).JSON(cp, "application/problem+json")
}

func slugForStatus(code int) string {
	switch code {
	case fiber.StatusNotFound:
		return "not-found"
	case fiber.StatusMethodNotAllowed:
		return "method-not-allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "body-too-large"
	case fiber.StatusBadRequest:
		return "bad-request"
	}
	if code >= 500 {
		return "internal"
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
