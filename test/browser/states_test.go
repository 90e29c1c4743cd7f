//go:build !unit

package browser

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fgstudio/fgstudio/frontend"
	"github.com/fgstudio/fgstudio/studio/api"
)

// generateOnStub types a prompt and presses Generate.
func generateOnStub(p *page, n int) {
	p.t.Helper()
	waitModels(p)
	p.typeInto("#prompt", "a small bird with a red crown")
	p.setValue("#n", fmt.Sprint(n))
	settled(p)
	p.click("#generate")
}

// settled waits until the prompt's reading is shown and no suggestion
// list is open, so that nothing moves under the next click.
func settled(p *page) {
	p.t.Helper()
	if eval[bool](p, `document.getElementById("prompt-box").hidden || !document.getElementById("prompt").value.trim()`) {
		return
	}
	p.wait("the prompt's reading", `document.querySelectorAll("#reading .tok").length > 0 && document.getElementById("reading").textContent.replace(/\s+/g, " ").includes(
		document.getElementById("prompt").value.trim().split(/\s+/).pop())`, 10*time.Second)
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("prompt").blur()`), chromedp.Sleep(200*time.Millisecond))
}

func bannerText(p *page) string {
	return eval[string](p, `document.getElementById("banner").hidden ? "" : document.getElementById("banner").textContent`)
}

// TestErrorStates: what the studio shows when the API says no.
func TestErrorStates(t *testing.T) {
	t.Run("queue full, then retry", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) {
			s.fail = []stubFailure{{status: 429, slug: api.TypeQueueFull, detail: "the queue is full; try again later", retryAfter: 2}}
		})
		p := openPage(t, s.URL, 1280, 800)
		p.allowStatus(429)
		generateOnStub(p, 2)
		p.wait("the queue-full banner", `!document.getElementById("banner").hidden && document.getElementById("banner").dataset.kind === "busy"`, 5*time.Second)
		if b := bannerText(p); !strings.Contains(b, "The queue is full.") || !strings.Contains(b, "try again in") {
			t.Errorf("banner = %q", b)
		}
		if !eval[bool](p, `document.getElementById("generate").disabled`) {
			t.Error("Generate stays enabled during the Retry-After wait")
		}
		if e := p.text("#composer-error"); !strings.Contains(e, "queue is full") {
			t.Errorf("form error = %q", e)
		}
		p.shot(artifacts(t), "429-queue-full")
		p.wait("the retry button", `!document.getElementById("banner-action").hidden && document.getElementById("banner-action").textContent === "Try again"`, 5*time.Second)
		if eval[bool](p, `document.getElementById("generate").disabled`) {
			t.Error("Generate still disabled after the wait")
		}
		p.click("#banner-action")
		p.wait("images after the retry", imagesLoaded("#runs .run", 2), 10*time.Second)
		if !eval[bool](p, `document.getElementById("banner").hidden`) {
			t.Errorf("banner still shown after a successful retry: %q", bannerText(p))
		}
	})

	t.Run("server error", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) {
			s.fail = []stubFailure{{status: 500, slug: api.TypeInternal, detail: "the server failed to answer; quote the request id when reporting it"}}
		})
		p := openPage(t, s.URL, 1280, 800)
		p.allowStatus(500)
		generateOnStub(p, 2)
		p.wait("the error", `!document.getElementById("composer-error").hidden`, 5*time.Second)
		e := p.text("#composer-error")
		if !strings.Contains(e, "The server failed.") || !strings.Contains(e, "request id req-stub-1") {
			t.Errorf("form error = %q; want it in words with the request id", e)
		}
		if n := p.count("#runs .run"); n != 0 {
			t.Errorf("%d runs after a refused request", n)
		}
		p.shot(artifacts(t), "500-server-error")
		// The next try works.
		p.click("#generate")
		p.wait("images", imagesLoaded("#runs .run", 2), 10*time.Second)
		if !eval[bool](p, `document.getElementById("composer-error").hidden`) {
			t.Error("the old error stays after a success")
		}
	})

	t.Run("invalid field", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) {
			s.fail = []stubFailure{{status: 422, slug: api.TypeInvalidField, field: "prompt", detail: "is 2400 bytes; at most 2000 are accepted"}}
		})
		p := openPage(t, s.URL, 1280, 800)
		p.allowStatus(422)
		generateOnStub(p, 1)
		p.wait("the error", `!document.getElementById("composer-error").hidden`, 5*time.Second)
		if e := p.text("#composer-error"); !strings.Contains(e, "The request was refused. Prompt: is 2400 bytes; at most 2000 are accepted.") {
			t.Errorf("form error = %q; want the field and the server's words", e)
		}
		if got := eval[string](p, `document.activeElement.id + " " + document.getElementById("prompt").getAttribute("aria-invalid")`); got != "prompt true" {
			t.Errorf("focus and aria-invalid: %q, want the prompt marked and focused", got)
		}
	})

	t.Run("auth required", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) { s.key = "k-studio-123" })
		p := openPage(t, s.URL, 1280, 800)
		p.allowStatus(401)
		p.wait("the key dialog", `document.getElementById("key-dialog").open`, 5*time.Second)
		if b := bannerText(p); !strings.Contains(b, "An API key is needed.") {
			t.Errorf("banner = %q", b)
		}
		if note := p.text("#model-note"); !strings.Contains(note, "API key") {
			t.Errorf("model note = %q", note)
		}
		p.shot(artifacts(t), "401-auth")
		// A wrong key is refused, and the dialog comes back.
		p.typeInto("#key-input", "wrong")
		p.keys(kb.Enter)
		p.wait("the refusal", `document.getElementById("banner").textContent.includes("not valid")`, 5*time.Second)
		p.do(chromedp.Click(chromedp.CSS("#banner-action")))
		p.wait("the key dialog again", `document.getElementById("key-dialog").open`, 3*time.Second)
		p.typeInto("#key-input", "k-studio-123")
		p.keys(kb.Enter)
		generateOnStub(p, 2)
		p.wait("images fetched with the key", imagesLoaded("#runs .run", 2), 10*time.Second)
		if got := p.text("#key-button"); got != "API key ✓" {
			t.Errorf("key button = %q", got)
		}
		if !eval[bool](p, `document.getElementById("banner").hidden`) {
			t.Errorf("banner still shown: %q", bannerText(p))
		}
		if eval[string](p, `localStorage.getItem("fgstudio.apiKey") || ""`) != "" {
			t.Error("the key went to localStorage without 'remember'")
		}
	})

	t.Run("model not loaded", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) { s.notReady = "model attngan-stub is not loaded: open generator.onnx: no such file" })
		p := openPage(t, s.URL, 1280, 800)
		p.allowStatus(503)
		p.wait("the banner", `document.getElementById("banner").dataset.kind === "model" && !document.getElementById("banner").hidden`, 5*time.Second)
		// The page names the model (GET /v1/models: loaded false) and why.
		p.wait("the model's name", `document.getElementById("banner-title").textContent.includes("attngan-stub")`, 5*time.Second)
		if b := bannerText(p); !strings.Contains(b, "The model attngan-stub is not loaded.") || !strings.Contains(b, "generator.onnx") {
			t.Errorf("banner = %q", b)
		}
		if st := p.text("#server-state"); st != "attngan-stub not loaded" {
			t.Errorf("server state = %q", st)
		}
		p.wait("the model note", `document.getElementById("model-note").textContent.includes("attngan-stub is not loaded on the server")`, 5*time.Second)
		if opt := p.text(`#model option[value="attngan-stub"]`); !strings.Contains(opt, "not loaded") {
			t.Errorf("model option = %q", opt)
		}
		p.shot(artifacts(t), "503-model-not-loaded")
	})

	t.Run("no models", func(t *testing.T) {
		s := newStub(t)
		s.set(func(s *stubAPI) { s.noModels = true })
		p := openPage(t, s.URL, 1280, 800)
		p.wait("the empty state", `!document.getElementById("composer-error").hidden`, 5*time.Second)
		if e := p.text("#composer-error"); !strings.Contains(e, "no models installed") {
			t.Errorf("composer error = %q", e)
		}
		if !eval[bool](p, `document.getElementById("generate").disabled`) {
			t.Error("Generate enabled without models")
		}
	})
}

