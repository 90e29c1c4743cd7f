// The studio's REST API as the page uses it: every request goes through
// fetch (so an API key can travel in the Authorization header, which
// <img> and EventSource cannot send), answers that are problems
// (application/problem+json) become ApiError, and a small client-side
// limiter keeps the page well inside the server's per-key rate.

const KEY_NAME = "fgstudio.apiKey";
const PROBLEM_BASE = "https://fgstudio.dev/problems/";

// ApiError is a problem document from the server, or a network failure
// (status 0).
export class ApiError extends Error {
  constructor(p) {
    super(p.detail || p.title || "request failed");
    this.name = "ApiError";
    this.status = p.status || 0;
    this.type = String(p.type || "");
    this.slug = this.type.startsWith(PROBLEM_BASE) ? this.type.slice(PROBLEM_BASE.length) : this.type;
    this.title = p.title || "";
    this.detail = p.detail || "";
    this.field = p.field || "";
    this.requestId = p.request_id || "";
    this.retryAfter = p.retryAfter || 0; // seconds, from Retry-After
  }
}

// The API key lives in sessionStorage, or in localStorage when the user
// asked the browser to remember it.
export function apiKey() {
  return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || "";
}

export function setApiKey(key, remember) {
  sessionStorage.removeItem(KEY_NAME);
  localStorage.removeItem(KEY_NAME);
  if (!key) return;
  (remember ? localStorage : sessionStorage).setItem(KEY_NAME, key);
}

// Limiter: at most `concurrency` requests in flight and `rate` starts per
// second (bursts of `burst`). The server allows 50/s with bursts of 100
// per key by default (--rate-limit, --rate-burst); the page stays well
// below that.
class Limiter {
  constructor(concurrency, rate, burst) {
    this.concurrency = concurrency;
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = performance.now();
    this.active = 0;
    this.waiting = [];
    this.timer = 0;
  }
  acquire() {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.pump();
    });
  }
  release() {
    this.active--;
    this.pump();
  }
  pump() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    while (this.waiting.length && this.active < this.concurrency && this.tokens >= 1) {
      this.tokens--;
      this.active++;
      this.waiting.shift()();
    }
    if (this.waiting.length && this.tokens < 1 && !this.timer) {
      const ms = Math.ceil(((1 - this.tokens) / this.rate) * 1000);
      this.timer = setTimeout(() => {
        this.timer = 0;
        this.pump();
      }, ms);
    }
  }
}

const limiter = new Limiter(6, 10, 20);

// Listeners told about answers that concern the whole page.
const watchers = new Set();
export function onProblem(f) {
  watchers.add(f);
}
function tell(err) {
  for (const f of watchers) f(err);
}

async function problemOf(res) {
  const retry = Number(res.headers.get("Retry-After")) || 0;
  let body = {};
  const ct = res.headers.get("Content-Type") || "";
  if (ct.includes("json")) {
    try {
      body = await res.json();
    } catch {
      body = {};
    }
  }
  return new ApiError({
    status: res.status,
    type: body.type,
    title: body.title || res.statusText || `HTTP ${res.status}`,
    detail: body.detail || `The server answered ${res.status} ${res.statusText || ""}`.trim(),
    field: body.field,
    request_id: body.request_id || res.headers.get("X-Request-ID") || "",
    retryAfter: retry,
  });
}

// raw sends one request and returns the Response; non-2xx answers throw an
// ApiError. opts: {method, json, form, signal, accept, stream}.
export async function raw(path, opts = {}) {
  const headers = { Accept: opts.accept || "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    body = opts.form; // the browser sets the multipart boundary
  }
  await limiter.acquire();
  let res;
  try {
    res = await fetch(path, { method: opts.method || "GET", headers, body, signal: opts.signal, cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    const err = new ApiError({ status: 0, title: "Network error", detail: "The studio could not be reached. Check that the server is running." });
    tell(err);
    throw err;
  } finally {
    // A stream holds no slot: it would starve the page.
    limiter.release();
  }
  if (!res.ok) {
    const err = await problemOf(res);
    tell(err);
    throw err;
  }
  return res;
}

export async function getJSON(path, opts = {}) {
  const res = await raw(path, opts);
  return res.json();
}

export async function postJSON(path, body, opts = {}) {
  const res = await raw(path, { ...opts, method: "POST", json: body });
  return res.json();
}

export async function postForm(path, form, opts = {}) {
  const res = await raw(path, { ...opts, method: "POST", form });
  return res.json();
}

export async function del(path) {
  const res = await raw(path, { method: "DELETE" });
  return res.json();
}

// Images are fetched once and kept as object URLs.
const images = new Map(); // url → Promise<{blob, url}>

export function image(path) {
  if (!images.has(path)) {
    const p = raw(path, { accept: "image/png" })
      .then((res) => res.blob())
      .then((blob) => ({ blob, url: URL.createObjectURL(blob) }));
    p.catch(() => images.delete(path));
    images.set(path, p);
  }
  return images.get(path);
}

// events reads a server-sent event stream through fetch and yields
// {event, data} with data parsed as JSON.
export async function* events(path, signal) {
  const res = await raw(path, { accept: "text/event-stream", signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") event = val;
          if (field === "data") data.push(val);
        }
        if (!data.length) continue;
        let parsed;
        try {
          parsed = JSON.parse(data.join("\n"));
        } catch {
          continue;
        }
        yield { event, data: parsed };
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// readiness is /readyz: {ready, checks}; it needs no key.
export async function readiness() {
  try {
    const res = await fetch("/readyz", { cache: "no-store" });
    const body = await res.json().catch(() => ({}));
    return { ready: res.ok, checks: body.checks || {} };
  } catch {
    return { ready: false, checks: { server: "not reachable" } };
  }
}
