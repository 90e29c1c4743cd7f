// The composer: model picker; for text models the prompt with live
// tokenization (unknown words underlined and ignored), autocompletion from
// the model's vocabulary and attribute chips; for class models a class
// picker with thumbnails and phrase search, and the picked class's
// example (or a sketch) and attributes; seeds as other studios have them
// (a typed seed is used; "Random" picks a new one each time, explicitly);
// vary and change-one-word; settings loaded from a studio PNG. What the
// form holds is remembered in this browser.

import * as api from "./api.js";
import { $, clear, debounce, h } from "./dom.js";
import { attrName, classLabel } from "./labels.js";
import * as png from "./png.js";
import { picker } from "./picker.js";
import * as runs from "./runs.js";
import { sketch } from "./sketch.js";
import * as store from "./store.js";

let studio = null;
let models = [];
let classPicker = null;
let changePicker = null;
const state = {
  model: null, // api.Model of the selected model
  lastRun: null, // the newest generation (for vary / change one word)
  changeFrom: null, // the run "change one word" compares with
  tokens: null, // the latest tokenization of the prompt
  tokenSeq: 0,
  pending: null, // settings to apply once the models are known (a dropped PNG)
};

const remember = debounce(saveForm, 300);

export function init(s) {
  studio = s;
  $("model").addEventListener("change", () => selectModel($("model").value).then(remember));
  const prompt = $("prompt");
  prompt.addEventListener("input", () => {
    tokenizeSoon();
    suggestSoon();
    remember();
  });
  prompt.addEventListener("keydown", comboKeys);
  // An Enter that accepted a suggestion must not also submit the form
  // (some input paths deliver its keypress even after keydown said no).
  prompt.addEventListener("keypress", (e) => {
    if (e.key === "Enter" && state.swallowEnter) e.preventDefault();
  });
  prompt.addEventListener("keyup", () => (state.swallowEnter = false));
  prompt.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  prompt.addEventListener("click", suggestSoon);
  classPicker = picker({
    input: $("class-search"),
    list: $("class-list"),
    pickable: (c) => c.trained,
    tag: (c) => (c.trained ? "" : "held out"),
    onChange: () => {
      $("class-error").hidden = true;
      paintClassCard();
      remember();
    },
    onEnter: () => generate(),
  });
  changePicker = picker({ input: $("change-class-search"), list: $("change-class"), pickable: (c) => c.trained, tag: (c) => (c.trained ? "" : "held out"), onEnter: () => changeGo() });
  $("seed").addEventListener("input", () => {
    // A seed typed in is the seed used.
    if ($("seed").value.trim() !== "") setRandom(false);
    remember();
  });
  $("seed-random").addEventListener("change", () => {
    setRandom($("seed-random").checked);
    remember();
  });
  for (const id of ["n", "min-fidelity"]) $(id).addEventListener("input", remember);
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    generate();
  });
  $("composer").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if ($("change-box").contains(e.target)) changeGo();
      else generate();
    }
  });
  $("vary").addEventListener("click", () => state.lastRun && vary(state.lastRun));
  $("change-one").addEventListener("click", () => state.lastRun && changeOne(state.lastRun));
  $("change-go").addEventListener("click", changeGo);
  $("change-cancel").addEventListener("click", closeChange);
  $("change-input").addEventListener("input", changeReadingSoon);
  $("change-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      changeGo();
    }
  });
  // Enter here means "generate side by side", never the form's Generate.
  $("change-input").addEventListener("keypress", (e) => {
    if (e.key === "Enter") e.preventDefault();
  });
  $("load-png").addEventListener("click", () => $("load-png-file").click());
  $("load-png-file").addEventListener("change", () => {
    const f = $("load-png-file").files[0];
    $("load-png-file").value = "";
    if (f) loadPNG(f);
  });
  restoreForm();
}

// ---------------------------------------------------------------- remembered form

