"""The attribute vocabulary: groups, their values, and the colour palette.

Names follow CUB-200-2011 (`has_<part>_<aspect>::<value>`). Everything here is an immutable constant.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

# Ten clearly different colours. Per-image shade jitter (render.py) stays far from the nearest neighbour.
PALETTE: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (205, 30, 35),
        "orange": (245, 135, 20),
        "yellow": (250, 215, 35),
        "green": (55, 150, 55),
        "blue": (35, 85, 205),
        "purple": (130, 50, 165),
        "brown": (125, 75, 35),
        "black": (25, 25, 28),
        "white": (242, 242, 236),
        "grey": (135, 135, 138),
    }
)
COLOURS: tuple[str, ...] = tuple(PALETTE)

BILL_COLOURS: tuple[str, ...] = ("black", "orange", "grey")

# Group order is the attribute-id order in attributes.txt; value order within a group too.
GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "has_bill_shape": ("all-purpose", "hooked", "needle", "cone", "spatulate"),
        "has_bill_color": BILL_COLOURS,
        "has_crown_color": COLOURS,
        "has_upperparts_color": COLOURS,
        "has_breast_color": COLOURS,
        "has_breast_pattern": ("solid", "streaked", "spotted"),
        "has_wing_color": COLOURS,
        "has_wing_pattern": ("solid", "striped", "spotted", "wingbars"),
        "has_tail_shape": ("notched", "rounded", "pointed", "fan-shaped"),
        "has_eye_ring": ("yes", "no"),
        "has_size": ("small", "medium", "large"),
    }
)

Species = Mapping[str, str]
"""A class: one value per group (group name → value)."""


def attribute_names() -> list[str]:
    """All attributes as `group::value`, in id order (attribute id = index + 1)."""
    return [f"{g}::{v}" for g, values in GROUPS.items() for v in values]


def attribute_ids() -> dict[tuple[str, str], int]:
    """(group, value) → 1-based attribute id."""
    ids: dict[tuple[str, str], int] = {}
    for g, values in GROUPS.items():
        for v in values:
            ids[(g, v)] = len(ids) + 1
    return ids


def species_vector(species: Species) -> tuple[int, ...]:
    """The class's value index per group, in group order; equal vectors mean equal classes."""
    return tuple(GROUPS[g].index(species[g]) for g in GROUPS)


def differing_groups(a: Species, b: Species) -> list[str]:
    """Groups in which two classes take different values, in group order."""
    return [g for g in GROUPS if a[g] != b[g]]


def contrast_colour(name: str) -> str:
    """Pattern colour drawn on a part of colour `name`: white on dark parts, black on light ones."""
    r, g, b = PALETTE[name]
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return "black" if luminance > 140 else "white"
