// Word attention overlays: a grayscale attention map (one per prompt word,
// from the API) is stretched to its min–max range, coloured with a heat
// ramp whose opacity follows the attention, and drawn over the image.

// heat maps t in [0,1] to [r,g,b]: dark blue → cyan → yellow → red.
function heat(t) {
  const stops = [
    [0, [20, 30, 120]],
    [0.35, [0, 180, 220]],
    [0.65, [250, 220, 40]],
    [1, [230, 40, 30]],
  ];
  for (let i = 1; i < stops.length; i++) {
    const [t1, c1] = stops[i];
    const [t0, c0] = stops[i - 1];
    if (t <= t1) {
      const f = (t - t0) / (t1 - t0 || 1);
      return c0.map((v, k) => Math.round(v + (c1[k] - v) * f));
    }
  }
  return stops[stops.length - 1][1];
}

// colourise turns a grayscale PNG blob into a canvas of the same size
// with the heat ramp; alpha follows attention.
export async function colourise(blob) {
  const bmp = await createImageBitmap(blob);
  const c = document.createElement("canvas");
  c.width = bmp.width;
  c.height = bmp.height;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(bmp, 0, 0);
  bmp.close();
  const px = g.getImageData(0, 0, c.width, c.height);
  const d = px.data;
  let lo = 255;
  let hi = 0;
  for (let i = 0; i < d.length; i += 4) {
    lo = Math.min(lo, d[i]);
    hi = Math.max(hi, d[i]);
  }
  const span = hi - lo || 1;
  for (let i = 0; i < d.length; i += 4) {
    const t = (d[i] - lo) / span;
    const [r, gg, b] = heat(t);
    d[i] = r;
    d[i + 1] = gg;
    d[i + 2] = b;
    d[i + 3] = Math.round(40 + 200 * t);
  }
  g.putImageData(px, 0, 0);
  return c;
}

// draw paints the coloured map onto the overlay canvas, scaled smoothly to
// the overlay's size; null clears it.
export function draw(overlay, map) {
  const g = overlay.getContext("2d");
  g.clearRect(0, 0, overlay.width, overlay.height);
  if (!map) return;
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(map, 0, 0, overlay.width, overlay.height);
}