function saveForm() {
  const form = store.setting("composer", {});
  const classes = { ...(form.classes || {}) };
  if (state.model?.input === "class") classes[state.model.name] = classPicker.value()[0] || "";
  store.setSetting("composer", {
    model: state.model?.name || form.model || "",
    prompt: $("prompt").value,
    classes,
    n: $("n").value,
    seed: $("seed").value,
    random: $("seed-random").checked,
    minFidelity: $("min-fidelity").value,
  });
}

function restoreForm() {
  const f = store.setting("composer", null);
  if (!f) {
    setRandom(true);
    return;
  }
  if (typeof f.prompt === "string") $("prompt").value = f.prompt;
  if (f.n) $("n").value = f.n;
  $("min-fidelity").value = f.minFidelity || "";
  $("seed").value = f.seed || "";
  setRandom(f.random !== false && !f.seed ? true : !!f.random);
}

// ---------------------------------------------------------------- models

export function setModels(list) {
  models = list;
  const sel = clear($("model"));
  const groups = [
    ["prompt", "From text (AttnGAN)"],
    ["class", "From a class (CVAE-GAN)"],
  ];
  for (const [input, label] of groups) {
    const ms = list.filter((m) => m.input === input);
    if (!ms.length) continue;
    sel.append(h("optgroup", { label }, ms.map((m) => h("option", { value: m.name }, `${m.name} · ${m.kind} ${m.version}${m.image_size ? ` · ${m.image_size} px` : ""}${m.loaded === false ? " · not loaded" : ""}`))));
  }
  const want = state.pending?.model || state.model?.name || store.setting("composer", {}).model;
  const keep = list.find((m) => m.name === want) || list.find((m) => m.input === "prompt") || list[0];
  if (keep) {
    sel.value = keep.name;
    return selectModel(keep.name).then(() => {
      if (state.pending) applySettings(state.pending);
    });
  }
  $("prompt-box").hidden = true;
  $("class-box").hidden = true;
  $("model-note").textContent = "No model that generates images is installed.";
  return Promise.resolve();
}

async function selectModel(name) {
  const note = $("model-note");
  note.textContent = "Loading the model's details…";
  let m;
  try {
    m = await studio.detail(name);
  } catch (e) {
    note.textContent = e.status === 0 ? "Waiting for the server…" : `Could not read ${name}: ${e.message}`;
    return;
  }
  state.model = m;
  const size = m.image_size ? ` It makes ${m.image_size} × ${m.image_size} px images.` : "";
  note.textContent = (m.description || "") + size;
  note.classList.toggle("warn", m.loaded === false);
  if (m.loaded === false) {
    // The server lists the model but cannot run it: its jobs would fail.
    const why = m.load_error ? `: ${m.load_error}` : "";
    note.textContent = `${m.name} is not loaded on the server${why}. Its jobs fail until it is.`;
    studio.modelNotLoaded(`${m.name} is listed, but the server could not load it${why}.`, [m.name]);
  }
  const text = m.input === "prompt";
  $("prompt-box").hidden = !text;
  $("class-box").hidden = text;
  $("change-one").textContent = text ? "Change one word…" : "Change the class…";
  closeChange();
  if (text) {
    loadChips(m);
    tokenize();
  } else {
    const kept = store.setting("composer", {}).classes?.[m.name];
    classPicker.setModel(m, kept ? [kept] : []);
    paintClassCard();
  }
}

// ---------------------------------------------------------------- tokenization

const WORD = /[A-Za-z0-9_\u0080-\uffff]+/g;

// norm applies the tokenizer's rules: drop non-ASCII, lower-case.
function norm(w) {
  return w.replace(/[^\x00-\x7f]/g, "").toLowerCase();
}

const tokenizeSoon = debounce(tokenize, 180);

