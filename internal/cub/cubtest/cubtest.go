// Package cubtest makes small sample data sets for tests with the
// project's own maker (samples/cubmaker, Debian's /usr/bin/python3).
package cubtest

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/fgstudio/fgstudio/internal/cub"
)

// Make writes a data set to out with `python3 -m samples.cubmaker`, run
// from the repository root repo, passing args (e.g. "--classes", "10"),
// and opens it.
func Make(repo, out string, args ...string) (*cub.Dataset, error) {
	cmd := exec.Command("/usr/bin/python3", append([]string{"-m", "samples.cubmaker", "--out", out}, args...)...)
	cmd.Dir = repo
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("data set maker: %w\n%s", err, msg)
	}
	return cub.Open(filepath.Clean(out))
}
