//go:build !unit

package browser

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fgstudio/fgstudio/studio/api"
)

// setValue sets a form control's value as a paste would, and tells the page.
func (p *page) setValue(sel, v string) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, v))
}

// hover moves the mouse over the centre of the first element matching sel.
func (p *page) hover(sel string) {
	p.t.Helper()
	xy := eval[[]float64](p, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`, sel))
	p.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, xy[0], xy[1]))
}

// tileSeeds lists the seeds the tiles of the first card matching sel show.
func tileSeeds(p *page, sel string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf(`[...document.querySelector(%q).querySelectorAll(".tile .seed-copy")].map((b) => b.firstChild.textContent)`, sel))
}

// checkBadgesBelowImages wants every fidelity badge in box under its
// image, covering none of it.
func checkBadgesBelowImages(t *testing.T, p *page, box string) {
	t.Helper()
	bad := eval[[]string](p, fmt.Sprintf(`[...document.querySelectorAll(%q + " .tile")].filter((f) => f.querySelector(".tile-open img") && f.querySelector(".badge")).filter((f) => {
		const i = f.querySelector(".tile-open img").getBoundingClientRect(), b = f.querySelector(".badge").getBoundingClientRect();
		return b.top < i.bottom - 0.5; }).map((f) => f.dataset.run + "/" + f.dataset.index)`, box))
	if len(bad) > 0 {
		t.Errorf("badges over their image in %s: %v", box, bad)
	}
}

// imagesLoaded is a condition: the run card sel shows n decoded images
// and n fidelity badges.
func imagesLoaded(sel string, n int) string {
	return fmt.Sprintf(`(() => { const imgs = [...document.querySelectorAll(%q + " .tile-open img")];
		return imgs.length >= %d && imgs.every((i) => i.complete && i.naturalWidth > 0) &&
			document.querySelectorAll(%q + " .badge").length >= %d; })()`, sel, n, sel, n)
}

func waitModels(p *page) {
	p.t.Helper()
	p.wait("the models list", `document.querySelectorAll("#model option").length >= 1 && !document.getElementById("composer").hasAttribute("aria-busy")`, 15*time.Second)
}

func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("the zip does not open: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc) // checks the CRC-32 at EOF
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name] = b
	}
	return files
}

// checkPNG wants a decodable PNG with the provenance tEXt chunk.
func checkPNG(t *testing.T, name string, data []byte) {
	t.Helper()
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	chunks, err := pngChunks(data)
	if err != nil || len(chunks) < 2 || chunks[1] != "tEXt" {
		t.Errorf("%s: chunks %v (%v); want the provenance tEXt right after IHDR", name, chunks, err)
	}
}

// TestComposeGenerateCompare is the designer's loop on the stub API:
// prompt with unknown-word marking, completion and chips, seeded
// generation with badges and top-3, the attention view, vary and
// change-one-word side by side, downloads, and history across a reload.
func TestComposeGenerateCompare(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 800)
	dir := artifacts(t)
	waitModels(p)
	if got := p.text("#gallery-empty"); !strings.Contains(got, "Nothing here yet") {
		t.Errorf("empty gallery says %q", got)
	}
	p.shot(dir, "01-empty")

	// Live tokenization: unknown words underlined, with the note.
	p.typeInto("#prompt", "a small bird with a red crwn")
	p.wait("the unknown word", `[...document.querySelectorAll("#reading .tok.unknown")].some((e) => e.textContent.startsWith("crwn"))`, 5*time.Second)
	if note := p.text("#reading .reading-note"); !strings.Contains(note, "ignored") || !strings.Contains(note, "crwn") {
		t.Errorf("reading note = %q, want it to say crwn is ignored", note)
	}
	if deco := eval[string](p, `getComputedStyle(document.querySelector("#reading .tok.unknown")).textDecorationLine`); deco != "underline" {
		t.Errorf("unknown word decoration = %q, want underline", deco)
	}
	if n := p.count("#reading .tok.known"); n != 6 {
		t.Errorf("%d known words marked, want 6", n)
	}

	// Completion: type a prefix, pick with the keyboard.
	p.keys(" and hoo")
	p.wait("suggestions", `!document.getElementById("suggestions").hidden && document.querySelector("#suggestions li").textContent === "hooked"`, 5*time.Second)
	p.keys(kb.ArrowDown)
	p.keys(kb.Enter)
	p.wait("the accepted word", `document.getElementById("prompt").value === "a small bird with a red crwn and hooked "`, 3*time.Second)
	p.keys("bill")
	if !eval[bool](p, `document.querySelectorAll("#runs .run").length === 0`) {
		t.Fatal("Enter that accepted a suggestion also submitted the form")
	}

	// Chips: only phrases whose words the model knows.
	p.click("#chips-box summary")
	p.wait("chips", `document.querySelectorAll("#chips .chip").length > 3`, 5*time.Second)
	chips := eval[[]string](p, `[...document.querySelectorAll("#chips .chip")].map((c) => c.textContent)`)
	if !slices.Contains(chips, "blue wings") || !slices.Contains(chips, "red crown") {
		t.Errorf("chips %q lack blue wings or red crown", chips)
	}
	if slices.Contains(chips, "needle bill") {
		t.Errorf("chips %q offer needle bill, whose word the model does not know", chips)
	}
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#chips .chip")].find((c) => c.textContent === "blue wings")`)))
	p.wait("the chip in the prompt", `document.getElementById("prompt").value.endsWith("bill and a blue wings")`, 3*time.Second)

	// A typed seed is the seed used: Random switches itself off.
	p.setValue("#n", "4")
	if !eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Error("a new studio does not start with Random on")
	}
	p.setValue("#seed", "42")
	if eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Fatal("typing a seed left Random on")
	}
	// Record what the run card says while the job runs (SSE progress).
	eval[bool](p, `(() => { window.seen = new Set(); new MutationObserver(() => {
		for (const e of document.querySelectorAll("#runs .state")) window.seen.add(e.textContent); })
		.observe(document.getElementById("runs"), {subtree: true, childList: true, characterData: true}); return true; })()`)
	p.click("#generate")
	p.wait("the first run's images", imagesLoaded("#runs .run", 4), 15*time.Second)
	p.wait("the run to finish", `document.querySelector("#runs .run").dataset.state === "succeeded"`, 5*time.Second)
	seen := eval[[]string](p, `[...window.seen]`)
	if !slices.ContainsFunc(seen, func(s string) bool {
		return strings.HasPrefix(s, "Generating — 1 of 4") || strings.HasPrefix(s, "Generating — 2 of 4") || strings.HasPrefix(s, "Generating — 3 of 4")
	}) {
		t.Errorf("the run never showed progress while running; it said %q", seen)
	}
	s.mu.Lock()
	streams := s.streams
	s.mu.Unlock()
	if streams == 0 {
		t.Error("the page did not follow the job's event stream")
	}
	levels := eval[[]string](p, `[...document.querySelectorAll("#runs .run .badge")].map((b) => b.className)`)
	for _, want := range []string{"high", "mid", "low"} {
		if !slices.ContainsFunc(levels, func(c string) bool { return strings.Contains(c, want) }) {
			t.Errorf("badges %q: none is %s", levels, want)
		}
	}
	// The badge says what the number is: for a prompt (first scorer),
	// text similarity; it sits under the image, not over it.
	if got := p.text("#runs .run .badge"); got != "text similarity 83 %" {
		t.Errorf("first badge = %q, want text similarity 83 %%", got)
	}
	if title := eval[string](p, `document.querySelector("#runs .run .badge").title`); !strings.HasPrefix(title, "text similarity (DAMSM): how well image and prompt match") {
		t.Errorf("first badge title = %q", title)
	}
	checkBadgesBelowImages(t, p, "#runs")
	// The image events carried the images: the page did not read the job
	// once per image.
	s.mu.Lock()
	gets := s.jobGets
	s.mu.Unlock()
	if gets >= 4 {
		t.Errorf("the page read the job %d times for 4 images", gets)
	}
	seeds := tileSeeds(p, "#runs .run")
	if !slices.Equal(seeds, []string{"seed 42", "seed 43", "seed 44", "seed 45"}) {
		t.Errorf("seeds %q, want 42..45", seeds)
	}
	// Top-3 on hover.
	p.hover("#runs .run .tile:nth-child(2) .tile-open")
	p.wait("the top-3 on hover", `getComputedStyle(document.querySelector("#runs .run .tile:nth-child(2) .top3")).display === "block"`, 3*time.Second)
	if top := p.text("#runs .run .tile:nth-child(2) .top3"); !strings.Contains(top, "Top classes") || strings.Count(top, "%") != 3 {
		t.Errorf("top-3 = %q", top)
	}
	p.shot(dir, "02-gallery-top3")

	// The large view with attention overlays, one word at a time.
	p.click("#runs .run .tile:nth-child(1) .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open && document.getElementById("viewer-img").complete`, 5*time.Second)
	p.wait("the word list", `document.querySelectorAll("#word-list input").length > 3`, 5*time.Second)
	words := eval[[]string](p, `[...document.querySelectorAll("#word-list .word span")].map((s) => s.textContent)`)
	if !slices.Contains(words, "red") || slices.Contains(words, "crwn") {
		t.Errorf("attention words %q: want red, not the unknown crwn", words)
	}
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#word-list .word")].find((l) => l.textContent === "red")`)))
	p.wait("the overlay of red", `document.getElementById("viewer-overlay").dataset.word === "red"`, 5*time.Second)
	if painted := eval[int](p, `(() => { const c = document.getElementById("viewer-overlay"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()`); painted < 1000 {
		t.Errorf("the overlay painted %d pixels", painted)
	}
	p.shot(dir, "03-attention")
	p.keys(kb.Escape)
	p.wait("the view to close and focus to return", `!document.getElementById("viewer").open && document.activeElement.classList.contains("tile-open")`, 3*time.Second)

	// Vary: same prompt, the next seeds, side by side.
	p.click("#vary")
	p.wait("the vary run's card", `document.querySelectorAll("#runs .run").length === 2`, 5*time.Second)
	p.wait("the vary run", imagesLoaded("#runs .run:first-child .side:nth-child(2)", 4), 15*time.Second)
	if h := p.text("#runs .run:first-child .side:nth-child(2) h4"); !strings.Contains(h, "seeds 46–49") {
		t.Errorf("vary side B says %q, want seeds 46–49", h)
	}
	if n := p.count("#runs .run:first-child .side:nth-child(1) .tile-open img"); n != 4 {
		t.Errorf("vary side A shows %d images of the original, want 4", n)
	}

	// Change one word: same seed, edited prompt.
	p.click("#change-one")
	p.wait("the edit box", `!document.getElementById("change-box").hidden && document.activeElement.id === "change-input"`, 3*time.Second)
	p.setValue("#change-input", strings.Replace(eval[string](p, `document.getElementById("change-input").value`), "red", "yellow", 1))
	p.keys(kb.Enter) // in the edit box: generate side by side
	p.wait("the changed run's card", `document.querySelectorAll("#runs .run").length === 3`, 5*time.Second)
	p.wait("the changed run", imagesLoaded("#runs .run:first-child .side:nth-child(2)", 4), 15*time.Second)
	marks := eval[[]string](p, `[...document.querySelectorAll("#runs .run:first-child .side mark")].map((m) => m.textContent)`)
	if !slices.Equal(marks, []string{"red", "yellow"}) {
		t.Errorf("changed words marked %q, want [red yellow]", marks)
	}
	s.mu.Lock()
	last := s.posted[len(s.posted)-1]
	s.mu.Unlock()
	// It changes the newest run (the varied one): same seeds, 46 on.
	if last["seed"] != float64(46) || !strings.Contains(last["prompt"].(string), "yellow crwn") {
		t.Errorf("change-one-word posted %v, want seed 46 and the edited prompt", last)
	}
	p.shot(dir, "04-compare")

	// Downloads: one PNG, and all as a zip.
	dl := p.downloads()
	p.click("#runs .run:last-child .tile:nth-child(1) .dl")
	one := waitFile(t, dl, "*seed42.png", 10*time.Second)
	data, err := os.ReadFile(one)
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Base(one), data)
	p.click("#zip-all")
	files := readZip(t, waitFile(t, dl, "fgstudio-gallery-*.zip", 10*time.Second))
	var pngs int
	for name, b := range files {
		if strings.HasSuffix(name, ".png") {
			pngs++
			checkPNG(t, name, b)
		}
	}
	if pngs != 12 {
		t.Errorf("the zip holds %d PNGs, want 12 (3 runs of 4)", pngs)
	}
	if m := string(files["manifest.json"]); !strings.Contains(m, `"seed": 46`) || !strings.Contains(m, "text_similarity") {
		t.Errorf("manifest.json lacks seeds or scores: %.300s", m)
	}

	// History survives a reload and runs a request again, same parameters.
	p.click("#tab-history")
	p.wait("history", `document.querySelectorAll("#history-list li").length === 3`, 3*time.Second)
	p.do(chromedp.Reload())
	waitModels(p)
	p.click("#tab-history")
	p.wait("history after a reload", `document.querySelectorAll("#history-list li").length === 3`, 3*time.Second)
	// The gallery came back too, images and all, from the browser's store.
	p.wait("the gallery after a reload", `document.querySelectorAll("#runs .run").length === 3`, 5*time.Second)
	p.shot(dir, "05-history")
	p.do(chromedp.Click(chromedp.JSPath(`[...[...document.querySelectorAll("#history-list li")].at(-1).querySelectorAll("button")].find((b) => b.textContent === "Run again")`)))
	p.wait("the re-run", `document.querySelectorAll("#runs .run").length === 4`, 5*time.Second)
	p.wait("its images", imagesLoaded("#runs .run", 4), 15*time.Second)
	s.mu.Lock()
	first, again := s.posted[0], s.posted[len(s.posted)-1]
	s.mu.Unlock()
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Errorf("run again posted %v, want the first request %v", again, first)
	}
}

