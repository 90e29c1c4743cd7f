// The web studio: wires the sections (generate, morph, interpolate, data
// sets, queue, history), the page-wide states (loading, API key needed,
// too many requests, no model loaded, the server down — said once, and
// cleared by itself when it is back —, server errors), the models list,
// and settings loaded from a studio PNG dropped anywhere on the page.

import * as api from "./api.js";
import * as composer from "./composer.js";
import * as datasets from "./datasets.js";
import { $, clear, h } from "./dom.js";
import * as history from "./history.js";
import * as morph from "./morph.js";
import * as queue from "./queue.js";
import * as runs from "./runs.js";
import * as store from "./store.js";

const TABS = ["generate", "morph", "interpolate", "datasets", "queue", "history"];
const SUBMIT_BUTTONS = ["generate", "vary", "change-go", "morph-go", "interp-go", "ds-go"];

const details = new Map(); // model name → Promise<api.Model>
let models = [];
let cooldownUntil = 0;
let cooldownTimer = 0;
let retryFn = null;
let bannerKind = "";

// ---------------------------------------------------------------- studio

const studio = {
  detail(name) {
    if (!details.has(name)) {
      const p = api.getJSON(`/v1/models/${encodeURIComponent(name)}`);
      p.catch(() => details.delete(name));
      details.set(name, p);
    }
    return details.get(name);
  },
  tab,
  announce(text) {
    const live = $("live");
    live.textContent = "";
    setTimeout(() => (live.textContent = text), 30);
  },
  historyChanged() {
    history.paint(studio);
    queue.changed();
  },
  queueChanged() {
    queue.changed();
  },
  runsChanged() {
    for (const [box, empty, clearBtn] of [
      ["runs", "gallery-empty", "clear-gallery"],
      ["morph-runs", "morph-empty", "clear-morphs"],
      ["interp-runs", "interp-empty", "clear-interps"],
    ]) {
      $(empty).hidden = $(box).children.length > 0;
      $(clearBtn).disabled = $(box).children.length === 0;
    }
  },
  imagesChanged() {
    $("zip-all").disabled = !runs.all().some((r) => r.container === $("runs") && r.images.some((i) => i && (i.blob || i.kept?.blob)));
    morph.paintPick();
  },
  vary: composer.vary,
  changeOne: composer.changeOne,
  rerun: composer.rerun,
  useSeed: composer.useSeed,
  applySettings: composer.applySettings,
  setLastRun: composer.setLastRun,
  morphFrom: morph.morphFrom,
  // modelNotLoaded says which models the server could not load (names,
  // when known) and why (detail).
  modelNotLoaded(detail, names) {
    const list = [...new Set((names || []).filter(Boolean))];
    const title = list.length > 1 ? `The models ${list.join(", ")} are not loaded.` : list.length ? `The model ${list[0]} is not loaded.` : "The model is not loaded.";
    setServerState("no-model", list.length ? `${list.join(", ")} not loaded` : "no model loaded");
    banner("model", title, `${detail} Generation cannot run until the server has loaded ${list.length > 1 ? "them" : "the model"}; ask whoever runs the studio to check its models folder.`);
  },
  formError,
  fail,
  coolingDown: () => Date.now() < cooldownUntil,
  submitElsewhere,
};

// ---------------------------------------------------------------- tabs

function tab(name) {
  for (const t of TABS) {
    const on = t === name;
    const b = $(`tab-${t}`);
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
  }
  if (name === "morph") morph.paintPick();
  queue.visible(name === "queue");
}

function initTabs() {
  for (const t of TABS) $(`tab-${t}`).addEventListener("click", () => tab(t));
  document.querySelector("[role=tablist]").addEventListener("keydown", (e) => {
    const at = TABS.findIndex((t) => $(`tab-${t}`) === document.activeElement);
    if (at < 0) return;
    let to = -1;
    if (e.key === "ArrowRight") to = (at + 1) % TABS.length;
    if (e.key === "ArrowLeft") to = (at - 1 + TABS.length) % TABS.length;
    if (e.key === "Home") to = 0;
    if (e.key === "End") to = TABS.length - 1;
    if (to < 0) return;
    e.preventDefault();
    tab(TABS[to]);
    $(`tab-${TABS[to]}`).focus();
  });
}

// ---------------------------------------------------------------- banner

