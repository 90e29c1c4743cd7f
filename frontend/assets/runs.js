// Runs: one submitted job each (a generation, a morph or an interpolation),
// followed live over server-sent events and drawn as a card of image tiles
// with fidelity badges. A run made by "vary" or "change one word" is drawn
// side by side with the run it came from. The large view (with the word
// attention overlays), PNG downloads and zips live here too.

import * as api from "./api.js";
import { colourise, draw } from "./attention.js";
import { $, clear, h, pct, saveBlob, slug } from "./dom.js";
import * as history from "./history.js";
import { zip } from "./zip.js";

const PATHS = { generate: "/v1/generations", morph: "/v1/morphs", interpolate: "/v1/interpolations" };
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

let studio = null; // set by init
const runs = new Map(); // id → run
let seq = 0;

export function init(s) {
  studio = s;
  initViewer();
}

export function all() {
  return [...runs.values()];
}

// ---------------------------------------------------------------- submit

// submit sends a request and, once the server accepted it, makes a run in
// container and follows it. spec: {kind, model, body, label, container,
// compare: {run, note, labelA, labelB}, source: {blob, url} (morph),
// historyId}. Errors (problems) are thrown to the caller's form.
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
  const run = {
    id: `r${++seq}`,
    kind: spec.kind,
    model: spec.model,
    body: { ...spec.body },
    label: spec.label,
    container: spec.container,
    compare: spec.compare || null,
    source: spec.source || null,
    targetLabel: spec.targetLabel || "",
    job,
    state: job.state,
    done: job.progress?.done || 0,
    total: job.progress?.total || job.request?.n || 1,
    images: [],
    tiles: new Map(),
    error: "",
    abort: new AbortController(),
  };
  // Record the seed the server chose, so "run again" repeats this job.
  if (run.kind === "generate" && run.body.seed === undefined) run.body.seed = job.request.seed;
  if (run.kind === "interpolate") {
    run.body.from = { ...run.body.from, seed: job.request.from?.seed ?? run.body.from?.seed };
    run.body.to = { ...run.body.to, seed: job.request.to?.seed ?? run.body.to?.seed };
  }
  runs.set(run.id, run);
  run.historyId = spec.historyId || run.id;
  history.add({
    id: run.historyId,
    kind: run.kind,
    model: run.model,
    request: run.body,
    label: run.label,
    jobId: job.id,
    image: spec.source?.dataURL,
    state: run.state,
  });
  studio.historyChanged();
  render(run);
  follow(run);
  return run;
}

// show brings back a finished job from its id (history "Show").
export async function show(entry, container) {
  const job = await api.getJSON(`/v1/generations/${encodeURIComponent(entry.jobId)}`);
  const run = {
    id: `r${++seq}`,
    kind: entry.kind,
    model: entry.model,
    body: { ...entry.request },
    label: entry.label,
    container,
    compare: null,
    source: null,
    job,
    state: job.state,
    done: job.progress.done,
    total: job.progress.total,
    images: [],
    tiles: new Map(),
    error: job.error || "",
    abort: new AbortController(),
    historyId: entry.id,
  };
  runs.set(run.id, run);
  render(run);
  follow(run);
  return run;
}

// ---------------------------------------------------------------- follow

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow(run) {
  let failures = 0;
  while (!FINISHED.has(run.state) && runs.has(run.id)) {
    try {
      for await (const { event, data } of api.events(run.job.links.events, run.abort.signal)) {
        if (typeof data.done === "number") run.done = data.done;
        if (typeof data.total === "number" && data.total > 0) run.total = data.total;
        if (event === "started" || event === "image" || event === "progress") run.state = "running";
        if (event === "queued" || event === "retrying") run.state = "queued";
        paintHead(run);
        // An image event carries the stored image (seed, fidelity, scores,
        // links): load it straight away, without reading the whole job.
        if (event === "image" && data.image?.links?.png) imageArrived(run, data.image);
        else if (event === "image" || event === "finished") refresh(run);
        if (event === "finished") break;
      }
      await refresh(run);
      if (!FINISHED.has(run.state)) await sleep(500);
    } catch (e) {
      if (e.name === "AbortError" || !runs.has(run.id)) return;
      failures++;
      if (failures > 4) {
        run.error = `Lost track of this job: ${e.message}`;
        paintHead(run);
        return;
      }
      await sleep(700 * failures);
      await refresh(run).catch(() => {});
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
      paintHead(run);
      await Promise.all(job.images.map((img) => loadImage(run, img)));
    } while (run.again);
  })().finally(() => {
    run.refreshing = null;
  });
  run.refreshing
    .then(() => {
      if (FINISHED.has(run.state) && !run.announced) {
        run.announced = true;
        history.update(run.historyId, { state: run.state, jobId: run.job.id });
        studio.historyChanged();
        studio.announce(`${run.label}: ${run.state === "succeeded" ? `${run.images.filter(Boolean).length} images ready` : run.state}`);
        if (run.error && /not loaded/i.test(run.error)) studio.modelNotLoaded(run.error, [run.model]);
        studio.imagesChanged();
      }
    })
    .catch((e) => {
      if (e.name !== "AbortError") {
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
    if (e.name !== "AbortError") refresh(run);
  });
}

