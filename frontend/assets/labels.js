// Words the studio shows for what the API names with ids: class labels
// (never a raw "001.White_crowned_…"), fidelity measures (old and new
// names, and ones this page does not know), attribute groups; and the
// phrase search of the class pickers.

// humanise turns a class name into words when no label is known:
// "001.White_crowned_Spoonbill" → "White crowned Spoonbill".
export function humanise(name) {
  return String(name || "")
    .replace(/^\d+[._ -]+/, "")
    .replace(/_/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

// classLabel is the label of class name in model m (api.Model), or its
// name in words.
export function classLabel(m, name) {
  if (!name) return "";
  const c = m?.classes?.find((x) => x.name === name || String(x.id) === String(name) || x.label === name);
  return c?.label || humanise(name);
}

// attrName: "has_crown_color" → "crown colour".
export function attrName(group) {
  return String(group || "")
    .replace(/^has_/, "")
    .replace(/_color$/, "_colour")
    .replace(/_/g, " ");
}

// MEASURES: what each fidelity measure is, by the names servers use
// (today's and the first scorer's). short goes on badges, long in
// tooltips and the large view. legacy is the name every server accepts in
// a data-set request.
const CLASS = {
  key: "class_probability",
  short: "class probability",
  long: "class probability: the classifier's calibrated probability that the image shows the class asked for",
  legacy: "class_prob",
};
const AGREE = {
  key: "attribute_agreement",
  short: "attribute agreement",
  long: "attribute agreement: how surely the classifier sees the attributes that were asked for (geometric mean over the named parts)",
  legacy: "attribute_match",
};
const MATCH = {
  key: "attribute_match",
  short: "attribute match",
  long: "attribute match: the share of the class's attributes the classifier sees",
  legacy: "attribute_match",
};
const DAMSM = {
  key: "damsm_similarity",
  short: "text similarity",
  long: "text similarity (DAMSM): how well image and prompt match in the text–image embedding, a cosine clamped to 0–100 % (matched pairs typically score 20–60 %)",
  legacy: "text_similarity",
};
export const MEASURES = {
  class_probability: CLASS,
  class_prob: CLASS,
  attribute_agreement: AGREE,
  attribute_match: MATCH,
  damsm_similarity: DAMSM,
  text_similarity: DAMSM,
};

// The measures a data set may ask for, as offered in its form.
export const DATASET_MEASURES = [CLASS, AGREE, DAMSM];

// measure describes a measure name; an unknown one is shown in words.
export function measure(name) {
  if (!name) return null;
  const m = MEASURES[name];
  if (m) return m;
  const words = humanise(name) || "fidelity";
  return { key: name, short: words, long: `${words} (a measure this page does not know yet)`, legacy: name, unknown: true };
}

// pct formats a 0–1 value as "34 %".
export function pct(p) {
  if (typeof p !== "number" || Number.isNaN(p)) return "–";
  return `${Math.round(p * 100)} %`;
}

// ---------------------------------------------------------------- search

function words(s) {
  return String(s || "")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

// matchScore says how well a class matches a query: the whole phrase in
// the label beats its words found apart; words found only among the
// attributes come last; 0 is no match.
export function matchScore(cls, query) {
  const q = words(query);
  if (!q.length) return 1;
  const label = words(cls.label || humanise(cls.name));
  const phrase = q.join(" ");
  const text = label.join(" ");
  if (text === phrase) return 100;
  if (text.startsWith(phrase + " ") || (q.length === 1 && label[0]?.startsWith(phrase))) return 90;
  if ((" " + text + " ").includes(" " + phrase + " ")) return 80;
  // The phrase with its last word still being typed.
  const head = q.slice(0, -1).join(" ");
  const last = q[q.length - 1];
  for (let i = 0; i + q.length <= label.length; i++) {
    if (label.slice(i, i + q.length - 1).join(" ") === head && label[i + q.length - 1].startsWith(last)) return 70;
  }
  const inLabel = (w) => label.some((l) => l.startsWith(w));
  if (q.every(inLabel)) return 50;
  const hay = [...label, ...words(cls.name), ...Object.values(cls.attributes || {}).flatMap(words)];
  if (q.every((w) => hay.some((l) => l.startsWith(w)))) return 20;
  return 0;
}

// search returns the classes that match query, best first (ties keep the
// model's order).
export function search(classes, query) {
  return classes
    .map((c, i) => ({ c, i, s: matchScore(c, query) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s || a.i - b.i);
}

// STOP_WORDS are hidden from the attention view by default: they carry no
// part of the bird.
export const STOP_WORDS = new Set(
  "a an the and or but with without of in on at to for from by as is are was were be been has have had its it this that these those very so its his her their there here into onto over under than then also which while who whose".split(
    " ",
  ),
);
