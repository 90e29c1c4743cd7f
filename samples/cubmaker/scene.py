"""Backgrounds, perches and lighting: the per-image context around the bird."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BACKGROUNDS = ("sky", "clouds", "dusk", "foliage", "mottled", "water", "reeds")
PERCHES = ("branch", "ground", "none")
PERCH_P = (0.55, 0.2, 0.25)

RGB = tuple[int, int, int]


def _hsv(rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float],
         v: tuple[float, float]) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(*h) % 1.0, rng.uniform(*s), rng.uniform(*v))
    return (round(r * 255), round(g * 255), round(b * 255))


def _gradient(size: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    column = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.repeat(column, size, axis=1)


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid upsampled bicubically."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    fine = Image.fromarray(coarse, "L").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(fine, dtype=np.float32) / np.float32(255.0)


def _to_image(arr: np.ndarray) -> Image.Image:
    out = np.rint(arr)
    np.clip(out, 0, 255, out=out)
    return Image.fromarray(out.astype(np.uint8), "RGB")


def background(kind: str, rng: np.random.Generator, size: int) -> Image.Image:
    if kind == "sky":
        top = _hsv(rng, (0.55, 0.62), (0.35, 0.6), (0.8, 0.95))
        return _to_image(_gradient(size, top, _hsv(rng, (0.53, 0.6), (0.08, 0.25), (0.9, 1.0))))
    if kind == "clouds":
        arr = _gradient(size, _hsv(rng, (0.55, 0.62), (0.3, 0.55), (0.75, 0.92)),
                        _hsv(rng, (0.55, 0.6), (0.1, 0.25), (0.85, 0.97)))
        cloud = np.clip((_noise(rng, size, 5) - 0.45) * 2.5, 0, 1)[..., None] * rng.uniform(0.5, 0.9)
        return _to_image(arr * (1 - cloud) + 245 * cloud)
    if kind == "dusk":
        return _to_image(_gradient(size, _hsv(rng, (0.6, 0.72), (0.25, 0.45), (0.55, 0.75)),
                                   _hsv(rng, (0.03, 0.1), (0.2, 0.4), (0.85, 0.97))))
    if kind == "foliage":
        img = _to_image(_gradient(size, _hsv(rng, (0.22, 0.33), (0.4, 0.7), (0.25, 0.45)),
                                  _hsv(rng, (0.2, 0.3), (0.35, 0.6), (0.4, 0.6))))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(4, 9))):  # light gaps between leaves
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.04, 0.1) * size
            draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8),
                         fill=_hsv(rng, (0.5, 0.6), (0.1, 0.3), (0.75, 0.95)))
        for _ in range(int(rng.integers(35, 70))):
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            r = rng.uniform(0.03, 0.12) * size
            draw.ellipse((x - r, y - r * rng.uniform(0.4, 0.9), x + r, y + r * rng.uniform(0.4, 0.9)),
                         fill=_hsv(rng, (0.17, 0.36), (0.35, 0.8), (0.2, 0.65)))
        return img.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.006, 0.016)))
    if kind == "mottled":  # bark, rock or sand, out of focus
        base = np.asarray(_hsv(rng, (0.05, 0.13), (0.1, 0.4), (0.45, 0.8)), np.float32)
        shade = 0.75 + 0.35 * _noise(rng, size, 6) + 0.15 * (_noise(rng, size, 20) - 0.5)
        return _to_image(base * shade[..., None])
    if kind == "water":  # a lake or sea: a horizon, and ripples that shorten towards it
        horizon = int(size * rng.uniform(0.15, 0.45))
        sky = _gradient(size, _hsv(rng, (0.55, 0.62), (0.15, 0.45), (0.8, 0.97)),
                        _hsv(rng, (0.5, 0.6), (0.05, 0.2), (0.9, 1.0)))
        water = _gradient(size, _hsv(rng, (0.45, 0.58), (0.35, 0.7), (0.45, 0.7)),
                          _hsv(rng, (0.5, 0.6), (0.4, 0.8), (0.25, 0.45)))
        arr = np.concatenate([sky[:horizon], water[horizon:]], 0)
        img = _to_image(arr)
        draw = ImageDraw.Draw(img)
        light = _hsv(rng, (0.5, 0.58), (0.05, 0.25), (0.85, 1.0))
        for _ in range(int(rng.integers(25, 50))):
            y = rng.uniform(horizon + 2, size)
            half = (y - horizon) / size * rng.uniform(0.05, 0.2) * size
            x = rng.uniform(0, size)
            draw.line([(x - half, y), (x + half, y)], fill=light, width=1)
        return img.filter(ImageFilter.GaussianBlur(size * 0.004))
    if kind == "reeds":  # a reed bed: warm grass stems against a pale sky, out of focus
        img = _to_image(_gradient(size, _hsv(rng, (0.1, 0.16), (0.1, 0.3), (0.75, 0.92)),
                                  _hsv(rng, (0.12, 0.2), (0.3, 0.55), (0.5, 0.7))))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(25, 55))):
            x, lean = rng.uniform(0, size), rng.uniform(-0.15, 0.15) * size
            top = rng.uniform(0.0, 0.6) * size
            draw.line([(x, size), (x + lean, top)], fill=_hsv(rng, (0.1, 0.2), (0.35, 0.7), (0.35, 0.75)),
                      width=max(1, round(size * rng.uniform(0.008, 0.02))))
        return img.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.006, 0.014)))
    raise ValueError(f"unknown background {kind!r}")


def draw_branch(img: Image.Image, rng: np.random.Generator, foot: tuple[float, float], u: float) -> None:
    """A tapering branch whose top edge passes under the feet, entering from one side."""
    size = img.width
    thick = rng.uniform(0.08, 0.14) * u
    slope = rng.uniform(-0.25, 0.25)
    fx, fy = foot
    side = -1 if rng.random() < 0.5 else 1
    x_start = fx + side * size * 1.5
    x_end = fx - side * rng.uniform(0.35, 0.9) * u

    def y_at(x: float) -> float:
        return fy + 0.02 * u + (x - fx) * slope

    colour = _hsv(rng, (0.04, 0.1), (0.2, 0.5), (0.25, 0.5))
    t_start, t_end = thick * 1.6, thick * 0.6
    poly = [(x_start, y_at(x_start)), (x_end, y_at(x_end)), (x_end, y_at(x_end) + t_end),
            (x_start, y_at(x_start) + t_start)]
    draw = ImageDraw.Draw(img)
    draw.polygon(poly, fill=colour)
    dark = tuple(int(c * 0.6) for c in colour)
    draw.line([poly[3], poly[2]], fill=dark, width=max(1, round(thick * 0.25)))
    # A twig with a few leaves, behind the bird.
    tx = fx + side * rng.uniform(0.6, 1.2) * u
    ty = y_at(tx)
    ex, ey = tx + side * rng.uniform(0.2, 0.5) * u, ty - rng.uniform(0.4, 0.8) * u
    draw.line([(tx, ty), (ex, ey)], fill=colour, width=max(1, round(thick * 0.35)))
    leaf = _hsv(rng, (0.2, 0.33), (0.5, 0.8), (0.3, 0.6))
    for k in range(int(rng.integers(1, 4))):
        lx = tx + (ex - tx) * (0.4 + 0.3 * k)
        ly = ty + (ey - ty) * (0.4 + 0.3 * k)
        r = 0.09 * u
        draw.ellipse((lx - r * 1.6, ly - r, lx + r * 1.6, ly + r), fill=leaf)


def draw_ground(img: Image.Image, rng: np.random.Generator, foot_y: float, u: float) -> None:
    """Grass, earth or sand from just above the feet to the bottom edge."""
    size = img.width
    small = size // 4
    base = np.asarray(_hsv(rng, (0.08, 0.3), (0.3, 0.6), (0.35, 0.7)), np.float32)
    texture = _to_image(base * (0.8 + 0.3 * _noise(rng, small, 12))[..., None])
    texture = texture.resize((size, size), Image.Resampling.BILINEAR)
    top = foot_y - 0.03 * u
    xs = np.linspace(0, size, 33)
    wave = top + 0.03 * u * np.sin(xs / size * rng.uniform(3, 9) + rng.uniform(0, 6))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(
        [(float(x), float(y)) for x, y in zip(xs, wave)] + [(size, size), (0, size)], fill=255)
    img.paste(texture, (0, 0), mask)


def occlude(img: Image.Image, rng: np.random.Generator, box: tuple[float, float, float, float],
            u: float) -> None:
    """Leaves (and sometimes a twig) in front of the bird, covering part of it as foliage does in
    field photos. `box` is the bird's (x0, y0, x1, y1) on the canvas; u its body length."""
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    leaf = _hsv(rng, (0.18, 0.34), (0.45, 0.85), (0.25, 0.6))
    if rng.random() < 0.4:  # a twig across the bird, the leaves on it
        side = -1 if rng.random() < 0.5 else 1
        ya, yb = rng.uniform(y0, y1, size=2)
        xa, xb = (x0 - 0.3 * u, x1 + 0.3 * u)[::side]
        draw.line([(xa, ya), (xb, yb)], fill=_hsv(rng, (0.04, 0.1), (0.2, 0.5), (0.2, 0.45)),
                  width=max(1, round(0.05 * u)))
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        r = rng.uniform(0.08, 0.17) * u
        angle = rng.uniform(0, math.pi)
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        lx, ly = r * 1.7 * np.cos(t), r * 0.75 * np.sin(t) * np.abs(np.cos(t / 2)) ** 0.3
        c, s_ = math.cos(angle), math.sin(angle)
        pts = [(float(cx + x * c - y * s_), float(cy + x * s_ + y * c)) for x, y in zip(lx, ly)]
        shade_ = tuple(int(v * rng.uniform(0.8, 1.15)) for v in leaf)
        draw.polygon(pts, fill=tuple(min(255, v) for v in shade_))


def relight(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light of the scene: contrast, brightness, a warm or cool cast and a light gradient across the
    frame. Each stays small enough that a palette colour does not turn into its neighbour."""
    arr = np.asarray(img, dtype=np.float32)
    size = arr.shape[0]
    mean = float(arr.mean())
    arr = ((arr - mean) * rng.uniform(0.8, 1.2) + mean) * rng.uniform(0.84, 1.14)
    warm = rng.uniform(-0.06, 0.06)  # + warm (late sun), - cool (shade, overcast)
    arr *= np.array([1 + warm, 1.0, 1 - warm], np.float32)
    theta, strength = rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.22)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    grad = ramp[None, :] * math.cos(theta) + ramp[:, None] * math.sin(theta)
    arr *= (1 + strength * grad)[..., None]
    return _to_image(arr)