async function tokenize() {
  const prompt = $("prompt").value;
  const my = ++state.tokenSeq;
  if (!state.model || state.model.input !== "prompt") return;
  if (!prompt.trim()) {
    state.tokens = null;
    paintReading($("reading"), "", null);
    return;
  }
  try {
    const t = await api.postJSON("/v1/tokenize", { model: state.model.name, prompt });
    if (my !== state.tokenSeq) return;
    state.tokens = t;
    state.tokensFor = prompt;
    paintReading($("reading"), prompt, t);
  } catch (e) {
    if (my === state.tokenSeq) $("reading").textContent = `Could not check the words: ${e.message}`;
  }
}

// classify walks the prompt's words in order against the server's answer
// (kept words, unknown words, words dropped past the limit).
function classify(prompt, t) {
  const out = [];
  let ki = 0;
  let ui = 0;
  let di = 0;
  let last = 0;
  for (const m of prompt.matchAll(WORD)) {
    if (m.index > last) out.push({ text: prompt.slice(last, m.index) });
    last = m.index + m[0].length;
    const w = norm(m[0]);
    if (!w) {
      out.push({ text: m[0], kind: "unknown" });
      continue;
    }
    let kind = "known";
    if (t.unknown[ui] === w) {
      kind = "unknown";
      ui++;
    } else if (t.words[ki] === w) {
      ki++;
    } else if (t.dropped[di] === w) {
      kind = "dropped";
      di++;
    }
    out.push({ text: m[0], kind });
  }
  if (last < prompt.length) out.push({ text: prompt.slice(last) });
  return out;
}

function paintReading(el, prompt, t) {
  clear(el);
  if (!t) return;
  for (const part of classify(prompt, t)) {
    if (!part.kind) el.append(part.text);
    else if (part.kind === "known") el.append(h("span", { class: "tok known" }, part.text));
    else if (part.kind === "unknown")
      el.append(h("span", { class: "tok unknown", title: "Not in the model's vocabulary: ignored" }, part.text, h("span", { class: "visually-hidden" }, " (unknown, ignored)")));
    else el.append(h("span", { class: "tok dropped", title: `Past the first ${t.max_words} known words: ignored` }, part.text, h("span", { class: "visually-hidden" }, " (dropped)")));
  }
  const notes = [];
  if (t.unknown.length) notes.push(`${t.unknown.length} unknown word${t.unknown.length > 1 ? "s" : ""} ignored: ${[...new Set(t.unknown)].join(", ")}`);
  if (t.dropped.length) notes.push(`${t.dropped.length} word${t.dropped.length > 1 ? "s" : ""} past the limit of ${t.max_words} ignored`);
  if (!t.usable) notes.push(t.reason ? `Cannot generate: ${t.reason}` : "Cannot generate from this prompt");
  if (notes.length) el.append(h("span", { class: `reading-note${t.usable ? "" : " bad"}` }, notes.join(" · ")));
  else el.append(h("span", { class: "reading-note ok" }, `all ${t.words.length} words known`));
}

// ---------------------------------------------------------------- autocompletion

const suggestSoon = debounce(suggest, 120);
let suggestSeq = 0;

// currentWord is the word the caret is in: {start, end, text}.
function currentWord(input) {
  const v = input.value;
  const at = input.selectionStart ?? v.length;
  let start = at;
  while (start > 0 && /[A-Za-z0-9_]/.test(v[start - 1])) start--;
  let end = at;
  while (end < v.length && /[A-Za-z0-9_]/.test(v[end])) end++;
  return { start, end, text: v.slice(start, at) };
}

async function suggest() {
  const input = $("prompt");
  if (document.activeElement !== input || !state.model || state.model.input !== "prompt") return;
  const w = currentWord(input);
  const my = ++suggestSeq;
  if (w.text.length < 1) {
    closeSuggestions();
    return;
  }
  try {
    const res = await api.getJSON(`/v1/models/${encodeURIComponent(state.model.name)}/vocabulary?prefix=${encodeURIComponent(w.text.toLowerCase())}&limit=8`);
    if (my !== suggestSeq) return;
    const words = res.words.filter((x) => x !== w.text.toLowerCase() || res.words.length > 1);
    if (!words.length || (words.length === 1 && words[0] === w.text.toLowerCase())) {
      closeSuggestions();
      return;
    }
    openSuggestions(words);
  } catch {
    closeSuggestions();
  }
}

