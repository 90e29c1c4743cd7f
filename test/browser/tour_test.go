//go:build !unit

package browser

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fgstudio/fgstudio/test/studiotest"
)

// tourDir, when set (go test ./test/browser -run TestTour -args -tour
// docs/tour, or make tour), is where TestTour writes the README's
// screenshots; otherwise they go with the other artifacts.
var tourDir = flag.String("tour", "", "write the README tour's screenshots into this folder")

// tourShot saves the viewport as a compact PNG in dir.
func (p *page) tourShot(dir, name string) {
	p.t.Helper()
	p.do(chromedp.Sleep(300 * time.Millisecond))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := checkNotBlank(buf); err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		p.t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("tour screenshot: %s (%d KiB)", path, out.Len()/1024)
}

// TestTour makes the README's three screenshots on the real studio (the
// sample models): the gallery, the large view with word attention, and a
// finished data set. It checks what each shows before it is taken.
func TestTour(t *testing.T) {
	dir := *tourDir
	if dir == "" {
		dir = artifacts(t)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := serveAt(t, studiotest.FreeAddr(t), "--datasets-dir", filepath.Join(t.TempDir(), "datasets"))
	p := openPage(t, srv.URL, 1280, 800)
	waitModels(p)

	// 1. The gallery: a class run, then a prompt run, the prompt in the form.
	p.setValue("#model", "cvaegan-birds")
	p.wait("the classes", `document.querySelectorAll("#class-list [role=option]").length > 10`, 10*time.Second)
	p.setValue("#class-search", "blue crowned")
	p.wait("the search", `document.querySelector("#class-list [role=option] .class-name").textContent.startsWith("Blue crowned")`, 3*time.Second)
	p.click(`#class-list [role=option]:not([aria-disabled="true"])`)
	p.setValue("#n", "4")
	p.setValue("#seed", "3")
	p.click("#generate")
	p.wait("the class run", imagesLoaded("#runs .run", 4), 60*time.Second)
	p.setValue("#model", "attngan-birds")
	p.wait("the text model", `!document.getElementById("prompt-box").hidden`, 5*time.Second)
	p.typeInto("#prompt", "a small bird with a red crown, a white breast and black wings")
	p.wait("the reading", `document.querySelectorAll("#reading .tok.known").length > 5`, 10*time.Second)
	p.setValue("#seed", "21")
	p.click("#generate")
	p.wait("the prompt run", `document.querySelectorAll("#runs .run").length === 2 && `+imagesLoaded("#runs .run:first-child", 4), 60*time.Second)
	p.wait("both done", `[...document.querySelectorAll("#runs .run .state")].every((s) => s.textContent.startsWith("Done"))`, 30*time.Second)
	checkBadgesBelowImages(t, p, "#runs")
	p.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); window.scrollTo(0, 0); document.getElementById("composer").scrollTop = 0`))
	p.tourShot(dir, "gallery")

	// 2. The large view of the best image, its most telling word chosen.
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#runs .run:first-child .tile")].sort((a, b) => b.dataset.fidelity - a.dataset.fidelity)[0].querySelector(".tile-open")`)))
	p.wait("the words", `document.getElementById("viewer").open && document.querySelectorAll("#word-list input").length > 3`, 10*time.Second)
	// The word the model attended to most (the longest bar under a word).
	strongest := eval[string](p, `[...document.querySelectorAll("#word-list .word")].filter((l) => l.querySelector(".wbar"))
		.sort((a, b) => parseFloat(b.querySelector(".wbar").style.width) - parseFloat(a.querySelector(".wbar").style.width))[0].textContent`)
	p.do(chromedpClickWord(strongest))
	p.wait("the map of "+strongest, fmt.Sprintf(`document.getElementById("viewer-overlay").dataset.word === %q`, strongest), 10*time.Second)
	p.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	p.tourShot(dir, "attention")
	p.click("#viewer-close")

	// 3. A data set: four classes by search, done, ready to download.
	p.click("#tab-datasets")
	p.wait("the classes", `document.querySelectorAll("#ds-class-list [role=option]").length > 10`, 10*time.Second)
	p.setValue("#ds-class-search", "white crowned")
	p.do(chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#ds-class-list [role=option]:not([aria-disabled=true])")].slice(0, 4).forEach((o) => o.click())`))
	p.setValue("#ds-class-search", "")
	p.setValue("#ds-per-class", "4")
	p.setValue("#ds-fidelity", "25")
	p.click("#ds-go")
	p.wait("the data set", `!!document.querySelector("#ds-jobs .ds-job") && document.querySelector("#ds-jobs .ds-job").dataset.state === "succeeded"`, 180*time.Second)
	p.do(chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); window.scrollTo(0, 0); document.getElementById("ds-form").scrollTop = 0; document.getElementById("ds-class-list").scrollTop = 0`))
	p.tourShot(dir, "datasets")
}
