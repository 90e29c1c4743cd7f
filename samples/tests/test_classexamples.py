"""samples.classexamples on a small data set: one image per class, held-out classes too."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from samples.classexamples import main
from samples.cubmaker.maker import Config, build


def digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_one_real_image_per_class(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build(Config(out=data, seed=0, classes=10, per_class=4, size=64))
    classes = [line.split()[1] for line in (data / "classes.txt").read_text().splitlines()]
    heldout = set((data / "testclasses.txt").read_text().split())
    assert heldout, "the small set must hold classes out"

    out = tmp_path / "examples"
    assert main(["--data", str(data), "--out", str(out)]) == 0
    for name in classes:
        with Image.open(out / f"{name}.png") as im:
            assert im.size == (64, 64) and im.mode == "RGB"
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{c}.png" for c in classes)

    rows = [r.split("\t") for r in (out / "SOURCES.tsv").read_text().splitlines()[1:]]
    assert [r[1] for r in rows] == classes
    split = dict(line.split() for line in (data / "train_test_split.txt").read_text().splitlines())
    ids = {line.split()[1]: line.split()[0] for line in (data / "images.txt").read_text().splitlines()}
    for cid, name, held, used, image in rows:
        assert (held == "1") == (name in heldout)
        # Seen classes show a training image; held-out ones have none.
        assert used == ("test" if name in heldout else "train")
        assert split[ids[image.removeprefix("images/")]] == ("0" if used == "test" else "1")
        assert image.startswith(f"images/{name}/")

    again = tmp_path / "again"
    assert main(["--data", str(data), "--out", str(again)]) == 0
    assert digest(out) == digest(again)


def test_missing_data_set(tmp_path: Path) -> None:
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
