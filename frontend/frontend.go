// Package frontend holds the web studio's static assets (plain ES modules
// and CSS, no build step), embedded in the binary and served at /.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every asset: scripts, styles, fonts
// and fetches only from the studio itself; images also from blob: URLs
// (the page fetches images with its API key and shows them as object
// URLs); no inline script or style attribute, no plugins, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Assets is the file tree served at / (index.html at its root).
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// Handler serves the embedded assets with the studio's security headers;
// paths it does not have fall through to the next handler.
func Handler() fiber.Handler {
	files := filesystem.New(filesystem.Config{Root: http.FS(Assets()), Index: "index.html"})
	return func(c *fiber.Ctx) error {
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return c.Next()
		}
		c.Set("Content-Security-Policy", ContentSecurityPolicy)
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "no-referrer")
		c.Set("X-Frame-Options", "DENY")
		// No build step means no hashed file names: revalidate each time.
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return files(c)
	}
}
