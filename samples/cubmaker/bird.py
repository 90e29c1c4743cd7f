"""Bird geometry: the parts of one bird as filled polygons and polylines, and their rasterisation.

Parts are laid out in a local frame whose unit is the body length: x points to the bill, y down, body
centre at the origin. `Pose` maps that frame onto the canvas (scale, head-up tilt, facing, position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from .attributes import Species

RGB = tuple[int, int, int]

HEAD_CENTRE = (0.43, -0.3)
HEAD_RADIUS = 0.21
BODY_RADII = (0.5, 0.3)
TAIL_ROOT = (-0.4, 0.02)
TAIL_DIRECTION_DEG = 18.0  # below the body axis
WING_SHOULDER = (0.25, -0.1)
WING_TIP = (-0.62, 0.06)
HIPS = ((0.08, 0.26), (-0.06, 0.27))
LEG_LENGTH = 0.2
OUTLINE = 0.018  # outline width, body lengths
# Head size relative to the body by size class: small birds have relatively large heads, as in life,
# so size stays visible when the photo's scale does not tell it.
HEAD_SCALE = {"small": 1.14, "medium": 1.0, "large": 0.88}


@dataclass(frozen=True)
class Pose:
    u: float  # body length in canvas pixels
    angle: float  # radians, positive = head up
    facing: int  # +1 bill to the right, -1 to the left
    cx: float = 0.0
    cy: float = 0.0

    def rotate(self, pts: np.ndarray) -> np.ndarray:
        """Local points → canvas offsets from the body centre (no translation)."""
        x, y = pts[:, 0], pts[:, 1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.facing * (x * c + y * s) * self.u, (-x * s + y * c) * self.u], 1)

    def apply(self, pts: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        p = self.rotate(np.asarray(pts, dtype=np.float64).reshape(-1, 2))
        return p + np.array([self.cx, self.cy])


@dataclass(frozen=True)
class Colours:
    """Shades of one image (class colours after jitter)."""

    crown: RGB
    upper: RGB
    breast: RGB
    wing: RGB
    bill: RGB
    wing_mark: RGB  # stripes, spots, wingbars
    breast_mark: RGB  # streaks, spots
    eye_ring: RGB
    legs: RGB


@dataclass(frozen=True)
class Shape:
    """A filled polygon (width 0) or a polyline (width > 0), in canvas pixels."""

    pts: np.ndarray
    colour: RGB
    width: float = 0.0
    clip: Optional[str] = None  # draw only inside this kept mask
    keep: Optional[str] = None  # keep this shape's (clipped) mask under this name

    def moved(self, dx: float, dy: float) -> "Shape":
        return replace(self, pts=self.pts + np.array([dx, dy]))


def darker(c: RGB, f: float = 0.55) -> RGB:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0,
            n: int = 40) -> np.ndarray:
    a = np.radians(np.linspace(a0, a1, n, endpoint=(a1 - a0) < 360.0))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _tail(shape: str) -> np.ndarray:
    """Tail outline in tail coordinates (a along the tail, b across)."""
    if shape == "notched":
        return np.array([(0, -0.07), (0.55, -0.16), (0.38, 0.0), (0.55, 0.16), (0, 0.07)])
    if shape == "rounded":
        end = ellipse(0.32, 0.0, 0.13, 0.13, -90, 90, 13)
        return np.concatenate([[(0, -0.07)], end, [(0, 0.07)]])
    if shape == "pointed":
        return np.array([(0, -0.07), (0.3, -0.075), (0.88, 0.0), (0.3, 0.075), (0, 0.07)])
    if shape == "fan-shaped":
        phi = np.radians(np.linspace(-42, 42, 29))
        r = 0.5 - 0.04 * np.abs(np.sin(phi * 9))  # scalloped feather tips
        arc = np.stack([r * np.cos(phi), r * np.sin(phi)], 1)
        return np.concatenate([[(0, -0.05)], arc, [(0, 0.05)]])
    raise ValueError(f"unknown tail shape {shape!r}")


def _bill(shape: str) -> np.ndarray:
    """Bill outline in bill coordinates (x forward from the root, y down); root buried in the head."""
    if shape == "all-purpose":
        return np.array([(-0.06, -0.055), (0.0, -0.055), (0.17, 0.01), (0.0, 0.055), (-0.06, 0.055)])
    if shape == "cone":
        return np.array([(-0.07, -0.1), (0.0, -0.1), (0.17, -0.01), (0.2, 0.02), (0.0, 0.1),
                         (-0.07, 0.1)])
    if shape == "hooked":
        return np.array([(-0.06, -0.075), (0.06, -0.08), (0.15, -0.055), (0.21, 0.0), (0.2, 0.08),
                         (0.16, 0.03), (0.1, 0.045), (0.0, 0.065), (-0.06, 0.065)])
    if shape == "needle":
        return np.array([(-0.06, -0.032), (0.0, -0.032), (0.3, -0.006), (0.5, 0.03), (0.3, 0.012),
                         (0.0, 0.032), (-0.06, 0.032)])
    if shape == "spatulate":
        spoon = ellipse(0.3, 0.0, 0.085, 0.075, 200, 520, 19)
        return np.concatenate([[(-0.06, -0.035), (0.23, -0.028)], spoon,
                               [(0.23, 0.028), (-0.06, 0.035)]])
    raise ValueError(f"unknown bill shape {shape!r}")


def _frame(root: Sequence[float], deg: float, pts: np.ndarray) -> np.ndarray:
    """Part coordinates (a forward, b across) rotated by `deg` (downwards) and moved to `root`."""
    a = math.radians(deg)
    d = np.array([math.cos(a), math.sin(a)])
    n = np.array([-d[1], d[0]])
    return np.asarray(root) + pts[:, :1] * d + pts[:, 1:2] * n


class _Wing:
    """A leaf-shaped wing from shoulder to tip; (t, s) = (along 0..1, across -1 lower..1 upper)."""

    def __init__(self) -> None:
        self.s = np.array(WING_SHOULDER)
        self.d = np.array(WING_TIP) - self.s
        e = self.d / np.linalg.norm(self.d)
        n = np.array([-e[1], e[0]])
        self.up = -n if n[1] > 0 else n  # the normal pointing up (y is down)

    @staticmethod
    def _width(t: np.ndarray) -> np.ndarray:
        return 0.2 * np.sin(np.pi * np.clip(t, 0, 1) ** 0.55)

    def at(self, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        t, s = np.broadcast_arrays(np.asarray(t, float), np.asarray(s, float))
        w = self._width(t)
        upper, lower = 0.4 * w, -w
        off = (upper + lower) / 2 + s * (upper - lower) / 2
        return self.s + t[..., None] * self.d + off[..., None] * self.up

    def outline(self) -> np.ndarray:
        t = np.linspace(0, 1, 24)
        return np.concatenate([self.at(t, 1.0), self.at(t[::-1], -1.0)])


def _legs(pose: Pose) -> tuple[np.ndarray, np.ndarray, float]:
    hips = pose.apply(HIPS)
    return hips[:, 0], hips[:, 1], float(hips[:, 1].max() + LEG_LENGTH * pose.u)


def feet(pose: Pose) -> tuple[float, float]:
    """Where the bird stands on the canvas: mean foot x, and the y of the soles."""
    xs, _, foot_y = _legs(pose)
    return float(xs.mean()), foot_y


def bird_shapes(species: Species, colours: Colours, pose: Pose, rng: np.random.Generator) -> list[Shape]:
    """All parts of the bird, back to front, in canvas pixels (pose applied)."""
    shapes: list[Shape] = []
    u = pose.u
    ow = max(1.0, OUTLINE * u)

    def fill(local: np.ndarray, colour: RGB, outline: bool = True, **kw) -> None:
        pts = pose.apply(local)
        shapes.append(Shape(pts, colour, **kw))
        if outline:
            shapes.append(Shape(np.concatenate([pts, pts[:1]]), darker(colour), ow))

    def line(local: np.ndarray, colour: RGB, width: float, **kw) -> None:
        shapes.append(Shape(pose.apply(local), colour, max(1.0, width * u), **kw))

    # Legs hang straight down on the canvas whatever the tilt; toes point the way the bird faces.
    hip_xs, hip_ys, foot_y = _legs(pose)
    for hx, hy in zip(hip_xs, hip_ys):
        for pts in (
            [(hx, hy), (hx, foot_y)],
            [(hx, foot_y), (hx + pose.facing * 0.12 * u, foot_y + 0.01 * u)],
            [(hx, foot_y), (hx - pose.facing * 0.07 * u, foot_y)],
        ):
            shapes.append(Shape(np.array(pts, float), colours.legs, max(1.0, 0.035 * u)))

    tail_colour = darker(colours.upper, 0.85)
    fill(_frame(TAIL_ROOT, 180 - TAIL_DIRECTION_DEG, _tail(species["has_tail_shape"])), tail_colour)

    hx, hy = HEAD_CENTRE
    hr = HEAD_RADIUS * HEAD_SCALE.get(species["has_size"], 1.0)
    fill(ellipse(hx, hy, hr, hr), colours.upper, outline=False, keep="head")

    body = ellipse(0, 0, *BODY_RADII, n=48)
    fill(body, colours.upper, outline=False, keep="body")
    fill(ellipse(0.16, 0.1, 0.36, 0.24), colours.breast, outline=False, clip="body", keep="breast")
    pattern = species["has_breast_pattern"]
    if pattern != "solid":
        jit = rng.uniform(-0.025, 0.025, size=(12, 2))
        grid = [(x, y) for y in (0.0, 0.11, 0.21) for x in (0.0, 0.12, 0.24, 0.36)]
        for k, (x, y) in enumerate(grid):
            x, y = x + jit[k, 0] + (0.06 if y == 0.11 else 0.0), y + jit[k, 1]
            if pattern == "streaked":
                line(np.array([(x + 0.015, y - 0.045), (x - 0.015, y + 0.045)]), colours.breast_mark,
                     0.035, clip="breast")
            else:
                fill(ellipse(x, y, 0.032, 0.032, n=12), colours.breast_mark, outline=False,
                     clip="breast")
    shapes.append(Shape(pose.apply(np.concatenate([body, body[:1]])), darker(colours.upper), ow))

    # Crown: the head above a line sloping up to the front, over the eye.
    crown = np.array([(hx - 0.4, hy + 0.03), (hx + 0.4, hy - 0.07), (hx + 0.4, hy - 0.6),
                      (hx - 0.4, hy - 0.6)])
    fill(crown, colours.crown, outline=False, clip="head")
    line(ellipse(hx, hy, hr, hr, 160, 400, 30), darker(colours.upper), OUTLINE)

    wing = _Wing()
    fill(wing.outline(), colours.wing, outline=False, keep="wing")
    wp = species["has_wing_pattern"]
    if wp == "striped":
        t = np.linspace(0.28, 1.0, 12)
        for s in (-0.5, 0.05, 0.6):
            line(wing.at(t, s), colours.wing_mark, 0.045, clip="wing")
    elif wp == "wingbars":
        for t0 in (0.16, 0.34):
            band = np.concatenate([wing.at([t0, t0], [-1.3, 1.3]), wing.at([t0 + 0.075] * 2, [1.3, -1.3])])
            fill(band, colours.wing_mark, outline=False, clip="wing")
    elif wp == "spotted":
        jit = rng.uniform(-0.03, 0.03, size=(12, 2))
        k = 0
        for t in (0.22, 0.4, 0.58, 0.76):
            for s in (-0.55, 0.0, 0.55):
                c = wing.at(t + jit[k, 0], s + jit[k, 1] * 4)
                fill(ellipse(c[0], c[1], 0.032, 0.032, n=12), colours.wing_mark, outline=False,
                     clip="wing")
                k += 1
    wo = pose.apply(wing.outline())
    shapes.append(Shape(np.concatenate([wo, wo[:1]]), darker(colours.wing), ow))

    fill(_frame((hx + 0.16, hy + 0.04), 6, _bill(species["has_bill_shape"])), colours.bill)

    ex, ey = hx + 0.075, hy - 0.03
    if species["has_eye_ring"] == "yes":
        fill(ellipse(ex, ey, 0.1, 0.1, n=20), colours.eye_ring)
    fill(ellipse(ex, ey, 0.047, 0.047, n=16), (15, 15, 15), outline=False)
    fill(ellipse(ex + 0.015, ey - 0.015, 0.016, 0.016, n=8), (235, 235, 235), outline=False)
    return shapes


def extent(shapes: Sequence[Shape]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) over all shape points, widened by line half-widths."""
    x0 = min(float(s.pts[:, 0].min()) - s.width / 2 for s in shapes)
    y0 = min(float(s.pts[:, 1].min()) - s.width / 2 for s in shapes)
    x1 = max(float(s.pts[:, 0].max()) + s.width / 2 for s in shapes)
    y1 = max(float(s.pts[:, 1].max()) + s.width / 2 for s in shapes)
    return x0, y0, x1, y1