async function loadImage(run, img) {
  const have = run.images[img.index];
  if (have && have.url) return;
  const { blob, url } = await api.image(img.links.png);
  run.images[img.index] = { ...img, blob, url };
  paintTiles(run, img.index);
  studio.imagesChanged();
}

// ---------------------------------------------------------------- cards

function seedOf(run, k) {
  if (run.images[k]) return run.images[k].seed;
  const r = run.job?.request || {};
  if (run.kind === "generate") return (r.seed ?? run.body.seed ?? 0) + k;
  return null;
}

function title(run) {
  return run.label;
}

function meta(run) {
  const r = run.job?.request || {};
  const parts = [run.model];
  if (run.kind === "generate") {
    const n = r.n || run.total;
    parts.push(n > 1 ? `seeds ${r.seed}–${r.seed + n - 1}` : `seed ${r.seed}`);
    if (r.min_fidelity) parts.push(`min fidelity ${r.min_fidelity}`);
  } else if (run.kind === "interpolate") {
    parts.push(`${r.n || run.total} steps`);
    if (r.from && r.to) parts.push(`seed ${r.from.seed} → ${r.to.seed}`);
  }
  return parts.join(" · ");
}

function render(run) {
  const id = run.id;
  const kids = [];
  run.el = h("article", { class: `run run-${run.kind}`, id: `run-${id}`, "aria-labelledby": `${id}-title`, tabindex: "-1" });
  run.headEl = h("div", { class: "run-state" });
  const actions = h("div", { class: "run-actions" });
  if (run.kind === "generate") {
    actions.append(
      h("button", { type: "button", onclick: () => studio.vary(run), title: "Same prompt, the next seeds, side by side" }, "Vary"),
      h("button", { type: "button", onclick: () => studio.changeOne(run) }, run.body.prompt ? "Change one word…" : "Change the class…"),
    );
  }
  actions.append(
    h("button", { type: "button", onclick: () => studio.rerun(run) }, "Run again"),
    h("button", { type: "button", class: "zip-run", onclick: () => zipRuns([run], `${slug(run.label)}.zip`) }, "Zip"),
  );
  run.cancelEl = h("button", { type: "button", class: "ghost", onclick: () => cancel(run) }, "Cancel");
  actions.append(run.cancelEl, h("button", { type: "button", class: "ghost", onclick: () => remove(run), "aria-label": `Remove “${run.label}” from the page` }, "Remove"));
  kids.push(
    h("header", { class: "run-head" }, h("h3", { id: `${id}-title` }, title(run)), h("p", { class: "run-meta" }, meta(run)), run.headEl, actions),
  );
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
    kids.push(
      h(
        "div",
        { class: "compare morph" },
        h("div", { class: "side" }, h("h4", {}, "Source"), h("figure", { class: "tile" }, h("img", { src: run.source.url, alt: "The source image" }))),
        h("div", { class: "arrow", "aria-hidden": "true" }, "→"),
        h("div", { class: "side" }, h("h4", {}, `As ${run.targetLabel || run.body.class}`), grid(run, run)),
      ),
    );
  } else {
    kids.push(grid(run, run));
  }
  run.el.append(...kids);
  paintHead(run);
  const box = run.container;
  box.prepend(run.el);
  studio.runsChanged();
  run.el.scrollIntoView({ block: "nearest" });
}

