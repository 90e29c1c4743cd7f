//go:build unit

package studio_test

// The unit tier: no real backend, no ONNX Runtime; the tests that need
// them (realparts_test.go, datasets_worker_test.go) are left out.
const wholeSuite = false

var realBackends []realBackend

func closeRealParts() {}
