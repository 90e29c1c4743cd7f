// The composer: model picker; for text models the prompt with live
// tokenization (unknown words underlined and ignored), autocompletion from
// the model's vocabulary and attribute chips; for class models a
// searchable class picker with an example (or a sketch) and the class's
// attributes; seed lock, vary and change-one-word.

import * as api from "./api.js";
import { $, clear, debounce, h } from "./dom.js";
import * as runs from "./runs.js";
import { sketch } from "./sketch.js";

let studio = null;
const state = {
  model: null, // api.Model of the selected model
  classIndex: -1, // selected class in state.model.classes (class models)
  filtered: [], // classes shown in the list
  lastRun: null, // the newest generation (for vary / change one word)
  changeFrom: null, // the run "change one word" compares with
  tokens: null, // the latest tokenization of the prompt
  tokenSeq: 0,
};

export function init(s) {
  studio = s;
  $("model").addEventListener("change", () => selectModel($("model").value));
  const prompt = $("prompt");
  prompt.addEventListener("input", () => {
    tokenizeSoon();
    suggestSoon();
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
  $("class-search").addEventListener("input", filterClasses);
  $("class-search").addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      $("class-list").focus();
      moveClass(0);
    }
  });
  $("class-list").addEventListener("keydown", classKeys);
  $("seed-lock").addEventListener("click", () => setLock($("seed-lock").getAttribute("aria-pressed") !== "true"));
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
}

// ---------------------------------------------------------------- models

export function setModels(models) {
  const sel = clear($("model"));
  const groups = [
    ["prompt", "From text (AttnGAN)"],
    ["class", "From a class (CVAE-GAN)"],
  ];
  for (const [input, label] of groups) {
    const list = models.filter((m) => m.input === input);
    if (!list.length) continue;
    sel.append(h("optgroup", { label }, list.map((m) => h("option", { value: m.name }, `${m.name} · ${m.kind} ${m.version}${m.loaded === false ? " · not loaded" : ""}`))));
  }
  const keep = models.find((m) => m.name === state.model?.name) || models.find((m) => m.input === "prompt") || models[0];
  if (keep) {
    sel.value = keep.name;
    return selectModel(keep.name);
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
    note.textContent = `Could not read ${name}: ${e.message}`;
    return;
  }
  state.model = m;
  note.textContent = m.description || "";
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
    $("class-search").value = "";
    state.classIndex = m.classes.findIndex((c) => c.trained);
    filterClasses();
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

// ---------------------------------------------------------------- class picker

function filterClasses() {
  const m = state.model;
  if (!m || m.input !== "class") return;
  const q = $("class-search").value.trim().toLowerCase();
  const words = q.split(/\s+/).filter(Boolean);
  state.filtered = m.classes
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => {
      const hay = `${c.label} ${c.name} ${Object.values(c.attributes || {}).join(" ")}`.toLowerCase();
      return words.every((w) => hay.includes(w));
    });
  paintClasses();
}

function paintClasses() {
  const list = clear($("class-list"));
  if (!state.filtered.length) {
    list.append(h("p", { class: "empty" }, "No class matches."));
    list.removeAttribute("aria-activedescendant");
  }
  for (const { c, i } of state.filtered) {
    const sel = i === state.classIndex;
    list.append(
      h(
        "div",
        {
          id: `class-${i}`,
          role: "option",
          class: `class-option${sel ? " selected" : ""}${c.trained ? "" : " held-out"}`,
          "aria-selected": sel ? "true" : "false",
          "aria-disabled": c.trained ? false : "true",
          onclick: () => pickClass(i),
        },
        h("span", {}, c.label || c.name),
        c.trained ? null : h("span", { class: "tag" }, "held out"),
      ),
    );
  }
  if (state.classIndex >= 0 && document.getElementById(`class-${state.classIndex}`)) {
    list.setAttribute("aria-activedescendant", `class-${state.classIndex}`);
  }
  paintClassCard();
}

function pickClass(i) {
  const c = state.model.classes[i];
  if (!c.trained) {
    studio.announce(`${c.label} is held out: ${state.model.name} was not trained on it.`);
    return;
  }
  state.classIndex = i;
  paintClasses();
  document.getElementById(`class-${i}`)?.scrollIntoView({ block: "nearest" });
  $("class-error").hidden = true;
}

function moveClass(d) {
  const items = state.filtered.filter(({ c }) => c.trained).map(({ i }) => i);
  if (!items.length) return;
  let at = items.indexOf(state.classIndex);
  at = at < 0 ? 0 : Math.min(items.length - 1, Math.max(0, at + d));
  pickClass(items[at]);
}

