// History: every run kept in this browser, newest first, with its images
// as thumbnails at their own size. Show brings the run's card into view
// (morphs and interpolations too); Run again repeats its request; Remove
// forgets it. The first studio kept requests in localStorage: they are
// moved into the browser's store once (without images: those come back
// from the server while it still has the jobs).

import { $, clear, h } from "./dom.js";
import { humanise } from "./labels.js";
import * as runs from "./runs.js";
import * as store from "./store.js";

const OLD_KEY = "fgstudio.history.v1";

// migrate moves the first studio's history into the store.
export async function migrate() {
  let list;
  try {
    list = JSON.parse(localStorage.getItem(OLD_KEY) || "[]");
  } catch {
    list = [];
  }
  if (!Array.isArray(list) || !list.length) return;
  for (const e of list) {
    if (!e || !e.id || !e.kind) continue;
    await store.putRun({
      id: `h-${e.id}`,
      kind: e.kind,
      model: e.model,
      body: e.request || {},
      label: e.label,
      jobId: e.jobId,
      state: e.state === "queued" || e.state === "running" ? "succeeded" : e.state,
      at: e.at || new Date().toISOString(),
      total: e.request?.n || 1,
      request: e.request || {},
      images: [],
      source: e.image ? { blob: blobOfDataURL(e.image), label: (e.label || "").split(" → ")[0], name: "source.png" } : null,
      targetLabel: e.kind === "morph" ? (e.label || "").split(" → ")[1] || "" : "",
    });
  }
  localStorage.removeItem(OLD_KEY);
}

function blobOfDataURL(url) {
  try {
    const [head, b64] = url.split(",", 2);
    const type = /data:([^;]+)/.exec(head)?.[1] || "image/png";
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Blob([bytes], { type });
  } catch {
    return null;
  }
}

const STATES = { queued: "queued", running: "running", succeeded: "done", failed: "failed", cancelled: "cancelled", lost: "lost by the server" };

export function paint(studio) {
  const list = clear($("history-list"));
  const all = runs.all().slice().reverse();
  $("history-empty").hidden = all.length > 0;
  $("history-clear").disabled = !all.length;
  $("history-count").textContent = all.length ? String(all.length) : "";
  for (const run of all) {
    const r = run.job?.request || run.body || {};
    const bits = [run.model];
    if (run.size) bits.push(`${run.size} px`);
    if (run.kind === "generate") bits.push(`${r.n || run.total} image${(r.n || run.total) > 1 ? "s" : ""}`, `seed ${r.seed ?? run.body.seed}`);
    if (run.kind === "interpolate") bits.push(`${r.n || run.total} steps`);
    const thumbs = h("div", { class: "history-thumbs", "aria-hidden": "true" });
    for (const img of run.images.filter((x) => x && x.url).slice(0, 4)) {
      const size = img.size || run.size || 64;
      thumbs.append(h("img", { src: img.url, alt: "", width: size, height: size, class: "pixelated" }));
    }
    if (!thumbs.children.length) thumbs.append(h("span", { class: "no-thumb" }, run.gone ? "no image kept" : "…"));
    const state = run.gone && run.state !== "lost" ? "done · the server no longer has it" : STATES[run.state] || run.state;
    list.append(
      h(
        "li",
        { class: `history-item${run.gone ? " gone" : ""}` },
        thumbs,
        h(
          "div",
          { class: "history-text" },
          h("strong", {}, run.label || humanise(run.body.class)),
          h("span", { class: "kind" }, run.kind),
          h("span", { class: "history-meta" }, `${bits.join(" · ")} · ${new Date(run.at).toLocaleString()} · ${state}`),
        ),
        h(
          "div",
          { class: "history-actions" },
          h(
            "button",
            {
              type: "button",
              onclick: () => {
                studio.tab({ generate: "generate", morph: "morph", interpolate: "interpolate" }[run.kind]);
                runs.show(run);
              },
            },
            "Show",
          ),
          h(
            "button",
            {
              type: "button",
              disabled: run.kind === "morph" && !run.source?.blob,
              title: run.kind === "morph" && !run.source?.blob ? "The source image was not kept" : "Submit the same request again",
              onclick: () => studio.rerun(run),
            },
            "Run again",
          ),
          h("button", { type: "button", class: "ghost", "aria-label": `Remove ${run.label} from history`, onclick: () => runs.remove(run) }, "Remove"),
        ),
      ),
    );
  }
}
