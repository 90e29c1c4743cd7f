"""Backgrounds, perches and lighting: the per-image context around the bird."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BACKGROUNDS = ("sky", "clouds", "dusk", "foliage", "mottled")
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


def relight(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Global brightness and contrast change, small enough to keep palette colours apart."""
    arr = np.asarray(img, dtype=np.float32)
    mean = float(arr.mean())
    arr = ((arr - mean) * rng.uniform(0.85, 1.15) + mean) * rng.uniform(0.88, 1.12)
    return _to_image(arr)
