//go:build !unit

package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// generatePrompt types prompt and generates n images with the form's seed.
func generatePrompt(p *page, prompt string, n int) {
	p.t.Helper()
	p.setValue("#prompt", prompt)
	p.setValue("#n", strconv.Itoa(n))
	settled(p)
	p.click("#generate")
}

// lastPosted is the body of the stub's latest POST.
func (s *stubAPI) lastPosted() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.posted) == 0 {
		return nil
	}
	return s.posted[len(s.posted)-1]
}

// TestSeedsAsUsersExpect: Random is said and used (a new seed each time,
// shown on each image); a typed seed is the seed sent; each image's seed
// can be copied; "Use this seed" sets it.
func TestSeedsAsUsersExpect(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(p.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: "granted", Origin: s.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if !eval[bool](p, `document.getElementById("seed-random").checked && document.getElementById("seed").placeholder === "random"`) {
		t.Fatal("Random is not on at first, or not said")
	}
	generatePrompt(p, "a small bird with a red crown", 2)
	p.wait("the images", imagesLoaded("#runs .run", 2), 10*time.Second)
	first := s.lastPosted()["seed"]
	seed, ok := first.(float64)
	if !ok {
		t.Fatalf("Random sent no seed (%v): the page must know it to show it", first)
	}
	if got := tileSeeds(p, "#runs .run"); !slices.Equal(got, []string{fmt.Sprintf("seed %d", int(seed)), fmt.Sprintf("seed %d", int(seed)+1)}) {
		t.Errorf("tiles say %q for seed %v", got, seed)
	}
	if eval[string](p, `document.getElementById("seed").value`) != "" {
		t.Error("Random wrote its seed into the field")
	}
	p.click("#generate")
	p.wait("the second run", imagesLoaded("#runs .run:first-child", 2)+` && document.querySelectorAll("#runs .run").length === 2`, 10*time.Second)
	if s.lastPosted()["seed"] == first {
		t.Error("Random sent the same seed twice")
	}

	// A typed seed is the seed sent, every time, and turns Random off.
	p.typeInto("#seed", "4242")
	if eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Error("typing a seed left Random on")
	}
	p.click("#generate")
	p.wait("the typed seed's run", imagesLoaded("#runs .run:first-child", 2)+` && document.querySelectorAll("#runs .run").length === 3`, 10*time.Second)
	if got := s.lastPosted()["seed"]; got != float64(4242) {
		t.Errorf("sent seed %v, want the typed 4242", got)
	}
	if got := tileSeeds(p, "#runs .run:first-child"); !slices.Equal(got, []string{"seed 4242", "seed 4243"}) {
		t.Errorf("tiles %q", got)
	}

	// Each image copies its own seed.
	p.click("#runs .run:first-child .tile:nth-child(2) .seed-copy")
	p.wait("the copy", `document.querySelector("#runs .run:first-child .tile:nth-child(2) .seed-copy").classList.contains("copied")`, 3*time.Second)
	if got := eval[string](p, `navigator.clipboard.readText()`); got != "4243" {
		t.Errorf("clipboard %q, want 4243", got)
	}
	// "Use this seed" in the large view.
	p.setValue("#seed", "")
	p.click("#seed-random")
	p.click("#runs .run:nth-child(2) .tile:nth-child(1) .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	p.click("#viewer-seed")
	if got := eval[string](p, `document.getElementById("seed").value + " " + document.getElementById("seed-random").checked`); got != fmt.Sprintf("%d false", int(s.lastPostedSeedOf(1))) {
		t.Errorf("after Use this seed: %q", got)
	}
}

// lastPostedSeedOf is the seed of the k-th newest POST (0 the newest).
func (s *stubAPI) lastPostedSeedOf(k int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, _ := s.posted[len(s.posted)-1-k]["seed"].(float64)
	return f
}

// TestImagesCrispAtWholeMultiples: tiles show a 64-px image at 128 px
// (2×) unsmoothed, or at the size chosen; the large view at the largest
// whole multiple that fits, and says so; the run names the size; the
// upscaled download is named as such and keeps the provenance.
func TestImagesCrispAtWholeMultiples(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1440, 900)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown", 2)
	p.wait("the images", imagesLoaded("#runs .run", 2), 10*time.Second)
	size := func() string {
		return eval[string](p, `(() => { const i = document.querySelector("#runs .tile-open img"); const r = i.getBoundingClientRect();
			return r.width + "x" + r.height + " " + getComputedStyle(i).imageRendering; })()`)
	}
	if got := size(); got != "128x128 pixelated" {
		t.Errorf("a 64-px image shows as %s, want 128x128 pixelated", got)
	}
	if meta := p.text("#runs .run .run-meta"); !strings.Contains(meta, "64 × 64 px") {
		t.Errorf("the run does not state the size: %q", meta)
	}
	for _, z := range []struct{ zoom, want string }{{"1", "64x64"}, {"3", "192x192"}, {"4", "256x256"}} {
		p.setValue("#zoom", z.zoom)
		if got := size(); !strings.HasPrefix(got, z.want+" ") {
			t.Errorf("zoom %s: %s, want %s", z.zoom, got, z.want)
		}
	}
	p.setValue("#zoom", "auto")
	checkBadgesBelowImages(t, p, "#runs")

	p.click("#runs .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open && document.getElementById("viewer-img").complete`, 3*time.Second)
	w := eval[float64](p, `document.getElementById("viewer-stack").getBoundingClientRect().width`)
	if w < 256 || int(w)%64 != 0 {
		t.Errorf("the large view shows the image %v px wide: want a whole multiple of 64, at least 4×", w)
	}
	if note := p.text("#viewer-size"); !strings.Contains(note, "64 × 64 px, shown at "+strconv.Itoa(int(w)/64)+"×") {
		t.Errorf("size note %q for %v px", note, w)
	}
	if b := p.text("#viewer-download"); b != "Download PNG (64 × 64)" {
		t.Errorf("download button %q", b)
	}
	dl := p.downloads()
	p.setValue("#upscale-factor", "4")
	p.click("#viewer-upscale")
	path := waitFile(t, dl, "*-upscaled-x4-256px.png", 10*time.Second)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Fatalf("%s: %v %v", filepath.Base(path), err, img.Bounds())
	}
	// Nearest neighbour: each source pixel a 4×4 block.
	r0, g0, b0, _ := img.At(40, 40).RGBA()
	r1, g1, b1, _ := img.At(43, 43).RGBA()
	if r0 != r1 || g0 != g1 || b0 != b1 {
		t.Error("the upscaled image is smoothed")
	}
	if !bytes.Contains(data, []byte("tEXtfgstudio\x00")) || !bytes.Contains(data, []byte("fgstudio-upscaled")) {
		t.Error("the upscaled PNG lost the provenance chunk or does not say it was enlarged")
	}
}