function classKeys(e) {
  const map = { ArrowDown: 1, ArrowUp: -1, PageDown: 5, PageUp: -5 };
  if (e.key in map) {
    e.preventDefault();
    moveClass(map[e.key]);
  } else if (e.key === "Home") {
    e.preventDefault();
    moveClass(-1e6);
  } else if (e.key === "End") {
    e.preventDefault();
    moveClass(1e6);
  } else if (e.key === "Enter") {
    e.preventDefault();
    generate();
  }
}

function paintClassCard() {
  const card = clear($("class-card"));
  const c = state.model?.classes?.[state.classIndex];
  card.hidden = !c;
  if (!c) return;
  const pic = h("div", { class: "class-pic" });
  const SKETCH = "Sketch drawn from the class's attributes.";
  const hint = h("span", { class: "hint" }, c.example ? "A real image of this class from the data set." : SKETCH);
  if (c.example) {
    // A real example image, when the API lists one for the class.
    const img = h("img", { alt: `An example of ${c.label}` });
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
      h("strong", {}, c.label || c.name),
      hint,
      attrs.length
        ? h("dl", { class: "attrs" }, attrs.map(([k, v]) => [h("dt", {}, k.replace(/^has_/, "").replace(/_/g, " ")), h("dd", {}, v)]))
        : null,
    ),
  );
}

// ---------------------------------------------------------------- options

export function setLock(on) {
  const b = $("seed-lock");
  b.setAttribute("aria-pressed", on ? "true" : "false");
  b.textContent = on ? "Seed locked" : "Lock seed";
  if (on && $("seed").value === "") $("seed").value = String(randomSeed());
}

export function useSeed(seed) {
  $("seed").value = String(seed);
  setLock(true);
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
  const locked = $("seed-lock").getAttribute("aria-pressed") === "true";
  let seed;
  const raw = $("seed").value.trim();
  if (locked || raw !== "") {
    seed = Number(raw);
    if (!Number.isSafeInteger(seed) || seed < 0) {
      fieldError("opts-error", "Seed: a whole number, 0 or more.");
      $("seed").setAttribute("aria-invalid", "true");
      $("seed").focus();
      return null;
    }
  }
  if (!locked) {
    seed = randomSeed();
    $("seed").value = String(seed);
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
  const c = m.classes[state.classIndex];
  if (!c || !c.trained) {
    fieldError("class-error", "Pick a class first.");
    $("class-list").focus();
    return null;
  }
  return { model: m.name, class: c.name };
}

function labelOf(body) {
  return body.prompt ? `“${body.prompt}”` : state.model.classes.find((c) => c.name === body.class)?.label || body.class;
}

async function generate() {
  const base = composerBody();
  if (!base) return;
  const opts = readOptions();
  if (!opts) return;
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
    if (spec.kind === "generate") {
      state.lastRun = run;
      $("vary").disabled = false;
      $("change-one").disabled = false;
    }
    return run;
  } catch (e) {
    studio.fail(e, { box: "composer-error", fields: { prompt: "prompt", class: "class-search", n: "n", seed: "seed", min_fidelity: "min-fidelity", model: "model" }, retry: () => send(spec, button) });
    return null;
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = studio.coolingDown();
  }
}

export function vary(run) {
  const r = run.job.request;
  const body = { ...run.body, seed: r.seed + r.n, n: r.n };
  const a = `seeds ${r.seed}–${r.seed + r.n - 1}`;
  const b = `seeds ${body.seed}–${body.seed + r.n - 1}`;
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
  $("change-input").hidden = !text;
  $("change-class").hidden = text;
  if (text) {
    $("change-label").textContent = `Edit one word of ${run.label} (seed ${run.job.request.seed} stays)`;
    $("change-input").value = run.body.prompt;
    $("change-label").htmlFor = "change-input";
    $("change-input").focus();
    changeReading();
  } else {
    $("change-label").textContent = `Another class for ${run.label} (seed ${run.job.request.seed} stays)`;
    $("change-label").htmlFor = "change-class";
    const sel = clear($("change-class"));
    studio.detail(run.model).then((m) => {
      for (const c of m.classes.filter((x) => x.trained && x.name !== run.body.class)) sel.append(h("option", { value: c.name }, c.label || c.name));
      sel.focus();
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
  const r = run.job.request;
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
    body = { ...run.body, prompt, seed: r.seed, n: r.n };
    compare = { run, labelA: h("span", {}, d.a), labelB: h("span", {}, d.b), note: `Same seeds (${r.seed}–${r.seed + r.n - 1}); only the marked words differ.` };
  } else {
    const cls = $("change-class").value;
    if (!cls) return;
    body = { ...run.body, class: cls, seed: r.seed, n: r.n };
    const m = await studio.detail(run.model);
    const label = m.classes.find((c) => c.name === cls)?.label || cls;
    compare = { run, labelA: run.label, labelB: label, note: `Same seeds (${r.seed}–${r.seed + r.n - 1}); only the class differs.` };
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
