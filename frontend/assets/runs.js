// Runs: one submitted job each (a generation, a morph or an interpolation),
// followed live over server-sent events and drawn as a card of image tiles.
// Every run is kept in this browser (store.js) with its images, so the
// gallery survives reloads and server restarts; a run whose job the server
// no longer has is marked as such and shows the copies kept here. Images
// are shown at their own size or a whole multiple of it, never smoothed;
// the fidelity badge sits under the image, naming its measure. A run made
// by "vary" or "change one word" is drawn side by side with the run it came
// from. The large view (attention overlays on one scale, scores, the
// classifier's view of each asked attribute), downloads (the server's PNG,
// or an enlarged copy named as such) and zips live here too.

import * as api from "./api.js";
import { colourise, drawLegend, draw, heat } from "./attention.js";
import { $, clear, copyText, h, s, saveBlob, slug } from "./dom.js";
import { attrName, classLabel, humanise, measure, pct, STOP_WORDS } from "./labels.js";
import { upscale } from "./png.js";
import * as store from "./store.js";
import { zip } from "./zip.js";

const PATHS = { generate: "/v1/generations", morph: "/v1/morphs", interpolate: "/v1/interpolations" };
const FINISHED = new Set(["succeeded", "failed", "cancelled", "lost"]);
// The gallery draws this many runs at first, and as many more per "Show older".
const PAGE = 24;

let studio = null; // set by init
const runs = new Map(); // id → run
let shownInGallery = PAGE;

export function init(s) {
  studio = s;
  initViewer();
  initFilters();
  $("runs-more").addEventListener("click", () => {
    shownInGallery += PAGE;
    applyFilters();
  });
  $("zoom").value = store.setting("zoom", "auto");
  $("zoom").addEventListener("change", () => {
    store.setSetting("zoom", $("zoom").value);
    for (const run of runs.values()) sizeGrids(run);
  });
  matchMedia(`(resolution: ${devicePixelRatio}dppx)`).addEventListener?.("change", () => {
    for (const run of runs.values()) sizeGrids(run);
  });
}

export function all() {
  return [...runs.values()];
}

export function byId(id) {
  return runs.get(id);
}

