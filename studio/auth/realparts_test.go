//go:build !unit

package auth_test

import (
	"testing"

	"github.com/fgstudio/fgstudio/studio/auth"
	"github.com/fgstudio/fgstudio/test/redistest"
)

// realBackends: the key store on a real redis-server (left out of the
// unit tier, `go test -tags unit`).
func realBackends(cfg auth.Config) map[string]func(t *testing.T) store {
	return map[string]func(t *testing.T) store{
		"redis": func(t *testing.T) store {
			srv := redistest.Start(t, redistest.Options{})
			r, err := auth.OpenRedis(t.Context(), srv.URL(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		},
	}
}
