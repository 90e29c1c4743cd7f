// Package studiotest builds the studio binary (or any command of this
// module) once per test process and runs it as a process whose log the
// test can read: the one harness of the tests that run binaries (test/...,
// cmd/studio). A failed build or start fails the test, never skips it.
//
// A package that builds binaries removes them at the end:
//
//	func TestMain(m *testing.M) { os.Exit(studiotest.Run(m)) }
package studiotest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module is the module path of this repository.
const Module = "github.com/fgstudio/fgstudio"

// StudioPkg is the import path of the studio binary.
const StudioPkg = Module + "/cmd/studio"

var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*built
}

type built struct {
	once sync.Once
	path string
	err  error
}

// Binary builds the command pkg (an import path of this module) once per
// test process and returns the path of the executable.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*built{}
	}
	b, ok := builds.bins[pkg]
	if !ok {
		b = &built{}
		builds.bins[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = build(t, pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Studio is Binary of cmd/studio.
func Studio(t testing.TB) string {
	t.Helper()
	return Binary(t, StudioPkg)
}

func build(t testing.TB, pkg string) (string, error) {
	builds.mu.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "studiotest-bin-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.mu.Unlock()
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg) // go test puts its go first on PATH
	cmd.Dir = Repo(t)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}

// Run runs the package's tests, removes the binaries built for them, and
// returns the exit code for os.Exit.
func Run(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	return code
}

// Repo is the repository root: the nearest folder above the working
// directory whose go.mod declares Module.
func Repo(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module "+Module+"\n") {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatalf("no go.mod of %s above the working directory", Module)
		}
		dir = up
	}
}

// RepoPath is rel (slash-separated) under the repository root.
func RepoPath(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Repo(t), filepath.FromSlash(rel))
}

// ORTLib is ORT_LIB_PATH, else the library scripts/setup.sh installs.
func ORTLib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ORT_LIB_PATH"); p != "" {
		return p
	}
	return RepoPath(t, ".deps/onnxruntime/lib/libonnxruntime.so")
}

// Models is STUDIO_TEST_MODELS, else the committed sample models.
func Models(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("STUDIO_TEST_MODELS"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return RepoPath(t, "samples/models")
}

// FreeAddr is a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a started command whose stdout and stderr are collected.
type Process struct {
	Cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

// Start starts cmd (its Stdout and Stderr must be unset: Logs collects
// both) and kills it when the test ends, if it still runs.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		io.Copy(io.Discard, r)
	}()
	go func() {
		cmd.Wait()
		w.Close()
		<-read
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Logs is what the process wrote so far.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Done is closed when the process has exited and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode waits for the process to end (at most within) and returns its
// exit code.
func (p *Process) ExitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still runs after %s; log:\n%s", filepath.Base(p.Cmd.Path), within, p.Logs())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and returns the exit code; the process must exit
// within 20s.
func (p *Process) Stop(t testing.TB) int {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	return p.ExitCode(t, 20*time.Second)
}

// Kill sends SIGKILL, when the process still runs, and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Kill()
	<-p.done
}

// Get polls url until it answers (the process may still be starting),
// within timeout, and returns the status and body. The process exiting
// first fails the test.
func (p *Process) Get(t testing.TB, url string, timeout time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(body)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s answered; log:\n%s", filepath.Base(p.Cmd.Path), url, p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %s; log:\n%s", url, err, timeout, p.Logs())
		}
	}
}

// WaitStatus polls url until it answers status, within timeout.
func (p *Process) WaitStatus(t testing.TB, url string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := p.Get(t, url, time.Until(deadline))
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answers %d %.200s, not %d, after %s; log:\n%s", url, code, body, status, timeout, p.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
