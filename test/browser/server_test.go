//go:build !unit

package browser

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/test/studiotest"
)

// modelsDir is $STUDIO_MODELS_DIR or the sample models.
func modelsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STUDIO_MODELS_DIR")
	if dir == "" {
		dir = studiotest.RepoPath(t, "samples/models")
	}
	for _, m := range []string{"attngan-birds", "cvaegan-birds", "classifier-birds"} {
		if _, err := os.Stat(filepath.Join(dir, m, "model.json")); err != nil {
			t.Fatalf("the end-to-end test needs the sample models in %s (make train, or STUDIO_MODELS_DIR): %v", dir, err)
		}
	}
	return dir
}

// studioServer is `studio serve` as a process: embedded queue, the
// worker in the same process, real models.
type studioServer struct {
	URL string
	*studiotest.Process
}

func startServer(t *testing.T, extraArgs ...string) *studioServer {
	t.Helper()
	addr := studiotest.FreeAddr(t)
	args := append([]string{"serve", "--addr", addr, "--models-dir", modelsDir(t), "--ort-lib", studiotest.ORTLib(t),
		"--examples-dir", studiotest.RepoPath(t, "samples/examples/birds"), "--threads", "1", "--log-level", "debug"}, extraArgs...)
	cmd := exec.Command(studiotest.Studio(t), args...)
	cmd.Env = os.Environ()
	s := &studioServer{URL: "http://" + addr, Process: studiotest.Start(t, cmd)}
	t.Cleanup(func() {
		_ = s.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.Done():
		case <-time.After(15 * time.Second):
			s.Kill()
		}
		if t.Failed() {
			t.Logf("studio log:\n%s", s.Logs())
		}
	})
	s.WaitStatus(t, s.URL+"/readyz", 200, 60*time.Second)
	return s
}
