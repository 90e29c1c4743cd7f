"""One example image per class for the studio's class picker.

    /usr/bin/python3 -m samples.classexamples --data data/birds --out samples/examples/birds

Reads a data set in the CUB-200-2011 layout (`make data` writes the sample one to data/birds) and
writes, for every class of classes.txt (held-out ones included), one real image of it:

- the class's first training image (lowest image id with train_test_split 1); a held-out class has
  none (all its images are in the test split), so its first image;
- cropped and resized exactly as the training code reads images (training/fgtrain/data.py
  `load_image`: a square of 1.5x the bounding box's longer side around its centre, BICUBIC to
  --size), so the picker shows a class as the models saw it;
- saved as <class directory name>.png (e.g. 001.White_crowned_Red_breasted_Orange_billed_Spoonbill.png),
  the name `studio serve` looks up from each model's classes.json.

It also writes SOURCES.tsv: class id, class directory name, held out (0/1), split of the image used
(train/test) and its path under images/. The same data set gives the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image


def _pairs(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                out[int(parts[0])] = parts[1] if len(parts) == 2 else " ".join(parts[1:])
    return out


def read_index(data: Path) -> dict:
    classes = _pairs(data / "classes.txt")
    images = _pairs(data / "images.txt")
    labels = {k: int(v) for k, v in _pairs(data / "image_class_labels.txt").items()}
    split = {k: int(v) for k, v in _pairs(data / "train_test_split.txt").items()}
    boxes: dict[int, tuple[float, float, float, float]] = {}
    box_file = data / "bounding_boxes.txt"
    if box_file.exists():
        with open(box_file, encoding="utf-8") as f:
            for line in f:
                p = line.split()
                if len(p) == 5:
                    boxes[int(p[0])] = tuple(float(x) for x in p[1:])  # type: ignore[assignment]
    heldout: set[str] = set()
    test_classes = data / "testclasses.txt"
    if test_classes.exists():
        heldout = {line.strip() for line in open(test_classes, encoding="utf-8") if line.strip()}
    return {"classes": classes, "images": images, "labels": labels, "split": split, "boxes": boxes,
            "heldout": heldout}


def pick(index: dict) -> list[tuple[int, str, bool, int, bool]]:
    """(class id, class dir, held out, image id, train) per class, by class id."""
    by_class: dict[int, list[int]] = {}
    for img in sorted(index["images"]):
        by_class.setdefault(index["labels"][img], []).append(img)
    out = []
    for cid in sorted(index["classes"]):
        name = index["classes"][cid]
        imgs = by_class.get(cid, [])
        if not imgs:
            raise SystemExit(f"class {cid} ({name}) has no image")
        train = [i for i in imgs if index["split"].get(i) == 1]
        img = train[0] if train else imgs[0]
        out.append((cid, name, name in index["heldout"], img, bool(train)))
    return out


def load_image(path: Path, bbox, size: int) -> Image.Image:
    """The crop and resize of training/fgtrain/data.py load_image."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if bbox is not None:
            w, h = im.size
            x, y, bw, bh = bbox
            r = int(max(bw, bh) * 0.75)
            cx, cy = int(x + bw / 2), int(y + bh / 2)
            x1, x2 = max(0, cx - r), min(w, cx + r)
            y1, y2 = max(0, cy - r), min(h, cy + r)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                im = im.crop((x1, y1, x2, y2))
        return im.resize((size, size), Image.BICUBIC)


def make(data: Path, out: Path, size: int = 64) -> list[str]:
    index = read_index(data)
    out.mkdir(parents=True, exist_ok=True)
    rows = ["class_id\tclass\theldout\tsplit\timage"]
    written = []
    for cid, name, held, img, train in pick(index):
        if os.sep in name or name.startswith("."):
            raise SystemExit(f"class {cid}: unusable directory name {name!r}")
        rel = index["images"][img]
        pic = load_image(data / "images" / rel, index["boxes"].get(img), size)
        dst = out / f"{name}.png"
        pic.save(dst, format="PNG", optimize=False)
        written.append(dst.name)
        rows.append(f"{cid}\t{name}\t{int(held)}\t{'train' if train else 'test'}\timages/{rel}")
    (out / "SOURCES.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return written


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python3 -m samples.classexamples",
                                description="One real image per class (the studio's class picker).")
    p.add_argument("--data", type=Path, required=True, help="data set in the CUB-200-2011 layout")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (the models' 64)")
    a = p.parse_args(argv)
    if not (a.data / "images.txt").exists():
        print(f"{a.data}: no images.txt (make data writes data/birds)", file=sys.stderr)
        return 2
    written = make(a.data, a.out, a.size)
    print(f"{len(written)} class examples in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
