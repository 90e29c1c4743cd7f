// The data-set builder, on the API's /v1/datasets: a model, classes
// (picked with thumbnails and phrase search), images per class, a
// fidelity bar and measure; then each job live, class by class — waiting,
// being made, done with how many images were kept of how many made —
// with cancel, and the tar to download once it succeeded. Jobs are kept in
// this browser and followed again after a reload.

import * as api from "./api.js";
import { $, clear, h, saveBlob } from "./dom.js";
import { classLabel, DATASET_MEASURES, humanise, measure, pct } from "./labels.js";
import { picker, thumb } from "./picker.js";
import * as store from "./store.js";

let studio = null;
let classes = null; // the picker
let models = [];
let model = null; // api.Model of the form
const jobs = new Map(); // id → job

const FINISHED = new Set(["succeeded", "failed", "cancelled", "lost"]);

export function init(s) {
  studio = s;
  classes = picker({
    input: $("ds-class-search"),
    list: $("ds-class-list"),
    multiple: true,
    pickable: (c) => canMake(c),
    tag: (c) => (c.trained ? "" : model?.input === "class" ? "held out" : "unseen"),
    onChange: () => {
      paintCount();
      remember();
    },
  });
  const sel = clear($("ds-measure"));
  sel.append(h("option", { value: "" }, "automatic (the scorer's choice)"), ...DATASET_MEASURES.map((m) => h("option", { value: m.legacy }, m.short)));
  $("ds-model").addEventListener("change", () => selectModel($("ds-model").value));
  $("ds-select-shown").addEventListener("click", () => classes.selectShown());
  $("ds-clear").addEventListener("click", () => classes.clearSelection());
  for (const id of ["ds-per-class", "ds-attempts", "ds-fidelity", "ds-measure"]) {
    $(id).addEventListener("input", () => {
      paintCount();
      remember();
    });
  }
  $("ds-form").addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  const f = store.setting("datasetForm", {});
  if (f.perClass) $("ds-per-class").value = f.perClass;
  if (f.attempts) $("ds-attempts").value = f.attempts;
  if (f.fidelity !== undefined) $("ds-fidelity").value = f.fidelity;
  if (f.measure !== undefined) $("ds-measure").value = f.measure;
  paintCount();
}

function canMake(c) {
  return model?.input === "class" ? c.trained : true;
}

function remember() {
  store.setSetting("datasetForm", {
    model: model?.name,
    classes: classes.value(),
    perClass: $("ds-per-class").value,
    attempts: $("ds-attempts").value,
    fidelity: $("ds-fidelity").value,
    measure: $("ds-measure").value,
  });
}

export async function setModels(list) {
  models = list;
  const sel = clear($("ds-model"));
  for (const m of list) sel.append(h("option", { value: m.name }, `${m.name} · ${m.kind} ${m.version}${m.image_size ? ` · ${m.image_size} px` : ""}`));
  $("ds-go").disabled = !list.length;
  const want = store.setting("datasetForm", {}).model;
  const keep = list.find((m) => m.name === want) || list.find((m) => m.input === "class") || list[0];
  if (keep) {
    sel.value = keep.name;
    await selectModel(keep.name, store.setting("datasetForm", {}).classes);
  }
}

async function selectModel(name, selected) {
  try {
    model = await studio.detail(name);
  } catch (e) {
    $("ds-model-note").textContent = e.status === 0 ? "Waiting for the server…" : `Could not read ${name}: ${e.message}`;
    return;
  }
  const made = model.classes.filter(canMake).length;
  $("ds-model-note").textContent =
    (model.input === "class" ? `Makes the ${made} classes it was trained on` : `Describes each class from its attributes; ${made} classes`) +
    (model.image_size ? `, ${model.image_size} × ${model.image_size} px images.` : ".");
  classes.setModel(model, selected || []);
  paintCount();
  remember();
}

function numbers() {
  return {
    perClass: Number($("ds-per-class").value),
    attempts: Number($("ds-attempts").value),
    fidelity: Number($("ds-fidelity").value) / 100,
    measure: $("ds-measure").value,
  };
}