// TestKeyboardOnly drives the main loop with keys alone: tabs, prompt,
// generate, a tile, the attention words, closing the view.
func TestKeyboardOnly(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 1280, 800)
	waitModels(p)
	p.tabTo(".skip", 2)
	p.tabTo("#tab-generate", 3)
	p.keys(kb.ArrowRight)
	p.wait("the morph tab", `!document.getElementById("panel-morph").hidden && document.activeElement.id === "tab-morph"`, 2*time.Second)
	p.keys(kb.ArrowLeft)
	p.wait("the generate tab", `!document.getElementById("panel-generate").hidden`, 2*time.Second)
	p.tabTo("#prompt", 10)
	p.keys("a small bird with a red crown")
	p.tabTo("#n", 10)
	p.keys(kb.ArrowDown) // 4 → 3
	p.keys(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierCtrl))
	p.wait("images", imagesLoaded("#runs .run", 3), 10*time.Second)
	if p.count("#runs .run .tile-open img") != 3 {
		t.Errorf("want 3 images after ArrowDown on How many")
	}
	p.tabTo("#runs .run .tile-open", 40)
	p.wait("the top-3 on focus", `getComputedStyle(document.activeElement.parentElement.querySelector(".top3")).display === "block"`, 2*time.Second)
	p.keys(kb.Enter)
	p.wait("the large view with its words", `document.getElementById("viewer").open && document.querySelectorAll("#word-list input").length > 1`, 5*time.Second)
	p.tabTo("#word-list input", 6)
	p.keys(kb.ArrowRight)
	p.wait("a word's overlay", `!!document.getElementById("viewer-overlay").dataset.word`, 3*time.Second)
	p.keys(kb.Escape)
	p.wait("focus back on the tile", `!document.getElementById("viewer").open && document.activeElement.classList.contains("tile-open")`, 3*time.Second)
	// Every control in view can be focused and shows a focus ring.
	unlabelled := eval[[]string](p, `[...document.querySelectorAll("button, input, select, [role=listbox]")].filter((e) => e.offsetParent !== null)
		.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby") && !e.textContent.trim())
		.map((e) => e.outerHTML.slice(0, 80))`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a name: %q", unlabelled)
	}
}