function banner(kind, title, detail, action) {
  bannerKind = kind;
  const b = $("banner");
  b.dataset.kind = kind;
  $("banner-title").textContent = title;
  $("banner-detail").textContent = detail || "";
  const btn = $("banner-action");
  btn.hidden = !action;
  if (action) {
    btn.textContent = action.label;
    btn.onclick = action.run;
  }
  b.hidden = false;
}

function hideBanner(kind) {
  if (kind && bannerKind !== kind) return;
  $("banner").hidden = true;
  bannerKind = "";
}

// ---------------------------------------------------------------- errors

// FIELD_NAMES are the request fields as the forms call them.
const FIELD_NAMES = {
  prompt: "Prompt",
  class: "Class",
  n: "How many",
  seed: "Seed",
  min_fidelity: "Min fidelity",
  max_attempts: "Attempts",
  model: "Model",
  image: "Image",
  "from.class": "From class",
  "to.class": "To class",
};

// sentence makes a server's detail read as a sentence.
function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  return t[0].toUpperCase() + t.slice(1) + (/[.!?)]$/.test(t) ? "" : ".");
}

// words turns an error into what the page says.
function words(e) {
  if (!e) return null;
  if (e instanceof api.ApiError) {
    const id = e.requestId ? ` (request id ${e.requestId})` : "";
    switch (e.status) {
      case 0:
        return { title: "The studio cannot be reached.", detail: sentence(e.detail) };
      case 401:
        return { title: "An API key is needed.", detail: sentence(e.detail) };
      case 403:
        return { title: "This API key may not do that.", detail: sentence(e.detail) };
      case 429:
        return { title: e.slug === "queue-full" ? "The queue is full." : e.slug === "quota-exceeded" ? "Too many unfinished jobs." : "Too many requests.", detail: `${sentence(e.detail)}${e.retryAfter ? ` Try again in ${e.retryAfter} s.` : ""}` };
      case 500:
        return { title: "The server failed.", detail: sentence(`${e.detail}${id}`) };
      case 503:
        return { title: "The studio is unavailable right now.", detail: sentence(`${e.detail}${id}`) };
      default: {
        const title = { 400: "The request was not understood.", 404: "Not found.", 413: "Too large.", 415: "Wrong kind of upload." }[e.status] || (e.status >= 500 ? "The server failed." : "The request was refused.");
        const what = FIELD_NAMES[e.field] || e.field;
        const detail = what ? `${what}: ${e.detail.replace(/\.$/, "")}.` : sentence(e.detail);
        return { title, detail: detail + (e.status >= 500 ? id : "") };
      }
    }
  }
  if (e.title || e.detail) return { title: e.title || "", detail: e.detail || "" };
  return { title: "Something went wrong.", detail: String(e.message || e) };
}

function formError(boxId, e) {
  const box = $(boxId);
  clear(box);
  const w = words(e);
  box.hidden = !w;
  if (!w) return;
  box.dataset.status = e instanceof api.ApiError ? String(e.status) : "";
  box.append(h("strong", {}, w.title), " ", h("span", {}, w.detail));
}

// fail shows an error from a submission in its form, marks the field at
// fault, and starts the cool-down of a 429 with a retry.
function fail(e, { box, fields = {}, retry } = {}) {
  for (const el of document.querySelectorAll("[aria-invalid=true]")) el.removeAttribute("aria-invalid");
  // The server being down is said once, by the banner.
  formError(box, e instanceof api.ApiError && e.status === 0 ? null : e);
  if (!(e instanceof api.ApiError)) return;
  const target = fields[e.field] && document.getElementById(fields[e.field]);
  if (target && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401) {
    target.setAttribute("aria-invalid", "true");
    target.focus();
  } else {
    $(box).tabIndex = -1;
  }
  if (e.status === 429) {
    retryFn = retry || null;
    cooldown(e);
  }
}

function cooldown(e) {
  const secs = Math.max(1, Math.min(120, e.retryAfter || 2));
  cooldownUntil = Date.now() + secs * 1000;
  for (const id of SUBMIT_BUTTONS) $(id).disabled = true;
  const w = words(e);
  const tick = () => {
    const left = Math.ceil((cooldownUntil - Date.now()) / 1000);
    if (left > 0) {
      banner("busy", w.title, `${sentence(e.detail)} You can try again in ${left} s.`);
      return;
    }
    clearInterval(cooldownTimer);
    cooldownTimer = 0;
    for (const id of SUBMIT_BUTTONS) $(id).disabled = false;
    $("vary").disabled = !document.querySelector("#runs .run-generate");
    $("change-one").disabled = $("vary").disabled;
    const again = retryFn;
    banner("busy", w.title, "You can try again now.", again ? { label: "Try again", run: () => { retryFn = null; hideBanner("busy"); again(); } } : null);
  };
  clearInterval(cooldownTimer);
  cooldownTimer = setInterval(tick, 250);
  tick();
}

