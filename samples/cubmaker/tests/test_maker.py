"""End-to-end checks of the data set maker on a small set (12 classes × 6 images, 64 px)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from samples.cubmaker.__main__ import main
from samples.cubmaker.attributes import (BILL_COLOURS, GROUPS, PALETTE, attribute_names,
                                         contrast_colour, differing_groups, species_vector)
from samples.cubmaker.captions import MAX_WORDS, captions, distinguishing, word_count
from samples.cubmaker.maker import Config, build
from samples.cubmaker.species import design_classes

SMALL = dict(classes=12, per_class=6, size=64)


def tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under root."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a")
    build(Config(out=out, seed=0, **SMALL))
    return out


def test_same_seed_gives_identical_files(first: Path, tmp_path: Path) -> None:
    # Through the CLI, with two worker processes: neither changes a byte.
    assert main(["--out", str(tmp_path), "--seed", "0", "--classes", "12", "--per-class", "6",
                 "--size", "64", "--workers", "2"]) == 0
    a, b = tree(first), tree(tmp_path)
    assert len(a) > 72 * 2
    assert a == b


def test_different_seed_gives_different_data(first: Path, tmp_path: Path) -> None:
    build(Config(out=tmp_path, seed=1, **SMALL))
    a, b = tree(first), tree(tmp_path)
    pngs = [k for k in a if k.endswith(".png")]
    assert a["classes.txt"] != b["classes.txt"]
    assert sum(a[k] == b.get(k) for k in pngs) == 0


def test_refuses_non_empty_output(first: Path) -> None:
    with pytest.raises(FileExistsError):
        build(Config(out=first, seed=0, **SMALL))


def test_index_files_are_consistent(first: Path) -> None:
    classes = rows(first / "classes.txt")
    assert [int(r[0]) for r in classes] == list(range(1, 13))
    class_dirs = {int(r[0]): r[1] for r in classes}
    images = rows(first / "images.txt")
    assert [int(r[0]) for r in images] == list(range(1, 73))
    paths = [r[1] for r in images]
    assert len(set(paths)) == len(paths)
    on_disk = sorted(str(p.relative_to(first / "images")) for p in (first / "images").rglob("*.png"))
    assert sorted(paths) == on_disk

    labels = {int(r[0]): int(r[1]) for r in rows(first / "image_class_labels.txt")}
    assert sorted(labels) == list(range(1, 73))
    for img_id, path in zip(range(1, 73), paths):
        assert path.split("/")[0] == class_dirs[labels[img_id]]
    assert Counter(labels.values()) == {c: 6 for c in range(1, 13)}

    split = {int(r[0]): int(r[1]) for r in rows(first / "train_test_split.txt")}
    assert sorted(split) == list(range(1, 73)) and set(split.values()) == {0, 1}

    for r in rows(first / "bounding_boxes.txt"):
        img_id, (x, y, w, h) = int(r[0]), map(float, r[1:])
        with Image.open(first / "images" / paths[img_id - 1]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
        assert 0 <= x and 0 <= y and w > 4 and h > 4 and x + w <= 64 and y + h <= 64

    for path in paths:
        text = first / "text" / (path[: -len(".png")] + ".txt")
        lines = text.read_text().splitlines()
        assert len(lines) == 10
        assert all(line and line == line.lower() and word_count(line) <= MAX_WORDS for line in lines)


def test_attribute_files_are_consistent(first: Path) -> None:
    attrs = rows(first / "attributes.txt")
    assert [int(r[0]) for r in attrs] == list(range(1, len(attribute_names()) + 1))
    names = {int(r[0]): r[1] for r in attrs}
    labels = rows(first / "attributes" / "image_attribute_labels.txt")
    assert len(labels) == 72 * len(names)
    per_image: dict[int, list[str]] = {}
    for img_id, attr_id, present, certainty, _ in labels:
        assert int(attr_id) in names and present in ("0", "1") and certainty == "4"
        if present == "1":
            per_image.setdefault(int(img_id), []).append(names[int(attr_id)])
    # Exactly one value per group on each image, and it agrees with dataset.json.
    meta = json.loads((first / "dataset.json").read_text())
    labels_of = {int(r[0]): int(r[1]) for r in rows(first / "image_class_labels.txt")}
    for img_id, present in per_image.items():
        groups = dict(n.split("::") for n in present)
        assert len(groups) == len(present) == len(GROUPS)
        assert groups == meta["classes"][labels_of[img_id] - 1]["attributes"]
    cont = rows(first / "attributes" / "class_attribute_labels_continuous.txt")
    assert len(cont) == 12 and all(len(r) == len(names) for r in cont)
    assert all(0.0 <= float(v) <= 100.0 for r in cont for v in r)


def test_heldout_classes_are_never_train(first: Path) -> None:
    test_classes = (first / "testclasses.txt").read_text().split()
    seen = (first / "trainvalclasses.txt").read_text().split()
    assert test_classes and not set(test_classes) & set(seen)
    assert sorted(test_classes + seen) == sorted((first / "allclasses.txt").read_text().split())
    dirs = {int(r[0]): r[1] for r in rows(first / "classes.txt")}
    labels = {int(r[0]): int(r[1]) for r in rows(first / "image_class_labels.txt")}
    for img_id, flag in rows(first / "train_test_split.txt"):
        if dirs[labels[int(img_id)]] in test_classes:
            assert flag == "0"
    meta = json.loads((first / "dataset.json").read_text())
    assert {c["dir"] for c in meta["classes"] if c["heldout"]} == set(test_classes)


@pytest.mark.parametrize("n", [12, 60])
def test_classes_are_fine_grained_and_describable(n: int) -> None:
    classes = design_classes(seed=0, n_classes=n, heldout_frac=0.2)
    vectors = [species_vector(c.attributes) for c in classes]
    assert len(set(vectors)) == n
    assert len({c.name for c in classes}) == n
    with_sibling = sum(
        any(len(differing_groups(a.attributes, b.attributes)) == 1 for b in classes if b is not a)
        for a in classes)
    assert with_sibling >= n / 3
    held = [c for c in classes if c.heldout]
    assert len(held) == round(0.2 * n)
    seen_values = {(g, c.attributes[g]) for c in classes if not c.heldout for g in GROUPS}
    for c in held:
        assert all((g, c.attributes[g]) in seen_values for g in GROUPS), c.name


def test_captions_name_what_tells_a_class_from_its_siblings() -> None:
    """For classes one colour apart, most captions of A say A's colour (a word B's captions can't use)."""
    classes = design_classes(seed=0, n_classes=60, heldout_frac=0.2)
    need = distinguishing([c.attributes for c in classes])
    colours = set(PALETTE) | set(BILL_COLOURS)
    checked = 0
    for a in classes:
        for b in classes:
            diff = differing_groups(a.attributes, b.attributes)
            if len(diff) != 1 or not diff[0].endswith("_color"):
                continue
            word = a.attributes[diff[0]]
            b_words = {b.attributes[g] for g in GROUPS if g.endswith("_color")}
            b_words |= {contrast_colour(b.attributes[g]) for g in ("has_breast_color", "has_wing_color")}
            if word in b_words or word not in colours:
                continue
            lines = [line for k in range(4)
                     for line in captions(a.attributes, need[a.index], 0, a.index, k, 10)]
            said = sum(word in line.split() for line in lines)
            assert said >= 0.7 * len(lines), (a.name, b.name, word)
            checked += 1
    assert checked >= 5