function newId() {
  return `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

function jobLinks(id) {
  const self = `/v1/generations/${encodeURIComponent(id)}`;
  return { self, events: `${self}/events` };
}

// ---------------------------------------------------------------- submit

// submit sends a request and, once the server accepted it, makes a run in
// container and follows it. spec: {kind, model, body, label, container,
// compare: {run, note, labelA, labelB}, source: {blob, url} (morph)}.
// Errors (problems) are thrown to the caller's form.
export async function submit(spec) {
  let job;
  if (spec.kind === "morph") {
    const form = new FormData();
    form.append("model", spec.body.model);
    form.append("class", spec.body.class);
    form.append("image", spec.source.blob, spec.source.name || "source.png");
    job = await api.postForm(PATHS.morph, form);
  } else {
    job = await api.postJSON(PATHS[spec.kind], spec.body);
  }
  const run = makeRun({
    id: newId(),
    kind: spec.kind,
    model: spec.model,
    body: { ...spec.body },
    label: spec.label,
    targetLabel: spec.targetLabel || "",
    container: spec.container,
    compare: spec.compare || null,
    source: spec.source || null,
    job,
    at: new Date().toISOString(),
  });
  // Record the seed the server chose, so "run again" repeats this job.
  if (run.kind === "generate" && run.body.seed === undefined) run.body.seed = job.request.seed;
  if (run.kind === "interpolate") {
    run.body.from = { ...run.body.from, seed: job.request.from?.seed ?? run.body.from?.seed };
    run.body.to = { ...run.body.to, seed: job.request.to?.seed ?? run.body.to?.seed };
  }
  runs.set(run.id, run);
  await modelSize(run);
  render(run, true);
  save(run, true);
  store.prune().then((ids) => ids.forEach((id) => runs.has(id) && remove(runs.get(id), true)));
  studio.historyChanged();
  follow(run);
  return run;
}

function makeRun(r) {
  const job = r.job || { id: r.jobId, state: r.state, request: r.request || {}, progress: { done: 0, total: r.total || 1 }, links: jobLinks(r.jobId) };
  return {
    id: r.id,
    kind: r.kind,
    model: r.model,
    body: r.body || {},
    label: r.label,
    targetLabel: r.targetLabel || "",
    container: r.container,
    compare: r.compare || null,
    source: r.source || null,
    job,
    jobId: job.id,
    state: r.state || job.state,
    done: job.progress?.done || 0,
    total: r.total || job.progress?.total || job.request?.n || 1,
    size: r.size || 0,
    classLabel: r.classLabel || "",
    images: [],
    tiles: new Map(),
    error: r.error || "",
    gone: !!r.gone,
    abort: new AbortController(),
    at: r.at || new Date().toISOString(),
  };
}

// modelSize finds the size of the model's images before any arrived.
async function modelSize(run) {
  if (run.size) return;
  try {
    const m = await studio.detail(run.model);
    run.size = m.image_size || 0;
    run.classLabel = run.body.class ? classLabel(m, run.body.class) : "";
  } catch {
    /* the first image says */
  }
}

// ---------------------------------------------------------------- keeping runs

function segments(x) {
  if (x === null || x === undefined) return "";
  if (typeof x === "string") return x;
  // A label with marked words (change one word): [[text, marked], …].
  const out = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) out.push([n.textContent, false]);
    else if (n.nodeName === "MARK") out.push([n.textContent, true]);
    else n.childNodes.forEach(walk);
  };
  walk(x);
  return out;
}

function fromSegments(x) {
  if (!Array.isArray(x)) return x || "";
  return h("span", {}, x.map(([t, m]) => (m ? h("mark", {}, t) : t)));
}

function record(run) {
  return {
    id: run.id,
    kind: run.kind,
    model: run.model,
    body: run.body,
    label: run.label,
    targetLabel: run.targetLabel,
    jobId: run.job?.id || run.jobId,
    state: run.state,
    at: run.at,
    total: run.total,
    size: run.size,
    classLabel: run.classLabel || "",
    request: run.job?.request || {},
    error: run.error,
    gone: run.gone,
    compare: run.compare ? { runId: run.compare.run?.id, labelA: segments(run.compare.labelA), labelB: segments(run.compare.labelB), note: run.compare.note } : null,
    source: run.source ? { blob: run.source.blob, label: run.source.label, name: run.source.name } : null,
    images: run.images.map((img) =>
      img
        ? {
            index: img.index,
            seed: img.seed,
            size: img.size,
            attempts: img.attempts,
            fidelity: img.fidelity,
            fidelity_measure: img.fidelity_measure,
            below_min: img.below_min,
            scores: img.scores,
            words: img.words,
            links: img.links,
            blob: img.kept?.blob || null,
            thumb: !!img.kept?.thumb,
          }
        : null,
    ),
  };
}

// save writes the run to the browser's store (soon, or now).
function save(run, now) {
  if (!runs.has(run.id)) return;
  clearTimeout(run.saveTimer);
  const write = () => store.putRun(record(run));
  if (now) write();
  else run.saveTimer = setTimeout(write, 250);
}

function containerOf(kind) {
  return { generate: $("runs"), morph: $("morph-runs"), interpolate: $("interp-runs") }[kind];
}

// restore draws the runs kept in this browser, then checks with the
// server which of them it still has.
export async function restore() {
  const recs = await store.runs();
  for (const r of recs) {
    const run = makeRun({ ...r, container: containerOf(r.kind) });
    if (!run.container) continue;
    run.images = (r.images || []).map((img) => (img ? { ...img, kept: img.blob ? { blob: img.blob, thumb: img.thumb } : null, blob: img.thumb ? null : img.blob, url: img.blob ? URL.createObjectURL(img.blob) : "" } : null));
    if (r.source?.blob) run.source = { ...r.source, url: URL.createObjectURL(r.source.blob) };
    run.restored = true;
    runs.set(run.id, run);
  }
  // Compared runs point at the run they came from.
  for (const r of recs) {
    const run = runs.get(r.id);
    if (!run || !r.compare) continue;
    run.compare = { run: runs.get(r.compare.runId) || null, labelA: fromSegments(r.compare.labelA), labelB: fromSegments(r.compare.labelB), note: r.compare.note };
    if (!run.compare.run) run.compare = null;
  }
  for (const run of runs.values()) render(run, false);
  applyFilters();
  studio.runsChanged();
  studio.imagesChanged();
  const newest = [...runs.values()].filter((r) => r.kind === "generate").pop();
  if (newest) studio.setLastRun(newest);
  checkRestored();
}

// checkRestored asks the server about the restored runs, newest first: an
// unfinished one is followed again; a finished one whose job is gone is
// marked (its images are the copies kept here).
async function checkRestored() {
  const list = [...runs.values()].filter((r) => r.restored).reverse();
  for (const run of list) {
    if (!runs.has(run.id)) continue;
    if (!FINISHED.has(run.state)) {
      follow(run);
      continue;
    }
    if (run.gone || !run.job?.id) {
      if (!run.job?.id) markGone(run);
      continue;
    }
    try {
      await refresh(run);
    } catch (e) {
      if (e.status === 404) markGone(run);
      else if (e.status === 0) return; // the server is down: the banner says so; look again when it is back
    }
  }
}

// recheck looks at every run again (the server came back).
export function recheck() {
  for (const run of runs.values()) run.restored = true;
  checkRestored();
}

function markGone(run) {
  if (run.gone) return;
  run.gone = true;
  if (!FINISHED.has(run.state)) run.state = "lost";
  paintHead(run);
  for (const k of run.tiles.keys()) paintTiles(run, k);
  save(run, true);
  studio.historyChanged();
}

// ---------------------------------------------------------------- follow

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow(run) {
  let failures = 0;
  while (!FINISHED.has(run.state) && runs.has(run.id)) {
    try {
      for await (const { event, data } of api.events(run.job.links.events, run.abort.signal)) {
        run.waiting = false;
        if (typeof data.done === "number") run.done = data.done;
        if (typeof data.total === "number" && data.total > 0) run.total = data.total;
        if (event === "started" || event === "image" || event === "progress") run.state = "running";
        if (event === "queued" || event === "retrying") run.state = "queued";
        paintHead(run);
        // An image event carries the stored image (seed, fidelity, scores,
        // links): load it straight away, without reading the whole job.
        if (event === "image" && data.image?.links?.png) imageArrived(run, data.image);
        else if (event === "image" || event === "finished") refresh(run).catch(() => {});
        if (event === "finished") break;
      }
      await refresh(run);
      if (!FINISHED.has(run.state)) await sleep(500);
    } catch (e) {
      if (e.name === "AbortError" || !runs.has(run.id)) return;
      if (e.status === 404) {
        // The server no longer has the job (it restarted, or the job expired).
        markGone(run);
        return;
      }
      if (e.status === 0) {
        // The server is down: wait for it without counting failures; the
        // page-wide banner says so once.
        run.waiting = true;
        paintHead(run);
        await sleep(Math.min(5000, 800 + 400 * failures++));
        continue;
      }
      failures++;
      if (failures > 4) {
        run.error = `Lost track of this job: ${e.message}`;
        paintHead(run);
        return;
      }
      await sleep(700 * failures);
    }
  }
  await refresh(run).catch(() => {});
}

// refresh reads the job (coalesced: one request at a time per run) and
// loads the images it lists.
function refresh(run) {
  if (run.refreshing) {
    run.again = true;
    return run.refreshing;
  }
  run.refreshing = (async () => {
    do {
      run.again = false;
      const job = await api.getJSON(run.job.links.self);
      run.job = job;
      run.state = job.state;
      run.done = job.progress.done;
      run.total = job.progress.total || run.total;
      run.error = job.error || "";
      run.gone = false;
      paintHead(run);
      await Promise.all(job.images.map((img) => loadImage(run, img)));
    } while (run.again);
  })().finally(() => {
    run.refreshing = null;
  });
  run.refreshing
    .then(() => {
      paintHead(run);
      save(run, FINISHED.has(run.state));
      if (FINISHED.has(run.state) && !run.announced) {
        run.announced = true;
        if (!run.restored) studio.announce(`${run.label}: ${run.state === "succeeded" ? `${run.images.filter(Boolean).length} images ready` : run.state}`);
        if (run.error && /not loaded/i.test(run.error)) studio.modelNotLoaded(run.error, [run.model]);
        studio.imagesChanged();
        studio.historyChanged();
      }
    })
    .catch((e) => {
      if (e.name !== "AbortError" && e.status !== 404 && e.status !== 0) {
        run.error = e.message;
        paintHead(run);
      }
    });
  return run.refreshing;
}

// imageArrived loads an image that an event announced with its metadata;
// if that fails, the job is read as before.
function imageArrived(run, img) {
  loadImage(run, img).catch((e) => {
    if (e.name !== "AbortError") refresh(run).catch(() => {});
  });
}

async function loadImage(run, img) {
  const have = run.images[img.index];
  if (have && have.blob && have.url) {
    // Kept from before: take the fresh metadata (links) only.
    run.images[img.index] = { ...have, ...img, blob: have.blob, url: have.url, kept: have.kept };
    return;
  }
  const { blob, url } = await api.image(img.links.png);
  if (!run.size) run.size = img.size || 0;
  const kept = await store.keepable(blob);
  run.images[img.index] = { ...img, blob, url, kept };
  if (run.grids && img.size && run.gridSize !== img.size) sizeGrids(run);
  paintTiles(run, img.index);
  paintHead(run);
  save(run);
  studio.imagesChanged();
}

// ---------------------------------------------------------------- cards

function seedOf(run, k) {
  if (run.images[k]) return run.images[k].seed;
  const r = run.job?.request || {};
  if (run.kind === "generate") return (r.seed ?? run.body.seed ?? 0) + k;
  return null;
}

function meta(run) {
  const r = run.job?.request || run.body || {};
  const parts = [run.model];
  if (run.size) parts.push(`${run.size} × ${run.size} px`);
  if (run.kind === "generate") {
    const n = r.n || run.total;
    const seed = r.seed ?? run.body.seed;
    if (typeof seed === "number") parts.push(n > 1 ? `seeds ${seed}–${seed + n - 1}` : `seed ${seed}`);
    if (r.min_fidelity) parts.push(`min fidelity ${r.min_fidelity}`);
  } else if (run.kind === "interpolate") {
    parts.push(`${r.n || run.total} steps`);
    if (r.from && r.to) parts.push(`seed ${r.from.seed} → ${r.to.seed}`);
  }
  parts.push(new Date(run.at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
  return parts.join(" · ");
}

function render(run, fresh) {
  const id = run.id;
  const kids = [];
  run.el = h("article", { class: `run run-${run.kind}`, id: `run-${id}`, "aria-labelledby": `${id}-title`, tabindex: "-1" });
  run.headEl = h("div", { class: "run-state" });
  run.metaEl = h("p", { class: "run-meta" }, meta(run));
  run.grids = [];
  const actions = h("div", { class: "run-actions" });
  if (run.kind === "generate") {
    actions.append(
      h("button", { type: "button", onclick: () => studio.vary(run), title: "Same prompt, the next seeds, side by side" }, "Vary"),
      h("button", { type: "button", onclick: () => studio.changeOne(run) }, run.body.prompt ? "Change one word…" : "Change the class…"),
    );
  }
  run.againEl = h("button", { type: "button", onclick: () => studio.rerun(run) }, "Run again");
  actions.append(run.againEl, h("button", { type: "button", class: "zip-run", onclick: () => zipRuns([run], `${slug(run.label)}.zip`) }, "Zip"));
  run.cancelEl = h("button", { type: "button", class: "ghost", onclick: () => cancel(run) }, "Cancel");
  actions.append(run.cancelEl, h("button", { type: "button", class: "ghost", onclick: () => remove(run), "aria-label": `Remove “${run.label}” from the studio` }, "Remove"));
  kids.push(h("header", { class: "run-head" }, h("h3", { id: `${id}-title` }, run.label), run.metaEl, run.headEl, actions));
  run.goneEl = h("p", { class: "gone-note", hidden: true });
  kids.push(run.goneEl);
  if (run.compare) {
    const a = run.compare.run;
    kids.push(
      h(
        "div",
        { class: "compare" },
        h("div", { class: "side" }, h("h4", {}, h("span", { class: "ab" }, "A"), " ", run.compare.labelA), grid(a, run)),
        h("div", { class: "side" }, h("h4", {}, h("span", { class: "ab" }, "B"), " ", run.compare.labelB), grid(run, run)),
      ),
    );
    if (run.compare.note) kids.push(h("p", { class: "compare-note" }, run.compare.note));
  } else if (run.kind === "morph") {
    const src = run.source?.url ? h("img", { src: run.source.url, alt: "The source image", class: "source-img" }) : h("div", { class: "placeholder failed" }, "not kept");
    kids.push(
      h(
        "div",
        { class: "compare morph" },
        h("div", { class: "side" }, h("h4", {}, "Source"), h("figure", { class: "tile source-tile" }, src)),
        h("div", { class: "arrow", "aria-hidden": "true" }, "→"),
        h("div", { class: "side" }, h("h4", {}, `As ${run.targetLabel || humanise(run.body.class)}`), grid(run, run)),
      ),
    );
  } else {
    kids.push(grid(run, run));
  }
  run.el.append(...kids);
  sizeGrids(run);
  paintHead(run);
  const box = run.container;
  box.prepend(run.el);
  if (fresh) {
    studio.runsChanged();
    applyFilters();
    run.el.scrollIntoView({ block: "nearest" });
  }
}

function grid(run, owner) {
  const g = h("div", { class: run.kind === "interpolate" ? "grid strip" : "grid", role: "list" });
  for (let k = 0; k < run.total; k++) g.append(tile(run, k, owner));
  owner.grids.push({ el: g, run });
  return g;
}

// displaySize is the CSS size that shows an image of size px at a whole
// number of device pixels per image pixel: zoom× (or, for "auto", about
// 128 px), never smoothed.
export function displaySize(size, zoom) {
  const dpr = devicePixelRatio || 1;
  // auto: about 128 px, about 192 on a wide screen.
  const target = window.innerWidth >= 1800 ? 200 : 144;
  const k = zoom === "auto" || !zoom ? Math.max(1, Math.floor(target / size)) : Number(zoom);
  const dev = Math.max(1, Math.round(k * dpr));
  return { css: (size * dev) / dpr, factor: dev / dpr };
}

function sizeGrids(run) {
  for (const g of run.grids || []) {
    const size = g.run.images.find(Boolean)?.size || g.run.size || 64;
    const { css } = displaySize(size, $("zoom").value);
    g.el.style.setProperty("--px", `${css}px`);
    run.gridSize = size;
  }
}

function tile(run, k, owner) {
  const fig = h("figure", { class: "tile", role: "listitem", dataset: { run: run.id, index: String(k) } });
  if (!run.tiles.has(k)) run.tiles.set(k, new Set());
  run.tiles.get(k).add(fig);
  fig.owner = owner;
  paintTile(fig, run, k);
  return fig;
}

function paintTiles(run, k) {
  for (const fig of run.tiles.get(k) || []) paintTile(fig, run, k);
}

// fidelity picks the number the badge shows and what it means: the
// server's fidelity and its fidelity_measure (today's names, the first
// scorer's, or one this page does not know); for servers that did not say
// which measure, it is guessed from the scores.
export function fidelity(img) {
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const sc = img.scores || {};
  const name = img.fidelity_measure || sc.fidelity_measure;
  const value = typeof img.fidelity === "number" ? img.fidelity : sc.fidelity;
  if (name && typeof value === "number") {
    const m = measure(name);
    return { value: clamp(value), what: m.short, long: m.long, measure: name, unknown: !!m.unknown };
  }
  const cp = sc.class_probability ?? sc.class_prob;
  if (typeof cp === "number") return { value: clamp(cp), what: measure("class_probability").short, long: measure("class_probability").long, measure: "class_probability" };
  if (typeof value !== "number") return null;
  for (const k of ["attribute_agreement", "attribute_match", "damsm_similarity", "text_similarity"]) {
    if (typeof sc[k] === "number") return { value: clamp(value), what: measure(k).short, long: measure(k).long, measure: k };
  }
  return { value: clamp(value), what: "fidelity", long: "fidelity", measure: "" };
}

export function level(v) {
  if (v >= 0.6) return "high";
  if (v >= 0.3) return "mid";
  return "low";
}

const LEVEL_WORDS = { high: "high", mid: "middling", low: "low" };

export function badge(img) {
  const f = fidelity(img);
  if (!f) return h("span", { class: "badge none", title: "This image could not be scored" }, h("span", { class: "what" }, "not scored"));
  const lv = level(f.value);
  return h(
    "span",
    {
      class: `badge ${lv}`,
      dataset: { measure: f.measure },
      title: `${f.long}: ${pct(f.value)} (${LEVEL_WORDS[lv]})${img.below_min ? ", below the minimum asked for" : ""}`,
    },
    h("span", { class: "what" }, f.what),
    " ",
    h("span", { class: "pill" }, h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "value" }, pct(f.value))),
    img.below_min ? h("span", { class: "below" }, " below min") : null,
  );
}

function copyIcon() {
  return s(
    "svg",
    { viewBox: "0 0 16 16", width: "12", height: "12", class: "copy-icon", "aria-hidden": "true" },
    s("rect", { x: "5.5", y: "5.5", width: "8.5", height: "8.5", rx: "1.5", fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
    s("path", { d: "M2.5 10.5v-7a1 1 0 0 1 1-1h7", fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
  );
}

function top3(img, id) {
  const top = (img.scores?.top || []).slice(0, 3);
  if (!top.length) return null;
  return h(
    "div",
    { class: "top3", id, role: "tooltip" },
    h("strong", {}, "Top classes"),
    h("ol", {}, top.map((t) => h("li", {}, h("span", { class: "t-label" }, t.label || humanise(t.class)), " ", h("span", { class: "t-p" }, pct(t.prob))))),
  );
}

function imageName(run, img) {
  switch (run.kind) {
    case "morph":
      return `morph-${slug(humanise(run.body.class))}-${(run.job?.id || "").slice(0, 8)}.png`;
    case "interpolate":
      return `interp-${slug(humanise(run.body.from?.class), 20)}-${slug(humanise(run.body.to?.class), 20)}-step${img.index + 1}.png`;
    default:
      return `${slug(run.body.prompt || humanise(run.body.class))}-seed${img.seed}.png`;
  }
}

function copySeed(seed, btn) {
  copyText(String(seed)).then(
    (ok) => {
      const old = btn.dataset.label || btn.textContent;
      btn.dataset.label = old;
      btn.classList.add("copied");
      studio.announce(ok ? `Seed ${seed} copied.` : `Seed ${seed}.`);
      setTimeout(() => btn.classList.remove("copied"), 1500);
    },
    () => {},
  );
}

function paintTile(fig, run, k) {
  clear(fig);
  const img = run.images[k];
  const seed = seedOf(run, k);
  const what = run.kind === "interpolate" ? `step ${k + 1}` : `image ${k + 1}`;
  fig.classList.toggle("gone", run.gone);
  if (!img || !img.url) {
    fig.classList.add("pending");
    const ended = FINISHED.has(run.state) || run.gone;
    const why = run.gone ? "no longer on the server" : ended ? "not made" : "in progress";
    fig.append(
      h(
        "div",
        { class: `placeholder${ended ? " failed" : ""}`, role: "img", "aria-label": `${what}: ${why}` },
        ended ? h("span", { class: "ph-text" }, run.gone ? "not kept" : "—") : h("span", { class: "spinner", "aria-hidden": "true" }),
      ),
      h("figcaption", {}, h("span", { class: "seed-text" }, seed !== null ? `seed ${seed}` : what)),
    );
    return;
  }
  fig.classList.remove("pending");
  if (img.links?.png) fig.dataset.png = img.links.png;
  fig.dataset.fidelity = String(fidelity(img)?.value ?? "");
  const tipId = `tip-${run.id}-${k}-${Math.random().toString(36).slice(2, 7)}`;
  const f = fidelity(img);
  const tip = top3(img, tipId);
  const size = img.size || run.size || 64;
  const caption = h("figcaption", {}, badge(img));
  const line = h("div", { class: "tile-line" });
  if (run.kind === "interpolate") line.append(h("span", { class: "seed-text" }, `step ${k + 1}`));
  else if (run.kind === "morph") line.append(h("span", { class: "seed-text" }, "morphed"));
  else {
    const b = h(
      "button",
      { type: "button", class: "icon seed-copy", "aria-label": `Copy seed ${img.seed}`, title: "Copy the seed", onclick: () => copySeed(img.seed, b) },
      `seed ${img.seed}`,
      copyIcon(),
    );
    line.append(b);
  }
  line.append(h("button", { type: "button", class: "icon dl", "aria-label": `Download ${what} as PNG (${size} × ${size} px)`, onclick: () => download(run, img) }, "PNG"));
  caption.append(line);
  if (run.gone) caption.append(h("span", { class: "kept-tag", title: "The server no longer has this image; this is the copy kept in your browser" }, img.kept?.thumb ? "thumbnail kept here" : "kept in this browser"));
  fig.append(
    h(
      "button",
      {
        type: "button",
        class: "tile-open",
        "aria-label": `Open ${what}${seed !== null ? `, seed ${seed}` : ""}${f ? `, ${f.what} ${pct(f.value)}` : ""}`,
        "aria-describedby": tip ? tipId : false,
        onclick: () => openViewer(run, k, fig.owner),
      },
      h("img", { src: img.url, alt: `${run.label}, ${what}${seed !== null ? `, seed ${seed}` : ""}`, width: size, height: size, class: "pixelated" }),
    ),
    tip,
    caption,
  );
}

function download(run, img) {
  const blob = img.blob || img.kept?.blob;
  if (blob) saveBlob(blob, imageName(run, img));
}

// headline says where a run stands. It does not say "done" while an image
// is still on its way: what counts is the images shown.
function headline(run) {
  const shown = run.images.filter((x) => x && x.url).length;
  const total = run.total;
  if (run.gone && FINISHED.has(run.state) && run.state !== "lost") return { text: `Done — ${shown} of ${total}`, cls: "succeeded" };
  switch (run.state) {
    case "queued":
      return { text: run.waiting ? "Waiting for the server…" : "Queued", cls: "queued" };
    case "running":
      return { text: run.waiting ? "Waiting for the server…" : `Generating — ${shown} of ${total} ready`, cls: "running" };
    case "succeeded":
      if (shown < Math.min(run.done || total, total)) return { text: `Fetching images — ${shown} of ${total}`, cls: "running" };
      return { text: `Done — ${shown} of ${total}`, cls: "succeeded" };
    case "failed":
      return { text: "Failed", cls: "failed" };
    case "cancelled":
      return { text: "Cancelled", cls: "cancelled" };
    case "lost":
      return { text: "Lost by the server", cls: "failed" };
  }
  return { text: run.state, cls: run.state };
}

function paintHead(run) {
  if (!run.headEl) return;
  const shown = run.images.filter((x) => x && x.url).length;
  const hl = headline(run);
  clear(run.headEl);
  const busy = !FINISHED.has(run.state) || hl.cls === "running";
  run.el.setAttribute("aria-busy", busy ? "true" : "false");
  run.el.dataset.state = run.state;
  run.el.dataset.shown = String(shown);
  run.headEl.append(
    h("progress", { max: run.total, value: Math.min(shown, run.total), "aria-label": `${run.label}: progress` }),
    h("span", { class: `state state-${hl.cls}` }, hl.text),
  );
  if (run.error && run.state !== "lost") run.headEl.append(h("p", { class: "run-error", role: "alert" }, run.state === "failed" ? `The job failed: ${run.error}` : run.error));
  if (run.cancelEl) run.cancelEl.hidden = FINISHED.has(run.state);
  if (run.againEl) run.againEl.textContent = run.state === "lost" || run.state === "failed" || run.state === "cancelled" ? "Retry" : "Run again";
  if (run.metaEl) run.metaEl.textContent = meta(run);
  if (run.goneEl) {
    run.goneEl.hidden = !run.gone;
    run.goneEl.textContent =
      run.state === "lost"
        ? "The server lost this job before it finished (it restarted, or the job expired). Retry submits the same request."
        : shown
          ? "The server no longer has these images (it restarted, or they expired): the copies kept in this browser are shown. Attention maps need the server."
          : "The server no longer has these images, and this browser kept none.";
  }
  if (FINISHED.has(run.state)) for (const k of run.tiles.keys()) if (!run.images[k]?.url) paintTiles(run, k);
}

async function cancel(run) {
  try {
    run.job = await api.del(run.job.links.self);
    run.state = run.job.state;
    paintHead(run);
    save(run, true);
  } catch (e) {
    if (e.status === 404) return markGone(run);
    run.error = `Could not cancel: ${e.message}`;
    paintHead(run);
  }
}

// remove takes a run off the page and out of the browser's store.
export function remove(run, quiet) {
  run.abort.abort();
  clearTimeout(run.saveTimer);
  runs.delete(run.id);
  run.el?.remove();
  store.deleteRun(run.id);
  for (const img of run.images) if (img?.url?.startsWith("blob:") && img.kept && !img.blob) URL.revokeObjectURL(img.url);
  if (quiet) return;
  studio.runsChanged();
  studio.imagesChanged();
  studio.historyChanged();
  applyFilters();
}

export function clearContainer(container) {
  for (const run of [...runs.values()]) if (run.container === container) remove(run, true);
  studio.runsChanged();
  studio.imagesChanged();
  studio.historyChanged();
  applyFilters();
}

// show brings a run's card into view (History "Show"), clearing filters
// that hide it.
export function show(run) {
  if (run.container === $("runs") && run.el.hidden) {
    clearFilters();
    const order = [...runs.values()].filter((r) => r.container === $("runs")).reverse();
    shownInGallery = Math.max(shownInGallery, order.indexOf(run) + 1);
    applyFilters();
  }
  run.el.scrollIntoView({ block: "start" });
  run.el.focus({ preventScroll: true });
}

// ---------------------------------------------------------------- filters

const F = ["f-text", "f-model", "f-class", "f-fidelity"];

function initFilters() {
  const saved = store.setting("filters", {});
  for (const id of F) {
    if (saved[id] !== undefined) $(id).value = saved[id];
    $(id).addEventListener("input", () => {
      store.setSetting("filters", Object.fromEntries(F.map((x) => [x, $(x).value])));
      applyFilters();
    });
  }
  $("f-clear").addEventListener("click", () => {
    clearFilters();
    applyFilters();
    $("f-text").focus();
  });
}

function clearFilters() {
  $("f-text").value = "";
  $("f-model").value = "";
  $("f-class").value = "";
  $("f-fidelity").value = "0";
  store.setSetting("filters", {});
}

function fillSelect(sel, values, allLabel) {
  const cur = sel.value;
  const want = [["", allLabel], ...values];
  const have = [...sel.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    clear(sel).append(...want.map(([v, t]) => h("option", { value: v }, t)));
  }
  sel.value = want.some(([v]) => v === cur) ? cur : "";
}

// applyFilters shows the gallery's runs (and, within them, the images)
// that match the filters, the newest PAGE·k of them.
export function applyFilters() {
  const list = [...runs.values()].filter((r) => r.container === $("runs"));
  const models = [...new Set(list.map((r) => r.model))].sort();
  const classes = new Map();
  for (const r of list) if (r.body.class) classes.set(r.body.class, r.classLabel || humanise(r.body.class));
  fillSelect($("f-model"), models.map((m) => [m, m]), "all models");
  fillSelect($("f-class"), [...classes].sort((a, b) => a[1].localeCompare(b[1])), "all classes");
  const text = $("f-text").value.trim().toLowerCase();
  const model = $("f-model").value;
  const cls = $("f-class").value;
  const minF = Number($("f-fidelity").value) / 100;
  $("f-fidelity-out").textContent = minF > 0 ? `${Math.round(minF * 100)} %` : "any";
  const active = !!(text || model || cls || minF > 0);
  $("f-clear").hidden = !active;
  let matched = 0;
  let drawn = 0;
  for (const run of list.slice().reverse()) {
    const hay = `${run.label} ${run.body.prompt || ""} ${run.classLabel || ""} ${humanise(run.body.class)}`.toLowerCase();
    let ok = (!model || run.model === model) && (!cls || run.body.class === cls) && text.split(/\s+/).every((w) => !w || hay.includes(w));
    let visibleTiles = 0;
    for (const [k, figs] of run.tiles) {
      const img = run.images[k];
      const f = img ? fidelity(img) : null;
      const hide = minF > 0 && (!img || !f || f.value < minF);
      for (const fig of figs) {
        if (fig.owner !== run && fig.owner.container !== $("runs")) continue;
        fig.hidden = hide;
      }
      if (!hide) visibleTiles++;
    }
    if (minF > 0 && visibleTiles === 0 && FINISHED.has(run.state)) ok = false;
    if (ok) matched++;
    const show = ok && drawn < shownInGallery;
    if (show) drawn++;
    run.el.hidden = !show;
  }
  $("runs-more").hidden = matched <= drawn;
  $("runs-more").textContent = `Show older runs (${matched - drawn} more)`;
  $("f-status").textContent = active ? `${matched} of ${list.length} runs match.` : list.length ? `${list.length} run${list.length > 1 ? "s" : ""}, kept in this browser.` : "";
  $("gallery-empty").hidden = list.length > 0;
  $("filters").hidden = list.length === 0;
}

// ---------------------------------------------------------------- zip

export async function zipRuns(list, name) {
  const files = [];
  const manifest = [];
  for (const run of list) {
    const imgs = run.images.filter((img) => img && (img.blob || img.kept?.blob));
    for (const img of imgs) {
      files.push({ name: imageName(run, img), data: new Uint8Array(await (img.blob || img.kept.blob).arrayBuffer()) });
    }
    manifest.push({
      job: run.job?.id,
      kind: run.kind,
      model: run.model,
      request: run.job?.request,
      images: imgs.map((img) => ({ file: imageName(run, img), index: img.index, seed: img.seed, size: img.size, fidelity: img.fidelity, fidelity_measure: img.fidelity_measure, scores: img.scores })),
    });
  }
  if (!files.length) {
    studio.announce("No finished images to put in a zip yet.");
    return;
  }
  files.push({ name: "manifest.json", data: JSON.stringify(manifest, null, 2) });
  saveBlob(zip(files), name);
}

// ---------------------------------------------------------------- viewer

const view = { run: null, k: 0, att: null, maps: new Map(), stage: 0, word: null };

function initViewer() {
  const dlg = $("viewer");
  $("viewer-close").addEventListener("click", () => dlg.close());
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  dlg.addEventListener("keydown", (e) => {
    if (e.target.type === "radio" || e.target.type === "range" || e.target.tagName === "SELECT") return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
  dlg.addEventListener("close", () => {
    if (view.returnFocus && document.contains(view.returnFocus)) view.returnFocus.focus();
  });
  const op = store.setting("overlayOpacity", 55);
  $("overlay-opacity").value = String(op);
  setOpacity(op);
  $("overlay-opacity").addEventListener("input", (e) => {
    setOpacity(Number(e.target.value));
    store.setSetting("overlayOpacity", Number(e.target.value));
  });
  $("show-stop").checked = !!store.setting("showStopWords", false);
  $("show-stop").addEventListener("change", () => {
    store.setSetting("showStopWords", $("show-stop").checked);
    paintWordList();
  });
  $("viewer-download").addEventListener("click", () => download(view.run, view.run.images[view.k]));
  $("upscale-factor").value = String(store.setting("upscale", 4));
  $("upscale-factor").addEventListener("change", () => {
    store.setSetting("upscale", Number($("upscale-factor").value));
    paintDownloads();
  });
  $("viewer-upscale").addEventListener("click", async () => {
    const img = view.run.images[view.k];
    const f = Number($("upscale-factor").value);
    const blob = img.blob || img.kept?.blob;
    if (!blob) return;
    const big = await upscale(blob, f);
    const side = (img.size || 64) * f;
    saveBlob(big, imageName(view.run, img).replace(/\.png$/, `-upscaled-x${f}-${side}px.png`));
  });
  $("viewer-copy-seed").addEventListener("click", () => copySeed(view.run.images[view.k].seed, $("viewer-copy-seed")));
  // These move focus elsewhere: the closed view must not take it back.
  $("viewer-seed").addEventListener("click", () => {
    const img = view.run.images[view.k];
    view.returnFocus = null;
    dlg.close();
    studio.useSeed(img.seed);
  });
  $("viewer-reuse").addEventListener("click", () => {
    const img = view.run.images[view.k];
    view.returnFocus = null;
    dlg.close();
    studio.applySettings({ model: view.run.model, prompt: view.run.body.prompt, class: view.run.body.class, seed: img.seed, n: 1 }, `image ${view.k + 1} of ${view.run.label}`);
  });
  $("viewer-morph").addEventListener("click", () => {
    const img = view.run.images[view.k];
    view.returnFocus = null;
    dlg.close();
    const blob = img.blob || img.kept?.blob;
    studio.morphFrom({ blob, url: img.url, name: imageName(view.run, img), label: `${view.run.label}, seed ${img.seed}` });
  });
  let wide = window.innerWidth >= 1800;
  window.addEventListener("resize", () => {
    if (dlg.open) sizeViewer();
    if (wide !== window.innerWidth >= 1800) {
      wide = !wide;
      for (const run of runs.values()) sizeGrids(run);
    }
  });
}

function setOpacity(v) {
  $("viewer-overlay").style.opacity = String(v / 100);
  $("overlay-opacity-out").textContent = `${v} %`;
}

function step(d) {
  const run = view.run;
  if (!run) return;
  const ks = run.images.map((img, i) => (img && img.url ? i : -1)).filter((i) => i >= 0);
  const at = ks.indexOf(view.k);
  if (at < 0 || !ks.length) return;
  paintViewer(run, ks[(at + d + ks.length) % ks.length]);
}

export function openViewer(run, k) {
  view.returnFocus = document.activeElement;
  const dlg = $("viewer");
  if (!dlg.open) dlg.showModal();
  paintViewer(run, k);
}

// sizeViewer shows the image at the largest whole multiple of its size
// that fits (in device pixels), and says so.
function sizeViewer() {
  const img = view.run?.images[view.k];
  if (!img) return;
  const size = img.size || view.run.size || 64;
  const dpr = devicePixelRatio || 1;
  const stage = $("viewer-stage");
  const availW = Math.max(64, stage.clientWidth);
  const availH = Math.max(128, window.innerHeight - 190);
  // At most 512 px: enough to see every pixel, no bigger mosaic.
  const avail = Math.min(availW, availH, Math.max(512, size));
  let dev = Math.floor((avail * dpr) / size);
  let css;
  let said;
  if (dev >= 1) {
    css = (size * dev) / dpr;
    const factor = Math.round((dev / dpr) * 100) / 100;
    said = factor === 1 ? `${size} × ${size} px, shown at its own size` : `${size} × ${size} px, shown at ${factor}× (${Math.round(css)} px), each pixel a square`;
  } else {
    dev = 0;
    css = avail;
    said = `${size} × ${size} px, shown smaller to fit`;
  }
  const stack = $("viewer-stack");
  stack.style.width = `${css}px`;
  stack.style.height = `${css}px`;
  const ov = $("viewer-overlay");
  const side = Math.round(css * dpr);
  if (ov.width !== side) {
    ov.width = side;
    ov.height = side;
    redrawOverlay();
  }
  $("viewer-size").textContent = said + (img.kept?.thumb && !img.blob ? " (a thumbnail kept in this browser)" : "");
}

async function paintViewer(run, k) {
  view.run = run;
  view.k = k;
  view.att = null;
  view.word = null;
  const img = run.images[k];
  const what = run.kind === "interpolate" ? `Step ${k + 1}` : `Image ${k + 1}`;
  $("viewer-title").textContent = `${what} — ${run.label}`;
  const el = $("viewer-img");
  el.src = img.url;
  el.alt = `${run.label}, ${what.toLowerCase()}${run.kind !== "interpolate" ? `, seed ${img.seed}` : ""}`;
  sizeViewer();
  draw($("viewer-overlay"), null);
  delete $("viewer-overlay").dataset.word;
  $("viewer-seed").hidden = run.kind !== "generate";
  $("viewer-reuse").hidden = run.kind !== "generate";
  $("viewer-copy-seed").hidden = run.kind === "interpolate";
  const many = run.images.filter((x) => x && x.url).length > 1;
  $("viewer-prev").disabled = !many;
  $("viewer-next").disabled = !many;
  $("viewer-gone").hidden = !run.gone;
  $("viewer-gone").textContent = "The server no longer has this image: the copy kept in this browser is shown.";
  paintDownloads();
  paintScores(run, img);
  await paintWords(run, img);
}

function paintDownloads() {
  const img = view.run?.images[view.k];
  if (!img) return;
  const size = img.size || view.run.size || 64;
  const f = Number($("upscale-factor").value);
  const has = !!(img.blob || img.kept?.blob);
  $("viewer-download").textContent = `Download PNG (${size} × ${size})`;
  $("viewer-download").disabled = !has;
  $("viewer-upscale").textContent = `Download upscaled (${size * f} × ${size * f})`;
  $("viewer-upscale").disabled = !has || !!img.kept?.thumb;
  $("viewer-upscale").title = `An enlarged copy, each pixel a ${f} × ${f} square; its name says “upscaled”. The model made ${size} × ${size}.`;
}

function paintScores(run, img) {
  const box = clear($("viewer-scores"));
  const sc = img.scores || {};
  const rows = [];
  const size = img.size || run.size;
  if (run.kind !== "interpolate") rows.push(["Seed", String(img.seed)]);
  if (size) rows.push(["Size", `${size} × ${size} px (the model's own size)`]);
  if (img.attempts > 1) rows.push(["Attempts", String(img.attempts)]);
  const f = fidelity(img);
  if (f) rows.push(["Fidelity", badge(img)]);
  if (f?.unknown) rows.push(["", h("span", { class: "hint" }, `“${f.measure}” is a measure this page does not know; the number is shown as the server gave it.`)]);
  if (img.below_min) rows.push(["Minimum", "not reached; the best try was kept"]);
  if (sc.class) rows.push(["Requested class", classLabel(null, sc.class) + (sc.class_rank ? ` (ranked ${sc.class_rank})` : "")]);
  const seen = new Set([f?.measure, ...(f?.measure ? [measure(f.measure).key] : [])]);
  for (const k of ["class_probability", "class_prob", "attribute_agreement", "attribute_match", "damsm_similarity", "text_similarity"]) {
    const m = measure(k);
    if (typeof sc[k] !== "number" || seen.has(k) || seen.has(m.key)) continue;
    seen.add(k);
    seen.add(m.key);
    rows.push([m.short[0].toUpperCase() + m.short.slice(1), h("span", { title: m.long }, pct(Math.max(0, Math.min(1, sc[k]))))]);
  }
  box.append(h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  const groups = Array.isArray(sc.attribute_groups) ? sc.attribute_groups : [];
  if (groups.length) {
    box.append(
      h("h3", {}, sc.attribute_basis === "prompt" ? "What the prompt asks for, and what the classifier sees" : "The class's attributes, and what the classifier sees"),
      h(
        "table",
        { class: "agree" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "part"), h("th", { scope: "col" }, "asked"), h("th", { scope: "col" }, "seen"))),
        h(
          "tbody",
          {},
          groups.map((g) => {
            const ok = g.named === g.sees;
            return h(
              "tr",
              { class: ok ? "agree-ok" : "agree-no" },
              h("th", { scope: "row" }, attrName(g.group)),
              h("td", {}, String(g.named ?? "").replace(/-/g, " "), typeof g.prob === "number" ? h("span", { class: "p" }, ` ${pct(g.prob)}`) : null),
              h("td", {}, h("span", { class: "mark", "aria-hidden": "true" }, ok ? "✓ " : "✗ "), String(g.sees ?? "").replace(/-/g, " "), typeof g.sees_prob === "number" ? h("span", { class: "p" }, ` ${pct(g.sees_prob)}`) : null, h("span", { class: "visually-hidden" }, ok ? " (agrees)" : " (differs)")),
            );
          }),
        ),
      ),
    );
  }
  if (sc.top?.length) {
    box.append(h("h3", {}, "Top classes"), h("ol", { class: "top-list" }, sc.top.slice(0, 5).map((t) => h("li", {}, `${t.label || humanise(t.class)} — ${pct(t.prob)}`))));
  }
  if (!groups.length && sc.attributes && Object.keys(sc.attributes).length) {
    box.append(
      h("details", {}, h("summary", {}, "Predicted attributes"), h("dl", { class: "attrs" }, Object.entries(sc.attributes).map(([k, v]) => [h("dt", {}, attrName(k)), h("dd", {}, String(v).replace(/-/g, " "))]))),
    );
  }
}

