//go:build !unit

// Package browser drives the web studio in Debian's Chromium through
// chromedp: against the real server (embedded queue, real models) for the
// main flow, and against a stub API for the states a healthy server rarely
// shows (429, 500, auth, no model loaded). Every page fails its test on a
// console error or an uncaught exception it did not expect, and the main
// screens are saved as PNG screenshots (checked to be non-blank) in
// $STUDIO_ARTIFACTS, or in the test's temporary directory.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fgstudio/fgstudio/test/studiotest"
)

// chromiumPath is Debian's Chromium (scripts/setup.sh test installs it);
// CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

var shared struct {
	once   sync.Once
	ctx    context.Context // the browser
	cancel func()
	err    error
	dir    string
}

func TestMain(m *testing.M) {
	code := studiotest.Run(m)
	if shared.cancel != nil {
		shared.cancel()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// browserCtx starts one headless Chromium for the whole package, with a
// fresh profile. A missing Chromium fails the test: it is part of the
// test set-up (scripts/setup.sh test), never a reason to skip.
func browserCtx(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(func() {
		if _, err := os.Stat(chromiumPath()); err != nil {
			shared.err = fmt.Errorf("chromium not found at %s (scripts/setup.sh test installs it): %w", chromiumPath(), err)
			return
		}
		dir, err := os.MkdirTemp("", "studio-chromium-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(chromiumPath()),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(dir),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-default-apps", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("metrics-recording-only", true),
			chromedp.Flag("password-store", "basic"),
			chromedp.Flag("use-mock-keychain", true),
			chromedp.Flag("force-color-profile", "srgb"),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.WindowSize(1280, 800),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(alloc)
		shared.cancel = func() { cancelBrowser(); cancelAlloc() }
		if err := chromedp.Do(bctx); err != nil { // starts the browser, with no timeout
			shared.err = fmt.Errorf("start chromium %s: %w", chromiumPath(), err)
			return
		}
		shared.ctx = bctx
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.ctx
}

// page is one browser tab of a test.
type page struct {
	t       *testing.T
	ctx     context.Context
	base    string
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	allowed []func(chromedp.ConsoleMessage) bool
}

// openPage opens a tab at base with a viewport of w×h. When the test ends,
// the tab fails it for each console error or uncaught exception that no
// allow rule accepts.
func openPage(t *testing.T, base string, w, h int64) *page {
	t.Helper()
	tab, cancel := chromedp.NewContext(browserCtx(t))
	p := &page{t: t, ctx: tab, base: base}
	messages := chromedp.Console(tab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.checkConsole()
		cancel()
		<-done
	})
	p.do(chromedp.EmulateViewport(w, h))
	// The profile is shared by the package's tests, and a port may come
	// back: what an earlier test kept for this origin (the studio's
	// IndexedDB and localStorage) is cleared first.
	if _, err := chromedp.Call(tab, storage.ClearDataForOrigin, storage.ClearDataForOriginParams{Origin: base, StorageTypes: "all"}); err != nil {
		t.Fatalf("clear the origin's storage: %v", err)
	}
	p.do(chromedp.Navigate(base + "/"))
	return p
}

// allow accepts console messages that match (expected network errors of a
// stubbed 429, for example).
func (p *page) allow(f func(chromedp.ConsoleMessage) bool) { p.allowed = append(p.allowed, f) }

// allowStatus accepts the browser's "Failed to load resource" log entry for
// responses with one of the statuses.
func (p *page) allowStatus(codes ...int) {
	p.allow(func(m chromedp.ConsoleMessage) bool {
		if m.Source != "network" {
			return false
		}
		for _, c := range codes {
			if strings.Contains(m.Text, fmt.Sprintf("status of %d", c)) {
				return true
			}
		}
		return false
	})
}

func (p *page) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bad []string
next:
	for _, m := range p.console {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		for _, ok := range p.allowed {
			if ok(m) {
				continue next
			}
		}
		bad = append(bad, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
	}
	return bad
}

func (p *page) checkConsole() {
	p.t.Helper()
	// Let messages of the last actions arrive.
	time.Sleep(100 * time.Millisecond)
	for _, b := range p.problems() {
		p.t.Errorf("console: %s", b)
	}
}

// do runs actions with a bound on each step.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage state: %s", err, p.state())
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(e *runtime.EvaluateParams) { on := true; e.AwaitPromise = &on }))
	if err != nil {
		p.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript condition until it is truthy.
func (p *page) wait(what, cond string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage state: %s", what, cond, err, p.state())
	}
}

// state summarises what the page shows, for failure messages.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const q = (s) => [...document.querySelectorAll(s)].filter((e) => !e.hidden).map((e) => e.textContent.trim()).join(" | ");
		return JSON.stringify({banner: document.getElementById("banner").hidden ? "" : q("#banner"),
			errors: q(".form-error"), runs: q(".run-state"), note: q("#model-note"), active: document.activeElement && document.activeElement.id});
	})()`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	msgs := p.problems()
	return s + "\nconsole errors: " + strings.Join(msgs, "; ")
}

// click clicks the first element that matches a CSS selector, once visible.
func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto focuses an input and types text with key events.
func (p *page) typeInto(sel, text string) {
	p.t.Helper()
	p.do(chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent(text))
}

// keys sends key events to the focused element.
func (p *page) keys(k string, opts ...chromedp.KeyOption) {
	p.t.Helper()
	p.do(chromedp.KeyEvent(k, opts...))
}

// tabTo presses Tab until the focused element matches sel; it fails after
// max presses. It proves that sel is reachable with the keyboard.
func (p *page) tabTo(sel string, max int) {
	p.t.Helper()
	for i := 0; i < max; i++ {
		if eval[bool](p, fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, sel)) {
			return
		}
		p.keys(kb.Tab)
	}
	p.t.Fatalf("%s not reached with %d Tab presses; focus is on %s", sel, max,
		eval[string](p, `document.activeElement ? document.activeElement.outerHTML.slice(0, 160) : "nothing"`))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel))
}

func (p *page) count(sel string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// artifacts is where screenshots go: $STUDIO_ARTIFACTS/<test>, or the
// test's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	root := os.Getenv("STUDIO_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shot saves a screenshot of the viewport as name.png and checks that it
// is a real picture: a PNG of the viewport's size with more than a few
// colours, not one flat colour.
func (p *page) shot(dir, name string) {
	p.t.Helper()
	// Let transitions and image decoding settle.
	p.do(chromedp.Sleep(150 * time.Millisecond))
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := checkNotBlank(buf); err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// checkNotBlank decodes a PNG and wants at least 16 distinct colours and
// no colour on more than 97% of the pixels.
func checkNotBlank(buf []byte) error {
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("not a PNG: %w", err)
	}
	return notBlank(img)
}

func notBlank(img image.Image) error {
	b := img.Bounds()
	if b.Dx() < 16 || b.Dy() < 16 {
		return fmt.Errorf("image is only %dx%d", b.Dx(), b.Dy())
	}
	counts := map[[4]uint32]int{}
	total := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}]++
			total++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	if len(counts) < 16 {
		return fmt.Errorf("blank: only %d colours", len(counts))
	}
	if float64(most) > 0.97*float64(total) {
		return fmt.Errorf("blank: one colour covers %.1f%% of the image", 100*float64(most)/float64(total))
	}
	return nil
}

// downloads makes the browser save downloads in a fresh directory.
func (p *page) downloads() string {
	p.t.Helper()
	dir := p.t.TempDir()
	on := true
	_, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &on})
	if err != nil {
		p.t.Fatalf("set download behaviour: %v", err)
	}
	return dir
}

// waitFile waits for a finished download whose name matches pattern.
func waitFile(t *testing.T, dir, pattern string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if strings.HasSuffix(m, ".crdownload") {
				continue
			}
			if st, err := os.Stat(m); err == nil && st.Size() > 0 {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("no download matching %s within %s; the folder has %v", pattern, timeout, names)
	return ""
}

// pngChunks lists the chunk types of a PNG.
func pngChunks(data []byte) ([]string, error) {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return nil, errors.New("not a PNG signature")
	}
	var types []string
	for i := len(sig); i+8 <= len(data); {
		n := int(data[i])<<24 | int(data[i+1])<<16 | int(data[i+2])<<8 | int(data[i+3])
		types = append(types, string(data[i+4:i+8]))
		i += 12 + n
	}
	return types, nil
}
