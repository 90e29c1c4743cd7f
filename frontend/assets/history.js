// The user's generations, kept in this browser (localStorage): what was
// asked (so it can be run again), the job id (so its results can be shown
// again while the server keeps them) and how it ended.

const KEY = "fgstudio.history.v1";
const MAX = 200;
// A morph's source image is kept only when small, so history stays well
// inside the browser's storage quota.
const MAX_IMAGE_CHARS = 96 * 1024;

function read() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function write(list) {
  try {
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
  } catch {
    // Full storage: drop the oldest half and the kept images, then retry.
    const slim = list.slice(0, MAX / 2).map((e) => ({ ...e, image: undefined }));
    try {
      localStorage.setItem(KEY, JSON.stringify(slim));
    } catch {
      /* nothing more to do: history is a convenience */
    }
  }
}

export function entries() {
  return read();
}

// add records a submitted job; entry: {id, kind, model, request, label, jobId, image?}.
export function add(entry) {
  const e = { ...entry, at: new Date().toISOString(), state: entry.state || "queued" };
  if (e.image && e.image.length > MAX_IMAGE_CHARS) delete e.image;
  write([e, ...read().filter((x) => x.id !== e.id)]);
  return e;
}

// update changes fields of an entry.
export function update(id, fields) {
  const list = read();
  const i = list.findIndex((x) => x.id === id);
  if (i < 0) return;
  list[i] = { ...list[i], ...fields };
  write(list);
}

export function remove(id) {
  write(read().filter((x) => x.id !== id));
}

export function clearAll() {
  localStorage.removeItem(KEY);
}
