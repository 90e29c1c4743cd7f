"""Reads the attributes a caption names, with a data set's lexicon (dataset.json `lexicon`, copied into
the models' classes.json; samples/cubmaker/lexicon.py writes the sample world's).

A caption says each attribute as modifiers before a part noun ("a thick conical black bill",
"a streaked red chest") or as a mark after it ("wings with white bars"). The parser keeps the
modifiers seen since the last part noun and hands them to the next one; a mark noun (streaks, spots,
stripes, bars, "wing bars") sets the pattern of the last part that has one and drops the modifiers
before it (the colour of the marks). Words it does not know are skipped. The studio's Go scorer
(textenc/lexicon) implements the same rules; samples/cubmaker/testdata/lexicon.json holds the test
vectors both check.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

TOKEN = re.compile(r"[a-z0-9_]+")


def tokens(text: str) -> list[str]:
    """The contract tokenizer's words (lower case, ASCII runs of letters, digits, underscore)."""
    return TOKEN.findall(text.lower().encode("ascii", "ignore").decode())


class Lexicon:
    def __init__(self, data: Mapping):
        self.parts: Mapping[str, str] = data["parts"]
        self.part_groups: Mapping[str, Mapping[str, str]] = data["part_groups"]
        self.modifiers = {w: tuple(v) for w, v in data["modifiers"].items()}
        self.shapes: Mapping[str, Mapping[str, str]] = data["shapes"]
        self.marks: Mapping[str, str] = data["marks"]
        self.edit_words: Mapping[str, Mapping[str, str]] = data.get("edit_words", {})
        self._shape_words = {w for m in self.shapes.values() for w in m}

    def parse(self, text: str) -> dict[str, tuple[str, int]]:
        """group → (value, token index of the word that said it) for every attribute the caption
        names. A later mention of a group overrides an earlier one."""
        out: dict[str, tuple[str, int]] = {}
        pending: list[tuple[str, int]] = []
        last_part = None
        toks = tokens(text)
        for i, w in enumerate(toks):
            if w in self.parts and i + 1 < len(toks) and toks[i + 1] in self.marks:
                continue  # "wing bars": one mark noun
            if w in self.parts:
                part = self.parts[w]
                groups = self.part_groups[part]
                for word, j in pending:
                    if part in self.shapes and word in self.shapes[part]:
                        out[groups["shape"]] = (self.shapes[part][word], j)
                        continue
                    aspect, value = self.modifiers.get(word, (None, None))
                    if aspect in groups and aspect != "ring":
                        out[groups[aspect]] = (value, j)
                if "ring" in groups:
                    negated = [j for word, j in pending if self.modifiers.get(word, ("",))[0] == "ring"]
                    out[groups["ring"]] = ("no", negated[-1]) if negated else ("yes", i)
                pending, last_part = [], part
            elif w in self.marks:
                pattern = self.part_groups[last_part].get("pattern") if last_part else None
                if pattern is not None:
                    out[pattern] = (self.marks[w], i)
                pending = []  # the colour before a mark is the mark's, not the part's
            elif w in self.modifiers or w in self._shape_words:
                pending.append((w, i))
        return out

    def named(self, text: str) -> dict[str, str]:
        """group → value named by the caption."""
        return {g: v for g, (v, _) in self.parse(text).items()}

    def edit(self, text: str, group: str, value: str) -> str | None:
        """The caption with the word that names `group` replaced by one naming `value`, or None when
        the caption does not name the group with a single replaceable word."""
        found = self.parse(text).get(group)
        words = self.edit_words.get(group, {})
        if found is None or value not in words:
            return None
        toks = tokens(text)
        toks[found[1]] = words[value]
        new = " ".join(toks)
        return new if self.named(new).get(group) == value else None

    def golden_cases(self, captions: Sequence[str]) -> list[dict]:
        """Test vectors: caption → named attributes."""
        return [{"caption": c, "named": self.named(c)} for c in captions]