def test_default_world_has_cubs_scale_and_split() -> None:
    """200 classes, 150 seen / 50 held out; every held-out class has a seen sibling one or two
    attributes apart, so telling it apart is a fine-grained task."""
    from samples.cubmaker.maker import Config
    cfg = Config(out=Path("unused"))
    assert (cfg.classes, cfg.per_class, cfg.size) == (200, 60, 128)
    classes = design_classes(seed=0, n_classes=cfg.classes, heldout_frac=cfg.heldout_frac)
    held = [c for c in classes if c.heldout]
    seen = [c for c in classes if not c.heldout]
    assert (len(seen), len(held)) == (150, 50)
    for c in held:
        assert min(len(differing_groups(c.attributes, s.attributes)) for s in seen) <= 2, c.name


def test_captions_vary_in_words_and_form() -> None:
    classes = design_classes(seed=0, n_classes=40, heldout_frac=0.25)
    need = distinguishing([c.attributes for c in classes])
    lines = [line for c in classes for line in captions(c.attributes, need[c.index], 0, c.index, 0, 10)]
    words = {w for line in lines for w in line.replace(",", " ").replace(".", " ").split()}
    for a, b in (("crown", "head"), ("bill", "beak"), ("breast", "chest")):
        assert a in words and b in words, (a, b)
    starts = {" ".join(line.split()[:2]) for line in lines}
    assert len(starts) >= 8  # different sentence forms, not one template
    few = sum(len([w for w in line.split() if w in PALETTE]) <= 1 for line in lines)
    assert few >= len(lines) * 0.05  # some captions name few attributes


def test_images_vary_in_scale_and_scene(first: Path) -> None:
    """Bird boxes span from a small part of the frame to most of it."""
    boxes = [tuple(float(v) for v in r[1:]) for r in rows(first / "bounding_boxes.txt")]
    meta = json.loads((first / "dataset.json").read_text())
    size = meta["image_size"]
    fill = sorted(w * h / size ** 2 for _, _, w, h in boxes)
    assert fill[0] < 0.15 and fill[-1] > 0.3, (fill[0], fill[-1])