function paintCount() {
  const k = classes.value().length;
  $("ds-count").textContent = k ? `${k} class${k > 1 ? "es" : ""} selected` : "no class selected";
  const n = numbers();
  $("ds-fidelity-out").textContent = n.fidelity > 0 ? pct(n.fidelity) : "off";
  const m = n.measure ? measure(n.measure).short : "the scorer's choice of measure";
  $("ds-fidelity-note").textContent = n.fidelity > 0 ? `An image is kept only when its fidelity (${m}) reaches ${pct(n.fidelity)}.` : "Every image is kept (no fidelity bar).";
  $("ds-estimate").textContent =
    k && n.perClass > 0 ? `${k} × ${n.perClass} = ${k * n.perClass} images kept; at most ${k * n.perClass * Math.max(1, n.attempts || 1)} made.` : "";
}

async function start() {
  studio.formError("ds-error", null);
  const names = classes.value();
  const n = numbers();
  if (!model) return;
  if (!names.length) {
    studio.formError("ds-error", { title: "No class", detail: "Pick at least one class." });
    $("ds-class-search").focus();
    return;
  }
  if (!Number.isInteger(n.perClass) || n.perClass < 1) {
    studio.formError("ds-error", { title: "Images per class", detail: "A whole number, 1 or more." });
    $("ds-per-class").focus();
    return;
  }
  if (!Number.isInteger(n.attempts) || n.attempts < 1) {
    studio.formError("ds-error", { title: "Tries", detail: "A whole number, 1 or more." });
    $("ds-attempts").focus();
    return;
  }
  const body = { model: model.name, classes: names, per_class: n.perClass, min_fidelity: n.fidelity, max_attempts: n.attempts };
  if (n.measure) body.fidelity_measure = n.measure;
  const button = $("ds-go");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const d = await api.postJSON("/v1/datasets", body);
    const rec = {
      id: d.id,
      model: model.name,
      at: new Date().toISOString(),
      classes: names.map((name) => {
        const c = model.classes.find((x) => x.name === name);
        return { name, label: c?.label || humanise(name), example: c?.example || "", attributes: c?.attributes || {} };
      }),
      perClass: n.perClass,
      minFidelity: n.fidelity,
      measure: n.measure,
      size: model.image_size || 0,
      state: d.state,
      data: d,
    };
    store.putDataset(rec);
    const job = add(rec, true);
    follow(job);
    job.el.focus();
  } catch (e) {
    studio.fail(e, {
      box: "ds-error",
      fields: { classes: "ds-class-search", per_class: "ds-per-class", min_fidelity: "ds-fidelity", model: "ds-model", max_attempts: "ds-attempts", fidelity_measure: "ds-measure" },
      retry: start,
    });
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = studio.coolingDown();
  }
}

// retry submits a job's request again (from the queue view).
export async function retry(job) {
  studio.tab("datasets");
  const r = job.rec;
  const m = models.find((x) => x.name === r.model);
  if (m) {
    $("ds-model").value = m.name;
    await selectModel(m.name, r.classes.map((c) => c.name));
  }
  $("ds-per-class").value = String(r.perClass);
  $("ds-fidelity").value = String(Math.round(r.minFidelity * 100));
  $("ds-measure").value = r.measure || "";
  paintCount();
  return start();
}

export function all() {
  return [...jobs.values()];
}

// ---------------------------------------------------------------- jobs

export async function restore() {
  for (const rec of await store.datasets()) {
    const job = add(rec, false);
    if (!FINISHED.has(rec.state)) follow(job);
    else if (rec.state === "succeeded") check(job);
  }
}

// recheck looks at every job again (the server came back).
export function recheck() {
  for (const job of jobs.values()) {
    if (!FINISHED.has(job.rec.state)) follow(job);
    else if (job.rec.state === "succeeded") check(job);
  }
}

async function check(job) {
  try {
    update(job, await api.getJSON(job.rec.data.links.self));
  } catch (e) {
    if (e.status === 404) gone(job);
  }
}

function add(rec, fresh) {
  const job = { rec, rows: new Map(), abort: new AbortController() };
  jobs.set(rec.id, job);
  render(job);
  $("ds-jobs").prepend(job.el);
  $("ds-empty").hidden = true;
  paint(job);
  if (fresh) job.el.scrollIntoView({ block: "nearest" });
  studio.queueChanged?.();
  return job;
}

