"""Tiny data sets in the exact layout of a CUB-200-2011 download, for the reader contract tests.

    /usr/bin/python3 internal/cub/testdata/cubfixture.py --out DIR --case NAME

Both readers (Go: internal/cub, Python: training/fgtrain/data.py) open what this writes and compare
what they read with internal/cub/testdata/contract.json, the shared test vectors. Cases:

  nested    the official archive: DIR/CUB_200_2011/{images.txt, ..., images/, attributes/},
            DIR/attributes.txt beside it (as the tarball has it), Reed et al.'s captions in
            DIR/text_c10/ and their class split (trainvalclasses.txt, testclasses.txt) in DIR
  flat      everything directly under DIR, captions in text/, only testclasses.txt
  partial   nested, without captions, with 4 listed images missing (a partial download) and only
            trainvalclasses.txt
  nosplit   flat, no class split, no bounding boxes, no attributes, no captions

Images: 4 classes x 3 JPEGs (one grayscale, one CMYK, one PNG among them), official names and id
numbering, bounding boxes as "x y w h" floats. Only Pillow and the standard library are used.
"""

from __future__ import annotations

import argparse
import os
import shutil

from PIL import Image, ImageDraw

CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross",
           "004.Groove_billed_Ani"]
# Background halves and bird colour per class (RGB).
COLOURS = [((200, 40, 40), (40, 40, 200), (250, 250, 250)),
           ((40, 160, 40), (230, 230, 60), (20, 20, 20)),
           ((120, 60, 20), (60, 200, 200), (240, 140, 20)),
           ((90, 90, 90), (200, 120, 200), (30, 90, 250))]
SIZES = [(96, 72), (72, 96), (80, 80)]  # width, height by image index within the class
ATTRIBUTES = ["has_bill_shape::cone", "has_bill_shape::hooked_seabird", "has_wing_color::blue",
              "has_wing_color::white", "has_wing_color::black", "has_breast_pattern::solid",
              "has_breast_pattern::striped", "has_size::small_(5_-_9_in)",
              "has_size::very_large_(32_-_72_in)", "has_tail_shape::notched_tail",
              "has_bill_length::shorter_than_head", "has_primary_color::grey"]
CERTAINTIES = ["not visible", "guessing", "probably", "definitely"]
CASES = ("nested", "flat", "partial", "nosplit")


def image_id(c: int, k: int) -> int:
    return 3 * c + k + 1


def rel_path(c: int, k: int) -> str:
    name = CLASSES[c].split(".", 1)[1]
    # the official names capitalise every word: Black_Footed_Albatross_0046_18.jpg
    stem = "%s_%04d_%d" % ("_".join(w.capitalize() for w in name.split("_")), k + 1, 1000 + image_id(c, k))
    ext = ".png" if image_id(c, k) == 7 else ".jpg"
    return "%s/%s%s" % (CLASSES[c], stem, ext)


def box(c: int, k: int):
    """x, y, w, h of the bird (image 9 touches the top-left corner, so its crop is clipped)."""
    w, h = SIZES[k]
    i = image_id(c, k)
    if i == 9:
        return 0.0, 0.0, 30.0, 24.0
    return 20.0 + 3 * c, 14.0 + 2 * k, w / 2.0 - 4 * k, h / 2.5 + c


