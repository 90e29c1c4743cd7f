"""The caption parser reads back exactly what the caption writer says, and edits change one group."""

from __future__ import annotations

import json
from pathlib import Path

from fgtrain.lexicon import Lexicon
from samples.cubmaker import captions
from samples.cubmaker.lexicon import LEXICON
from samples.cubmaker.species import design_classes

lexicon = Lexicon(LEXICON)
GOLDEN = Path(__file__).resolve().parents[1] / "testdata" / "lexicon.json"


def _captions(n_classes: int = 200, images: int = 2):
    classes = design_classes(0, n_classes, 0.25)
    need = captions.distinguishing([c.attributes for c in classes])
    for c in classes:
        for k in range(images):
            for text in captions.captions(c.attributes, need[c.index], 0, c.index, k, 10):
                yield c, text


def test_parser_reads_every_caption_as_its_class() -> None:
    n_named = 0
    for c, text in _captions():
        named = lexicon.named(text)
        assert named, text
        assert {g: v for g, v in named.items() if c.attributes[g] != v} == {}, text
        n_named += len(named)
    assert n_named > 0


def test_edit_changes_the_named_group_only() -> None:
    text = "this small bird has a red crown, a streaked white chest and a hooked black beak"
    assert lexicon.named(text) == {"has_size": "small", "has_crown_color": "red",
                                   "has_breast_pattern": "streaked", "has_breast_color": "white",
                                   "has_bill_shape": "hooked", "has_bill_color": "black"}
    edited = lexicon.edit(text, "has_crown_color", "blue")
    assert edited is not None
    after = lexicon.named(edited)
    assert after.pop("has_crown_color") == "blue"
    before = lexicon.named(text)
    before.pop("has_crown_color")
    assert after == before
    assert lexicon.edit(text, "has_tail_shape", "rounded") is None  # not named


def test_marks_take_the_pattern_not_the_colour() -> None:
    assert lexicon.named("green wings with white wing bars") == {
        "has_wing_color": "green", "has_wing_pattern": "wingbars"}
    assert lexicon.named("a chest with black spots") == {"has_breast_pattern": "spotted"}
    assert lexicon.named("plain eyes without a ring") == {"has_eye_ring": "no"}
    assert lexicon.named("white rings around its eyes") == {"has_eye_ring": "yes"}


def golden() -> dict:
    texts = [t for _, t in _captions(n_classes=40, images=1)][::7]
    texts += ["A RED-crowned bird!", "a bird", "wings", "a long thin bill and a long pointed tail",
              "café au lait with a blue cap", "spots", "no eye ring, big bird"]
    return {"lexicon": LEXICON, "cases": lexicon.golden_cases(texts)}


def test_golden_vectors_are_current() -> None:
    """samples/cubmaker/testdata/lexicon.json is what the Go scorer's tests read; regenerate with
    `PYTHONPATH=training python3 -m samples.cubmaker.tests.test_lexicon` when the lexicon changes."""
    assert json.loads(GOLDEN.read_text()) == json.loads(json.dumps(golden()))


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden(), indent=1, sort_keys=True) + "\n")
