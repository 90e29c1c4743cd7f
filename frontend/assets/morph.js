// CVAE-GAN morphs (an uploaded or picked image re-drawn as a target class)
// and interpolation strips (between two classes, or two seeds). Classes
// are picked with thumbnails and phrase search, by their labels.

import { $, clear, h } from "./dom.js";
import { classLabel } from "./labels.js";
import { picker } from "./picker.js";
import * as runs from "./runs.js";

let studio = null;
let source = null; // {blob, url, name, label}
const pick = {};

export function init(s) {
  studio = s;
  const trained = { pickable: (c) => c.trained, tag: (c) => (c.trained ? "" : "held out") };
  pick.morph = picker({ input: $("morph-class-search"), list: $("morph-class"), ...trained, onChange: () => ($("morph-class-error").hidden = true) });
  pick.from = picker({ input: $("interp-from-search"), list: $("interp-from-class"), ...trained });
  pick.to = picker({ input: $("interp-to-search"), list: $("interp-to-class"), ...trained });
  $("morph-model").addEventListener("change", () => fillClasses("morph"));
  $("interp-model").addEventListener("change", () => fillClasses("interp"));
  $("morph-file").addEventListener("change", uploaded);
  $("morph-form").addEventListener("submit", (e) => {
    e.preventDefault();
    morph();
  });
  $("interp-form").addEventListener("submit", (e) => {
    e.preventDefault();
    interpolate();
  });
}

export function setModels(models) {
  const classModels = models.filter((m) => m.input === "class");
  for (const [id, list] of [
    ["morph-model", classModels],
    ["interp-model", classModels],
  ]) {
    const sel = clear($(id));
    for (const m of list) sel.append(h("option", { value: m.name }, `${m.name} · ${m.kind} ${m.version}${m.image_size ? ` · ${m.image_size} px` : ""}`));
  }
  $("morph-go").disabled = !classModels.length;
  $("interp-go").disabled = !classModels.length;
  if (!classModels.length) {
    studio.formError("morph-error", { title: "No class model", detail: "Morphs need a class model (CVAE-GAN) with an encoder; none is installed." });
    studio.formError("interp-error", { title: "No class model", detail: "Interpolations need a class model (CVAE-GAN); none is installed." });
    return Promise.resolve();
  }
  return Promise.all([fillClasses("morph"), fillClasses("interp")]);
}

async function fillClasses(which) {
  const name = $(`${which}-model`).value;
  if (!name) return;
  let m;
  try {
    m = await studio.detail(name);
  } catch (e) {
    studio.formError(`${which}-error`, e);
    return;
  }
  const trained = m.classes.filter((c) => c.trained);
  if (which === "morph") {
    pick.morph.setModel(m, pick.morph.value());
    if (!m.morph) studio.formError("morph-error", { title: "Cannot morph", detail: `${m.name} has no encoder graph, so it cannot re-draw an uploaded image.` });
    else studio.formError("morph-error", null);
    $("morph-go").disabled = !m.morph;
  } else {
    pick.from.setModel(m, pick.from.value());
    const to = pick.to.value().length ? pick.to.value() : trained.length > 1 ? [trained[trained.length - 1].name] : [];
    pick.to.setModel(m, to);
  }
}

// ---------------------------------------------------------------- source

async function uploaded() {
  const f = $("morph-file").files[0];
  if (!f) return;
  if (!/^image\/(png|jpeg)$/.test(f.type)) {
    studio.formError("morph-error", { title: "Not a PNG or JPEG", detail: `${f.name} is ${f.type || "of an unknown type"}; upload a PNG or JPEG.` });
    return;
  }
  studio.formError("morph-error", null);
  for (const r of document.querySelectorAll("#morph-pick input")) r.checked = false;
  setSource({ blob: f, url: URL.createObjectURL(f), name: f.name, label: f.name });
}

function setSource(src) {
  source = src;
  const fig = clear($("morph-source"));
  fig.hidden = false;
  fig.append(h("img", { src: src.url, alt: `Source: ${src.label}`, class: "pixelated" }), h("figcaption", {}, src.label));
}

// morphFrom is "Morph this image" from the large view.
export function morphFrom(src) {
  studio.tab("morph");
  $("morph-file").value = "";
  setSource(src);
  paintPick(true);
  $("morph-class-search").focus();
}

