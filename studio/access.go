package studio

import (
	"crypto/subtle"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/studio/api"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// caller is who makes a request: a key, the bootstrap admin, or the
// anonymous local user of a studio that runs without --require-auth.
type caller struct {
	// client is the queue's client id: a caller sees only its own jobs.
	client string
	key    auth.Key
}

const (
	anonymousClient = "anonymous"
	adminClient     = "admin"
	localsCaller    = "caller"
)

func (c caller) has(s auth.Scope) bool { return c.key.Has(s) }

func callerOf(c *fiber.Ctx) caller {
	cl, _ := c.Locals(localsCaller).(caller)
	return cl
}

func unauthorized(format string, args ...any) *Problem {
	return problem(fiber.StatusUnauthorized, api.TypeUnauthorized, "Authorization", format, args...)
}

// authenticate finds the caller of a /v1 request and spends one request
// of its rate.
func (s *Server) authenticate(c *fiber.Ctx) error {
	who, err := s.identify(c)
	if err != nil {
		return err
	}
	c.Locals(localsCaller, who)
	rate := s.lim.RateLimit
	if who.key.RateLimit > 0 {
		rate = who.key.RateLimit
	}
	if rate > 0 && who.client != anonymousClient {
		wait, err := s.allow(c.UserContext(), who.client, rate, s.lim.RateBurst)
		if err != nil {
			return err
		}
		if wait > 0 {
			return &retryAfter{problem(fiber.StatusTooManyRequests, api.TypeRateLimited, "",
				"more than %g requests per second with this key; retry after %s", rate, wait.Round(time.Millisecond)), wait}
		}
	}
	return c.Next()
}

func (s *Server) identify(c *fiber.Ctx) (caller, error) {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		if s.cfg.RequireAuth {
			return caller{}, unauthorized("an API key is required: send Authorization: Bearer <key>")
		}
		if !localPeer(c) {
			return caller{}, unauthorized("this studio runs without --require-auth and serves requests without a key from this machine only; send Authorization: Bearer <key>")
		}
		return caller{client: anonymousClient, key: auth.Key{ID: anonymousClient, Name: "local user", Scopes: auth.AllScopes()}}, nil
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, unauthorized("use the Bearer scheme: Authorization: Bearer <key>")
	}
	if s.cfg.AdminToken != "" {
		sum := sha256Sum(token)
		if subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1 {
			return caller{client: adminClient, key: auth.Key{ID: adminClient, Name: "bootstrap admin", Scopes: auth.AllScopes()}}, nil
		}
	}
	k, err := s.lookupKey(c.UserContext(), token)
	switch {
	case errors.Is(err, auth.ErrUnknownKey):
		return caller{}, unauthorized("the API key is not valid")
	case errors.Is(err, auth.ErrRevoked):
		return caller{}, unauthorized("the API key %s was revoked on %s", k.ID, k.RevokedAt.Format(time.RFC3339))
	case err != nil:
		return caller{}, err
	}
	return caller{client: k.ID, key: k}, nil
}

// localPeer: the TCP peer is a loopback address and no proxy header says
// the request came from elsewhere.
func localPeer(c *fiber.Ctx) bool {
	if c.Get(fiber.HeaderXForwardedFor) != "" || c.Get("Forwarded") != "" {
		return false
	}
	ip := net.ParseIP(c.Context().RemoteIP().String())
	return ip != nil && ip.IsLoopback()
}

// require answers 403 unless the caller's key has the scope.
func require(scope auth.Scope) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !callerOf(c).has(scope) {
			return problem(fiber.StatusForbidden, api.TypeForbidden, "Authorization",
				"this API key lacks the %s scope", scope)
		}
		return c.Next()
	}
}