function grid(run, owner) {
  const g = h("div", { class: run.kind === "interpolate" ? "grid strip" : "grid", role: "list" });
  for (let k = 0; k < run.total; k++) g.append(tile(run, k, owner));
  return g;
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

// What each fidelity measure means: a short name for the badge and a
// sentence for its tooltip and the large view.
export const MEASURES = {
  class_prob: { short: "class probability", long: "requested-class probability: the classifier's probability of the class asked for" },
  attribute_match: { short: "attribute match", long: "attribute match: the share of the class's attributes the classifier sees (a class it was not trained on)" },
  text_similarity: { short: "text similarity", long: "text similarity: how well image and prompt match (DAMSM), clamped to 0–100%" },
};

// fidelity picks the number the badge shows and what it means: the
// server's fidelity and its fidelity_measure; for servers that do not say
// which measure, it is guessed from the scores.
export function fidelity(img) {
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const m = MEASURES[img.fidelity_measure];
  if (m && typeof img.fidelity === "number") return { value: clamp(img.fidelity), what: m.short, long: m.long, measure: img.fidelity_measure };
  const sc = img.scores;
  if (!sc) return null;
  if (typeof sc.class_prob === "number") return { value: sc.class_prob, what: MEASURES.class_prob.short, long: MEASURES.class_prob.long, measure: "class_prob" };
  // Without a requested class the server's fidelity (clamped to [0,1])
  // comes from the attribute match or the text–image similarity.
  const value = typeof img.fidelity === "number" ? clamp(img.fidelity) : NaN;
  if (Number.isNaN(value)) return null;
  for (const k of ["attribute_match", "text_similarity"]) {
    if (typeof sc[k] === "number") return { value, what: MEASURES[k].short, long: MEASURES[k].long, measure: k };
  }
  return { value, what: "fidelity", long: "fidelity", measure: "" };
}

export function level(v) {
  if (v >= 0.6) return "high";
  if (v >= 0.3) return "mid";
  return "low";
}

function badge(img) {
  const f = fidelity(img);
  if (!f) return h("span", { class: "badge none", title: "This image could not be scored" }, "n/a");
  const lv = level(f.value);
  return h(
    "span",
    { class: `badge ${lv}`, dataset: { measure: f.measure }, title: `${f.long}: ${pct(f.value)} (${lv})${img.below_min ? ", below the minimum asked for" : ""}` },
    h("span", { class: "dot", "aria-hidden": "true" }),
    pct(f.value),
    h("span", { class: "what" }, ` ${f.what}`),
    img.below_min ? h("span", { class: "below" }, " below min") : null,
  );
}

function top3(img, id) {
  const top = (img.scores?.top || []).slice(0, 3);
  if (!top.length) return null;
  return h(
    "div",
    { class: "top3", id, role: "tooltip" },
    h("strong", {}, "Top classes"),
    h("ol", {}, top.map((t) => h("li", {}, h("span", { class: "t-label" }, t.label || t.class), " ", h("span", { class: "t-p" }, pct(t.prob))))),
  );
}

function imageName(run, img) {
  switch (run.kind) {
    case "morph":
      return `morph-${slug(run.body.class)}-${run.job.id.slice(0, 8)}.png`;
    case "interpolate":
      return `interp-${slug(run.body.from?.class, 20)}-${slug(run.body.to?.class, 20)}-step${img.index + 1}.png`;
    default:
      return `${slug(run.body.prompt || run.body.class)}-seed${img.seed}.png`;
  }
}

function paintTile(fig, run, k) {
  clear(fig);
  const img = run.images[k];
  const seed = seedOf(run, k);
  const what = run.kind === "interpolate" ? `step ${k + 1}` : `image ${k + 1}`;
  if (!img) {
    fig.classList.add("pending");
    const failed = FINISHED.has(run.state);
    fig.append(
      h("div", { class: `placeholder${failed ? " failed" : ""}`, role: "img", "aria-label": `${what}: ${failed ? "not made" : "in progress"}` }, failed ? "—" : h("span", { class: "spinner", "aria-hidden": "true" })),
      h("figcaption", {}, h("span", {}, seed !== null ? `seed ${seed}` : what)),
    );
    return;
  }
  fig.classList.remove("pending");
  const tipId = `tip-${run.id}-${k}-${Math.random().toString(36).slice(2, 7)}`;
  const f = fidelity(img);
  const tip = top3(img, tipId);
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
      h("img", { src: img.url, alt: `${run.label}, ${what}${seed !== null ? `, seed ${seed}` : ""}`, width: img.size || 64, height: img.size || 64 }),
    ),
    badge(img),
    tip,
    h(
      "figcaption",
      {},
      h("span", {}, run.kind === "interpolate" ? `step ${k + 1}` : run.kind === "morph" ? "morphed" : `seed ${img.seed}`),
      h("button", { type: "button", class: "icon dl", "aria-label": `Download ${what} as PNG`, onclick: () => saveBlob(img.blob, imageName(run, img)) }, "PNG"),
    ),
  );
}