function openSuggestions(words) {
  const list = clear($("suggestions"));
  words.forEach((w, i) =>
    list.append(
      h(
        "li",
        {
          id: `sugg-${i}`,
          role: "option",
          "aria-selected": "false",
          onmousedown: (e) => {
            e.preventDefault();
            accept(w);
          },
        },
        w,
      ),
    ),
  );
  list.hidden = false;
  $("prompt").setAttribute("aria-expanded", "true");
  $("prompt").removeAttribute("aria-activedescendant");
}

function closeSuggestions() {
  const list = $("suggestions");
  list.hidden = true;
  clear(list);
  $("prompt").setAttribute("aria-expanded", "false");
  $("prompt").removeAttribute("aria-activedescendant");
}

function activeOption() {
  const id = $("prompt").getAttribute("aria-activedescendant");
  return id ? document.getElementById(id) : null;
}

function moveOption(d) {
  const opts = [...$("suggestions").children];
  if (!opts.length) return;
  const cur = activeOption();
  let i = cur ? opts.indexOf(cur) + d : d > 0 ? 0 : opts.length - 1;
  i = (i + opts.length) % opts.length;
  opts.forEach((o, j) => o.setAttribute("aria-selected", j === i ? "true" : "false"));
  $("prompt").setAttribute("aria-activedescendant", opts[i].id);
  opts[i].scrollIntoView({ block: "nearest" });
}

