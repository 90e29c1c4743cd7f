"""One image: a bird of a class, in a random pose and scene, drawn at 2x and downsampled."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from .attributes import PALETTE, Species, contrast_colour
from .bird import Colours, Pose, bird_shapes, extent, feet, rasterise
from .scene import BACKGROUNDS, PERCH_P, PERCHES, background, draw_branch, draw_ground, occlude, relight

SUPERSAMPLE = 2
# Body length as a fraction of the image side, per size class; per-image jitter keeps them apart.
# The photo's scale varies far more than the size classes differ (a bird fills from about a quarter to
# most of the frame), so size shows mainly in proportions (bird.HEAD_SCALE), as it does in field photos.
SIZE_FRACTION = {"small": 0.3, "medium": 0.34, "large": 0.38}
SCALE_JITTER = (0.7, 1.45)
TILT_DEG = (-15.0, 32.0)
P_OCCLUDED = 0.3  # share of images with leaves in front of the bird
MARGIN = 0.03  # fraction of the side kept free around the bird when it fits
BILL_RGB = {"black": (30, 30, 32), "orange": PALETTE["orange"], "grey": (150, 150, 150)}
LEG_RGB = ((60, 55, 50), (150, 110, 95), (30, 30, 30), (110, 110, 110))


@dataclass(frozen=True)
class BBox:
    """Bird bounding box in pixels of the saved image."""

    x: float
    y: float
    w: float
    h: float


def shade(rgb: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    """Small hue/saturation/value jitter of a palette colour (never enough to reach another one)."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    h = (h + rng.uniform(-0.012, 0.012)) % 1.0
    s = min(1.0, s * rng.uniform(0.92, 1.06))
    v = min(1.0, v * rng.uniform(0.9, 1.08))
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _colours(species: Species, rng: np.random.Generator) -> Colours:
    def pal(group: str) -> tuple[int, int, int]:
        return shade(PALETTE[species[group]], rng)

    return Colours(
        crown=pal("has_crown_color"),
        upper=pal("has_upperparts_color"),
        breast=pal("has_breast_color"),
        wing=pal("has_wing_color"),
        bill=shade(BILL_RGB[species["has_bill_color"]], rng),
        wing_mark=shade(PALETTE[contrast_colour(species["has_wing_color"])], rng),
        breast_mark=shade(PALETTE[contrast_colour(species["has_breast_color"])], rng),
        eye_ring=shade(PALETTE["white"], rng),
        legs=LEG_RGB[int(rng.integers(len(LEG_RGB)))],
    )


def _place(lo: float, hi: float, canvas: float, rng: np.random.Generator) -> float:
    """Offset for a span [lo, hi] (at offset 0) so it lies inside the canvas with a margin,
    or is centred when it does not fit."""
    m = MARGIN * canvas
    a, b = m - lo, canvas - m - hi
    return rng.uniform(a, b) if a < b else (canvas - lo - hi) / 2


def render(species: Species, size: int, rng: np.random.Generator) -> tuple[Image.Image, BBox]:
    """The image (RGB, size × size) and the bird's bounding box."""
    canvas = size * SUPERSAMPLE
    colours = _colours(species, rng)
    u = canvas * SIZE_FRACTION[species["has_size"]] * rng.uniform(*SCALE_JITTER)
    pose = Pose(u=u, angle=math.radians(rng.uniform(*TILT_DEG)), facing=1 if rng.random() < 0.5 else -1)
    shapes = bird_shapes(species, colours, pose, rng)
    x0, y0, x1, y1 = extent(shapes)
    dx, dy = _place(x0, x1, canvas, rng), _place(y0, y1, canvas, rng)
    shapes = [s.moved(dx, dy) for s in shapes]

    # Backgrounds are soft, so they are made at the output size and only the bird is supersampled.
    img = background(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))], rng, size)
    img = img.resize((canvas, canvas), Image.Resampling.BILINEAR)
    foot_x, foot_y = feet(replace(pose, cx=dx, cy=dy))
    perch = PERCHES[int(rng.choice(len(PERCHES), p=PERCH_P))]
    if perch == "ground" and foot_y < 0.62 * canvas:
        perch = "branch"  # ground this high would look like a wall
    if perch == "branch":
        draw_branch(img, rng, (foot_x, foot_y), u)
    elif perch == "ground":
        draw_ground(img, rng, foot_y, u)

    layer = rasterise(shapes, canvas)
    box = layer.getchannel("A").getbbox()
    img = Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")
    if box is not None and rng.random() < P_OCCLUDED:
        occlude(img, rng, box, u)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    img = relight(img, rng)
    if box is None:
        raise AssertionError("bird outside the canvas")
    bx0, by0, bx1, by1 = (v / SUPERSAMPLE for v in box)
    return img, BBox(bx0, by0, bx1 - bx0, by1 - by0)
