// What the studio keeps in this browser (IndexedDB, so it survives reloads
// and server restarts): every run with its request, labels, scores and
// its images as PNG blobs (the thumbnails the gallery shows even after the
// server has forgotten the job), the data-set jobs, and the user's
// settings (form values, filters, overlay opacity). Nothing leaves the
// browser. When IndexedDB is not available (a private window that refuses
// it), everything still works for the session, in memory.

const DB = "fgstudio";
const VERSION = 1;
// Runs beyond this many are dropped, oldest first.
export const MAX_RUNS = 300;
// An image larger than this is kept as a 128-px thumbnail instead.
const MAX_IMAGE_BYTES = 256 * 1024;

let dbp = null;
const memory = { runs: new Map(), datasets: new Map(), settings: new Map() };

function open() {
  if (dbp) return dbp;
  dbp = new Promise((resolve) => {
    let req;
    try {
      req = indexedDB.open(DB, VERSION);
    } catch {
      resolve(null);
      return;
    }
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("runs")) db.createObjectStore("runs", { keyPath: "id" }).createIndex("at", "at");
      if (!db.objectStoreNames.contains("datasets")) db.createObjectStore("datasets", { keyPath: "id" });
      if (!db.objectStoreNames.contains("settings")) db.createObjectStore("settings");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null);
    req.onblocked = () => resolve(null);
  });
  return dbp;
}

function done(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(store, mode, f) {
  const db = await open();
  if (!db) return f(null);
  const t = db.transaction(store, mode);
  const result = await f(t.objectStore(store));
  await new Promise((resolve, reject) => {
    t.oncomplete = resolve;
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("transaction aborted"));
  });
  return result;
}

// ---------------------------------------------------------------- settings

const settingsCache = new Map();

// loadSettings reads every setting once, at start-up, so that get() is
// synchronous afterwards.
export async function loadSettings() {
  try {
    await tx("settings", "readonly", async (s) => {
      if (!s) {
        for (const [k, v] of memory.settings) settingsCache.set(k, v);
        return;
      }
      const keys = await done(s.getAllKeys());
      const vals = await done(s.getAll());
      keys.forEach((k, i) => settingsCache.set(k, vals[i]));
    });
  } catch {
    /* settings are a convenience */
  }
}

export function setting(key, fallback) {
  return settingsCache.has(key) ? settingsCache.get(key) : fallback;
}

export function setSetting(key, value) {
  settingsCache.set(key, value);
  return tx("settings", "readwrite", (s) => {
    if (!s) memory.settings.set(key, value);
    else s.put(value, key);
  }).catch(() => {});
}

// ---------------------------------------------------------------- runs

// A run record: {id, kind, model, body, label, targetLabel, jobId, state,
// at, total, request, size, error, gone, compare: {runId, labelA, labelB,
// note}, source: {blob, label}, images: [{index, seed, size, fidelity,
// fidelity_measure, below_min, scores, words, links, attempts, blob,
// thumb}]}.

export async function runs() {
  try {
    const list = await tx("runs", "readonly", (s) => (s ? done(s.getAll()) : [...memory.runs.values()]));
    return list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  } catch {
    return [];
  }
}

export function putRun(rec) {
  return tx("runs", "readwrite", (s) => {
    if (!s) memory.runs.set(rec.id, rec);
    else s.put(rec);
  }).catch(() => {});
}

export function deleteRun(id) {
  return tx("runs", "readwrite", (s) => {
    if (!s) memory.runs.delete(id);
    else s.delete(id);
  }).catch(() => {});
}

// prune drops the oldest runs beyond MAX_RUNS; it returns their ids.
export async function prune() {
  const all = await runs();
  const drop = all.slice(0, Math.max(0, all.length - MAX_RUNS)).map((r) => r.id);
  for (const id of drop) await deleteRun(id);
  return drop;
}

// keepable turns an image blob into what is stored: the PNG itself when
// small (it keeps the provenance chunk), else a 128-px thumbnail.
export async function keepable(blob) {
  if (!blob || blob.size <= MAX_IMAGE_BYTES) return { blob, thumb: false };
  try {
    const bmp = await createImageBitmap(blob);
    const side = 128;
    const c = new OffscreenCanvas(side, side);
    const g = c.getContext("2d");
    g.imageSmoothingQuality = "high";
    g.drawImage(bmp, 0, 0, side, side);
    bmp.close();
    return { blob: await c.convertToBlob({ type: "image/png" }), thumb: true };
  } catch {
    return { blob: null, thumb: false };
  }
}

// ---------------------------------------------------------------- data sets

export async function datasets() {
  try {
    const list = await tx("datasets", "readonly", (s) => (s ? done(s.getAll()) : [...memory.datasets.values()]));
    return list.sort((a, b) => (a.at < b.at ? -1 : 1));
  } catch {
    return [];
  }
}

export function putDataset(rec) {
  return tx("datasets", "readwrite", (s) => {
    if (!s) memory.datasets.set(rec.id, rec);
    else s.put(rec);
  }).catch(() => {});
}

export function deleteDataset(id) {
  return tx("datasets", "readwrite", (s) => {
    if (!s) memory.datasets.delete(id);
    else s.delete(id);
  }).catch(() => {});
}
