//go:build unit

package worker_test

// realBackends: none in the unit tier (realparts_test.go has redis).
var realBackends []realBackend
