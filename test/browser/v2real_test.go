//go:build !unit

package browser

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/fgstudio/fgstudio/test/studiotest"
)

// serveAt starts `studio serve` on addr (so that a restarted server
// keeps the page's origin, and with it the browser's store), with the
// models of modelsDir and the class examples of $STUDIO_EXAMPLES_DIR or
// samples/examples/birds.
func serveAt(t *testing.T, addr string, extraArgs ...string) *studioServer {
	t.Helper()
	examples := os.Getenv("STUDIO_EXAMPLES_DIR")
	if examples == "" {
		examples = studiotest.RepoPath(t, "samples/examples/birds")
	}
	args := append([]string{"serve", "--addr", addr, "--models-dir", modelsDir(t), "--ort-lib", studiotest.ORTLib(t),
		"--examples-dir", examples, "--threads", "1", "--log-level", "debug"}, extraArgs...)
	cmd := exec.Command(studiotest.Studio(t), args...)
	cmd.Env = os.Environ()
	s := &studioServer{URL: "http://" + addr, Process: studiotest.Start(t, cmd)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("studio log (%s):\n%s", addr, s.Logs())
		}
	})
	s.WaitStatus(t, s.URL+"/readyz", 200, 60*time.Second)
	return s
}

// dropFile drops the file at path on the page at (x, y) the way a user
// drags it in from the desktop.
func (p *page) dropFile(path string, x, y float64) {
	p.t.Helper()
	data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{path}, DragOperationsMask: 1}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
		if _, err := chromedp.Call(ctx, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: x, Y: y, Data: data}); err != nil {
			p.t.Fatalf("drag %s: %v", typ, err)
		}
	}
}

// serverPNG fetches, from the server, the PNG that the first tile in sel
// shows.
func serverPNG(t *testing.T, p *page, base, sel string) []byte {
	t.Helper()
	link := eval[string](p, fmt.Sprintf(`document.querySelector(%q).dataset.png || ""`, sel))
	if link == "" {
		t.Fatalf("%s has no image link", sel)
	}
	res, err := http.Get(base + link)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", link, res.StatusCode, err)
	}
	return data
}

// visibleWith counts the shown elements of the page whose own text says s.
func visibleWith(p *page, s string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf(`[...document.querySelectorAll("body *")].filter((e) => e.offsetParent !== null || e.closest("[open]"))
		.filter((e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.includes(%q))).length`, s))
}

