"""Captions in the style of Reed et al.'s CUB descriptions, written from a class's attributes.

Most captions name every attribute that tells the class from its nearest siblings (classes one or two
attributes away), so that a caption picks out its class; the rest name a random few. Captions stay within
`MAX_WORDS` tokens (AttnGAN truncates at 18), dropping optional parts first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .attributes import GROUPS, Species, contrast_colour, differing_groups

STREAM_CAPTIONS = 3
MAX_WORDS = 18
P_DISTINGUISHING = 0.75  # share of captions that name all distinguishing attributes
TOKEN = re.compile(r"[a-z0-9_]+")

BILL_WORD = ("bill", "beak")
BILL_SHAPE = {
    "all-purpose": ("short pointed", "small pointed", "short sharp"),
    "hooked": ("hooked", "curved hooked", "hook-shaped"),
    "needle": ("long needle-like", "long thin", "long slender"),
    "cone": ("thick conical", "thick cone-shaped", "stout conical"),
    "spatulate": ("spoon-shaped", "flat spatulate", "spoon-tipped"),
}
TAIL = {
    "notched": ("notched tail", "forked tail"),
    "rounded": ("rounded tail", "round tail"),
    "pointed": ("long pointed tail", "long sharp tail"),
    "fan-shaped": ("fan-shaped tail", "wide fanned tail", "broad fan tail"),
}
SIZE = {"small": ("small", "tiny", "little"), "medium": ("medium-sized", "medium"),
        "large": ("large", "big")}
CROWN = ("crown", "head", "crown", "cap", "head top")
UPPER = ("upperparts", "back", "body", "back")
BREAST = ("breast", "chest", "breast", "chest")
# Sentence forms of crowd-sourced captions. Every attribute is said as modifiers before its part noun
# ("a red crown", "wings with white bars"), the form that samples.cubmaker.lexicon reads back.
TEMPLATES = (
    "this {size}bird has {parts}",
    "a {size}bird with {parts}",
    "this is a {size}bird with {parts}",
    "the {size}bird has {parts}",
    "{size}bird with {parts}",
    "this {size}bird has {parts} and {last}",
    "a {size}bird that has {parts}",
    "this {size}bird has {first}. it also has {rest}",
    "{first} on this {size}bird, which has {rest}",
    "look at this {size}bird with {parts}",
    "there is a {size}bird with {parts}",
    "it is a {size}bird with {parts}",
)
COMPACT = "{size}bird with {parts}"  # the fewest words, for captions that must say much

# A caption is built from units: one per group, except that colour and pattern of the same part,
# and shape and colour of the bill, make one phrase.
UNITS = {
    "has_crown_color": "crown",
    "has_upperparts_color": "upper",
    "has_breast_color": "breast",
    "has_breast_pattern": "breast",
    "has_wing_color": "wing",
    "has_wing_pattern": "wing",
    "has_bill_shape": "bill",
    "has_bill_color": "bill",
    "has_tail_shape": "tail",
    "has_eye_ring": "eye",
    "has_size": "size",
}


@dataclass(frozen=True)
class Distinguishing:
    """What a caption must say to tell a class from its nearest siblings."""

    always: frozenset[str]  # groups that alone separate it from a sibling one attribute away
    either: tuple[tuple[str, str], ...]  # pairs separating it from siblings two attributes away


def distinguishing(classes: Sequence[Species]) -> list[Distinguishing]:
    out = []
    for i, me in enumerate(classes):
        always: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for j, other in enumerate(classes):
            if i == j:
                continue
            diff = differing_groups(me, other)
            if len(diff) == 1:
                always.add(diff[0])
            elif len(diff) == 2:
                pairs.append((diff[0], diff[1]))
        either = tuple(p for p in pairs if not (set(p) & always))
        out.append(Distinguishing(frozenset(always), either))
    return out


def word_count(text: str) -> int:
    return len(TOKEN.findall(text.lower()))


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _a(phrase: str) -> str:
    """The phrase with its indefinite article."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _phrase(unit: str, groups: set[str], sp: Species, rng: np.random.Generator, short: bool) -> str:
    """The phrase for one unit, naming the groups of that unit that are in `groups`."""
    if unit == "crown":
        return _a(f"{sp['has_crown_color']} {_pick(rng, CROWN)}")
    if unit == "upper":
        part = _pick(rng, UPPER)
        text = f"{sp['has_upperparts_color']} {part}"
        return text if part == "upperparts" else _a(text)
    if unit == "tail":
        return f"a {_pick(rng, TAIL[sp['has_tail_shape']])}"
    if unit == "eye":
        if sp["has_eye_ring"] == "yes":
            return _pick(rng, ("a white eye ring", "white rings around its eyes", "a white eye-ring"))
        return _pick(rng, ("no eye ring", "plain eyes without a ring"))
    if unit == "bill":
        shape = _pick(rng, BILL_SHAPE[sp["has_bill_shape"]]) + " " if "has_bill_shape" in groups else ""
        colour = sp["has_bill_color"] + " " if "has_bill_color" in groups else ""
        return _a(f"{shape}{colour}{_pick(rng, BILL_WORD)}")
    if unit == "breast":
        colour = sp["has_breast_color"] if "has_breast_color" in groups else ""
        pattern = sp["has_breast_pattern"] if "has_breast_pattern" in groups else None
        mark = "" if short else contrast_colour(sp["has_breast_color"]) + " "
        part = _pick(rng, BREAST)
        noun = f"{colour} {part}".strip()
        if pattern in (None, "solid"):
            plain = pattern == "solid" and (not colour or rng.random() < 0.5)
            return f"a plain {noun}" if plain else _a(noun)
        word = {"streaked": "streaks", "spotted": "spots"}[pattern]
        if not colour:
            mark = ""
        if rng.random() < 0.5:
            return f"a {pattern} {noun}"
        return f"{_a(noun)} with {mark}{word}"
    if unit == "wing":
        colour = sp["has_wing_color"] + " " if "has_wing_color" in groups else ""
        pattern = sp["has_wing_pattern"] if "has_wing_pattern" in groups else None
        mark = "" if short or not colour else contrast_colour(sp["has_wing_color"]) + " "
        if pattern is None:
            return f"{colour}wings"
        if pattern == "solid":
            return f"plain {colour}wings"
        if pattern == "wingbars":
            bars = _pick(rng, ("wingbars", "wing bars"))
            return f"{colour}wings with {mark}{bars}"
        word = {"striped": "stripes", "spotted": "spots"}[pattern]
        if rng.random() < 0.5:
            return f"{pattern} {colour}wings"
        return f"{colour}wings with {mark}{word}"
    raise ValueError(f"unknown unit {unit!r}")


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _compose(groups: list[str], sp: Species, rng: np.random.Generator, short: bool,
             compact: bool = False) -> str:
    units: list[str] = []
    for g in groups:  # first mention of a unit fixes its place
        if UNITS[g] not in units and UNITS[g] != "size":
            units.append(UNITS[g])
    gs = set(groups)
    phrases = [_phrase(u, gs, sp, rng, short) for u in units]
    size = _pick(rng, SIZE[sp["has_size"]]) + " " if "has_size" in gs else ""
    template = COMPACT if compact else _pick(rng, TEMPLATES)
    if "{last}" in template:
        if len(phrases) < 3:
            template = TEMPLATES[0]
        else:
            return template.format(size=size, parts=", ".join(phrases[:-1]), last=phrases[-1])
    if "{first}" in template:
        if len(phrases) < 2:
            template = TEMPLATES[0]
        else:
            return template.format(size=size, first=phrases[0], rest=_join(phrases[1:]))
    text = template.format(size=size, parts=_join(phrases) if phrases else "no markings")
    return text.strip()