// ---------------------------------------------------------------- attention

async function paintWords(run, img) {
  const box = $("words");
  const note = $("words-note");
  clear($("word-list"));
  box.hidden = true;
  note.hidden = true;
  if (!img.links?.attention) {
    if (run.kind === "generate" && run.body.prompt) {
      note.hidden = false;
      note.textContent = "This image has no attention maps.";
    }
    return;
  }
  if (run.gone) {
    note.hidden = false;
    note.textContent = "The attention maps were on the server, which no longer has this image.";
    return;
  }
  let att;
  try {
    att = await api.getJSON(img.links.attention);
  } catch (e) {
    note.hidden = false;
    note.textContent = e.status === 404 ? "The server no longer has this image's attention maps." : `Attention maps could not be loaded: ${e.message}`;
    return;
  }
  if (view.run !== run || view.k !== img.index) return;
  const stages = [...new Set(att.maps.map((m) => m.stage || 0))].sort((a, b) => a - b);
  view.att = att;
  view.stages = stages;
  view.stage = stages[stages.length - 1];
  box.hidden = false;
  paintStages();
  paintWordList();
}

function stageMaps() {
  return (view.att?.maps || []).filter((m) => (m.stage || 0) === view.stage);
}

function paintStages() {
  const box = clear($("stage-list"));
  box.hidden = view.stages.length < 2;
  if (box.hidden) return;
  const name = `stage-${view.run.id}-${view.k}`;
  view.stages.forEach((s, i) => {
    const label = `Stage ${i + 1}${i === 0 ? " (coarse)" : i === view.stages.length - 1 ? " (fine)" : ""}`;
    box.append(
      h(
        "label",
        { class: "word" },
        h("input", {
          type: "radio",
          name,
          value: String(s),
          checked: s === view.stage,
          onchange: () => {
            view.stage = s;
            paintWordList();
          },
        }),
        h("span", {}, label),
      ),
    );
  });
}