function comboKeys(e) {
  const open = !$("suggestions").hidden;
  if (e.key === "ArrowDown") {
    e.preventDefault();
    if (open) moveOption(1);
    else suggest();
  } else if (e.key === "ArrowUp" && open) {
    e.preventDefault();
    moveOption(-1);
  } else if ((e.key === "Enter" || e.key === "Tab") && open && activeOption()) {
    if (e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    e.stopPropagation();
    state.swallowEnter = e.key === "Enter";
    accept(activeOption().textContent);
  } else if (e.key === "Escape" && open) {
    e.preventDefault();
    closeSuggestions();
  }
}

function accept(word) {
  const input = $("prompt");
  const w = currentWord(input);
  const v = input.value;
  const after = v.slice(w.end);
  const space = after.startsWith(" ") ? "" : " ";
  input.value = v.slice(0, w.start) + word + space + after;
  const caret = w.start + word.length + space.length;
  input.setSelectionRange(caret, caret);
  closeSuggestions();
  input.focus();
  tokenize();
}

// ---------------------------------------------------------------- chips

const PARTS = {
  has_crown_color: ["crown", (v) => `${v} crown`],
  has_breast_color: ["breast", (v) => `${v} breast`],
  has_breast_pattern: ["breast", (v) => `${v} breast`],
  has_wing_color: ["wings", (v) => `${v} wings`],
  has_wing_pattern: ["wings", (v) => `${v} wings`],
  has_upperparts_color: ["upperparts", (v) => `${v} upperparts`],
  has_bill_color: ["bill", (v) => `${v} bill`],
  has_bill_shape: ["bill", (v) => `${v.replace(/-/g, " ")} bill`],
  has_tail_shape: ["tail", (v) => `${v.replace(/-/g, " ")} tail`],
  has_eye_ring: ["eye", (v) => (v === "yes" ? "eye ring" : v === "no" ? "no eye ring" : `${v} eye ring`)],
  has_size: ["size", (v) => `${v} bird`],
};

function phrase(attr) {
  const [group, value] = attr.split("::");
  const p = PARTS[group];
  if (p) return { group: p[0], text: p[1](value) };
  const part = group.replace(/^has_/, "").replace(/_(color|colour|shape|pattern)$/, "").replace(/_/g, " ");
  return { group: part, text: `${value.replace(/-/g, " ")} ${part}` };
}

async function loadChips(m) {
  const box = clear($("chips"));
  const all = [];
  const seen = new Set();
  for (const a of m.attributes || []) {
    if (!a.includes("::")) continue;
    const p = phrase(a);
    if (seen.has(p.text)) continue;
    seen.add(p.text);
    all.push(p);
  }
  if (!all.length) {
    box.append(h("p", { class: "hint" }, "This model lists no attributes."));
    return;
  }
  // One tokenization tells which chip words the model knows.
  let unknown = new Set();
  try {
    const t = await api.postJSON("/v1/tokenize", { model: m.name, prompt: all.map((p) => p.text).join(" , ").slice(0, 1900) });
    unknown = new Set(t.unknown);
  } catch {
    /* show every chip */
  }
  if (state.model !== m) return;
  const groups = new Map();
  for (const p of all) {
    const words = p.text.toLowerCase().split(/[^a-z0-9_]+/).filter(Boolean);
    if (words.some((w) => unknown.has(w))) continue;
    if (!groups.has(p.group)) groups.set(p.group, []);
    groups.get(p.group).push(p.text);
  }
  for (const [group, texts] of groups) {
    box.append(
      h(
        "div",
        { class: "chip-group", role: "group", "aria-label": group },
        h("span", { class: "chip-group-name" }, group),
        texts.map((t) => h("button", { type: "button", class: "chip", onclick: () => insertChip(t) }, t)),
      ),
    );
  }
}

function insertChip(text) {
  const input = $("prompt");
  const v = input.value;
  const at = document.activeElement === input ? input.selectionStart ?? v.length : v.length;
  const before = v.slice(0, at);
  const after = v.slice(at);
  let ins;
  if (!v.trim()) ins = `a bird with a ${text}`;
  else if (/\s$/.test(before)) ins = text;
  else if (/[,;]$/.test(before)) ins = ` ${text}`;
  else ins = ` and a ${text}`;
  input.value = before + ins + (after && !/^\s/.test(after) ? " " : "") + after;
  const caret = before.length + ins.length;
  input.focus();
  input.setSelectionRange(caret, caret);
  tokenize();
}

// ---------------------------------------------------------------- class card

function paintClassCard() {
  const card = clear($("class-card"));
  const c = classPicker.selected()[0];
  card.hidden = !c;
  if (!c) return;
  const size = state.model?.image_size || 64;
  const pic = h("div", { class: "class-pic" });
  const SKETCH = "Sketch drawn from the class's attributes.";
  const hint = h("span", { class: "hint" }, c.example ? `A real image of this class from the data set (${size} px, shown at 2×).` : SKETCH);
  if (c.example) {
    const img = h("img", { alt: `An example of ${c.label}`, class: "pixelated", width: 2 * size, height: 2 * size });
    pic.append(img);
    api.image(c.example).then(
      ({ url }) => (img.src = url),
      () => {
        pic.replaceChildren(sketch(c));
        hint.textContent = SKETCH;
      },
    );
  } else {
    pic.append(sketch(c));
  }
  const attrs = Object.entries(c.attributes || {});
  card.append(
    pic,
    h(
      "figcaption",
      {},
      h("strong", {}, c.label || classLabel(state.model, c.name)),
      hint,
      attrs.length ? h("dl", { class: "attrs" }, attrs.map(([k, v]) => [h("dt", {}, attrName(k)), h("dd", {}, String(v).replace(/-/g, " "))])) : null,
    ),
  );
}

// ---------------------------------------------------------------- seeds and options

// setRandom switches between a new random seed each time (the field
// shows "random") and the typed seed.
function setRandom(on) {
  $("seed-random").checked = on;
  const seed = $("seed");
  if (on) seed.value = "";
  seed.placeholder = on ? "random" : "seed";
  $("seed-note").textContent = on ? "A new random seed each time; each image shows its own." : "This seed is used: image k gets seed + k.";
}

export function useSeed(seed) {
  $("seed").value = String(seed);
  setRandom(false);
  remember();
  studio.tab("generate");
  $("seed").focus();
}

function randomSeed() {
  const b = new Uint32Array(1);
  crypto.getRandomValues(b);
  return b[0] % 1_000_000;
}

function fieldError(id, msg) {
  const el = $(id);
  el.textContent = msg || "";
  el.hidden = !msg;
}

function readOptions() {
  fieldError("opts-error", "");
  const n = Number($("n").value || 4);
  if (!Number.isInteger(n) || n < 1 || n > 16) {
    fieldError("opts-error", "How many: a whole number from 1 to 16.");
    $("n").setAttribute("aria-invalid", "true");
    $("n").focus();
    return null;
  }
  $("n").removeAttribute("aria-invalid");
  let seed;
  const raw = $("seed").value.trim();
  if ($("seed-random").checked || raw === "") {
    // Random, said so: the seed is chosen here and shown on each image.
    seed = randomSeed();
  } else {
    seed = Number(raw);
    if (!Number.isSafeInteger(seed) || seed < 0) {
      fieldError("opts-error", "Seed: a whole number, 0 or more (or switch on Random).");
      $("seed").setAttribute("aria-invalid", "true");
      $("seed").focus();
      return null;
    }
  }
  $("seed").removeAttribute("aria-invalid");
  const out = { n, seed };
  const mf = $("min-fidelity").value.trim();
  if (mf !== "") {
    const v = Number(mf);
    if (!(v >= 0 && v <= 1)) {
      fieldError("opts-error", "Min fidelity: a number from 0 to 1, or empty.");
      $("min-fidelity").focus();
      return null;
    }
    if (v > 0) out.min_fidelity = v;
  }
  return out;
}

// ---------------------------------------------------------------- generate

function composerBody() {
  const m = state.model;
  if (!m) return null;
  fieldError("prompt-error", "");
  fieldError("class-error", "");
  if (m.input === "prompt") {
    const prompt = $("prompt").value.trim();
    if (!prompt) {
      fieldError("prompt-error", "Describe the bird first, e.g. “a small bird with a red crown”.");
      $("prompt").focus();
      return null;
    }
    if (state.tokens && state.tokensFor === $("prompt").value && !state.tokens.usable) {
      fieldError("prompt-error", `${m.name} cannot read this prompt: ${state.tokens.reason || "no known words"}. Use the suggestions or the attribute chips.`);
      $("prompt").focus();
      return null;
    }
    return { model: m.name, prompt };
  }
  const c = classPicker.selected()[0];
  if (!c || !c.trained) {
    fieldError("class-error", "Pick a class first.");
    $("class-list").focus();
    return null;
  }
  return { model: m.name, class: c.name };
}

function labelOf(body) {
  return body.prompt ? `“${body.prompt}”` : classLabel(state.model, body.class);
}

async function generate() {
  const base = composerBody();
  if (!base) return;
  const opts = readOptions();
  if (!opts) return;
  saveForm();
  const body = { ...base, ...opts };
  await send({ kind: "generate", model: base.model, body, label: labelOf(body), container: $("runs") }, $("generate"));
}

// send submits a spec with the form's error box and busy button.
export async function send(spec, button) {
  studio.formError("composer-error", null);
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    const run = await runs.submit(spec);
    if (spec.kind === "generate") setLastRun(run);
    return run;
  } catch (e) {
    studio.fail(e, { box: "composer-error", fields: { prompt: "prompt", class: "class-search", n: "n", seed: "seed", min_fidelity: "min-fidelity", model: "model" }, retry: () => send(spec, button) });
    return null;
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = studio.coolingDown();
  }
}

