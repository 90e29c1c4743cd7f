"""Writes the `studio eval --json` report of a generator (or the `--ladder` markdown of the judge) into
its model card, between markers, so a card shows the numbers the repository's evaluation measured.

    python3 scripts/eval_card.py samples/models/attngan-birds/MODEL_CARD.md out/attngan.json
    python3 scripts/eval_card.py samples/models/judge-birds/MODEL_CARD.md out/ladder.md
"""

from __future__ import annotations

import json
import re
import sys

BEGIN, END = "<!-- studio eval: begin -->", "<!-- studio eval: end -->"
ROWS = [  # key, reference key, what
    ("fd", "fd_real_floor", "Fréchet distance in the judge's feature space (↓); reference: two real halves"),
    ("precision", "precision_real", "precision, k = 3 (↑)"),
    ("recall", "recall_real", "recall, k = 3 (↑; noise raises it: see the judge's ladder)"),
    ("coverage", "coverage_real", "coverage, k = 3 (↑)"),
    ("top1", "top1_real", "judge top-1 = requested class (↑)"),
    ("attr_agreement_seen", "attr_agreement_seen_real", "named attributes the judge confirms, seen classes (↑)"),
    ("attr_agreement_heldout", "attr_agreement_heldout_real", "the same, held-out classes (↑)"),
    ("edit_success", "edit_success_real", "one attribute word changed: the judge reads the new value (↑)"),
    ("edit_keep", "edit_keep_real", "… and still reads the caption's other values (↑)"),
    ("r_precision", "r_precision_real", "caption ranked first of 100 by the judge's attributes (↑)"),
]


def fmt(v) -> str:
    return "—" if v is None else ("%.3f" % v if abs(v) < 10 else "%.1f" % v)


def section(report_path: str) -> str:
    if report_path.endswith(".md"):
        body = open(report_path, encoding="utf-8").read().strip()
        return "## Degradation ladder (`studio eval --ladder`)\n\n" + body + "\n"
    r = json.load(open(report_path, encoding="utf-8"))
    lines = ["## Evaluation (`studio eval --model %s --json`), judged by %s" % (r["model"], r["judge"]), "",
             "%d generated images for seen-class requests from real test images (half A), %d real "
             "reference images (half B), %d held-out captions, %d edits; seed %d; %s." % (
                 r["images"], r["reference_images"], r.get("heldout_images", 0), r.get("edits", 0),
                 r["seed"], r["fd_space"]), "",
             "| key | generated | real reference | what |", "| --- | ---: | ---: | --- |"]
    for key, ref, what in ROWS:
        lines.append("| `%s` | %s | %s | %s |" % (key, fmt(r.get(key)), fmt(r.get(ref)), what))
    reasons = r.get("null_reasons") or {}
    if reasons:
        lines += [""] + ["- `%s`: %s" % (k, v) for k, v in sorted(reasons.items()) if not k.endswith("_real")]
    return "\n".join(lines) + "\n"


def main(card: str, report: str) -> None:
    text = open(card, encoding="utf-8").read()
    block = "%s\n%s%s" % (BEGIN, section(report), END)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    open(card, "w", encoding="utf-8").write(text)


if __name__ == "__main__":
    main(*sys.argv[1:3])
