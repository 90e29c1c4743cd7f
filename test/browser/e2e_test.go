//go:build !unit

package browser

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestEndToEnd drives the real studio (`studio serve`: embedded queue,
// in-process worker, the sample models through ONNX Runtime) as a designer
// would: type a prompt, see the unknown word marked, generate, get images
// with badges, open the attention view, download, morph, interpolate, and
// run a generation again from history. No console error is allowed.
func TestEndToEnd(t *testing.T) {
	srv := startServer(t)
	p := openPage(t, srv.URL, 1280, 800)
	dir := artifacts(t)
	waitModels(p)
	if got := eval[string](p, `document.getElementById("model").value`); got != "attngan-birds" {
		t.Fatalf("default model %q, want the text model attngan-birds", got)
	}
	p.wait("the server state", `document.getElementById("server-state").textContent === "ready"`, 5*time.Second)

	// Type a prompt: the unknown word is underlined and said to be ignored.
	p.typeInto("#prompt", "a small bird with a red crown and a zzqx tail")
	p.wait("the unknown word", `[...document.querySelectorAll("#reading .tok.unknown")].some((e) => e.textContent.startsWith("zzqx"))`, 10*time.Second)
	if note := p.text("#reading .reading-note"); !strings.Contains(note, "zzqx") || !strings.Contains(note, "ignored") {
		t.Errorf("reading note %q", note)
	}
	// Completion from the model's vocabulary.
	p.keys(" and a hoo")
	p.wait("suggestions", `!document.getElementById("suggestions").hidden && [...document.querySelectorAll("#suggestions li")].some((l) => l.textContent === "hooked")`, 10*time.Second)
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#suggestions li")].find((l) => l.textContent === "hooked")`)))
	p.keys("bill")
	p.wait("the completed prompt", `document.getElementById("prompt").value === "a small bird with a red crown and a zzqx tail and a hooked bill"`, 3*time.Second)
	p.wait("the reading of the new words", `[...document.querySelectorAll("#reading .tok.known")].some((e) => e.textContent === "hooked")`, 10*time.Second)
	p.shot(dir, "01-prompt")

	// Generate two images with a typed seed: it is the seed used.
	p.setValue("#n", "2")
	p.setValue("#seed", "7")
	p.click("#generate")
	p.wait("the generated images with badges", imagesLoaded("#runs .run", 2), 60*time.Second)
	p.wait("the run to finish", `document.querySelector("#runs .run").dataset.state === "succeeded"`, 30*time.Second)
	if seeds := tileSeeds(p, "#runs .run"); strings.Join(seeds, ",") != "seed 7,seed 8" {
		t.Errorf("seeds %q", seeds)
	}
	badge := eval[string](p, `document.querySelector("#runs .run .badge").className`)
	if !strings.Contains(badge, "high") && !strings.Contains(badge, "mid") && !strings.Contains(badge, "low") {
		t.Errorf("badge %q has no level", badge)
	}
	// The badge names the measure of a prompt's fidelity (text similarity
	// or, with today's scorer, attribute agreement), under the image.
	if what := p.text("#runs .run .badge .what"); what != "text similarity" && what != "attribute agreement" {
		t.Errorf("badge says %q, want the measure's name", what)
	}
	checkBadgesBelowImages(t, p, "#runs")
	p.do(chromedp.Focus(chromedp.CSS("#runs .run .tile-open")))
	p.wait("the top-3", `getComputedStyle(document.querySelector("#runs .run .top3")).display === "block"`, 3*time.Second)
	if top := p.text("#runs .run .top3"); strings.Count(top, "%") != 3 {
		t.Errorf("top-3 %q", top)
	}
	p.shot(dir, "02-gallery")

	// The attention view: one map per kept word, drawn over the image.
	p.keys(kb.Enter)
	p.wait("the large view", `document.getElementById("viewer").open`, 5*time.Second)
	p.wait("the words", `document.querySelectorAll("#word-list input").length > 5`, 10*time.Second)
	words := eval[[]string](p, `[...document.querySelectorAll("#word-list .word span")].map((s) => s.textContent)`)
	if strings.Contains(strings.Join(words, " "), "zzqx") || !strings.Contains(strings.Join(words, " "), "crown") {
		t.Errorf("attention words %q", words)
	}
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#word-list .word")].find((l) => l.textContent === "crown")`)))
	p.wait("the map of crown", `document.getElementById("viewer-overlay").dataset.word === "crown"`, 10*time.Second)
	if painted := eval[int](p, `(() => { const c = document.getElementById("viewer-overlay"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()`); painted < 1000 {
		t.Errorf("the overlay painted %d pixels", painted)
	}
	p.shot(dir, "03-attention")

	// Download the image (the server's PNG, provenance chunk included).
	dl := p.downloads()
	p.click("#viewer-download")
	data, err := os.ReadFile(waitFile(t, dl, "*seed7.png", 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, "seed7.png", data)

	// Morph it into another class.
	p.click("#viewer-morph")
	p.wait("the morph form with the source", `!document.getElementById("panel-morph").hidden && !document.getElementById("morph-source").hidden`, 5*time.Second)
	p.wait("target classes", `document.querySelectorAll("#morph-class [role=option]").length > 1`, 5*time.Second)
	p.click(`#morph-class [role=option]:nth-child(2)`)
	p.click("#morph-go")
	p.wait("the morphed image", imagesLoaded("#morph-runs .run", 1), 60*time.Second)
	if b := eval[string](p, `document.querySelector("#morph-runs .badge").title`); !strings.HasPrefix(b, "class probability") {
		t.Errorf("morph badge %q: want the requested class's probability", b)
	}
	p.shot(dir, "04-morph")

	// An interpolation strip between two classes.
	p.click("#tab-interpolate")
	p.wait("classes", `document.querySelectorAll("#interp-from-class [role=option]").length > 1`, 5*time.Second)
	p.setValue("#interp-n", "4")
	p.click("#interp-go")
	p.wait("the strip", imagesLoaded("#interp-runs .run .strip", 4), 60*time.Second)
	p.shot(dir, "05-interpolation")

	// All of the gallery as a zip.
	p.click("#tab-generate")
	p.click("#zip-all")
	files := readZip(t, waitFile(t, dl, "fgstudio-gallery-*.zip", 10*time.Second))
	var pngs []string
	for name, b := range files {
		if strings.HasSuffix(name, ".png") {
			pngs = append(pngs, name)
			checkPNG(t, name, b)
		}
	}
	if len(pngs) != 2 || files["manifest.json"] == nil {
		t.Errorf("zip holds %q and manifest %t", pngs, files["manifest.json"] != nil)
	}

	// History: run the first generation again.
	p.click("#tab-history")
	p.wait("history", `document.querySelectorAll("#history-list li").length === 3`, 5*time.Second)
	p.shot(dir, "06-history")
	p.do(chromedp.Click(chromedp.JSPath(`[...[...document.querySelectorAll("#history-list li")].at(-1).querySelectorAll("button")].find((b) => b.textContent === "Run again")`)))
	p.wait("the second run", `document.querySelectorAll("#runs .run").length === 2`, 10*time.Second)
	p.wait("its images", imagesLoaded("#runs .run:first-child", 2), 60*time.Second)
	if seeds := tileSeeds(p, "#runs .run:first-child"); strings.Join(seeds, ",") != "seed 7,seed 8" {
		t.Errorf("run again made seeds %q, want the same 7 and 8", seeds)
	}

	// The class model's picker shows a real image of the picked class
	// (samples/examples/birds), fetched with the page's credentials.
	p.click("#tab-generate")
	p.setValue("#model", "cvaegan-birds")
	withExample := eval[string](p, `fetch("/v1/models/cvaegan-birds").then((r) => r.json()).then((m) => (m.classes.find((c) => c.trained && c.example) || {}).name || "")`)
	if withExample == "" {
		t.Fatal("no trained class of cvaegan-birds has an example image")
	}
	p.wait("the class list", `document.querySelectorAll("#class-list [role=option]").length > 1`, 5*time.Second)
	p.click(fmt.Sprintf(`#class-list [data-name=%q]`, withExample))
	p.wait("the class example", `(() => { const i = document.querySelector("#class-card .class-pic img");
		return i && i.src.startsWith("blob:") && i.complete && i.naturalWidth === 64; })()`, 10*time.Second)
	p.shot(dir, "07-class-example")
}