// setLastRun makes run the one Vary and Change-one-word start from.
export function setLastRun(run) {
  state.lastRun = run;
  $("vary").disabled = !run;
  $("change-one").disabled = !run;
}

export function vary(run) {
  const r = run.job?.request || run.body;
  const n = r.n || run.body.n || 1;
  const seed = r.seed ?? run.body.seed;
  const body = { ...run.body, seed: seed + n, n };
  const a = `seeds ${seed}–${seed + n - 1}`;
  const b = `seeds ${body.seed}–${body.seed + n - 1}`;
  studio.tab("generate");
  return send(
    {
      kind: "generate",
      model: run.model,
      body,
      label: `${run.label} · vary`,
      container: $("runs"),
      compare: { run, labelA: a, labelB: b, note: "Same prompt, neighbouring seeds: what changes is the noise, not the description." },
    },
    $("vary"),
  );
}

export function changeOne(run) {
  studio.tab("generate");
  state.changeFrom = run;
  const box = $("change-box");
  box.hidden = false;
  const text = !!run.body.prompt;
  const seed = run.job?.request?.seed ?? run.body.seed;
  $("change-input").hidden = !text;
  $("change-class-box").hidden = text;
  if (text) {
    $("change-label").textContent = `Edit one word of ${run.label} (seed ${seed} stays)`;
    $("change-input").value = run.body.prompt;
    $("change-label").htmlFor = "change-input";
    $("change-input").focus();
    changeReading();
  } else {
    $("change-label").textContent = `Another class for ${run.label} (seed ${seed} stays)`;
    $("change-label").htmlFor = "change-class-search";
    studio.detail(run.model).then((m) => {
      const other = m.classes.find((c) => c.trained && c.name !== run.body.class);
      changePicker.setModel(m, other ? [other.name] : []);
      $("change-class-search").focus();
    });
  }
}

