package studio

import (
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/studio/api"
)

// routePattern matches the paths of one route.
type routePattern struct {
	re      *regexp.Regexp
	methods []string
}

// allowedMethods indexes the routes by path pattern, for 405 answers.
func allowedMethods(routes []fiber.Route) []routePattern {
	byPath := map[string][]string{}
	var order []string
	for _, r := range routes {
		if r.Method == fiber.MethodHead || r.Path == "/" {
			continue
		}
		if byPath[r.Path] == nil {
			order = append(order, r.Path)
		}
		byPath[r.Path] = append(byPath[r.Path], r.Method)
	}
	param := regexp.MustCompile(`:[a-z]+`)
	res := make([]routePattern, 0, len(order))
	for _, p := range order {
		expr := regexp.QuoteMeta(p)
		expr = param.ReplaceAllString(expr, `[^/]+`)
		expr = strings.ReplaceAll(expr, `\*`, `.*`)
		res = append(res, routePattern{re: regexp.MustCompile("^" + expr + "$"), methods: byPath[p]})
	}
	return res
}

// notFound answers what no route took: 405 with Allow when the path
// exists for other methods, else 404.
func (s *Server) notFound(c *fiber.Ctx) error {
	for _, rp := range s.allowed {
		if rp.re.MatchString(c.Path()) {
			c.Set(fiber.HeaderAllow, strings.Join(rp.methods, ", "))
			return problem(fiber.StatusMethodNotAllowed, api.TypeMethodNotAllowed, "",
				"%s is not allowed on %s; allowed: %s", c.Method(), clip(c.Path(), 200), strings.Join(rp.methods, ", "))
		}
	}
	return errNotFound(c.Path())
}