api.onProblem((e) => {
  switch (e.status) {
    case 0:
      serverDown();
      break;
    case 401:
      authNeeded(e);
      break;
    case 403:
      banner("auth", "This API key may not do that.", `${sentence(e.detail)} Use a key with that scope.`, { label: "Change key", run: openKeyDialog });
      break;
    case 429:
      if (!studio.coolingDown()) cooldown(e);
      break;
    case 503:
      banner("unavailable", "The studio is unavailable right now.", sentence(e.detail));
      break;
  }
});

// ---------------------------------------------------------------- API key

function authNeeded(e) {
  banner("auth", "An API key is needed.", sentence(e.detail), { label: "Enter API key", run: openKeyDialog });
  paintKeyButton();
  if (!$("key-dialog").open && !authNeeded.asked) {
    authNeeded.asked = true;
    openKeyDialog(e);
  }
}

function openKeyDialog() {
  const dlg = $("key-dialog");
  $("key-input").value = "";
  $("key-forget").hidden = !api.apiKey();
  if (!dlg.open) dlg.showModal();
  $("key-input").focus();
}

function paintKeyButton() {
  const b = $("key-button");
  b.textContent = api.apiKey() ? "API key ✓" : "API key";
  b.setAttribute("aria-label", api.apiKey() ? "API key set; change it" : "Enter an API key");
}

function initKeyDialog() {
  const dlg = $("key-dialog");
  $("key-button").addEventListener("click", openKeyDialog);
  $("key-cancel").addEventListener("click", () => dlg.close());
  $("key-forget").addEventListener("click", () => {
    api.setApiKey("");
    paintKeyButton();
    dlg.close();
    boot();
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) {
      $("key-input").setAttribute("aria-invalid", "true");
      $("key-input").focus();
      return;
    }
    $("key-input").removeAttribute("aria-invalid");
    api.setApiKey(key, $("key-remember").checked);
    authNeeded.asked = false;
    paintKeyButton();
    dlg.close();
    hideBanner("auth");
    boot();
  });
  paintKeyButton();
}

// ---------------------------------------------------------------- readiness and models

function setServerState(kind, text) {
  const el = $("server-state");
  el.dataset.state = kind;
  el.textContent = text;
}

async function checkReady() {
  const r = await api.readiness();
  if (r.ready) {
    setServerState("ready", "ready");
    hideBanner("model");
    return true;
  }
  const checks = r.checks || {};
  if (checks.server) {
    serverDown();
    return false;
  }
  if (checks.models && checks.models !== "ok") {
    const failed = await notLoaded();
    const why = failed.map((m) => (m.load_error ? `${m.name}: ${m.load_error}.` : "")).filter(Boolean).join(" ");
    studio.modelNotLoaded(`The server says: ${checks.models}.${why ? ` ${why}` : ""}`, failed.map((m) => m.name));
  } else {
    const failing = Object.entries(checks).filter(([, v]) => v !== "ok");
    setServerState("no-model", "not ready");
    banner("model", "The studio is not ready.", failing.map(([k, v]) => `${k}: ${v}`).join("; ") || "Try again shortly.");
  }
  clearTimeout(checkReady.timer);
  checkReady.timer = setTimeout(checkReady, 20_000);
  return false;
}

// notLoaded lists the generating models that the server says are not
// loaded (GET /v1/models, loaded: false); none when it cannot say.
async function notLoaded() {
  try {
    const list = await api.getJSON("/v1/models");
    return list.models.filter((m) => m.loaded === false && (m.input === "prompt" || m.input === "class"));
  } catch {
    return [];
  }
}

// serverDown says once that the server cannot be reached, and looks for
// it every few seconds; when it answers, the page picks up where it was.
function serverDown() {
  setServerState("down", "unreachable");
  if (bannerKind !== "network") banner("network", "The studio cannot be reached.", "The server does not answer; this page tries again every few seconds. Your gallery is kept in this browser.", { label: "Retry now", run: lookForServer });
  if (!serverDown.timer) serverDown.timer = setTimeout(lookForServer, 3000);
}