const changeReadingSoon = debounce(changeReading, 180);

async function changeReading() {
  const run = state.changeFrom;
  if (!run || !run.body.prompt) return;
  const prompt = $("change-input").value;
  const el = $("change-reading");
  if (!prompt.trim()) {
    clear(el);
    return;
  }
  try {
    const t = await api.postJSON("/v1/tokenize", { model: run.model, prompt });
    if ($("change-input").value === prompt) paintReading(el, prompt, t);
  } catch {
    /* the generation itself will say what is wrong */
  }
}

function closeChange() {
  $("change-box").hidden = true;
  state.changeFrom = null;
}

// diffWords marks the words of a that b does not have in the same place
// (longest common subsequence).
function diffWords(a, b) {
  const A = a.split(/\s+/).filter(Boolean);
  const B = b.split(/\s+/).filter(Boolean);
  const L = Array.from({ length: A.length + 1 }, () => new Array(B.length + 1).fill(0));
  for (let i = A.length - 1; i >= 0; i--)
    for (let j = B.length - 1; j >= 0; j--) L[i][j] = A[i].toLowerCase() === B[j].toLowerCase() ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const keepA = new Set();
  const keepB = new Set();
  for (let i = 0, j = 0; i < A.length && j < B.length; ) {
    if (A[i].toLowerCase() === B[j].toLowerCase()) {
      keepA.add(i++);
      keepB.add(j++);
    } else if (L[i + 1][j] >= L[i][j + 1]) i++;
    else j++;
  }
  const mark = (words, keep) => words.map((w, i) => [i ? " " : "", keep.has(i) ? w : h("mark", {}, w)]);
  return { a: mark(A, keepA), b: mark(B, keepB), changed: A.length - keepA.size + B.length - keepB.size };
}

async function changeGo() {
  const run = state.changeFrom;
  if (!run) return;
  const r = run.job?.request || run.body;
  const seed = r.seed ?? run.body.seed;
  const n = r.n || run.body.n || 1;
  let body;
  let compare;
  if (run.body.prompt) {
    const prompt = $("change-input").value.trim();
    const d = diffWords(run.body.prompt, prompt);
    if (!prompt || d.changed === 0) {
      studio.formError("composer-error", { title: "Nothing changed", detail: "Edit a word of the prompt first." });
      $("change-input").focus();
      return;
    }
    body = { ...run.body, prompt, seed, n };
    compare = { run, labelA: h("span", {}, d.a), labelB: h("span", {}, d.b), note: `Same seeds (${seed}–${seed + n - 1}); only the marked words differ.` };
  } else {
    const cls = changePicker.value()[0];
    if (!cls) return;
    body = { ...run.body, class: cls, seed, n };
    const m = await studio.detail(run.model);
    compare = { run, labelA: run.label, labelB: classLabel(m, cls), note: `Same seeds (${seed}–${seed + n - 1}); only the class differs.` };
  }
  const label = body.prompt ? `“${body.prompt}”` : compare.labelB;
  const made = await send({ kind: "generate", model: run.model, body, label: `${label} · changed`, container: $("runs"), compare }, $("change-go"));
  if (made) closeChange();
}

