package studio

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// healthz answers while the process is up.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.cfg.Version})
}

// readyz runs every readiness check (queue reachable, a model loaded) and
// answers 200 when all pass, 503 with each failure otherwise.
func (s *Server) readyz(c *fiber.Ctx) error {
	ready, results := RunChecks(c.UserContext(), s.checks)
	if !ready {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "checks": results})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": results})
}

// RunChecks runs every check with a shared 2-second budget and reports each
// result ("ok" or the error) by name.
func RunChecks(ctx context.Context, checks []Check) (ready bool, results map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	results = make(map[string]string, len(checks))
	ready = true
	for _, ch := range checks {
		if err := ch.Run(ctx); err != nil {
			results[ch.Name] = err.Error()
			ready = false
			continue
		}
		results[ch.Name] = "ok"
	}
	return ready, results
}