async function lookForServer() {
  clearTimeout(serverDown.timer);
  serverDown.timer = 0;
  const r = await api.readiness();
  if (r.checks?.server) {
    serverDown.timer = setTimeout(lookForServer, 3000);
    return;
  }
  hideBanner("network");
  await boot();
  runs.recheck();
  datasets.recheck();
}

async function boot() {
  details.clear();
  const composerEl = $("composer");
  composerEl.setAttribute("aria-busy", "true");
  $("model-note").textContent = "Loading models…";
  $("generate").disabled = true;
  checkReady();
  try {
    const list = await api.getJSON("/v1/models");
    hideBanner("network");
    models = list.models.filter((m) => m.input === "prompt" || m.input === "class");
    if (!models.length) {
      formError("composer-error", { title: "No models.", detail: list.models.length ? "The installed models only score images; none generates." : "This studio has no models installed yet." });
    } else {
      formError("composer-error", null);
    }
    await Promise.all([composer.setModels(models), morph.setModels(models), datasets.setModels(models)]);
    $("generate").disabled = !models.length || studio.coolingDown();
  } catch (e) {
    $("model-note").textContent = e.status === 401 ? "Enter an API key to load the models." : e.status === 0 ? "Waiting for the server…" : `Could not load the models: ${e.message}`;
    if (e.status !== 401 && e.status !== 0) formError("composer-error", e);
  } finally {
    composerEl.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------- history

function containerFor(kind) {
  return { generate: $("runs"), morph: $("morph-runs"), interpolate: $("interp-runs") }[kind];
}

function tabFor(kind) {
  return { generate: "generate", morph: "morph", interpolate: "interpolate" }[kind];
}

function boxFor(kind) {
  return { generate: "composer-error", morph: "morph-error", interpolate: "interp-error" }[kind];
}

async function submitElsewhere(spec) {
  tab(tabFor(spec.kind));
  const full = { ...spec, container: containerFor(spec.kind) };
  try {
    const run = await runs.submit(full);
    run.el.focus();
    return run;
  } catch (e) {
    fail(e, { box: boxFor(spec.kind), retry: () => submitElsewhere(spec) });
    return null;
  }
}

// ---------------------------------------------------------------- settings from a dropped PNG

function initDrop() {
  const zone = $("drop-zone");
  let depth = 0;
  const hasFile = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFile(e)) return;
    depth++;
    zone.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFile(e)) return;
    // The morph form's file field takes its own drops.
    if (e.target instanceof Element && e.target.closest("#morph-file")) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (e) => {
    depth = 0;
    zone.hidden = true;
    if (!hasFile(e) || (e.target instanceof Element && e.target.closest("#morph-file"))) return;
    e.preventDefault();
    const f = [...e.dataTransfer.files].find((x) => x.type === "image/png" || /\.png$/i.test(x.name)) || e.dataTransfer.files[0];
    if (f) composer.loadPNG(f);
  });
}

// ---------------------------------------------------------------- start

async function start() {
  await store.loadSettings();
  await history.migrate();
  initTabs();
  initKeyDialog();
  initDrop();
  $("banner-close").addEventListener("click", () => hideBanner());
  $("zip-all").addEventListener("click", () =>
    runs.zipRuns(
      runs.all().filter((r) => r.container === $("runs")),
      `fgstudio-gallery-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.zip`,
    ),
  );
  $("clear-gallery").addEventListener("click", () => {
    runs.clearContainer($("runs"));
    composer.setLastRun(null);
  });
  $("clear-morphs").addEventListener("click", () => runs.clearContainer($("morph-runs")));
  $("clear-interps").addEventListener("click", () => runs.clearContainer($("interp-runs")));
  $("history-clear").addEventListener("click", () => {
    for (const c of ["runs", "morph-runs", "interp-runs"]) runs.clearContainer($(c));
    composer.setLastRun(null);
  });
  runs.init(studio);
  composer.init(studio);
  morph.init(studio);
  datasets.init(studio);
  queue.init(studio);
  await Promise.all([runs.restore(), datasets.restore()]);
  studio.historyChanged();
  studio.runsChanged();
  boot();
}

start();
