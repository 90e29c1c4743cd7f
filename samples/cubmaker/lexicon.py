"""Reads the attributes a caption names: the words of the sample world, and a small parser.

A caption says each attribute as modifiers before a part noun ("a thick conical black bill",
"a streaked red chest") or as a mark after it ("wings with white bars"). The parser keeps the
modifiers seen since the last part noun and hands them to the next one; a mark noun (streaks, spots,
stripes, bars, "wing bars") sets the pattern of the last part that has one and drops the modifiers
before it (the colour of the marks). Words it does not know are skipped.

The lexicon is data (`LEXICON`, written into dataset.json and the models' classes.json) so that the
studio's Go scorer reads prompts with the same rules; `golden_cases` gives the test vectors both
sides check.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from .attributes import COLOURS, GROUPS

TOKEN = re.compile(r"[a-z0-9_]+")

# part noun → part
PARTS: Mapping[str, str] = {
    "crown": "crown", "cap": "crown", "head": "crown",
    "upperparts": "upper", "back": "upper", "body": "upper",
    "breast": "breast", "chest": "breast",
    "wing": "wing", "wings": "wing",
    "bill": "bill", "beak": "bill",
    "tail": "tail",
    "ring": "eye", "rings": "eye",
    "bird": "size",
}
# part → aspect → attribute group
PART_GROUPS: Mapping[str, Mapping[str, str]] = {
    "crown": {"color": "has_crown_color"},
    "upper": {"color": "has_upperparts_color"},
    "breast": {"color": "has_breast_color", "pattern": "has_breast_pattern"},
    "wing": {"color": "has_wing_color", "pattern": "has_wing_pattern"},
    "bill": {"color": "has_bill_color", "shape": "has_bill_shape"},
    "tail": {"shape": "has_tail_shape"},
    "eye": {"ring": "has_eye_ring"},
    "size": {"size": "has_size"},
}
# modifier word → (aspect, value); shape words depend on the part (SHAPES)
MODIFIERS: Mapping[str, tuple[str, str]] = {
    **{c: ("color", c) for c in COLOURS},
    "plain": ("pattern", "solid"), "streaked": ("pattern", "streaked"),
    "spotted": ("pattern", "spotted"), "striped": ("pattern", "striped"),
    "small": ("size", "small"), "tiny": ("size", "small"), "little": ("size", "small"),
    "medium": ("size", "medium"), "large": ("size", "large"), "big": ("size", "large"),
    "no": ("ring", "no"), "without": ("ring", "no"),
}
SHAPES: Mapping[str, Mapping[str, str]] = {
    "bill": {"pointed": "all-purpose", "sharp": "all-purpose", "hooked": "hooked", "hook": "hooked",
             "curved": "hooked", "needle": "needle", "thin": "needle", "slender": "needle",
             "conical": "cone", "cone": "cone", "stout": "cone", "thick": "cone",
             "spoon": "spatulate", "spatulate": "spatulate", "flat": "spatulate"},
    "tail": {"notched": "notched", "forked": "notched", "rounded": "rounded", "round": "rounded",
             "pointed": "pointed", "sharp": "pointed", "fan": "fan-shaped", "fanned": "fan-shaped"},
}
# mark noun after a part → its pattern
MARKS: Mapping[str, str] = {"streaks": "streaked", "spots": "spotted", "stripes": "striped",
                            "wingbars": "wingbars", "bars": "wingbars"}
# One word per value, to change an attribute of a caption in place (edit tests, AUROC check).
EDIT_WORDS: Mapping[str, Mapping[str, str]] = {
    **{g: {c: c for c in COLOURS} for g in ("has_crown_color", "has_upperparts_color",
                                            "has_breast_color", "has_wing_color")},
    "has_bill_color": {"black": "black", "orange": "orange", "grey": "grey"},
    "has_bill_shape": {"all-purpose": "pointed", "hooked": "hooked", "needle": "needle",
                       "cone": "conical", "spatulate": "spatulate"},
    "has_tail_shape": {"notched": "notched", "rounded": "rounded", "pointed": "pointed",
                       "fan-shaped": "fanned"},
    "has_breast_pattern": {"solid": "plain", "streaked": "streaked", "spotted": "spotted"},
    "has_wing_pattern": {"solid": "plain", "striped": "striped", "spotted": "spotted"},
    "has_size": {"small": "small", "medium": "medium", "large": "large"},
}

LEXICON = {
    "version": 1,
    "parts": dict(PARTS),
    "part_groups": {p: dict(a) for p, a in PART_GROUPS.items()},
    "modifiers": {w: list(v) for w, v in MODIFIERS.items()},
    "shapes": {p: dict(m) for p, m in SHAPES.items()},
    "marks": dict(MARKS),
    "edit_words": {g: dict(m) for g, m in EDIT_WORDS.items()},
}


def tokens(text: str) -> list[str]:
    """The contract tokenizer's words (lower case, ASCII runs of letters, digits, underscore)."""
    return TOKEN.findall(text.lower().encode("ascii", "ignore").decode())


def parse(text: str) -> dict[str, tuple[str, int]]:
    """group → (value, token index of the word that said it) for every attribute the caption names.
    A later mention of a group overrides an earlier one."""
    out: dict[str, tuple[str, int]] = {}
    pending: list[tuple[str, int]] = []
    last_part = None
    toks = tokens(text)
    for i, w in enumerate(toks):
        if w in PARTS and i + 1 < len(toks) and toks[i + 1] in MARKS:
            continue  # "wing bars": one mark noun
        if w in PARTS:
            part = PARTS[w]
            groups = PART_GROUPS[part]
            for word, j in pending:
                if part in SHAPES and word in SHAPES[part]:
                    out[groups["shape"]] = (SHAPES[part][word], j)
                    continue
                aspect, value = MODIFIERS.get(word, (None, None))
                if aspect in groups and aspect != "ring":
                    out[groups[aspect]] = (value, j)
            if part == "eye":
                negated = [j for word, j in pending if MODIFIERS.get(word, ("",))[0] == "ring"]
                out["has_eye_ring"] = ("no", negated[-1]) if negated else ("yes", i)
            pending, last_part = [], part
        elif w in MARKS:
            if last_part is not None and "pattern" in PART_GROUPS[last_part]:
                value = MARKS[w]
                if value in GROUPS[PART_GROUPS[last_part]["pattern"]]:
                    out[PART_GROUPS[last_part]["pattern"]] = (value, i)
            pending = []  # the colour before a mark is the mark's, not the part's
        elif w in MODIFIERS or any(w in m for m in SHAPES.values()):
            pending.append((w, i))
    return out


def named(text: str) -> dict[str, str]:
    """group → value named by the caption."""
    return {g: v for g, (v, _) in parse(text).items()}


def edit(text: str, group: str, value: str) -> str | None:
    """The caption with the word that names `group` replaced by one naming `value`, or None when the
    caption does not name the group with a single replaceable word."""
    found = parse(text).get(group)
    words = EDIT_WORDS.get(group, {})
    if found is None or value not in words:
        return None
    toks = tokens(text)
    toks[found[1]] = words[value]
    new = " ".join(toks)
    return new if named(new).get(group) == value else None


def golden_cases(captions: Sequence[str]) -> list[dict]:
    """Test vectors: caption → named attributes."""
    return [{"caption": c, "named": named(c)} for c in captions]