// TestMeasuresByName: today's measures (class probability, attribute
// agreement with what the classifier sees per asked attribute), the first
// scorer's, and one no page knows yet, each named on the badge and in the
// large view.
func TestMeasuresByName(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.measures = "new" })
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown and a hooked bill", 2)
	p.wait("the images", imagesLoaded("#runs .run", 2), 10*time.Second)
	if got := p.text("#runs .run .badge"); got != "attribute agreement 83 %" {
		t.Errorf("badge %q, want attribute agreement 83 %%", got)
	}
	p.click("#runs .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	scores := p.text("#viewer-scores")
	for _, want := range []string{"attribute agreement 83 %", "Text similarity", "31 %", "crown colour", "red", "bill shape", "hooked", "cone"} {
		if !strings.Contains(scores, want) {
			t.Errorf("the large view's scores lack %q: %q", want, scores)
		}
	}
	if marks := eval[string](p, `[...document.querySelectorAll("#viewer-scores .agree tbody tr")].map((r) => r.className).join(",")`); marks != "agree-ok,agree-no" {
		t.Errorf("attribute rows %q: want the crown agreeing and the bill not", marks)
	}
	p.keys(kb.Escape)

	p.setValue("#model", "cvaegan-stub")
	p.wait("the class picker", `document.querySelectorAll("#class-list [role=option]").length > 1`, 3*time.Second)
	p.click("#generate")
	p.wait("class images", `document.querySelectorAll("#runs .run").length === 2`+` && `+imagesLoaded("#runs .run:first-child", 2), 10*time.Second)
	if got := p.text("#runs .run:first-child .badge"); got != "class probability 83 %" {
		t.Errorf("class badge %q", got)
	}

	s.set(func(s *stubAPI) { s.measures = "unknown" })
	p.click("#generate")
	p.wait("the third run", `document.querySelectorAll("#runs .run").length === 3`+` && `+imagesLoaded("#runs .run:first-child", 2), 10*time.Second)
	if got := p.text("#runs .run:first-child .badge"); got != "plumage sharpness index 83 %" {
		t.Errorf("an unknown measure's badge %q", got)
	}
	p.click("#runs .run:first-child .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	if sc := p.text("#viewer-scores"); !strings.Contains(sc, "does not know") {
		t.Errorf("the large view does not say the measure is unknown: %q", sc)
	}
}

