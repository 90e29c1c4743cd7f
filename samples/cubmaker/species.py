"""Designs the classes: base species, siblings one or two attributes apart, names, and the held-out split.

Everything is a pure function of (seed, number of classes, held-out fraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .attributes import GROUPS, Species, differing_groups, species_vector

# Stream tag for the class-design generator (images and captions use other tags; see maker.py).
STREAM_CLASSES = 1

# A base species differs from every earlier class in at least this many groups.
MIN_BASE_DISTANCE = 4
# Probability that a sibling changes one attribute of its base (else two).
P_ONE_CHANGE = 0.7
# Relative chance that a group is the one a sibling changes.
CHANGE_WEIGHTS: Mapping[str, float] = {
    "has_bill_shape": 1.0,
    "has_bill_color": 0.5,
    "has_crown_color": 1.2,
    "has_upperparts_color": 0.8,
    "has_breast_color": 1.2,
    "has_breast_pattern": 1.0,
    "has_wing_color": 1.0,
    "has_wing_pattern": 1.0,
    "has_tail_shape": 1.0,
    "has_eye_ring": 0.7,
    "has_size": 0.7,
}

# Base species favour natural-looking colours for the large parts (siblings may change them freely).
BASE_COLOUR_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "has_upperparts_color": {"brown": 3, "grey": 3, "green": 2, "black": 2, "blue": 2},
    "has_wing_color": {"brown": 3, "grey": 2, "black": 3, "blue": 2, "green": 2, "white": 2},
    "has_breast_color": {"white": 3, "yellow": 2, "orange": 2, "grey": 2, "red": 2},
}

BILL_NOUNS = {
    "all-purpose": "Warbler",
    "hooked": "Hookbill",
    "needle": "Needlebill",
    "cone": "Grosbeak",
    "spatulate": "Spoonbill",
}
SIZE_WORDS = {"small": "Little", "medium": "Common", "large": "Great"}
EYE_RING_WORDS = {"yes": "Spectacled", "no": "Bare_eyed"}
PATTERN_WORDS = {
    "solid": "Plain",
    "streaked": "Streak",
    "striped": "Stripe",
    "spotted": "Spot",
    "wingbars": "Bar",
}
TAIL_WORDS = {"notched": "Fork", "rounded": "Round", "pointed": "Long", "fan-shaped": "Fan"}

# Groups a name may add, most preferred first, to tell a class from the others.
NAME_PRIORITY = (
    "has_breast_color",
    "has_wing_color",
    "has_upperparts_color",
    "has_size",
    "has_wing_pattern",
    "has_tail_shape",
    "has_breast_pattern",
    "has_eye_ring",
    "has_bill_color",
)
# Word order in a name.
NAME_ORDER = (
    "has_size",
    "has_eye_ring",
    "has_crown_color",
    "has_breast_pattern",
    "has_breast_color",
    "has_wing_pattern",
    "has_wing_color",
    "has_upperparts_color",
    "has_tail_shape",
    "has_bill_color",
)


@dataclass(frozen=True)
class ClassSpec:
    index: int  # 0-based; class id = index + 1
    name: str  # e.g. "Red_crowned_Hookbill"
    attributes: Mapping[str, str]  # group → value
    family: int  # index of the base species it was derived from
    heldout: bool  # unseen class (Reed et al. testclasses.txt)

    @property
    def class_id(self) -> int:
        return self.index + 1

    @property
    def dirname(self) -> str:
        """CUB directory name, e.g. "001.Red_crowned_Hookbill"."""
        return f"{self.class_id:03d}.{self.name}"


def design_classes(seed: int, n_classes: int, heldout_frac: float) -> list[ClassSpec]:
    """The classes of a data set, in id order."""
    if n_classes < 2:
        raise ValueError("need at least 2 classes")
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_CLASSES]))
    attrs, families = _make_species(rng, n_classes)
    names = [_name(i, attrs) for i in range(n_classes)]
    if len(set(names)) != len(names):
        raise AssertionError("class names are not unique")
    heldout = _choose_heldout(rng, attrs, families, round(n_classes * heldout_frac))
    return [
        ClassSpec(i, names[i], attrs[i], families[i], i in heldout) for i in range(n_classes)
    ]


def _random_species(rng: np.random.Generator) -> dict[str, str]:
    out = {}
    for g, values in GROUPS.items():
        w = np.array([BASE_COLOUR_WEIGHTS.get(g, {}).get(v, 1.0) for v in values], dtype=float)
        out[g] = values[rng.choice(len(values), p=w / w.sum())]
    return out


def _make_species(rng: np.random.Generator, n: int) -> tuple[list[dict[str, str]], list[int]]:
    n_bases = math.ceil(n / 4)
    sizes = [n // n_bases + (1 if i < n % n_bases else 0) for i in range(n_bases)]
    attrs: list[dict[str, str]] = []
    families: list[int] = []
    seen: set[tuple[int, ...]] = set()
    groups = list(GROUPS)
    weights = np.array([CHANGE_WEIGHTS[g] for g in groups])
    for fam, size in enumerate(sizes):
        base = _random_species(rng)
        while any(len(differing_groups(base, a)) < MIN_BASE_DISTANCE for a in attrs):
            base = _random_species(rng)
        attrs.append(base)
        families.append(fam)
        seen.add(species_vector(base))
        changed: set[str] = set()
        for _ in range(size - 1):
            while True:
                k = 1 if rng.random() < P_ONE_CHANGE else 2
                # Prefer groups no sibling of this family changed yet, so siblings spread out.
                w = weights * np.array([0.2 if g in changed else 1.0 for g in groups])
                picked = rng.choice(len(groups), size=k, replace=False, p=w / w.sum())
                sib = dict(base)
                for gi in picked:
                    g = groups[gi]
                    others = [v for v in GROUPS[g] if v != base[g]]
                    sib[g] = others[rng.integers(len(others))]
                vec = species_vector(sib)
                if vec not in seen:
                    break
            seen.add(vec)
            changed.update(groups[gi] for gi in picked)
            attrs.append(sib)
            families.append(fam)
    return attrs, families


def _word(group: str, value: str) -> str:
    if group == "has_size":
        return SIZE_WORDS[value]
    if group == "has_eye_ring":
        return EYE_RING_WORDS[value]
    if group == "has_tail_shape":
        return f"{TAIL_WORDS[value]}_tailed"
    part = {
        "has_crown_color": "crowned",
        "has_breast_color": "breasted",
        "has_breast_pattern": "breasted",
        "has_wing_color": "winged",
        "has_wing_pattern": "winged",
        "has_upperparts_color": "backed",
        "has_bill_color": "billed",
    }[group]
    word = PATTERN_WORDS.get(value, value) if group.endswith("_pattern") else value
    return f"{word.capitalize()}_{part}"


def _name(i: int, attrs: Sequence[Species]) -> str:
    """Crown colour + bill noun, plus the fewest modifiers that tell the class from all others."""
    me = attrs[i]
    chosen = {"has_crown_color", "has_bill_shape"}
    others = [a for j, a in enumerate(attrs) if j != i and all(a[g] == me[g] for g in chosen)]
    while others:
        best = max(
            (g for g in NAME_PRIORITY if g not in chosen),
            key=lambda g: sum(a[g] != me[g] for a in others),  # first best wins ties
        )
        chosen.add(best)
        others = [a for a in others if a[best] == me[best]]
    words = [_word(g, me[g]) for g in NAME_ORDER if g in chosen]
    return "_".join(words + [BILL_NOUNS[me["has_bill_shape"]]])


def _choose_heldout(
    rng: np.random.Generator, attrs: Sequence[Species], families: Sequence[int], target: int
) -> set[int]:
    """Unseen classes: every value they use also occurs in some seen class, so seen vocabulary
    describes them. Candidates are tried in a seeded random order, at most one class per family on
    the first pass, so held-out classes keep seen relatives."""
    n = len(attrs)
    target = max(0, min(target, n - 1))
    heldout: set[int] = set()
    order = [int(i) for i in rng.permutation(n)]
    per_family: dict[int, int] = {}
    for limit in (1, n):
        for c in order:
            if len(heldout) >= target:
                return heldout
            if c in heldout or per_family.get(families[c], 0) >= limit:
                continue
            trial = heldout | {c}
            covered = {(g, attrs[j][g]) for j in range(n) if j not in trial for g in GROUPS}
            if all((g, attrs[j][g]) in covered for j in trial for g in GROUPS):
                heldout = trial
                per_family[families[c]] = per_family.get(families[c], 0) + 1
    return heldout
