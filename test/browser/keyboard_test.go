//go:build !unit

package browser

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestKeyboardEveryAction: the studio's actions with the keyboard alone —
// a typed seed, generate, copy a seed, download, the large view (words,
// stop-words, overlay strength, the upscaled download), filters, a class
// by search and arrows, a morph from a picked image, a data set from
// search to download, cancel and retry from the queue, and Show from
// history.
func TestKeyboardEveryAction(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 900)
	waitModels(p)
	dl := p.downloads()
	focused := func() string {
		return eval[string](p, `document.activeElement ? document.activeElement.className : ""`)
	}

	// Compose: a prompt, a typed seed (Random goes off), Ctrl+Enter.
	p.tabTo("#prompt", 20)
	p.keys("a small bird with a red crown")
	p.tabTo("#seed", 10)
	p.keys("77")
	if eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Error("typing a seed left Random on")
	}
	p.tabTo("#seed-random", 3)
	p.keys(" ") // on again…
	p.keys(" ") // …and off: the switch works with Space
	if eval[bool](p, `document.getElementById("seed-random").checked`) {
		t.Error("Space did not switch Random")
	}
	p.setValue("#seed", "77")
	p.keys(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierCtrl))
	p.wait("images", imagesLoaded("#runs .run", 4), 10*time.Second)
	if got := tileSeeds(p, "#runs .run"); strings.Join(got, ",") != "seed 77,seed 78,seed 79,seed 80" {
		t.Errorf("seeds %q", got)
	}

	// A tile: copy its seed, download it, open it.
	p.tabTo("#runs .run .tile .seed-copy", 40)
	p.keys(kb.Enter)
	p.wait("the seed copied", `document.activeElement.classList.contains("copied")`, 3*time.Second)
	p.tabTo("#runs .run .tile .dl", 2)
	p.keys(kb.Enter)
	waitFile(t, dl, "*seed77.png", 10*time.Second)
	p.tabTo("#runs .run .tile:nth-child(2) .tile-open", 4)
	p.keys(kb.Enter)
	p.wait("the large view", `document.getElementById("viewer").open && document.querySelectorAll("#word-list input").length > 2`, 5*time.Second)
	p.tabTo("#word-list input", 8)
	p.keys(kb.ArrowRight)
	p.wait("a word's overlay", `!!document.getElementById("viewer-overlay").dataset.word`, 3*time.Second)
	p.tabTo("#show-stop", 4)
	p.keys(" ")
	p.wait("the stop-words", `[...document.querySelectorAll("#word-list .word span")].some((s) => s.textContent === "with")`, 3*time.Second)
	p.tabTo("#overlay-opacity", 3)
	p.keys(kb.ArrowLeft)
	if v := eval[string](p, `document.getElementById("overlay-opacity").value`); v != "54" {
		t.Errorf("overlay strength %s after ArrowLeft from 55", v)
	}
	p.tabTo("#viewer-upscale", 6)
	p.keys(kb.Enter)
	waitFile(t, dl, "*seed78-upscaled-x4-256px.png", 10*time.Second)
	p.tabTo("#viewer-seed", 6)
	p.keys(kb.Enter)
	p.wait("the seed in the form", `!document.getElementById("viewer").open && document.getElementById("seed").value === "78" && document.activeElement.id === "seed"`, 3*time.Second)

	// Filters.
	p.tabTo("#f-text", 30)
	p.keys("zzz")
	p.wait("nothing matches", `document.querySelector("#runs .run").hidden`, 3*time.Second)
	p.tabTo("#f-clear", 8)
	p.keys(kb.Enter)
	p.wait("the run back", `!document.querySelector("#runs .run").hidden`, 3*time.Second)

	// A class model, a class by search and arrows, Enter generates.
	p.do(chromedp.Focus(chromedp.CSS("#model")))
	p.keys(kb.ArrowDown)
	p.wait("the class model", `document.getElementById("model").value === "cvaegan-stub" && !document.getElementById("class-box").hidden`, 3*time.Second)
	p.tabTo("#class-search", 4)
	p.keys("crowned")
	p.keys(kb.ArrowDown)
	p.keys(kb.ArrowDown)
	if got := p.text("#class-list [aria-selected=true] .class-name"); got != "Blue crowned Conebill" {
		t.Errorf("the second class by arrows is %q", got)
	}
	p.keys(kb.Enter)
	p.wait("the class run", `document.querySelectorAll("#runs .run").length === 2 && document.querySelector("#runs .run h3").textContent === "Blue crowned Conebill"`, 5*time.Second)

	// Morph: pick a generated image and a target with the keyboard.
	p.tabTo("#tab-generate", 60)
	p.keys(kb.ArrowRight)
	p.wait("the morph tab", `!document.getElementById("panel-morph").hidden && document.activeElement.id === "tab-morph"`, 2*time.Second)
	p.tabTo("#morph-pick input", 10)
	p.keys(" ")
	p.wait("a source", `!document.getElementById("morph-source").hidden`, 3*time.Second)
	p.tabTo("#morph-class-search", 4)
	p.keys("spoon")
	p.keys(kb.Enter)
	p.tabTo("#morph-go", 4)
	p.keys(kb.Enter)
	p.wait("the morph", imagesLoaded("#morph-runs .run", 1), 10*time.Second)
	if h := p.text("#morph-runs .run h3"); !strings.HasSuffix(h, "→ Yellow crowned Spoonbill") {
		t.Errorf("morph %q", h)
	}

	// A data set, from search to download.
	p.do(chromedp.Focus(chromedp.CSS("#tab-morph")))
	p.keys(kb.ArrowRight)
	p.keys(kb.ArrowRight)
	p.wait("the data-set tab", `!document.getElementById("panel-datasets").hidden && document.activeElement.id === "tab-datasets"`, 2*time.Second)
	p.tabTo("#ds-class-search", 10)
	p.keys("hook")
	p.keys(kb.ArrowDown)
	p.keys(" ")
	if got := p.text("#ds-count"); got != "1 class selected" {
		t.Errorf("after Space: %q", got)
	}
	p.tabTo("#ds-per-class", 6)
	p.keys(kb.ArrowUp)
	p.tabTo("#ds-go", 8)
	p.keys(kb.Enter)
	p.wait("the data set", `!!document.querySelector("#ds-jobs .ds-job") && document.querySelector("#ds-jobs .ds-job").dataset.state === "succeeded"`, 10*time.Second)
	if body := s.lastPosted(); body["per_class"] != float64(21) {
		t.Errorf("posted %v: want per_class 21 after ArrowUp on 20", body)
	}
	p.tabTo("#ds-jobs .ds-download", 20)
	p.keys(kb.Enter)
	waitFile(t, dl, "dataset-*.tar", 10*time.Second)

	// The queue: cancel a running job, then retry it.
	s.set(func(s *stubAPI) { s.hold = 1 })
	p.do(chromedp.Focus(chromedp.CSS("#tab-datasets")))
	p.keys(kb.Home)
	p.tabTo("#generate", 30)
	p.keys(kb.Enter)
	p.wait("the held run", `document.querySelector("#runs .run").dataset.state === "running"`, 5*time.Second)
	p.do(chromedp.Focus(chromedp.CSS("#tab-generate")))
	p.keys(kb.End)
	p.keys(kb.ArrowLeft)
	p.wait("the queue tab", `!document.getElementById("panel-queue").hidden && document.activeElement.id === "tab-queue"`, 2*time.Second)
	p.wait("the job", `document.querySelectorAll(".lane-interactive .queue-job").length === 1`, 5*time.Second)
	p.tabTo(".lane-interactive .queue-job button.ghost", 12)
	p.keys(kb.Enter)
	p.wait("the ended job", `document.querySelectorAll("#queue-ended .queue-job").length === 1`, 5*time.Second)
	s.set(func(s *stubAPI) { s.hold = -1 })
	p.do(chromedp.Focus(chromedp.CSS("#tab-queue")))
	p.tabTo("#queue-ended button", 20)
	p.keys(kb.Enter)
	p.wait("the retried run", `document.querySelectorAll("#runs .run").length === 4 && !document.getElementById("panel-generate").hidden`, 5*time.Second)

	// History: Show brings the run's card into view and focus.
	p.do(chromedp.Focus(chromedp.CSS("#tab-generate")))
	p.keys(kb.End)
	p.wait("the history tab", `!document.getElementById("panel-history").hidden`, 2*time.Second)
	p.tabTo("#history-list li:last-child button", 80)
	p.keys(kb.Enter)
	p.wait("the first run focused", `document.activeElement.classList.contains("run") && !document.getElementById("panel-generate").hidden`, 3*time.Second)
	if f := focused(); !strings.Contains(f, "run-generate") {
		t.Errorf("focus on %q after Show", f)
	}
}