// paintPick lists the generated images as choices, newest first. Items
// already shown are left in place (a click on one is never lost to a
// redraw while new images arrive); new ones are inserted, old ones dropped.
export function paintPick(force) {
  if ($("panel-morph").hidden) return;
  const box = $("morph-pick");
  if (force) clear(box);
  const imgs = [];
  for (const run of runs.all().reverse()) {
    if (run.kind !== "generate") continue;
    for (const img of run.images) if (img && img.url && (img.blob || (img.kept?.blob && !img.kept.thumb))) imgs.push({ run, img });
  }
  const want = imgs.slice(0, 24);
  const urls = new Set(want.map(({ img }) => img.url));
  const have = new Map();
  for (const el of [...box.children]) {
    if (urls.has(el.dataset.url)) have.set(el.dataset.url, el);
    else el.remove();
  }
  $("morph-pick-hint").hidden = !imgs.length;
  let next = box.firstElementChild;
  for (const { run, img } of want) {
    const el = have.get(img.url);
    if (el) {
      if (el === next) next = next.nextElementSibling;
      else box.insertBefore(el, next);
      continue;
    }
    box.insertBefore(pickItem(run, img), next);
  }
}

function pickItem(run, img) {
  const label = `${run.label}, seed ${img.seed}`;
  return h(
    "label",
    { class: "pick-item", title: label, dataset: { url: img.url } },
    h("input", {
      type: "radio",
      name: "morph-pick",
      class: "visually-hidden",
      checked: source && source.url === img.url,
      onchange: () => {
        $("morph-file").value = "";
        setSource({ blob: img.blob || img.kept.blob, url: img.url, name: `seed${img.seed}.png`, label });
      },
    }),
    h("img", { src: img.url, alt: label, width: img.size || 64, height: img.size || 64, class: "pixelated" }),
  );
}

async function morph() {
  studio.formError("morph-error", null);
  if (!source) {
    studio.formError("morph-error", { title: "No source image", detail: "Upload an image or pick one of yours first.", field: "image" });
    $("morph-file").focus();
    return;
  }
  const model = $("morph-model").value;
  const cls = pick.morph.value()[0];
  if (!cls) {
    studio.formError("morph-error", { title: "No target class", detail: "Pick the class to re-draw the image as." });
    pick.morph.focus();
    return;
  }
  const m = await studio.detail(model);
  const label = classLabel(m, cls);
  const button = $("morph-go");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const spec = { kind: "morph", model, body: { model, class: cls }, label: `${source.label} → ${label}`, targetLabel: label, container: $("morph-runs"), source };
  try {
    await runs.submit(spec);
  } catch (e) {
    studio.fail(e, { box: "morph-error", fields: { class: "morph-class-search", image: "morph-file", model: "morph-model" }, retry: () => runs.submit(spec) });
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = studio.coolingDown();
  }
}

async function interpolate() {
  studio.formError("interp-error", null);
  const model = $("interp-model").value;
  const n = Number($("interp-n").value || 8);
  const seeds = [Number($("interp-from-seed").value), Number($("interp-to-seed").value)];
  if (!Number.isInteger(n) || n < 2 || n > 16) {
    studio.formError("interp-error", { title: "Steps", detail: "Steps: a whole number from 2 to 16.", field: "n" });
    $("interp-n").focus();
    return;
  }
  if (seeds.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    studio.formError("interp-error", { title: "Seeds", detail: "Seeds: whole numbers, 0 or more." });
    return;
  }
  const from = { class: pick.from.value()[0], seed: seeds[0] };
  const to = { class: pick.to.value()[0], seed: seeds[1] };
  if (!from.class || !to.class) {
    studio.formError("interp-error", { title: "Classes", detail: "Pick a class for both ends." });
    return;
  }
  if (from.class === to.class && from.seed === to.seed) {
    studio.formError("interp-error", { title: "Same ends", detail: "Pick two classes, or two seeds of one class." });
    return;
  }
  const m = await studio.detail(model);
  const name = (c) => classLabel(m, c);
  const label = from.class === to.class ? `${name(from.class)}: seed ${from.seed} → ${to.seed}` : `${name(from.class)} → ${name(to.class)}`;
  const button = $("interp-go");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const spec = { kind: "interpolate", model, body: { model, from, to, n }, label, container: $("interp-runs") };
  try {
    await runs.submit(spec);
  } catch (e) {
    studio.fail(e, { box: "interp-error", fields: { n: "interp-n", "from.class": "interp-from-search", "to.class": "interp-to-search", model: "interp-model" }, retry: () => runs.submit(spec) });
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = studio.coolingDown();
  }
}