function paintHead(run) {
  if (!run.headEl) return;
  const done = Math.min(run.done, run.total);
  const words = {
    queued: "Queued",
    running: `Generating — ${done} of ${run.total}`,
    succeeded: `Done — ${run.images.filter(Boolean).length || done} of ${run.total}`,
    failed: "Failed",
    cancelled: "Cancelled",
  };
  clear(run.headEl);
  const busy = !FINISHED.has(run.state);
  run.el.setAttribute("aria-busy", busy ? "true" : "false");
  run.el.dataset.state = run.state;
  run.headEl.append(
    h("progress", { max: run.total, value: done, "aria-label": `${run.label}: progress` }),
    h("span", { class: `state state-${run.state}` }, words[run.state] || run.state),
  );
  if (run.error) run.headEl.append(h("p", { class: "run-error", role: "alert" }, run.state === "failed" ? `The job failed: ${run.error}` : run.error));
  if (run.cancelEl) run.cancelEl.hidden = !busy;
  if (!busy) for (const k of run.tiles.keys()) if (!run.images[k]) paintTiles(run, k);
}

async function cancel(run) {
  try {
    run.job = await api.del(run.job.links.self);
    run.state = run.job.state;
    paintHead(run);
  } catch (e) {
    run.error = `Could not cancel: ${e.message}`;
    paintHead(run);
  }
}

function remove(run) {
  run.abort.abort();
  runs.delete(run.id);
  run.el.remove();
  studio.runsChanged();
  studio.imagesChanged();
}

export function clearContainer(container) {
  for (const run of [...runs.values()]) if (run.container === container) remove(run);
}

// ---------------------------------------------------------------- zip