// overlayAlpha is the largest opacity the attention overlay paints.
func overlayAlpha(p *page) int {
	return eval[int](p, `(() => { const c = document.getElementById("viewer-overlay"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let m = 0; for (let i = 3; i < d.length; i += 4) m = Math.max(m, d[i]); return m; })()`)
}

// TestAttentionOnOneScale: stop-words hidden until asked for; every word
// on one colour scale (a weak word paints weakly) with a legend; a model
// with several attentional stages offers each; the overlay's strength is
// remembered.
func TestAttentionOnOneScale(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.attnStages = 2 })
	p := openPage(t, s.URL, 1280, 900)
	dir := artifacts(t)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown and a hooked bill", 1)
	p.wait("the image", imagesLoaded("#runs .run", 1), 10*time.Second)
	p.click("#runs .tile-open")
	p.wait("the words", `document.querySelectorAll("#word-list input").length > 2`, 5*time.Second)
	words := eval[[]string](p, `[...document.querySelectorAll("#word-list .word span")].map((s) => s.textContent)`)
	if slices.Contains(words, "a") || slices.Contains(words, "with") || !slices.Contains(words, "crown") {
		t.Errorf("words %q: want the stop-words hidden", words)
	}
	if lg := p.text("#legend"); !strings.Contains(lg, "0 %") || !strings.Contains(lg, "62 %") || !strings.Contains(lg, "share of each region's attention") {
		t.Errorf("legend %q", lg)
	}
	stages := eval[[]string](p, `[...document.querySelectorAll("#stage-list .word span")].map((s) => s.textContent)`)
	if len(stages) != 2 || !eval[bool](p, `document.querySelector("#stage-list label:last-child input").checked`) {
		t.Errorf("stages %q: want two, the fine one chosen", stages)
	}
	pick := func(word string) {
		p.do(chromedp.Click(chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("#word-list .word")].find((l) => l.textContent === %q)`, word))))
		p.wait("the map of "+word, fmt.Sprintf(`document.getElementById("viewer-overlay").dataset.word === %q`, word), 5*time.Second)
	}
	pick("crown")
	strong := overlayAlpha(p)
	p.shot(dir, "01-attention-crown")
	p.click("#show-stop")
	p.wait("the stop-words", `[...document.querySelectorAll("#word-list .word span")].some((s) => s.textContent === "with")`, 3*time.Second)
	pick("with")
	weak := overlayAlpha(p)
	if weak*2 > strong {
		t.Errorf("“with” (peak 0.08) paints up to alpha %d, “crown” (0.62) %d: not one scale", weak, strong)
	}
	// The coarse stage has its own maps.
	p.do(chromedp.Click(chromedp.JSPath(`document.querySelector("#stage-list label")`)))
	pick("crown")
	// The overlay's strength is remembered.
	p.setValue("#overlay-opacity", "30")
	p.keys(kb.Escape)
	p.do(chromedp.Reload())
	waitModels(p)
	p.wait("the restored run", imagesLoaded("#runs .run", 1), 5*time.Second)
	p.click("#runs .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	if got := eval[string](p, `document.getElementById("overlay-opacity").value + " " + document.getElementById("viewer-overlay").style.opacity + " " + document.getElementById("show-stop").checked`); got != "30 0.3 true" {
		t.Errorf("after a reload: opacity, overlay and stop-words %q, want 30 0.3 true", got)
	}
}

// TestAttentionWithoutPeaks: an older server sends no peaks; the view
// says each word is on its own scale.
func TestAttentionWithoutPeaks(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.noPeaks = true })
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown", 1)
	p.wait("the image", imagesLoaded("#runs .run", 1), 10*time.Second)
	p.click("#runs .tile-open")
	p.wait("the words", `document.querySelectorAll("#word-list input").length > 2`, 5*time.Second)
	if lg := p.text("#legend"); !strings.Contains(lg, "own scale") {
		t.Errorf("legend %q", lg)
	}
}

// TestProgressNeverSaysDoneEarly: while a tile still waits for its image,
// the card does not say done.
func TestProgressNeverSaysDoneEarly(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.pngDelay = 700 * time.Millisecond })
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	eval[bool](p, `(() => { window.early = []; new MutationObserver(() => {
		for (const r of document.querySelectorAll("#runs .run")) {
			const st = r.querySelector(".state"); if (!st) continue;
			if (st.textContent.startsWith("Done") && r.querySelector(".spinner")) window.early.push(st.textContent);
		} }).observe(document.getElementById("runs"), {subtree: true, childList: true, characterData: true}); return true; })()`)
	generatePrompt(p, "a small bird with a red crown", 3)
	p.wait("the images", imagesLoaded("#runs .run", 3)+` && document.querySelector("#runs .run .state").textContent.startsWith("Done")`, 15*time.Second)
	if early := eval[[]string](p, `window.early`); len(early) > 0 {
		t.Errorf("the card said %q while tiles still spun", early)
	}
	if got := p.text("#runs .run .state"); got != "Done — 3 of 3" {
		t.Errorf("state %q", got)
	}
}

// TestGalleryFilters: by prompt or class words, model, class and
// fidelity; remembered across a reload.
func TestGalleryFilters(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1440, 900)
	dir := artifacts(t)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown", 4)
	p.wait("the prompt run", imagesLoaded("#runs .run", 4), 10*time.Second)
	p.setValue("#model", "cvaegan-stub")
	p.wait("the class picker", `document.querySelectorAll("#class-list [role=option]").length > 1`, 3*time.Second)
	p.click(`#class-list [data-name="003.Yellow_crowned_Spoonbill"]`)
	p.setValue("#n", "4")
	p.click("#generate")
	p.wait("the class run", `document.querySelectorAll("#runs .run").length === 2 && `+imagesLoaded("#runs .run:first-child", 4), 10*time.Second)
	shown := func() string {
		return eval[string](p, `[...document.querySelectorAll("#runs .run")].filter((r) => !r.hidden).map((r) => r.querySelector("h3").textContent + ":" +
			[...r.querySelectorAll(".tile")].filter((f) => !f.hidden).length).join(" | ")`)
	}
	p.setValue("#f-text", "red crown")
	if got := shown(); got != "“a small bird with a red crown”:4" {
		t.Errorf("text filter shows %q", got)
	}
	p.setValue("#f-text", "spoonbill")
	if got := shown(); got != "Yellow crowned Spoonbill:4" {
		t.Errorf("a class's label as text shows %q", got)
	}
	p.setValue("#f-text", "")
	p.setValue("#f-model", "attngan-stub")
	if got := shown(); got != "“a small bird with a red crown”:4" {
		t.Errorf("model filter shows %q", got)
	}
	p.setValue("#f-model", "")
	if opts := eval[[]string](p, `[...document.querySelectorAll("#f-class option")].map((o) => o.textContent)`); !slices.Equal(opts, []string{"all classes", "Yellow crowned Spoonbill"}) {
		t.Errorf("class filter offers %q", opts)
	}
	p.setValue("#f-class", "003.Yellow_crowned_Spoonbill")
	if got := shown(); got != "Yellow crowned Spoonbill:4" {
		t.Errorf("class filter shows %q", got)
	}
	p.setValue("#f-class", "")
	// Fidelity: the stub's images score 83, 45, 12 and 70 %.
	p.setValue("#f-fidelity", "50")
	if got := shown(); got != "Yellow crowned Spoonbill:2 | “a small bird with a red crown”:2" {
		t.Errorf("fidelity ≥ 50 %% shows %q", got)
	}
	if st := p.text("#f-status"); st != "2 of 2 runs match." {
		t.Errorf("status %q", st)
	}
	p.shot(dir, "01-filtered")
	p.do(chromedp.Reload())
	waitModels(p)
	p.wait("the restored gallery", `document.querySelectorAll("#runs .run").length === 2`, 5*time.Second)
	if got := shown(); got != "Yellow crowned Spoonbill:2 | “a small bird with a red crown”:2" {
		t.Errorf("after a reload the filter shows %q", got)
	}
	p.click("#f-clear")
	if got := shown(); got != "Yellow crowned Spoonbill:4 | “a small bird with a red crown”:4" {
		t.Errorf("cleared filters show %q", got)
	}
}

// TestClassPickersPhraseAndLabels: the whole phrase first; thumbnails in
// every picker; labels, never raw ids, wherever a class is named.
func TestClassPickersPhraseAndLabels(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	p.setValue("#model", "cvaegan-stub")
	p.wait("the class picker", `document.querySelectorAll("#class-list [role=option]").length === 5`, 3*time.Second)
	p.setValue("#class-search", "red crowned")
	order := eval[[]string](p, `[...document.querySelectorAll("#class-list [role=option] .class-name")].map((e) => e.textContent)`)
	// The phrase first, then its words apart in a label; a class whose
	// attributes hold the words (a red breast) comes last.
	if len(order) != 3 || order[0] != "Red crowned Hookbill" || order[1] != "White crowned Red breasted Long tailed Warbler" || order[2] != "Yellow crowned Spoonbill" {
		t.Errorf("“red crowned” lists %q: want the phrase first", order)
	}
	for _, list := range []string{"#class-list", "#morph-class", "#interp-from-class", "#interp-to-class", "#ds-class-list"} {
		if n := eval[int](p, fmt.Sprintf(`[...document.querySelectorAll("%s [role=option]")].filter((o) => !o.querySelector(".thumb img, .thumb svg")).length`, list)); n > 0 {
			t.Errorf("%s: %d options without a thumbnail", list, n)
		}
	}
	// A long label is whole in the interpolation picker (not cut).
	p.click("#tab-interpolate")
	if full := eval[bool](p, `[...document.querySelectorAll("#interp-to-class .class-name")].some((e) => e.textContent === "White crowned Red breasted Long tailed Warbler" && e.scrollWidth <= e.clientWidth)`); !full {
		t.Error("the long class label is cut in the interpolation picker")
	}
	// Generate and open: no raw class id anywhere.
	p.click("#tab-generate")
	p.setValue("#class-search", "")
	p.click(`#class-list [data-name="005.White_crowned_Red_breasted_Long_tailed_Warbler"]`)
	p.setValue("#n", "1")
	p.click("#generate")
	p.wait("the image", imagesLoaded("#runs .run", 1), 10*time.Second)
	p.click("#runs .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	raw := eval[[]string](p, `(document.body.innerText.match(/\b\d{3}\.[A-Z][A-Za-z]*_[A-Za-z_]+/g) || [])`)
	if len(raw) > 0 {
		t.Errorf("raw class ids on the page: %q", raw)
	}
	if rq := p.text("#viewer-scores"); !strings.Contains(rq, "White crowned Red breasted Long tailed Warbler") {
		t.Errorf("the requested class is not named by its label: %q", rq)
	}
}

// TestDatasetBuilderLive: the data-set page on the stub — classes by
// search, per-class progress as it happens, cancel, download once done.
func TestDatasetBuilderLive(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 900)
	dir := artifacts(t)
	waitModels(p)
	p.click("#tab-datasets")
	p.wait("the classes", `document.querySelectorAll("#ds-class-list [role=option]").length === 5`, 5*time.Second)
	if held := eval[bool](p, `document.querySelector('#ds-class-list [data-name="004.Black_crowned_Needlebill"]').getAttribute("aria-disabled") === "true"`); !held {
		t.Error("a held-out class can be picked for the class model")
	}
	p.setValue("#ds-class-search", "crowned")
	p.click("#ds-select-shown")
	if got := p.text("#ds-count"); got != "4 classes selected" {
		t.Errorf("count %q", got)
	}
	p.setValue("#ds-class-search", "")
	p.setValue("#ds-per-class", "3")
	p.setValue("#ds-fidelity", "60")
	p.setValue("#ds-measure", "class_prob")
	if est := p.text("#ds-estimate"); est != "4 × 3 = 12 images kept; at most 48 made." {
		t.Errorf("estimate %q", est)
	}
	p.click("#ds-go")
	p.wait("the job's card", `!!document.querySelector("#ds-jobs .ds-job")`, 5*time.Second)
	body := s.lastPosted()
	if body["per_class"] != float64(3) || body["min_fidelity"] != 0.6 || body["fidelity_measure"] != "class_prob" || len(body["classes"].([]any)) != 4 {
		t.Errorf("posted %v", body)
	}
	// Live: a class done shows its counts while others wait.
	p.wait("a class done while the job runs", `(() => { const j = document.querySelector("#ds-jobs .ds-job"); return j && j.dataset.state === "running" &&
		!!j.querySelector("tr.cls-done") && !!j.querySelector("tr.cls-waiting, tr.cls-making"); })()`, 5*time.Second)
	if row := p.text("#ds-jobs tr.cls-done"); !strings.Contains(row, "3 / 3") || !strings.Contains(row, "100 %") {
		t.Errorf("the first done class says %q", row)
	}
	p.wait("the data set", `document.querySelector("#ds-jobs .ds-job").dataset.state === "succeeded"`, 10*time.Second)
	if st := p.text("#ds-jobs .ds-job .state"); st != "Done — ready to download" {
		t.Errorf("state %q", st)
	}
	p.shot(dir, "01-dataset")
	dl := p.downloads()
	p.click("#ds-jobs .ds-download")
	waitFile(t, dl, "dataset-ds-*.tar", 10*time.Second)

	// Another, cancelled midway; it stays, said so, and a reload keeps both.
	p.setValue("#ds-per-class", "5")
	p.click("#ds-go")
	p.wait("the second job running", `document.querySelectorAll("#ds-jobs .ds-job").length === 2 && document.querySelector("#ds-jobs .ds-job").dataset.state === "running"`, 5*time.Second)
	p.click("#ds-jobs .ds-job:first-child .run-actions button.ghost")
	p.wait("the cancelled job", `document.querySelector("#ds-jobs .ds-job").dataset.state === "cancelled"`, 5*time.Second)
	p.do(chromedp.Reload())
	waitModels(p)
	p.click("#tab-datasets")
	p.wait("both jobs after a reload", `[...document.querySelectorAll("#ds-jobs .ds-job")].map((j) => j.dataset.state).join(",") === "cancelled,succeeded"`, 5*time.Second)
}

// TestQueueView: the key's queued and running jobs by lane, cancel from
// the queue, and retry of what ended without finishing.
func TestQueueView(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.hold = 1 })
	p := openPage(t, s.URL, 1280, 900)
	dir := artifacts(t)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown", 3)
	p.wait("the held run", `document.querySelector("#runs .run") && document.querySelector("#runs .run").dataset.state === "running"`, 5*time.Second)
	s.set(func(s *stubAPI) { s.hold = 0 })
	p.click("#tab-datasets")
	p.wait("the classes", `document.querySelectorAll("#ds-class-list [role=option]").length === 5`, 5*time.Second)
	p.click(`#ds-class-list [data-name="001.Red_crowned_Hookbill"]`)
	p.click("#ds-go")
	p.wait("the queued data set", `!!document.querySelector("#ds-jobs .ds-job")`, 5*time.Second)
	p.click("#tab-queue")
	p.wait("both lanes", `document.querySelectorAll(".lane-interactive .queue-job").length === 1 && document.querySelectorAll(".lane-batch .queue-job").length === 1`, 5*time.Second)
	gen := p.text(".lane-interactive .queue-job")
	for _, want := range []string{"generation", "“a small bird with a red crown”", "running", "1 of 3 images"} {
		if !strings.Contains(gen, want) {
			t.Errorf("the generation reads %q, lacks %q", gen, want)
		}
	}
	if ds := p.text(".lane-batch .queue-job"); !strings.Contains(ds, "data set") || !strings.Contains(ds, "queued") || !strings.Contains(ds, "0 of 1 classes") {
		t.Errorf("the data set reads %q", ds)
	}
	if c := p.text("#queue-count"); c != "2" {
		t.Errorf("the tab counts %q", c)
	}
	p.shot(dir, "01-queue")
	// Cancel the generation from here: it leaves the queue and its card says so.
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll(".lane-interactive .queue-job button")].find((b) => b.textContent === "Cancel")`)))
	p.wait("the lane emptied", `document.querySelectorAll(".lane-interactive .queue-job").length === 0`, 5*time.Second)
	p.wait("the ended job", `document.querySelectorAll("#queue-ended .queue-job").length === 1`, 5*time.Second)
	if st := eval[string](p, `document.querySelector("#runs .run").dataset.state`); st != "cancelled" {
		t.Errorf("the run's card says %q", st)
	}
	// Retry it: the same request again.
	s.set(func(s *stubAPI) { s.hold = -1 })
	posted := len(s.posted)
	p.do(chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll("#queue-ended button")].find((b) => b.textContent === "Retry")`)))
	p.wait("the retried run", `document.querySelectorAll("#runs .run").length === 2`, 5*time.Second)
	s.mu.Lock()
	again := s.posted[len(s.posted)-1]
	first := s.posted[0]
	n := len(s.posted)
	s.mu.Unlock()
	if n != posted+1 || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("retry posted %v, want %v", again, first)
	}
	s.release()
	p.click("#tab-queue")
	p.wait("the data set to leave the queue", `document.querySelectorAll(".lane-batch .queue-job").length === 0`, 10*time.Second)
}