// TestGalleryAcrossReloadAndServerRestart: the gallery is kept in the
// browser — a reload brings it back, images and all; a server restart
// (the embedded queue forgets its jobs) leaves it whole, with the images
// the server no longer has marked, not broken; the server being down is
// said once and clears itself. A PNG of the studio dropped on the page
// loads its settings, and they make the same image again.
func TestGalleryAcrossReloadAndServerRestart(t *testing.T) {
	addr := studiotest.FreeAddr(t)
	srv := serveAt(t, addr)
	p := openPage(t, srv.URL, 1280, 900)
	dir := artifacts(t)
	waitModels(p)
	prompt := "a small bird with a red crown and a hooked bill"
	p.typeInto("#prompt", prompt)
	p.setValue("#n", "2")
	p.setValue("#seed", "11")
	p.click("#generate")
	p.wait("the images", imagesLoaded("#runs .run", 2), 60*time.Second)
	p.wait("the run to finish", `document.querySelector("#runs .run").dataset.state === "succeeded"`, 30*time.Second)
	original := serverPNG(t, p, srv.URL, "#runs .run .tile")
	checkPNG(t, "the first image", original)

	// A reload: the run is back from the browser's store, with its images.
	p.do(chromedp.Reload())
	waitModels(p)
	p.wait("the restored run", imagesLoaded("#runs .run", 2)+` && document.querySelector("#runs .run .state").textContent === "Done — 2 of 2"`, 10*time.Second)
	if seeds := tileSeeds(p, "#runs .run"); strings.Join(seeds, ",") != "seed 11,seed 12" {
		t.Errorf("restored seeds %q", seeds)
	}
	if got := eval[string](p, `document.getElementById("prompt").value`); got != prompt {
		t.Errorf("the prompt after a reload: %q", got)
	}
	if !eval[bool](p, `document.querySelector("#runs .run .gone-note").hidden`) {
		t.Error("a run the server still has is marked as gone")
	}

	// The server stops: one message says so (not the form, not the run).
	if code := srv.Stop(t); code != 0 {
		t.Fatalf("studio exited %d", code)
	}
	p.allow(func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && (strings.Contains(m.Text, "ERR_CONNECTION_REFUSED") || strings.Contains(m.Text, "Failed to load resource"))
	})
	p.allowStatus(404) // the old job, asked for after the restart
	p.click("#generate")
	p.wait("the banner", `!document.getElementById("banner").hidden && document.getElementById("banner").dataset.kind === "network"`, 10*time.Second)
	time.Sleep(time.Second) // whatever else would say it, says it now
	if n := visibleWith(p, "cannot be reached"); n != 1 {
		t.Errorf("“cannot be reached” shows %d times, want once", n)
	}
	if !eval[bool](p, `document.getElementById("composer-error").hidden`) {
		t.Errorf("the form repeats the banner: %q", p.text("#composer-error"))
	}
	if st := p.text("#server-state"); st != "unreachable" {
		t.Errorf("server state %q", st)
	}
	p.shot(dir, "01-server-down")

	// It comes back (a new process: the embedded queue has no jobs): the
	// banner goes by itself; the run's images, no longer on the server,
	// are marked and still shown from the browser's copies.
	serveAt(t, addr)
	p.wait("the banner to go", `document.getElementById("banner").hidden`, 20*time.Second)
	p.wait("the run marked gone", `!document.querySelector("#runs .run .gone-note").hidden`, 20*time.Second)
	if n := eval[int](p, `[...document.querySelectorAll("#runs .run .tile-open img")].filter((i) => i.complete && i.naturalWidth === 64).length`); n != 2 {
		t.Errorf("%d images shown after the restart, want the 2 kept", n)
	}
	if n := p.count("#runs .run .kept-tag"); n != 2 {
		t.Errorf("%d images marked as kept in the browser, want 2", n)
	}
	if broken := eval[int](p, `[...document.querySelectorAll("img")].filter((i) => i.src && i.complete && i.naturalWidth === 0).length`); broken != 0 {
		t.Errorf("%d broken images", broken)
	}
	// A reload now: still there, still marked.
	p.do(chromedp.Reload())
	waitModels(p)
	p.wait("the run, restored and marked", imagesLoaded("#runs .run", 2)+` && !document.querySelector("#runs .run .gone-note").hidden`, 10*time.Second)
	p.click("#runs .run .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open && !document.getElementById("viewer-gone").hidden`, 5*time.Second)
	if note := p.text("#words-note"); !strings.Contains(note, "no longer has") {
		t.Errorf("attention note %q", note)
	}
	p.shot(dir, "02-kept-after-restart")
	p.click("#viewer-close")

	// Drop the image's PNG on the page: its settings fill the form.
	pngPath := filepath.Join(t.TempDir(), "bird-seed11.png")
	if err := os.WriteFile(pngPath, original, 0o644); err != nil {
		t.Fatal(err)
	}
	p.setValue("#prompt", "something else")
	p.setValue("#seed", "")
	p.click("#seed-random")
	p.dropFile(pngPath, 700, 400)
	p.wait("the settings of the PNG", fmt.Sprintf(`document.getElementById("prompt").value === %q && document.getElementById("seed").value === "11"`, prompt), 5*time.Second)
	if eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Error("Random stays on after loading a seed")
	}
	if note := p.text("#seed-note"); !strings.Contains(note, "bird-seed11.png") || !strings.Contains(note, "seed 11") {
		t.Errorf("the page says %q", note)
	}
	// Generated from those settings, the first image is the same image.
	p.setValue("#n", "1")
	p.click("#generate")
	p.wait("the new run", `document.querySelectorAll("#runs .run").length === 2`, 10*time.Second)
	p.wait("its image", imagesLoaded("#runs .run:first-child", 1), 60*time.Second)
	if again := serverPNG(t, p, srv.URL, "#runs .run:first-child .tile"); !bytes.Equal(again, original) {
		t.Error("the settings of the dropped PNG did not make the same image")
	}

	// A PNG without the studio's chunk is refused in words.
	plain := filepath.Join(t.TempDir(), "holiday.png")
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	img.SetNRGBA(1, 1, color.NRGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	if err := os.WriteFile(plain, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p.dropFile(plain, 700, 400)
	p.wait("the refusal", `document.getElementById("composer-error").textContent.includes("No settings in holiday.png")`, 5*time.Second)
}

// TestDatasetBuilderToDownload: a data set made on the real server from
// the builder page — two classes picked by search, two images each —
// class by class to the tar download.
func TestDatasetBuilderToDownload(t *testing.T) {
	srv := serveAt(t, studiotest.FreeAddr(t), "--datasets-dir", filepath.Join(t.TempDir(), "datasets"))
	p := openPage(t, srv.URL, 1280, 900)
	dir := artifacts(t)
	waitModels(p)
	p.click("#tab-datasets")
	p.wait("the class model's classes", `document.getElementById("ds-model").value === "cvaegan-birds" && document.querySelectorAll("#ds-class-list [role=option]").length > 10`, 10*time.Second)
	picked := eval[[][]string](p, `fetch("/v1/models/cvaegan-birds").then((r) => r.json()).then((m) => m.classes.filter((c) => c.trained).slice(0, 2).map((c) => [c.name, c.label]))`)
	for _, c := range picked {
		name, label := c[0], c[1]
		p.setValue("#ds-class-search", label)
		p.wait("the class found first", fmt.Sprintf(`document.querySelector("#ds-class-list [role=option]").dataset.name === %q`, name), 3*time.Second)
		p.click(fmt.Sprintf(`#ds-class-list [data-name=%q]`, name))
	}
	p.setValue("#ds-class-search", "")
	if got := p.text("#ds-count"); got != "2 classes selected" {
		t.Fatalf("count says %q", got)
	}
	p.setValue("#ds-per-class", "2")
	p.setValue("#ds-fidelity", "0")
	p.click("#ds-go")
	p.wait("the job's card", `document.querySelectorAll("#ds-jobs .ds-job").length === 1`, 10*time.Second)
	p.wait("the data set", `document.querySelector("#ds-jobs .ds-job").dataset.state === "succeeded"`, 120*time.Second)
	rows := eval[[]string](p, `[...document.querySelectorAll("#ds-jobs .ds-classes tbody tr")].map((r) => [...r.children].slice(1).map((c) => c.textContent.trim()).join(" | "))`)
	if len(rows) != 2 {
		t.Fatalf("rows %q", rows)
	}
	for _, r := range rows {
		if !strings.Contains(r, "| done |") || !strings.Contains(r, "2 / ") || !strings.Contains(r, "%") {
			t.Errorf("row %q: want done, 2 kept of those made, acceptance", r)
		}
		if strings.Contains(r, "_") || strings.Contains(r, "001.") {
			t.Errorf("row %q shows a raw class id", r)
		}
	}
	p.shot(dir, "01-dataset-done")
	dl := p.downloads()
	p.click("#ds-jobs .ds-download")
	path := waitFile(t, dl, "dataset-*.tar", 30*time.Second)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the tar: %v", err)
		}
		names = append(names, h.Name)
	}
	pngs := 0
	for _, n := range names {
		if strings.HasSuffix(n, ".png") {
			pngs++
		}
	}
	if len(names) == 0 || names[0] != "manifest.json" || pngs != 4 {
		t.Errorf("the tar holds %d PNGs (want 4) and starts with %q", pngs, names)
	}
}
