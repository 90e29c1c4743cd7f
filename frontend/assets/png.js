// PNG chunks in the browser: the studio's provenance chunk (tEXt
// "fgstudio", JSON: model, version, seed, prompt or class, scores — see
// generator/png.go) read back from a dropped file, and written into an
// upscaled copy so that the copy still says how it was made.

import { crc32 } from "./zip.js";

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const PROVENANCE_KEY = "fgstudio";

function isPNG(b) {
  return b.length >= 8 && SIG.every((v, i) => b[i] === v);
}

// chunks lists {type, start, length, data} of a PNG's bytes.
export function chunks(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (!isPNG(b)) throw new Error("not a PNG file");
  const out = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let off = 8; off + 12 <= b.length; ) {
    const n = dv.getUint32(off);
    if (off + 12 + n > b.length) throw new Error("the PNG is cut short");
    const type = String.fromCharCode(b[off + 4], b[off + 5], b[off + 6], b[off + 7]);
    out.push({ type, start: off, length: 12 + n, data: b.subarray(off + 8, off + 8 + n) });
    off += 12 + n;
    if (type === "IEND") break;
  }
  return out;
}

// texts returns the tEXt chunks as {keyword: text} (Latin-1).
export function texts(bytes) {
  const res = {};
  for (const c of chunks(bytes)) {
    if (c.type !== "tEXt") continue;
    const z = c.data.indexOf(0);
    if (z < 1) continue;
    const dec = (a) => Array.from(a, (x) => String.fromCharCode(x)).join("");
    res[dec(c.data.subarray(0, z))] = dec(c.data.subarray(z + 1));
  }
  return res;
}

// provenance reads the studio's settings from a PNG (bytes), or throws
// an Error that says why not.
export function provenance(bytes) {
  const t = texts(bytes);
  if (!(PROVENANCE_KEY in t)) throw new Error("this PNG carries no studio settings (it was not made by the studio, or an editor removed them)");
  let p;
  try {
    p = JSON.parse(t[PROVENANCE_KEY]);
  } catch {
    throw new Error("the studio settings in this PNG are damaged");
  }
  if (!p || typeof p !== "object") throw new Error("the studio settings in this PNG are damaged");
  return p;
}

function textChunk(key, text) {
  const body = new Uint8Array(key.length + 1 + text.length);
  for (let i = 0; i < key.length; i++) body[i] = key.charCodeAt(i) & 0xff;
  for (let i = 0; i < text.length; i++) body[key.length + 1 + i] = text.charCodeAt(i) & 0xff;
  const typed = new Uint8Array(4 + body.length);
  typed.set([0x74, 0x45, 0x58, 0x74]); // "tEXt"
  typed.set(body, 4);
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  out.set(typed, 4);
  dv.setUint32(8 + body.length, crc32(typed));
  return out;
}

// withTexts inserts tEXt chunks right after IHDR.
export function withTexts(bytes, entries) {
  const b = new Uint8Array(bytes);
  const [ihdr] = chunks(b);
  const cut = ihdr.start + ihdr.length;
  const extra = Object.entries(entries).map(([k, v]) => textChunk(k, v));
  const size = b.length + extra.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(size);
  out.set(b.subarray(0, cut));
  let at = cut;
  for (const c of extra) {
    out.set(c, at);
    at += c.length;
  }
  out.set(b.subarray(cut), at);
  return out;
}

// upscale returns a PNG blob of the image blob enlarged factor times with
// nearest-neighbour sampling (every pixel a factor × factor square), with
// the original's provenance chunk and a note of the enlargement.
export async function upscale(blob, factor) {
  const bmp = await createImageBitmap(blob);
  const w = bmp.width * factor;
  const h = bmp.height * factor;
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const g = c.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(bmp, 0, 0, w, h);
  const note = `nearest-neighbour ${factor}x enlargement of a ${bmp.width}x${bmp.height} image; the model made the original size`;
  bmp.close();
  const png = await new Promise((resolve) => c.toBlob(resolve, "image/png"));
  const bytes = new Uint8Array(await png.arrayBuffer());
  const orig = texts(new Uint8Array(await blob.arrayBuffer()));
  const add = { "fgstudio-upscaled": note };
  if (orig[PROVENANCE_KEY]) add[PROVENANCE_KEY] = orig[PROVENANCE_KEY];
  return new Blob([withTexts(bytes, add)], { type: "image/png" });
}
