// Word attention overlays. The API gives each word's map as a grayscale
// PNG normalised to its own maximum, and that maximum (peak: the word's
// largest share of a region's attention). Scaling every map of an image by
// peak / (the largest peak) puts all its words on one colour scale, so "a"
// no longer looks as strong as "bill"; the legend shows that scale. The
// colour's opacity follows the attention, so regions a word ignores keep
// the bird visible.

// RAMP: dark blue → blue → green → yellow → red.
const RAMP = [
  [0, [40, 24, 110]],
  [0.25, [40, 110, 235]],
  [0.5, [30, 200, 140]],
  [0.75, [245, 200, 40]],
  [1, [220, 40, 25]],
];

export function heat(t) {
  t = Math.min(1, Math.max(0, t));
  for (let i = 1; i < RAMP.length; i++) {
    const [t1, c1] = RAMP[i];
    const [t0, c0] = RAMP[i - 1];
    if (t <= t1) {
      const f = (t - t0) / (t1 - t0 || 1);
      return c0.map((v, k) => Math.round(v + (c1[k] - v) * f));
    }
  }
  return RAMP[RAMP.length - 1][1];
}

function alpha(t) {
  return Math.round(235 * Math.pow(Math.min(1, Math.max(0, t)), 0.7));
}

// colourise turns a grayscale map (a PNG blob, 255 = the word's peak)
// into a canvas of the same size coloured on the common scale: a pixel's
// value is its share of the word's peak times scale (the word's peak over
// the image's largest).
export async function colourise(blob, scale = 1) {
  const bmp = await createImageBitmap(blob);
  const c = document.createElement("canvas");
  c.width = bmp.width;
  c.height = bmp.height;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(bmp, 0, 0);
  bmp.close();
  const px = g.getImageData(0, 0, c.width, c.height);
  const d = px.data;
  for (let i = 0; i < d.length; i += 4) {
    const t = (d[i] / 255) * scale;
    const [r, gg, b] = heat(t);
    d[i] = r;
    d[i + 1] = gg;
    d[i + 2] = b;
    d[i + 3] = alpha(t);
  }
  g.putImageData(px, 0, 0);
  return c;
}

// draw paints the coloured map onto the overlay canvas, scaled smoothly to
// the overlay's size (attention is a smooth field); null clears it.
export function draw(overlay, map) {
  const g = overlay.getContext("2d");
  g.clearRect(0, 0, overlay.width, overlay.height);
  if (!map) return;
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(map, 0, 0, overlay.width, overlay.height);
}

// drawLegend paints the colour scale, low to high, as the overlay shows
// it (opacity included, over a checkerboard).
export function drawLegend(canvas) {
  const g = canvas.getContext("2d");
  const w = canvas.width;
  const hgt = canvas.height;
  for (let y = 0; y < hgt; y += 6) for (let x = 0; x < w; x += 6) {
    g.fillStyle = ((x + y) / 6) % 2 ? "#d9dde3" : "#ffffff";
    g.fillRect(x, y, 6, 6);
  }
  for (let x = 0; x < w; x++) {
    const t = x / (w - 1);
    const [r, gg, b] = heat(t);
    g.fillStyle = `rgba(${r}, ${gg}, ${b}, ${alpha(t) / 255})`;
    g.fillRect(x, 0, 1, hgt);
  }
}
