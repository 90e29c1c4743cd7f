package studio

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIJSON is the OpenAPI 3 description of every route; the tests
// check every route and every response they see against it.
//
//go:embed openapi.json
var openAPIJSON []byte

// OpenAPI returns the OpenAPI document the server serves at /openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIJSON...) }

func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(s.openapi)
}