// TestSmallScreen: the studio at 390 px wide, no sideways scrolling.
func TestSmallScreen(t *testing.T) {
	s := newStub(t)
	p := openPage(t, s.URL, 390, 844)
	dir := artifacts(t)
	generateOnStub(p, 4)
	p.wait("images", imagesLoaded("#runs .run", 4), 10*time.Second)
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %d px wide at 390", w)
	}
	// Two tiles side by side, each image at 2× (128 px for 64 px).
	if tops := eval[[]float64](p, `[...document.querySelectorAll("#runs .tile")].slice(0, 3).map((f) => f.getBoundingClientRect().top)`); len(tops) != 3 || tops[0] != tops[1] || tops[2] <= tops[0] {
		t.Errorf("tile tops %v at 390 px: want two per row", tops)
	}
	if w := eval[float64](p, `document.querySelector("#runs .tile-open img").getBoundingClientRect().width`); w != 128 {
		t.Errorf("a 64-px image is %v px wide at 390, want 128 (2×)", w)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	p.shot(dir, "390-compose")
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#runs .run").scrollIntoView()`))
	p.shot(dir, "390-gallery")
	p.click("#runs .run .tile-open")
	p.wait("the large view", `document.getElementById("viewer").open`, 3*time.Second)
	if w := eval[int](p, `Math.ceil(document.getElementById("viewer").getBoundingClientRect().width)`); w > 390 {
		t.Errorf("the large view is %d px wide at 390", w)
	}
	p.shot(dir, "390-viewer")
}

// TestContentSecurityPolicy: the page's files carry the policy, and the
// browser enforces it (an injected inline script does not run).
func TestContentSecurityPolicy(t *testing.T) {
	s := newStub(t)
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		res, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if got := res.Header.Get("Content-Security-Policy"); got != frontend.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy = %q", path, got)
		}
		if !strings.Contains(frontend.ContentSecurityPolicy, "script-src 'self';") || strings.Contains(frontend.ContentSecurityPolicy, "unsafe") {
			t.Errorf("policy %q must allow only the studio's own scripts", frontend.ContentSecurityPolicy)
		}
	}
	p := openPage(t, s.URL, 1280, 800)
	waitModels(p)
	if ext := eval[[]string](p, `[...document.scripts].filter((s) => !s.src || new URL(s.src).origin !== location.origin).map((s) => s.outerHTML)`); len(ext) > 0 {
		t.Errorf("scripts not from the studio: %q", ext)
	}
	p.allow(func(m chromedp.ConsoleMessage) bool { return strings.Contains(m.Text, "Content Security Policy") })
	ran := eval[bool](p, `new Promise((resolve) => {
		document.addEventListener("securitypolicyviolation", () => resolve(window.injected === true), {once: true});
		const s = document.createElement("script"); s.textContent = "window.injected = true"; document.body.append(s);
		setTimeout(() => resolve(window.injected === true), 1000);
	})`)
	if ran {
		t.Error("an injected inline script ran")
	}
}
