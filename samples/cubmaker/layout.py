"""Writes the CUB-200-2011 index files, Reed et al.'s caption and class-split files, and dataset.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .attributes import GROUPS, attribute_ids, attribute_names
from .render import BBox
from .species import ClassSpec

CERTAINTIES = ("not visible", "guessing", "probably", "definitely")
CERTAIN = 4  # every label is known exactly


@dataclass(frozen=True)
class ImageRecord:
    image_id: int  # 1-based, class-major order
    cls: ClassSpec
    index: int  # 0-based index within the class
    train: bool

    @property
    def stem(self) -> str:
        """File name without extension, CUB style: <Class_Name>_<XXXX>_<image id>."""
        return f"{self.cls.name}_{self.index + 1:04d}_{self.image_id}"

    @property
    def relpath(self) -> str:
        """Path relative to images/ (as listed in images.txt)."""
        return f"{self.cls.dirname}/{self.stem}.png"


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def write_index(out: Path, classes: Sequence[ClassSpec], records: Sequence[ImageRecord],
                boxes: dict[int, BBox]) -> None:
    """images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, bounding_boxes.txt."""
    write_lines(out / "classes.txt", (f"{c.class_id} {c.dirname}" for c in classes))
    write_lines(out / "images.txt", (f"{r.image_id} {r.relpath}" for r in records))
    write_lines(out / "image_class_labels.txt", (f"{r.image_id} {r.cls.class_id}" for r in records))
    write_lines(out / "train_test_split.txt", (f"{r.image_id} {int(r.train)}" for r in records))
    write_lines(out / "bounding_boxes.txt", (
        f"{r.image_id} {b.x:.1f} {b.y:.1f} {b.w:.1f} {b.h:.1f}"
        for r in records for b in [boxes[r.image_id]]))


def write_attributes(out: Path, classes: Sequence[ClassSpec], records: Sequence[ImageRecord]) -> None:
    """attributes.txt and attributes/{certainties, image_attribute_labels,
    class_attribute_labels_continuous}.txt. Image labels are the class's attributes."""
    ids = attribute_ids()
    names = attribute_names()
    write_lines(out / "attributes.txt", (f"{i + 1} {n}" for i, n in enumerate(names)))
    write_lines(out / "attributes" / "certainties.txt",
                (f"{i + 1} {c}" for i, c in enumerate(CERTAINTIES)))

    def present(cls: ClassSpec) -> set[int]:
        return {ids[(g, cls.attributes[g])] for g in GROUPS}

    def image_rows() -> Iterable[str]:
        for r in records:
            on = present(r.cls)
            for a in range(1, len(names) + 1):
                yield f"{r.image_id} {a} {int(a in on)} {CERTAIN} 0"

    write_lines(out / "attributes" / "image_attribute_labels.txt", image_rows())

    counts = {c.class_id: [0] * len(names) for c in classes}
    totals = {c.class_id: 0 for c in classes}
    for r in records:
        totals[r.cls.class_id] += 1
        for a in present(r.cls):
            counts[r.cls.class_id][a - 1] += 1
    write_lines(out / "attributes" / "class_attribute_labels_continuous.txt", (
        " ".join(f"{100.0 * n / max(1, totals[c.class_id]):.6f}" for n in counts[c.class_id])
        for c in classes))


def write_class_splits(out: Path, classes: Sequence[ClassSpec]) -> None:
    """Reed et al.: allclasses.txt, trainvalclasses.txt (seen), testclasses.txt (held out)."""
    write_lines(out / "allclasses.txt", (c.dirname for c in classes))
    write_lines(out / "trainvalclasses.txt", (c.dirname for c in classes if not c.heldout))
    write_lines(out / "testclasses.txt", (c.dirname for c in classes if c.heldout))


def write_captions(out: Path, record: ImageRecord, lines: Sequence[str]) -> None:
    """text/<NNN.Class_Name>/<image stem>.txt, one caption per line."""
    write_lines(out / "text" / record.cls.dirname / f"{record.stem}.txt", lines)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=True)
    (out / "dataset.json").write_text(text + "\n", encoding="utf-8")