function render(job) {
  const r = job.rec;
  const id = `ds-${r.id}`;
  job.stateEl = h("div", { class: "run-state" });
  job.cancelEl = h("button", { type: "button", class: "ghost", onclick: () => cancel(job) }, "Cancel");
  job.downloadEl = h("button", { type: "button", class: "primary ds-download", onclick: () => download(job), hidden: true }, "Download (tar)");
  job.noteEl = h("p", { class: "gone-note", hidden: true });
  job.reportEl = h("div", { class: "ds-report" });
  const measureName = r.measure ? measure(r.measure).short : "the scorer's choice of measure";
  const tbody = h("tbody", {});
  for (const c of r.classes) {
    const kept = h("td", { class: "num" }, "–");
    const acc = h("td", { class: "acc" }, "");
    const status = h("td", { class: "status" }, "waiting");
    const row = h(
      "tr",
      { dataset: { class: c.name } },
      h("td", { class: "pic" }, thumb(c, 32)),
      h("th", { scope: "row" }, c.label || humanise(c.name)),
      status,
      kept,
      acc,
    );
    job.rows.set(c.name, { row, kept, acc, status });
    tbody.append(row);
  }
  job.el = h(
    "article",
    { class: "run ds-job", id, tabindex: "-1", "aria-labelledby": `${id}-title` },
    h(
      "header",
      { class: "run-head" },
      h("h3", { id: `${id}-title` }, `${r.model} · ${r.classes.length} class${r.classes.length > 1 ? "es" : ""} × ${r.perClass} images`),
      h(
        "p",
        { class: "run-meta" },
        [r.size ? `${r.size} × ${r.size} px` : "", r.minFidelity > 0 ? `kept at fidelity ≥ ${pct(r.minFidelity)} (${measureName})` : "every image kept", new Date(r.at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })]
          .filter(Boolean)
          .join(" · "),
      ),
      job.stateEl,
      h("div", { class: "run-actions" }, job.downloadEl, job.cancelEl, h("button", { type: "button", class: "ghost", "aria-label": `Remove the data set of ${r.classes.length} classes from this page`, onclick: () => removeJob(job) }, "Remove")),
    ),
    job.noteEl,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "ds-classes" },
        h("caption", { class: "visually-hidden" }, "Progress per class"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "example")), h("th", { scope: "col" }, "class"), h("th", { scope: "col" }, "state"), h("th", { scope: "col", class: "num" }, "kept / made"), h("th", { scope: "col" }, "acceptance"))),
        tbody,
      ),
    ),
    job.reportEl,
  );
}

function paint(job) {
  const r = job.rec;
  const d = r.data || {};
  const done = new Map((d.classes || []).map((c) => [c.class, c]));
  const total = r.classes.length;
  const finishedClasses = r.classes.filter((c) => done.get(c.name)?.done).length;
  const words = { queued: "Queued", running: `Making — ${finishedClasses} of ${total} classes done`, succeeded: "Done — ready to download", failed: "Failed", cancelled: "Cancelled", lost: "Lost by the server" };
  clear(job.stateEl).append(
    h("progress", { max: total, value: finishedClasses, "aria-label": "classes done" }),
    h("span", { class: `state state-${r.state === "lost" ? "failed" : r.state}` }, words[r.state] || r.state),
  );
  if (d.error && r.state === "failed") job.stateEl.append(h("p", { class: "run-error", role: "alert" }, `The job failed: ${d.error}`));
  job.el.dataset.state = r.state;
  job.el.setAttribute("aria-busy", FINISHED.has(r.state) ? "false" : "true");
  job.cancelEl.hidden = FINISHED.has(r.state);
  job.downloadEl.hidden = r.state !== "succeeded" || job.gone;
  let making = r.state === "running";
  for (const c of r.classes) {
    const x = job.rows.get(c.name);
    const dc = done.get(c.name);
    let status = "waiting";
    if (dc?.done) status = "done";
    else if (making) {
      status = "making…";
      making = false;
    } else if (FINISHED.has(r.state)) status = "not made";
    x.status.textContent = status;
    x.row.className = `cls-${status.replace(/\W/g, "")}`;
    if (dc && typeof dc.kept === "number") {
      x.kept.textContent = `${dc.kept} / ${dc.made ?? "?"}`;
      const a = typeof dc.acceptance === "number" ? dc.acceptance : dc.made ? dc.kept / dc.made : null;
      clear(x.acc);
      if (a !== null) x.acc.append(h("meter", { min: 0, max: 1, value: a, "aria-label": `acceptance of ${c.label}` }), h("span", {}, ` ${pct(a)}`));
    } else {
      x.kept.textContent = dc?.done ? "done" : "–";
    }
  }
  paintReport(job);
}