// TestClassMorphInterpolate: the class picker (search, keyboard, sketch and
// attributes), a class generation, a morph of an uploaded image and of a
// picked one, and an interpolation strip.
func TestClassMorphInterpolate(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 800)
	dir := artifacts(t)
	waitModels(p)
	p.setValue("#model", "cvaegan-stub")
	p.wait("the class picker", `!document.getElementById("class-box").hidden && document.querySelectorAll("#class-list [role=option]").length === 5`, 5*time.Second)
	if held := p.text("#class-list .held-out"); !strings.Contains(held, "held out") {
		t.Errorf("the held-out class is shown as %q", held)
	}
	if p.count("#class-card svg.sketch") != 1 || !strings.Contains(p.text("#class-card dl"), "hooked") {
		t.Errorf("class card: %q", p.text("#class-card"))
	}
	p.typeInto("#class-search", "blue")
	p.wait("the filtered list", `document.querySelectorAll("#class-list [role=option]").length === 1`, 3*time.Second)
	p.keys(kb.ArrowDown)
	p.wait("the picked class", `document.querySelector("#class-list [aria-selected=true]").textContent.includes("Blue crowned")`, 3*time.Second)
	// This class has an example image: the card shows it instead of a sketch.
	p.wait("the class's example image", `(() => { const i = document.querySelector("#class-card .class-pic img");
		return !!i && i.src.startsWith("blob:") && i.complete && i.naturalWidth === 64; })()`, 5*time.Second)
	if p.count("#class-card svg.sketch") != 0 || !strings.Contains(p.text("#class-card .hint"), "real image") {
		t.Errorf("class card with an example: %q", p.text("#class-card"))
	}
	p.shot(dir, "01-class-picker")
	p.setValue("#n", "2")
	p.click("#generate")
	p.wait("class images", imagesLoaded("#runs .run", 2), 15*time.Second)
	if title := p.text("#runs .run h3"); title != "Blue crowned Conebill" {
		t.Errorf("run title %q", title)
	}
	if b := eval[string](p, `document.querySelector("#runs .run .badge").title`); !strings.HasPrefix(b, "class probability: the classifier's calibrated probability") {
		t.Errorf("class badge title %q", b)
	}
	if what := p.text("#runs .run .badge .what"); what != "class probability" {
		t.Errorf("class badge says %q, want class probability", what)
	}

	// Morph an uploaded PNG.
	p.click("#tab-morph")
	src := filepath.Join(t.TempDir(), "upload.png")
	if err := os.WriteFile(src, stubImage(&stubJob{req: api.Request{Seed: 7}}, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.SetUploadFiles(chromedp.CSS("#morph-file"), []string{src}))
	p.wait("the source preview", `!document.getElementById("morph-source").hidden`, 3*time.Second)
	p.click(`#morph-class [data-name="003.Yellow_crowned_Spoonbill"]`)
	p.click("#morph-go")
	p.wait("the morph", imagesLoaded("#morph-runs .run", 1), 15*time.Second)
	if h := p.text("#morph-runs .run h3"); h != "upload.png → Yellow crowned Spoonbill" {
		t.Errorf("morph title %q", h)
	}
	p.shot(dir, "02-morph")
	// ...and one picked from the gallery.
	p.click("#morph-pick .pick-item")
	p.wait("the picked source", `document.querySelector("#morph-source figcaption").textContent.includes("seed")`, 3*time.Second)
	p.click("#morph-go")
	p.wait("the second morph", `document.querySelectorAll("#morph-runs .run").length === 2`, 5*time.Second)
	p.wait("its image", imagesLoaded("#morph-runs .run", 1), 15*time.Second)

	// Interpolation strip.
	p.click("#tab-interpolate")
	p.click(`#interp-from-class [data-name="001.Red_crowned_Hookbill"]`)
	p.click(`#interp-to-class [data-name="003.Yellow_crowned_Spoonbill"]`)
	p.setValue("#interp-n", "5")
	p.click("#interp-go")
	p.wait("the strip", imagesLoaded("#interp-runs .run .strip", 5), 15*time.Second)
	p.shot(dir, "03-interpolation")
}