export async function zipRuns(list, name) {
  const files = [];
  const manifest = [];
  for (const run of list) {
    const imgs = run.images.filter(Boolean);
    for (const img of imgs) {
      files.push({ name: imageName(run, img), data: new Uint8Array(await img.blob.arrayBuffer()) });
    }
    manifest.push({
      job: run.job.id,
      kind: run.kind,
      model: run.model,
      request: run.job.request,
      images: imgs.map((img) => ({ file: imageName(run, img), index: img.index, seed: img.seed, fidelity: img.fidelity, fidelity_measure: img.fidelity_measure, scores: img.scores })),
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

const view = { run: null, k: 0, words: null, maps: new Map() };

function initViewer() {
  const dlg = $("viewer");
  $("viewer-close").addEventListener("click", () => dlg.close());
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  dlg.addEventListener("keydown", (e) => {
    if (e.target.type === "radio" || e.target.type === "range") return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
  dlg.addEventListener("close", () => {
    if (view.returnFocus && document.contains(view.returnFocus)) view.returnFocus.focus();
  });
  $("overlay-opacity").addEventListener("input", (e) => {
    $("viewer-overlay").style.opacity = String(Number(e.target.value) / 100);
  });
  $("viewer-download").addEventListener("click", () => {
    const img = view.run.images[view.k];
    saveBlob(img.blob, imageName(view.run, img));
  });
  // These two move focus elsewhere: the closed view must not take it back.
  $("viewer-seed").addEventListener("click", () => {
    const img = view.run.images[view.k];
    view.returnFocus = null;
    dlg.close();
    studio.useSeed(img.seed);
  });
  $("viewer-morph").addEventListener("click", () => {
    const img = view.run.images[view.k];
    view.returnFocus = null;
    dlg.close();
    studio.morphFrom({ blob: img.blob, url: img.url, name: imageName(view.run, img), label: `${view.run.label}, seed ${img.seed}` });
  });
}

function step(d) {
  const run = view.run;
  if (!run) return;
  const ks = run.images.map((img, i) => (img ? i : -1)).filter((i) => i >= 0);
  const at = ks.indexOf(view.k);
  if (at < 0 || !ks.length) return;
  paintViewer(run, ks[(at + d + ks.length) % ks.length]);
}

export function openViewer(run, k, owner) {
  view.returnFocus = document.activeElement;
  const dlg = $("viewer");
  paintViewer(run, k, owner);
  if (!dlg.open) dlg.showModal();
}

async function paintViewer(run, k) {
  view.run = run;
  view.k = k;
  const img = run.images[k];
  const what = run.kind === "interpolate" ? `Step ${k + 1}` : `Image ${k + 1}`;
  $("viewer-title").textContent = `${what} — ${run.label}`;
  const el = $("viewer-img");
  el.src = img.url;
  el.alt = `${run.label}, ${what.toLowerCase()}${run.kind !== "interpolate" ? `, seed ${img.seed}` : ""}`;
  const overlay = $("viewer-overlay");
  overlay.width = 256;
  overlay.height = 256;
  draw(overlay, null);
  $("viewer-seed").hidden = run.kind !== "generate";
  const many = run.images.filter(Boolean).length > 1;
  $("viewer-prev").disabled = !many;
  $("viewer-next").disabled = !many;
  paintScores(run, img);
  await paintWords(run, img);
}

function paintScores(run, img) {
  const box = clear($("viewer-scores"));
  const sc = img.scores || {};
  const rows = [];
  if (run.kind !== "interpolate") rows.push(["Seed", String(img.seed)]);
  if (img.attempts > 1) rows.push(["Attempts", String(img.attempts)]);
  const f = fidelity(img);
  if (f) rows.push([`Fidelity (${f.what})`, h("span", { class: `badge ${level(f.value)}`, title: f.long }, h("span", { class: "dot", "aria-hidden": "true" }), pct(f.value))]);
  if (img.below_min) rows.push(["Minimum", "not reached; the best try was kept"]);
  if (sc.class) rows.push(["Requested class", sc.class + (sc.class_rank ? ` (ranked ${sc.class_rank})` : "")]);
  if (typeof sc.text_similarity === "number") rows.push(["Text similarity", pct(sc.text_similarity)]);
  if (typeof sc.attribute_match === "number") rows.push(["Attribute match", pct(sc.attribute_match)]);
  box.append(h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
  if (sc.top?.length) {
    box.append(h("h3", {}, "Top classes"), h("ol", { class: "top-list" }, sc.top.slice(0, 5).map((t) => h("li", {}, `${t.label || t.class} — ${pct(t.prob)}`))));
  }
  if (sc.attributes && Object.keys(sc.attributes).length) {
    box.append(
      h("details", {}, h("summary", {}, "Predicted attributes"), h("dl", { class: "attrs" }, Object.entries(sc.attributes).map(([k, v]) => [h("dt", {}, k.replace(/^has_/, "").replace(/_/g, " ")), h("dd", {}, v)]))),
    );
  }
}

async function paintWords(run, img) {
  const box = $("words");
  const list = clear($("word-list"));
  const note = $("words-note");
  box.hidden = true;
  note.hidden = true;
  if (!img.links?.attention) {
    if (run.kind === "generate" && run.body.prompt) {
      note.hidden = false;
      note.textContent = "This image has no attention maps.";
    }
    return;
  }
  let att;
  try {
    att = await api.getJSON(img.links.attention);
  } catch (e) {
    note.hidden = false;
    note.textContent = `Attention maps could not be loaded: ${e.message}`;
    return;
  }
  if (view.run !== run || view.k !== img.index) return;
  box.hidden = false;
  const name = `word-${run.id}-${img.index}`;
  const choice = (label, map, checked) =>
    h(
      "label",
      { class: "word" },
      h("input", {
        type: "radio",
        name,
        value: map ? String(map.position) : "",
        checked,
        "aria-label": map ? `${map.word} (word ${map.position + 1})` : "image only, no overlay",
        onchange: () => showMap(map),
      }),
      h("span", {}, label),
    );
  list.append(choice("image only", null, true));
  for (const m of att.maps) list.append(choice(m.word, m, false));
}

async function showMap(m) {
  const overlay = $("viewer-overlay");
  if (!m) {
    draw(overlay, null);
    return;
  }
  if (!view.maps.has(m.png)) {
    view.maps.set(
      m.png,
      api.image(m.png).then(({ blob }) => colourise(blob)),
    );
  }
  try {
    const map = await view.maps.get(m.png);
    draw(overlay, map);
    overlay.dataset.word = m.word;
  } catch (e) {
    view.maps.delete(m.png);
    const note = $("words-note");
    note.hidden = false;
    note.textContent = `The map of “${m.word}” could not be loaded: ${e.message}`;
  }
}
