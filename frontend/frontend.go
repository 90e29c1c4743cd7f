// Package frontend holds the web studio's static assets, embedded in the
// binary and served at /.
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

// Handler serves the embedded assets; paths it does not have fall through.
func Handler() fiber.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return filesystem.New(filesystem.Config{Root: http.FS(sub), Index: "index.html"})
}