function paintWordList() {
  const list = clear($("word-list"));
  if (!view.att) return;
  const maps = stageMaps();
  const showStop = $("show-stop").checked;
  const content = maps.filter((m) => !STOP_WORDS.has(m.word.toLowerCase()));
  const visible = showStop || !content.length ? maps : content;
  const hidden = maps.length - visible.length;
  const name = `word-${view.run.id}-${view.k}`;
  const keep = visible.find((m) => m.word === view.word?.word && m.position === view.word?.position) || null;
  // One scale for every word shown (of the stage): the largest peak.
  const peaks = visible.map((m) => m.peak).filter((p) => typeof p === "number" && p > 0);
  view.scale = peaks.length === visible.length && visible.length ? Math.max(...peaks) : 0;
  const choice = (label, map, checked) => {
    const strength = map && view.scale ? map.peak / view.scale : null;
    const bar = strength !== null ? h("i", { class: "wbar", "aria-hidden": "true" }) : null;
    if (bar) {
      bar.style.width = `${Math.max(4, Math.round(strength * 100))}%`;
      bar.style.background = `rgb(${heat(strength).join(" ")})`;
    }
    return h(
      "label",
      { class: "word", title: map && typeof map.peak === "number" ? `${map.word}: up to ${pct(map.peak)} of a region's attention` : false },
      h("input", {
        type: "radio",
        name,
        value: map ? String(map.position) : "",
        checked,
        "aria-label": map ? `${map.word} (word ${map.position + 1}${typeof map.peak === "number" ? `, up to ${pct(map.peak)} of a region's attention` : ""})` : "image only, no overlay",
        onchange: () => showMap(map),
      }),
      h("span", {}, label, bar),
    );
  };
  list.append(choice("image only", null, !keep));
  for (const m of visible) list.append(choice(m.word, m, keep === m));
  $("show-stop").parentElement.lastChild.textContent = hidden ? ` Show ${hidden} stop-word${hidden > 1 ? "s" : ""} (a, with, and…)` : " Show stop-words (a, with, and…)";
  drawLegend($("legend-bar"));
  if (view.scale) {
    $("legend-lo").textContent = "0 %";
    $("legend-hi").textContent = pct(view.scale);
    $("legend-what").textContent = "share of each region's attention";
  } else {
    $("legend-lo").textContent = "low";
    $("legend-hi").textContent = "high";
    $("legend-what").textContent = "each word on its own scale (the server did not say how strong)";
  }
  view.maps.clear();
  showMap(keep);
}

async function showMap(m) {
  const overlay = $("viewer-overlay");
  view.word = m;
  if (!m) {
    draw(overlay, null);
    delete overlay.dataset.word;
    return;
  }
  const scale = view.scale ? m.peak / view.scale : 1;
  const key = `${m.png}|${scale}`;
  if (!view.maps.has(key)) {
    view.maps.set(
      key,
      api.image(m.png).then(({ blob }) => colourise(blob, scale)),
    );
  }
  try {
    const map = await view.maps.get(key);
    if (view.word !== m) return;
    draw(overlay, map);
    overlay.dataset.word = m.word;
  } catch (e) {
    view.maps.delete(key);
    const note = $("words-note");
    note.hidden = false;
    note.textContent = `The map of “${m.word}” could not be loaded: ${e.message}`;
  }
}

function redrawOverlay() {
  if (view.word) showMap(view.word);
}
