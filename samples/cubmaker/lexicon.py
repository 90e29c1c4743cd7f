"""The words of the sample world's captions, as data: which nouns name which part, which modifiers
name which value, and one word per value for edits.

`LEXICON` is written into dataset.json and from there into the models' classes.json; the parser that
reads captions with it is training/fgtrain/lexicon.py (Python) and textenc/lexicon (Go, the studio's
scorer), held equal by the test vectors in testdata/lexicon.json.
"""

from __future__ import annotations

from typing import Mapping

from .attributes import COLOURS, GROUPS

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
