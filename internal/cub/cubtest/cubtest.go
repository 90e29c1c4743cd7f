// Package cubtest makes small data sets for tests: sample data sets with
// the project's own maker (samples/cubmaker), and fixtures in the exact
// layout of a CUB-200-2011 download (internal/cub/testdata/cubfixture.py),
// both with Debian's /usr/bin/python3.
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

// Fixture writes one case of the reader contract's fixtures (nested,
// flat, partial, nosplit: see internal/cub/testdata/cubfixture.py) to out;
// repo is the repository root.
func Fixture(repo, out, name string) error {
	cmd := exec.Command("/usr/bin/python3", filepath.Join(repo, "internal", "cub", "testdata", "cubfixture.py"), "--out", out, "--case", name)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fixture maker: %w\n%s", err, msg)
	}
	return nil
}
