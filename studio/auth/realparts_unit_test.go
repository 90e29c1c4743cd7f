//go:build unit

package auth_test

import (
	"testing"

	"github.com/fgstudio/fgstudio/studio/auth"
)

// realBackends: none in the unit tier (realparts_test.go has Redis).
func realBackends(auth.Config) map[string]func(t *testing.T) store { return nil }
