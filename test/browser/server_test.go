package browser

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serverBin is the studio binary, built once for the package.
var serverBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func studioBinary(t *testing.T) string {
	t.Helper()
	serverBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "studio-browser-bin-")
		if err != nil {
			serverBin.err = err
			return
		}
		serverBin.dir = dir
		serverBin.path = filepath.Join(dir, "studio")
		out, err := exec.Command("go", "build", "-o", serverBin.path, "github.com/fgstudio/fgstudio/cmd/studio").CombinedOutput()
		if err != nil {
			serverBin.err = fmt.Errorf("build studio: %v\n%s", err, out)
		}
	})
	if serverBin.err != nil {
		t.Fatal(serverBin.err)
	}
	return serverBin.path
}

// repoPath resolves a path relative to the repository root.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// modelsDir is $STUDIO_MODELS_DIR or the sample models.
func modelsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STUDIO_MODELS_DIR")
	if dir == "" {
		dir = repoPath(t, "samples/models")
	}
	for _, m := range []string{"attngan-birds", "cvaegan-birds", "classifier-birds"} {
		if _, err := os.Stat(filepath.Join(dir, m, "model.json")); err != nil {
			t.Fatalf("the end-to-end test needs the sample models in %s (make train, or STUDIO_MODELS_DIR): %v", dir, err)
		}
	}
	return dir
}

func ortLibPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ORT_LIB_PATH"); p != "" {
		return p
	}
	return repoPath(t, ".deps/onnxruntime/lib/libonnxruntime.so")
}

// studioServer is `studio serve` as a process: embedded queue, the
// worker in the same process, real models.
type studioServer struct {
	URL  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

func (s *studioServer) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func startServer(t *testing.T, extraArgs ...string) *studioServer {
	t.Helper()
	bin := studioBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"serve", "--addr", addr, "--models-dir", modelsDir(t), "--ort-lib", ortLibPath(t),
		"--examples-dir", repoPath(t, "samples/examples/birds"), "--threads", "1", "--log-level", "debug"}, extraArgs...)
	s := &studioServer{URL: "http://" + addr, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	s.cmd.Env = os.Environ()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.cmd.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		_ = s.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("studio log:\n%s", s.logs())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(s.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("studio exited before it was ready; log:\n%s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("studio not ready within 60s; log:\n%s", s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