def rasterise(shapes: Sequence[Shape], size: int) -> Image.Image:
    """Draws shapes in order onto a transparent RGBA layer (no antialiasing; downsample for that).

    Masked shapes are drawn only inside their own bounding box, which keeps many small spots cheap."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    masks: dict[str, Image.Image] = {}
    for s in shapes:
        colour = (*s.colour, 255)
        if s.clip is None and s.keep is None:
            _draw(draw, s.pts, colour, s.width)
            continue
        pad = s.width / 2 + 2
        x0 = max(0, math.floor(s.pts[:, 0].min() - pad))
        y0 = max(0, math.floor(s.pts[:, 1].min() - pad))
        x1 = min(size, math.ceil(s.pts[:, 0].max() + pad))
        y1 = min(size, math.ceil(s.pts[:, 1].max() + pad))
        if x1 <= x0 or y1 <= y0:
            if s.keep is not None:
                masks[s.keep] = Image.new("L", (size, size), 0)
            continue
        box = (x0, y0, x1, y1)
        if s.keep is not None:  # kept masks are full size, so later shapes can clip to them
            full = Image.new("L", (size, size), 0)
            _draw(ImageDraw.Draw(full), s.pts, 255, s.width)
            if s.clip is not None:
                full = ImageChops.darker(full, masks[s.clip])
            masks[s.keep] = full
            mask = full.crop(box)
        else:
            mask = Image.new("L", (x1 - x0, y1 - y0), 0)
            _draw(ImageDraw.Draw(mask), s.pts - np.array([x0, y0]), 255, s.width)
            mask = ImageChops.darker(mask, masks[s.clip].crop(box))
        layer.paste(colour, box, mask)
    return layer


def _draw(draw: ImageDraw.ImageDraw, pts: np.ndarray, fill, width: float) -> None:
    xy = [(float(x), float(y)) for x, y in pts]
    if width > 0:
        draw.line(xy, fill=fill, width=max(1, round(width)), joint="curve")
    else:
        draw.polygon(xy, fill=fill)
