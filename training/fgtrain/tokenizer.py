"""The contract tokenizer and vocabulary (see docs/model-contract.md and training/SPEC.md).

Rules, in this order (the Go tokenizer in `textenc` implements the same and is checked against
`golden/tokenizer.json`):

1. drop every non-ASCII character (code point > 127), so "café" becomes "caf";
2. lower-case the remaining ASCII letters;
3. split on runs of ``[a-z0-9_]`` (everything else separates words);
4. map words to ids; unknown words are dropped and reported;
5. keep the first ``max_words`` known words; the rest are dropped and reported.

A caption with no known word is an error (an all-masked attention would give NaN).

Dropping non-ASCII before lower-casing keeps the rules independent of Unicode case tables
(e.g. the Kelvin sign U+212A lower-cases to an ASCII "k" in both Python and Go; here it is dropped).
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field

PAD = "<pad>"
PATTERN = "[a-z0-9_]+"
MAX_WORDS = 18
_WORD_RE = re.compile(PATTERN)


def tokenize(text: str) -> list[str]:
    """Split a caption into words following the contract rules (no vocabulary look-up)."""
    ascii_only = "".join(ch for ch in text if ord(ch) < 128)
    return _WORD_RE.findall(ascii_only.lower())


class NoKnownWordError(ValueError):
    """Raised when a caption has no word in the vocabulary."""


@dataclass
class Encoded:
    ids: list[int]
    unknown: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class Vocab:
    """word -> id mapping; id 0 is padding. Ids are sorted by frequency (desc), ties alphabetical."""

    def __init__(self, words: dict[str, int], max_words: int = MAX_WORDS):
        if words.get(PAD) != 0:
            raise ValueError("vocab: %r must have id 0" % PAD)
        ids = sorted(words.values())
        if ids != list(range(len(ids))):
            raise ValueError("vocab: ids must be 0..N-1 without gaps")
        self.word2id = dict(words)
        self.id2word = [""] * len(ids)
        for w, i in words.items():
            self.id2word[i] = w
        self.max_words = int(max_words)

    @classmethod
    def build(cls, captions, max_words: int = MAX_WORDS, min_count: int = 1) -> "Vocab":
        counts = collections.Counter()
        for c in captions:
            counts.update(tokenize(c))
        kept = [(w, n) for w, n in counts.items() if n >= min_count and w != PAD]
        kept.sort(key=lambda wn: (-wn[1], wn[0]))
        words = {PAD: 0}
        for i, (w, _) in enumerate(kept, start=1):
            words[w] = i
        return cls(words, max_words)

    def __len__(self) -> int:
        return len(self.id2word)

    def __contains__(self, word: str) -> bool:
        return word in self.word2id

    def encode(self, caption: str) -> Encoded:
        """Tokenize and map a caption. Raises NoKnownWordError if no word is known."""
        enc = Encoded(ids=[])
        for w in tokenize(caption):
            i = self.word2id.get(w)
            if i is None or i == 0:
                enc.unknown.append(w)
            elif len(enc.ids) < self.max_words:
                enc.ids.append(i)
            else:
                enc.dropped.append(w)
        if not enc.ids:
            raise NoKnownWordError("caption has no known word: %r" % caption)
        return enc

    def encode_padded(self, caption: str, length: int | None = None) -> tuple[list[int], int]:
        """ids padded with 0 to `length` (default max_words), and the number of real words."""
        length = self.max_words if length is None else length
        ids = self.encode(caption).ids[:length]
        return ids + [0] * (length - len(ids)), len(ids)

    def decode(self, ids) -> list[str]:
        return [self.id2word[int(i)] for i in ids if int(i) != 0]

    def to_json(self) -> dict:
        return {
            "tokenizer": {"lowercase": True, "pattern": PATTERN, "ascii_only": True,
                          "max_words": self.max_words, "truncate": "first"},
            "padding_id": 0,
            "words": {w: i for i, w in enumerate(self.id2word)},
        }

    @classmethod
    def from_json(cls, obj: dict) -> "Vocab":
        tok = obj.get("tokenizer", {})
        return cls(obj["words"], tok.get("max_words", MAX_WORDS))

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=1, sort_keys=False)
            f.write("\n")

    @classmethod
    def load(cls, path) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f))


# Captions for golden/tokenizer.json: each exercises a rule of the contract.
GOLDEN_CAPTIONS = [
    "this bird has a red crown and a short pointed bill",
    "THIS BIRD Has A Red CROWN.",
    "a small bird, with white wings; and a black-and-yellow breast!!!",
    "the café bird has a naïve look and a crème belly",
    "a bird with zzqxunknownword feathers and a gribblefoo tail",
    "this very small bird has a red crown and a short pointed bill and white wings and a black "
    "breast and yellow feet and a long tail",
    "  \t leading and trailing whitespace, tabs\tand\nnewlines  ",
    "bird_with_underscores and 123 digits 2nd",
    "\u212a\u0130 red",  # Kelvin sign and dotted capital I: dropped as non-ASCII, not lower-cased
    "zzqx gribblefoo",  # no known word: an error
    "",  # empty: an error
]


def golden_tokenizer(vocab: Vocab, captions=None) -> list[dict]:
    """Rows for golden/tokenizer.json; a caption with no known word gets "error"."""
    if captions is None:
        captions = list(GOLDEN_CAPTIONS)
        known = vocab.id2word[1:]
        if known:
            # built from the vocabulary itself, so the rows hit known words on any data set
            long = [known[i % len(known)] for i in range(vocab.max_words + 7)]
            captions.append(" ".join(long))
            captions.append(", ".join(w.upper() for w in long[:5]) + " zzqx " + long[0].title() + ".")
    rows = []
    for c in captions:
        try:
            e = vocab.encode(c)
            rows.append({"caption": c, "ids": e.ids, "unknown": e.unknown, "dropped": e.dropped})
        except NoKnownWordError:
            words = tokenize(c)
            rows.append({"caption": c, "ids": [], "unknown": words, "dropped": [],
                         "error": "no known word"})
    return rows
