// The queue view: this key's jobs that wait or run on the server
// (GET /v1/jobs), by lane, with their progress, cancel and a link to their
// card; and this browser's jobs that ended without finishing (failed,
// cancelled, lost by a restarted server), each with Retry. It refreshes
// while it is on screen.

import * as api from "./api.js";
import * as datasets from "./datasets.js";
import { $, clear, h } from "./dom.js";
import { humanise } from "./labels.js";
import * as runs from "./runs.js";
import * as store from "./store.js";

let studio = null;
let timer = 0;
let last = [];
let unsupported = false;

const LANES = [
  ["interactive", "Interactive lane", "generations, morphs and interpolations"],
  ["batch", "Batch lane", "data sets"],
];
const KINDS = { generate: "generation", morph: "morph", interpolate: "interpolation", dataset: "data set" };

export function init(s) {
  studio = s;
  $("queue-refresh").addEventListener("click", refresh);
  document.addEventListener("visibilitychange", schedule);
}

// visible starts or stops the refreshing as the Queue tab shows or hides.
export function visible(on) {
  clearTimeout(timer);
  timer = 0;
  if (on) refresh();
}

function schedule() {
  clearTimeout(timer);
  timer = 0;
  if ($("panel-queue").hidden || document.hidden) return;
  timer = setTimeout(refresh, 2000);
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function localRun(id) {
  return runs.all().find((r) => r.job?.id === id);
}

function what(j) {
  const run = localRun(j.id);
  if (run) return run.label;
  if (j.kind === "dataset") {
    const d = datasets.all().find((x) => x.rec.id === j.id);
    const n = d ? d.rec.classes.length : j.classes?.length;
    return n ? `${n} class${n > 1 ? "es" : ""}` : "every class";
  }
  if (j.prompt) return `“${j.prompt}”`;
  if (j.from && j.to) return `${humanise(j.from.class)} → ${humanise(j.to.class)}`;
  return humanise(j.class);
}

export async function refresh() {
  let list;
  try {
    const res = await api.getJSON("/v1/jobs");
    list = res.jobs || [];
    unsupported = false;
    $("queue-note").hidden = true;
  } catch (e) {
    if (e.status === 404) {
      // A server from before GET /v1/jobs: this browser's own jobs.
      unsupported = true;
      list = runs
        .all()
        .filter((r) => ["queued", "running"].includes(r.state))
        .map((r) => ({ id: r.job.id, kind: r.kind, model: r.model, lane: "interactive", state: r.state, progress: { done: r.done, total: r.total }, created_at: r.at, links: r.job.links }));
      studio.formError("queue-note", { title: "This server does not list jobs.", detail: "It predates GET /v1/jobs; the jobs of this browser are shown." });
    } else {
      if (e.status !== 0) studio.formError("queue-note", e);
      schedule();
      return;
    }
  }
  last = list;
  paint();
  $("queue-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  schedule();
}

function paint() {
  const box = clear($("queue-lanes"));
  $("queue-count").textContent = last.length ? String(last.length) : "";
  for (const [lane, title, holds] of LANES) {
    const jobs = last.filter((j) => (j.lane || "interactive") === lane);
    const running = jobs.filter((j) => j.state === "running").length;
    const ul = h("ul", { class: "queue-list" });
    if (!jobs.length) ul.append(h("li", { class: "empty small" }, "Nothing waiting or running."));
    for (const j of jobs) ul.append(item(j));
    box.append(
      h(
        "section",
        { class: `lane lane-${lane}`, "aria-label": title },
        h("h3", { class: "sub" }, title, " ", h("span", { class: "hint" }, `${holds} · ${running} running, ${jobs.length - running} queued`)),
        ul,
      ),
    );
  }
  paintEnded();
}

function item(j) {
  const done = j.kind === "dataset" ? Math.min(j.progress.done, Math.max(0, j.progress.total - 1)) : j.progress.done;
  const total = j.kind === "dataset" ? Math.max(1, j.progress.total - 1) : j.progress.total;
  const unit = j.kind === "dataset" ? "classes" : j.kind === "interpolate" ? "steps" : "images";
  const cancel = h(
    "button",
    {
      type: "button",
      class: "ghost",
      disabled: !!j.cancel_requested,
      "aria-label": `Cancel the ${KINDS[j.kind] || j.kind} ${what(j)}`,
      onclick: async () => {
        cancel.disabled = true;
        try {
          await api.del(j.links.self);
        } catch (e) {
          if (e.status !== 404) studio.formError("queue-note", e);
        }
        refresh();
      },
    },
    j.cancel_requested ? "Cancelling…" : "Cancel",
  );
  const run = localRun(j.id);
  const showable = run || datasets.all().some((d) => d.rec.id === j.id);
  return h(
    "li",
    { class: `queue-job state-${j.state}`, dataset: { id: j.id, kind: j.kind } },
    h(
      "div",
      { class: "q-main" },
      h("span", { class: "kind" }, KINDS[j.kind] || j.kind),
      h("strong", { class: "q-what" }, what(j)),
      h("span", { class: "history-meta" }, `${j.model} · ${j.state === "running" ? "running" : "queued"} · submitted ${ago(j.created_at)}`),
    ),
    h("div", { class: "q-progress" }, h("progress", { max: total, value: done, "aria-label": "progress" }), h("span", { class: "hint" }, `${done} of ${total} ${unit}`)),
    h(
      "div",
      { class: "history-actions" },
      showable
        ? h(
            "button",
            {
              type: "button",
              onclick: () => {
                if (run) {
                  studio.tab({ generate: "generate", morph: "morph", interpolate: "interpolate" }[run.kind]);
                  runs.show(run);
                } else datasets.show(j.id);
              },
            },
            "Show",
          )
        : null,
      cancel,
    ),
  );
}

function paintEnded() {
  const ul = clear($("queue-ended"));
  const dismissed = new Set(store.setting("queueDismissed", []));
  const ended = [];
  for (const r of runs.all()) if (["failed", "cancelled", "lost"].includes(r.state) && !dismissed.has(r.id)) ended.push({ at: r.at, id: r.id, label: r.label, kind: r.kind, model: r.model, state: r.state, error: r.error, retry: () => studio.rerun(r) });
  for (const d of datasets.all()) if (["failed", "cancelled", "lost"].includes(d.rec.state) && !dismissed.has(d.rec.id)) ended.push({ at: d.rec.at, id: d.rec.id, label: `${d.rec.classes.length} classes × ${d.rec.perClass}`, kind: "dataset", model: d.rec.model, state: d.rec.state, error: d.rec.data?.error, retry: () => datasets.retry(d) });
  ended.sort((a, b) => (a.at < b.at ? 1 : -1));
  $("queue-ended-box").hidden = !ended.length;
  for (const e of ended.slice(0, 30)) {
    ul.append(
      h(
        "li",
        { class: "queue-job ended" },
        h(
          "div",
          { class: "q-main" },
          h("span", { class: "kind" }, KINDS[e.kind] || e.kind),
          h("strong", { class: "q-what" }, e.label),
          h("span", { class: "history-meta" }, `${e.model} · ${e.state === "lost" ? "lost by the server" : e.state}${e.error ? `: ${e.error}` : ""} · ${ago(e.at)}`),
        ),
        h(
          "div",
          { class: "history-actions" },
          h("button", { type: "button", onclick: () => e.retry() }, "Retry"),
          h(
            "button",
            {
              type: "button",
              class: "ghost",
              "aria-label": `Dismiss ${e.label}`,
              onclick: () => {
                store.setSetting("queueDismissed", [...dismissed, e.id].slice(-500));
                paintEnded();
              },
            },
            "Dismiss",
          ),
        ),
      ),
    );
  }
}

// changed repaints what the browser knows (a run or data set changed).
export function changed() {
  if (!$("panel-queue").hidden) paintEnded();
  if (unsupported) refresh();
}