function paintReport(job) {
  const box = clear(job.reportEl);
  const rep = job.rec.data?.report;
  if (!rep || typeof rep !== "object") return;
  const bits = [];
  if (typeof rep.accepted === "number") bits.push(`kept ${rep.accepted} of ${rep.attempts} made (${pct(rep.acceptance_rate)})`);
  if (rep.run?.seconds) bits.push(`in ${Math.round(rep.run.seconds)} s`);
  if (typeof rep.diversity === "number" && rep.diversity > 0) bits.push(`diversity ${rep.diversity.toFixed(2)}${rep.real_diversity ? ` (real images ${rep.real_diversity.toFixed(2)})` : ""}`);
  box.append(h("p", { class: "hint" }, bits.join(" · ")));
  if (rep.short?.length) box.append(h("p", { class: "hint warn" }, `Ran out of tries before ${job.rec.perClass} images: ${rep.short.map((n) => classLabel(model, n)).join(", ")}.`));
}

function update(job, d) {
  job.rec.data = d;
  job.rec.state = d.state;
  job.gone = false;
  job.noteEl.hidden = true;
  paint(job);
  store.putDataset(job.rec);
  studio.queueChanged?.();
}

function gone(job) {
  job.gone = true;
  if (!FINISHED.has(job.rec.state)) job.rec.state = "lost";
  job.noteEl.hidden = false;
  job.noteEl.textContent =
    job.rec.state === "lost" ? "The server lost this job before it finished (it restarted, or the job expired)." : "The server no longer has this job; its download is gone with it.";
  paint(job);
  store.putDataset(job.rec);
  studio.queueChanged?.();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow(job) {
  let failures = 0;
  while (!FINISHED.has(job.rec.state) && jobs.has(job.rec.id)) {
    try {
      update(job, await api.getJSON(job.rec.data.links.self));
      if (FINISHED.has(job.rec.state)) break;
      for await (const { event } of api.events(job.rec.data.links.events, job.abort.signal)) {
        if (event === "progress" || event === "finished" || event === "started") update(job, await api.getJSON(job.rec.data.links.self));
        if (event === "finished") break;
      }
    } catch (e) {
      if (e.name === "AbortError" || !jobs.has(job.rec.id)) return;
      if (e.status === 404) return gone(job);
      await sleep(Math.min(5000, 800 + 500 * failures++));
    }
  }
}

async function cancel(job) {
  try {
    update(job, await api.del(job.rec.data.links.self));
  } catch (e) {
    if (e.status === 404) return gone(job);
    job.noteEl.hidden = false;
    job.noteEl.textContent = `Could not cancel: ${e.message}`;
  }
}

async function download(job) {
  const b = job.downloadEl;
  b.disabled = true;
  b.setAttribute("aria-busy", "true");
  b.textContent = "Downloading…";
  try {
    const res = await api.raw(job.rec.data.links.download, { accept: "application/x-tar" });
    saveBlob(await res.blob(), `dataset-${job.rec.id}.tar`);
    studio.announce("The data set's tar is downloaded.");
  } catch (e) {
    job.noteEl.hidden = false;
    job.noteEl.textContent = e.status === 409 ? `Cannot download here: ${e.detail}` : `The download failed: ${e.message}`;
    if (e.status === 404) gone(job);
  } finally {
    b.disabled = false;
    b.removeAttribute("aria-busy");
    b.textContent = "Download (tar)";
  }
}

function removeJob(job) {
  job.abort.abort();
  jobs.delete(job.rec.id);
  job.el.remove();
  store.deleteDataset(job.rec.id);
  $("ds-empty").hidden = jobs.size > 0;
  studio.queueChanged?.();
}

// show brings a job's card into view.
export function show(id) {
  const job = jobs.get(id);
  if (!job) return false;
  studio.tab("datasets");
  job.el.scrollIntoView({ block: "start" });
  job.el.focus({ preventScroll: true });
  return true;
}