// rerun repeats a run's request (same parameters, same seed).
export function rerun(run) {
  const spec = { kind: run.kind, model: run.model, body: { ...run.body }, label: run.label, source: run.source, targetLabel: run.targetLabel };
  return studio.submitElsewhere(spec);
}

// ---------------------------------------------------------------- settings from a PNG or an image

// applySettings puts settings ({model, prompt, class, seed, n}) into the
// form; it says what it did, or why it could not.
export async function applySettings(p, from) {
  state.pending = null;
  studio.tab("generate");
  if (!models.length) {
    state.pending = p;
    return;
  }
  let m = models.find((x) => x.name === p.model);
  const note = [];
  if (!m) {
    const input = p.prompt ? "prompt" : "class";
    m = models.find((x) => x.input === input);
    if (!m) {
      studio.formError("composer-error", { title: "Settings not loaded.", detail: `${from || "The image"} was made by ${p.model || "an unknown model"}, which this studio does not have, and no model here takes a ${input}.` });
      return;
    }
    note.push(`${p.model || "its model"} is not installed here, so ${m.name} is used`);
  }
  $("model").value = m.name;
  await selectModel(m.name);
  if (p.prompt && m.input === "prompt") {
    $("prompt").value = p.prompt;
    tokenize();
  } else if (p.class && m.input === "class") {
    const c = state.model.classes.find((x) => x.name === p.class || x.label === p.class);
    if (c && c.trained) {
      classPicker.select([c.name]);
      paintClassCard();
    } else note.push(`the class ${classLabel(state.model, p.class)} is not one ${m.name} can make`);
  } else if (p.prompt || p.class) {
    note.push(`${m.name} takes a ${m.input}, the image was made from a ${p.prompt ? "prompt" : "class"}`);
  }
  if (typeof p.seed === "number" && Number.isSafeInteger(p.seed)) {
    $("seed").value = String(p.seed);
    setRandom(false);
  }
  if (p.n) $("n").value = String(p.n);
  saveForm();
  studio.formError("composer-error", null);
  const what = [m.name, p.prompt ? `“${p.prompt}”` : p.class ? classLabel(state.model, p.class) : "", typeof p.seed === "number" ? `seed ${p.seed}` : ""].filter(Boolean).join(", ");
  const msg = `Loaded the settings${from ? ` of ${from}` : ""}: ${what}.${note.length ? ` Note: ${note.join("; ")}.` : ""}`;
  showLoaded(msg, note.length > 0);
  studio.announce(msg);
  $("generate").focus();
}

function showLoaded(msg, warn) {
  const el = $("seed-note");
  el.textContent = msg;
  el.classList.toggle("warn", !!warn);
  clearTimeout(showLoaded.t);
  showLoaded.t = setTimeout(() => {
    el.classList.remove("warn");
    setRandom($("seed-random").checked);
  }, 12_000);
}

// loadPNG reads the settings of a studio PNG (a dropped or chosen file).
export async function loadPNG(file) {
  let p;
  try {
    p = png.provenance(new Uint8Array(await file.arrayBuffer()));
  } catch (e) {
    studio.tab("generate");
    studio.formError("composer-error", { title: `No settings in ${file.name || "this file"}.`, detail: e.message.replace(/^./, (c) => c.toUpperCase()) + "." });
    return;
  }
  await applySettings({ model: p.model, prompt: p.prompt, class: p.class, seed: p.seed }, file.name || "the PNG");
}