def caption(sp: Species, need: Distinguishing, rng: np.random.Generator) -> str:
    required: set[str] = set()
    if rng.random() < P_DISTINGUISHING:
        required.update(need.always)
        for a, b in need.either:
            if a not in required and b not in required:
                required.add(a if rng.random() < 0.5 else b)
    others = [g for g in GROUPS if g not in required]
    # Loose captions name one to four attributes, as short crowd-sourced ones do.
    n_extra = int(rng.integers(1, 4)) if required else int(rng.integers(1, 5))
    extra = [others[int(k)] for k in rng.permutation(len(others))[:n_extra]]
    chosen = sorted(required) + extra  # sorted: set order is not reproducible across processes
    order_all = [chosen[int(k)] for k in rng.permutation(len(chosen))]
    for short, compact in ((False, False), (True, False), (True, True)):
        order = list(order_all)
        while True:
            text = _compose(order, sp, rng, short, compact)
            if word_count(text) <= MAX_WORDS:
                return text
            optional = [g for g in order if g not in required]
            if not optional:
                break
            order.remove(optional[-1])
    raise AssertionError(f"no caption fits {MAX_WORDS} words for {dict(sp)}")


def captions(sp: Species, need: Distinguishing, seed: int, class_index: int, image_index: int,
             count: int) -> list[str]:
    """`count` captions for one image, a pure function of its seed and indices."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_CAPTIONS, class_index, image_index]))
    return [caption(sp, need, rng) for _ in range(count)]
