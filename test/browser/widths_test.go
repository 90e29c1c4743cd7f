//go:build !unit

package browser

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fgstudio/fgstudio/studio/api"
)

// sideways says what, if anything, makes the page wider than its window:
// the document's scroll width, and an open dialog past the window's edge
// or scrolling sideways itself.
func sideways(p *page) string {
	p.t.Helper()
	return eval[string](p, `(() => {
		const W = window.innerWidth, out = [];
		const d = document.documentElement;
		if (d.scrollWidth > W) {
			const clipped = (e) => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) { const o = getComputedStyle(a).overflowX; if (o !== "visible" && a.getBoundingClientRect().right <= W + 0.5) return true; } return false; };
			const wide = [...document.querySelectorAll("body *")].filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > W + 0.5 && !clipped(e))
				.map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + [...e.classList].join(".")).slice(0, 6);
			out.push("page " + d.scrollWidth + " px: " + wide.join(", "));
		}
		for (const dlg of document.querySelectorAll("dialog[open]")) {
			const r = dlg.getBoundingClientRect();
			if (r.right > W + 0.5 || r.left < -0.5) out.push("dialog #" + dlg.id + " spans " + Math.round(r.left) + "–" + Math.round(r.right));
			if (dlg.scrollWidth > dlg.clientWidth + 1) out.push("dialog #" + dlg.id + " scrolls sideways (" + dlg.scrollWidth + " > " + dlg.clientWidth + ")");
		}
		return out.join("; ");
	})()`)
}

// noop lets the layout settle.
func noop() chromedp.Action[chromedp.Void] { return chromedp.Sleep(120 * time.Millisecond) }

// chromedpClickWord clicks a word of the attention view.
func chromedpClickWord(word string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("#word-list .word")].find((l) => l.textContent === %q)`, word)))
}

// TestNoSidewaysScroll: at 390, 768, 1440 and 2560 px, every page and
// state — the gallery with runs side by side, the change-one-word box,
// filters, the large view with attention, morphs, a long interpolation
// strip, the data-set page with a job, the queue with both lanes,
// history, the API-key dialog and a 429 banner — fits its window.
func TestNoSidewaysScroll(t *testing.T) {
	for _, w := range []int64{390, 768, 1440, 2560} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			s := newStub(t)
			p := openPage(t, s.URL, w, 900)
			p.allowStatus(429)
			dir := artifacts(t)
			var bad []string
			check := func(state string) {
				t.Helper()
				p.do(noop())
				if why := sideways(p); why != "" {
					bad = append(bad, state+": "+why)
				}
			}
			waitModels(p)
			check("generate, empty")
			generatePrompt(p, "a small bird with a red crown and a long tail and a hooked bill", 4)
			p.wait("the images", imagesLoaded("#runs .run", 4), 10*time.Second)
			p.click("#vary")
			p.wait("the vary run", `document.querySelectorAll("#runs .run").length === 2 && `+imagesLoaded("#runs .run:first-child .side:nth-child(2)", 4), 10*time.Second)
			check("generate, runs side by side")
			p.click("#change-one")
			check("generate, change one word")
			p.click("#change-cancel")
			p.click("#chips-box summary")
			check("generate, attribute chips")
			p.setValue("#f-fidelity", "40")
			check("generate, filtered")
			p.setValue("#f-fidelity", "0")
			p.do(noop())
			p.shot(dir, "generate")
			p.click("#runs .run .tile-open")
			p.wait("the words", `document.querySelectorAll("#word-list input").length > 2`, 5*time.Second)
			p.do(chromedpClickWord("crown"))
			p.wait("the overlay", `document.getElementById("viewer-overlay").dataset.word === "crown"`, 5*time.Second)
			check("the large view")
			p.shot(dir, "viewer")
			p.keys(kb.Escape)

			p.setValue("#model", "cvaegan-stub")
			p.wait("the class picker", `document.querySelectorAll("#class-list [role=option]").length > 1`, 3*time.Second)
			p.click(`#class-list [data-name="005.White_crowned_Red_breasted_Long_tailed_Warbler"]`)
			check("generate, class picker")
			p.click("#generate")
			p.wait("the class run", `document.querySelectorAll("#runs .run").length === 3 && `+imagesLoaded("#runs .run:first-child", 4), 10*time.Second)

			p.click("#tab-morph")
			p.wait("the pick", `document.querySelectorAll("#morph-pick .pick-item").length > 0`, 5*time.Second)
			p.click("#morph-pick .pick-item")
			p.click(`#morph-class [data-name="005.White_crowned_Red_breasted_Long_tailed_Warbler"]`)
			p.click("#morph-go")
			p.wait("the morph", imagesLoaded("#morph-runs .run", 1), 10*time.Second)
			check("morph")

			p.click("#tab-interpolate")
			p.click(`#interp-from-class [data-name="001.Red_crowned_Hookbill"]`)
			p.setValue("#interp-n", "12")
			p.click("#interp-go")
			p.wait("the strip", imagesLoaded("#interp-runs .run .strip", 12), 10*time.Second)
			check("interpolate, a 12-step strip")
			p.shot(dir, "interpolate")

			p.click("#tab-datasets")
			p.wait("the classes", `document.querySelectorAll("#ds-class-list [role=option]").length === 5`, 5*time.Second)
			p.click("#ds-select-shown")
			p.click("#ds-go")
			p.wait("the data set", `!!document.querySelector("#ds-jobs .ds-job") && document.querySelector("#ds-jobs .ds-job").dataset.state === "succeeded"`, 10*time.Second)
			check("data sets, a finished job")
			p.shot(dir, "datasets")

			s.set(func(s *stubAPI) { s.hold = 1 })
			p.click("#ds-go")
			p.click("#tab-generate")
			p.setValue("#model", "attngan-stub")
			p.wait("the text model", `!document.getElementById("prompt-box").hidden`, 3*time.Second)
			generatePrompt(p, "a small bird with a red crown", 3)
			p.wait("the held run", `document.querySelector("#runs .run").dataset.state === "running"`, 5*time.Second)
			p.click("#tab-queue")
			p.wait("both lanes", `document.querySelectorAll(".lane-interactive .queue-job").length === 1 && document.querySelectorAll(".lane-batch .queue-job").length === 1`, 5*time.Second)
			check("queue, both lanes")
			p.shot(dir, "queue")
			s.release()

			p.click("#tab-history")
			p.wait("history", `document.querySelectorAll("#history-list li").length >= 5`, 5*time.Second)
			check("history")

			p.click("#key-button")
			p.wait("the key dialog", `document.getElementById("key-dialog").open`, 3*time.Second)
			check("the API-key dialog")
			p.click("#key-cancel")

			p.click("#tab-generate")
			s.set(func(s *stubAPI) {
				s.fail = []stubFailure{{status: 429, slug: api.TypeQueueFull, detail: "the queue is full; try again later", retryAfter: 3}}
			})
			p.click("#generate")
			p.wait("the busy banner", `!document.getElementById("banner").hidden`, 5*time.Second)
			check("a 429 banner")
			if len(bad) > 0 {
				t.Errorf("sideways scroll at %d px:\n%s", w, strings.Join(bad, "\n"))
			}
		})
	}
}