def draw(c: int, k: int) -> Image.Image:
    w, h = SIZES[k]
    left, right, bird = COLOURS[c]
    im = Image.new("RGB", (w, h), left)
    d = ImageDraw.Draw(im)
    d.rectangle((w // 2, 0, w - 1, h - 1), fill=right)
    x, y, bw, bh = box(c, k)
    d.rectangle((int(x), int(y), int(x + bw) - 1, int(y + bh) - 1), fill=bird)
    return im


def save_image(path: str, c: int, k: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = draw(c, k)
    i = image_id(c, k)
    if i == 2:
        im.convert("L").save(path, quality=95)  # grayscale JPEG
    elif i == 5:
        im.convert("CMYK").save(path, quality=95)  # CMYK JPEG (Adobe, inverted)
    elif path.endswith(".png"):
        im.save(path)
    else:
        im.save(path, quality=95)


def captions(c: int, k: int) -> list[str]:
    label = CLASSES[c].split(".", 1)[1].replace("_", " ").lower()
    return ["this bird number %d of the %s has caption %d" % (k + 1, label, j) for j in range(10)]


def attribute_rows():
    """image_attribute_labels.txt: <image> <attribute> <is_present> <certainty> <time>."""
    rows = []
    for c in range(4):
        for k in range(3):
            i = image_id(c, k)
            for a in range(1, len(ATTRIBUTES) + 1):
                present = int((a + c + k) % 3 == 0 or a == 3 + (c % 3))
                certainty = 2 if (a + i) % 5 == 0 else 3 + (a + i) % 2
                rows.append("%d %d %d %d %.3f" % (i, a, present, certainty, 1.5 + a))
    # the real file has a few lines with an extra column
    rows[5] = rows[5] + " 0"
    return rows


def write_lines(path: str, lines) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for ln in lines:
            f.write(ln + "\n")


def make(out: str, case: str) -> None:
    if case not in CASES:
        raise SystemExit("unknown case %r (cases: %s)" % (case, ", ".join(CASES)))
    if os.path.exists(out):
        shutil.rmtree(out)
    nested = case in ("nested", "partial")
    meta = os.path.join(out, "CUB_200_2011") if nested else out
    ids = [(c, k) for c in range(4) for k in range(3)]
    write_lines(os.path.join(meta, "classes.txt"), ("%d %s" % (c + 1, n) for c, n in enumerate(CLASSES)))
    write_lines(os.path.join(meta, "images.txt"), ("%d %s" % (image_id(c, k), rel_path(c, k)) for c, k in ids))
    write_lines(os.path.join(meta, "image_class_labels.txt"), ("%d %d" % (image_id(c, k), c + 1) for c, k in ids))
    write_lines(os.path.join(meta, "train_test_split.txt"),
                ("%d %d" % (image_id(c, k), int(k != 1)) for c, k in ids))
    if case != "nosplit":
        write_lines(os.path.join(meta, "bounding_boxes.txt"),
                    ("%d %.1f %.1f %.1f %.1f" % ((image_id(c, k),) + box(c, k)) for c, k in ids))
        # the tarball keeps attributes.txt beside CUB_200_2011/
        write_lines(os.path.join(out, "attributes.txt"), ("%d %s" % (a + 1, n) for a, n in enumerate(ATTRIBUTES)))
        write_lines(os.path.join(meta, "attributes", "certainties.txt"),
                    ("%d %s" % (i + 1, n) for i, n in enumerate(CERTAINTIES)))
        write_lines(os.path.join(meta, "attributes", "image_attribute_labels.txt"), attribute_rows())
        write_lines(os.path.join(meta, "parts", "parts.txt"), ["1 back", "2 beak"])
    write_lines(os.path.join(meta, "README"), ["CUB-200-2011 contract fixture"])
    for c, k in ids:
        save_image(os.path.join(meta, "images", rel_path(c, k)), c, k)
    if case in ("nested", "flat"):
        text = os.path.join(out, "text_c10" if case == "nested" else "text")
        for c, k in ids:
            lines = captions(c, k)
            if image_id(c, k) == 12:
                lines = ["  " + lines[0] + "  ", ""] + lines[1:3]  # blanks and spaces are trimmed
            write_lines(os.path.join(text, os.path.splitext(rel_path(c, k))[0] + ".txt"), lines)
    if case == "nested":
        write_lines(os.path.join(out, "trainvalclasses.txt"), CLASSES[:3])
        write_lines(os.path.join(out, "testclasses.txt"), CLASSES[3:])
        write_lines(os.path.join(out, "allclasses.txt"), CLASSES)
    elif case == "flat":
        write_lines(os.path.join(out, "testclasses.txt"), CLASSES[3:])
    elif case == "partial":
        write_lines(os.path.join(out, "trainvalclasses.txt"), CLASSES[:2])
        for c, k in [(1, 0), (1, 1), (1, 2), (3, 2)]:
            os.remove(os.path.join(meta, "images", rel_path(c, k)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--case", required=True, choices=CASES)
    a = p.parse_args(argv)
    make(a.out, a.case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