// TestQueueViewOnAnOlderServer: without GET /v1/jobs the view says so and
// lists this browser's jobs.
func TestQueueViewOnAnOlderServer(t *testing.T) {
	s := newStub(t)
	s.set(func(s *stubAPI) { s.noJobList = true; s.hold = 1 })
	p := openPage(t, s.URL, 1280, 900)
	p.allowStatus(404)
	waitModels(p)
	generatePrompt(p, "a small bird with a red crown", 2)
	p.wait("the held run", `document.querySelector("#runs .run") && document.querySelector("#runs .run").dataset.state === "running"`, 5*time.Second)
	p.click("#tab-queue")
	p.wait("the note", `!document.getElementById("queue-note").hidden`, 5*time.Second)
	if n := p.count(".lane-interactive .queue-job"); n != 1 {
		t.Errorf("%d jobs listed, want this browser's one", n)
	}
	s.release()
}

// TestFirstStudioHistoryMoves: the first studio's history (localStorage)
// moves into the gallery once, its images fetched while the server has
// the job.
func TestFirstStudioHistoryMoves(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	res, err := http.Post(s.URL+"/v1/generations", "application/json", strings.NewReader(`{"model":"attngan-stub","prompt":"a small bird with a red crown","n":2,"seed":5}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	old := `[{"id":"r1","kind":"generate","model":"attngan-stub","request":{"model":"attngan-stub","prompt":"a small bird with a red crown","n":2,"seed":5},` +
		`"label":"“a small bird with a red crown”","jobId":"job-1","at":"2026-01-02T03:04:05Z","state":"succeeded"}]`
	eval[bool](p, fmt.Sprintf(`(localStorage.setItem("fgstudio.history.v1", %q), true)`, old))
	time.Sleep(2 * stubStep)
	p.do(chromedp.Reload())
	waitModels(p)
	p.wait("the old run with its images", imagesLoaded("#runs .run", 2), 10*time.Second)
	if got := tileSeeds(p, "#runs .run"); !slices.Equal(got, []string{"seed 5", "seed 6"}) {
		t.Errorf("seeds %q", got)
	}
	if eval[bool](p, `localStorage.getItem("fgstudio.history.v1") !== null`) {
		t.Error("the old history is still in localStorage")
	}
	if n := p.count("#history-list li"); n != 1 {
		t.Errorf("history lists %d runs", n)
	}
}
