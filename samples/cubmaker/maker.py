"""Builds a data set: classes, images (optionally in worker processes), captions and index files.

Every random choice comes from a generator seeded by (seed, stream, ids), so output bytes depend only on
the arguments, never on generation order or the number of workers.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import layout
from .attributes import GROUPS
from .captions import MAX_WORDS, captions, distinguishing
from .lexicon import LEXICON
from .render import BBox, render
from .species import ClassSpec, design_classes

VERSION = "2.0.0"
STREAM_IMAGES = 2
STREAM_SPLIT = 4
TEST_FRACTION = 0.3  # of each seen class's images
PNG_OPTIONS = {"format": "PNG", "optimize": False, "compress_level": 3}

# What a maker output holds; --overwrite removes only these.
OUTPUTS = ("images", "text", "attributes", "attributes.txt", "classes.txt", "images.txt",
           "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt",
           "allclasses.txt", "trainvalclasses.txt", "testclasses.txt", "dataset.json")


@dataclass(frozen=True)
class Config:
    out: Path
    seed: int = 0
    classes: int = 200
    per_class: int = 60
    size: int = 128
    heldout_frac: float = 0.25
    captions: int = 10
    workers: int = 1
    overwrite: bool = False

    def generation_args(self) -> dict[str, Any]:
        """The arguments that determine the output (not where it goes or how fast)."""
        args = asdict(self)
        for k in ("out", "workers", "overwrite"):
            del args[k]
        return args

    def validate(self) -> None:
        if self.classes < 2 or self.per_class < 1 or self.captions < 1:
            raise ValueError("need classes >= 2, per-class >= 1, captions >= 1")
        if self.size < 16:
            raise ValueError("size must be at least 16")
        if not 0.0 <= self.heldout_frac < 1.0:
            raise ValueError("heldout-frac must be in [0, 1)")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")


@dataclass(frozen=True)
class Summary:
    classes: int
    heldout: int
    images: int
    train: int


@dataclass(frozen=True)
class _Job:
    seed: int
    class_index: int
    index: int
    image_id: int
    attributes: dict[str, str]
    size: int
    path: str


def _render_job(job: _Job) -> tuple[int, BBox]:
    ss = np.random.SeedSequence([job.seed, STREAM_IMAGES, job.class_index, job.index])
    img, box = render(job.attributes, job.size, np.random.default_rng(ss))
    img.save(job.path, **PNG_OPTIONS)
    return job.image_id, box


def _test_indices(seed: int, class_index: int, per_class: int) -> set[int]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SPLIT, class_index]))
    n_test = max(1, round(per_class * TEST_FRACTION)) if per_class > 1 else 0
    return {int(i) for i in rng.permutation(per_class)[:n_test]}


def plan(cfg: Config, classes: list[ClassSpec]) -> list[layout.ImageRecord]:
    records = []
    for c in classes:
        test = _test_indices(cfg.seed, c.index, cfg.per_class)
        for k in range(cfg.per_class):
            train = not c.heldout and k not in test
            records.append(layout.ImageRecord(len(records) + 1, c, k, train))
    return records


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty (use --overwrite to replace a maker output)")
        if not (out / "dataset.json").is_file():
            raise FileExistsError(f"{out} has no dataset.json; not overwriting what the maker did not write")
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def build(cfg: Config) -> Summary:
    cfg.validate()
    out = Path(cfg.out)
    _prepare(out, cfg.overwrite)
    classes = design_classes(cfg.seed, cfg.classes, cfg.heldout_frac)
    records = plan(cfg, classes)

    for c in classes:
        (out / "images" / c.dirname).mkdir(parents=True, exist_ok=True)
    jobs = [_Job(cfg.seed, r.cls.index, r.index, r.image_id, dict(r.cls.attributes), cfg.size,
                 str(out / "images" / r.relpath)) for r in records]
    boxes = dict(_run(jobs, cfg.workers))

    need = distinguishing([c.attributes for c in classes])
    for r in records:
        lines = captions(r.cls.attributes, need[r.cls.index], cfg.seed, r.cls.index, r.index,
                         cfg.captions)
        layout.write_captions(out, r, lines)

    layout.write_index(out, classes, records, boxes)
    layout.write_attributes(out, classes, records)
    layout.write_class_splits(out, classes)
    layout.write_manifest(out, manifest(cfg, classes))
    return Summary(len(classes), sum(c.heldout for c in classes), len(records),
                   sum(r.train for r in records))


def _run(jobs: list[_Job], workers: int) -> Iterable[tuple[int, BBox]]:
    if workers == 1:
        return [_render_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_render_job, jobs, chunksize=32))


def manifest(cfg: Config, classes: list[ClassSpec]) -> dict[str, Any]:
    return {
        "maker": "samples.cubmaker",
        "version": VERSION,
        "seed": cfg.seed,
        "args": cfg.generation_args(),
        "image_size": cfg.size,
        "image_format": "png",
        "caption_max_words": MAX_WORDS,
        "test_fraction_seen": TEST_FRACTION,
        "split": {
            "train_test_split.txt": "1 = train, 0 = test; seen classes ~70/30 per class; "
                                    "every image of a held-out class is 0",
            "testclasses.txt": "held-out (unseen) classes; each of their attribute values occurs in "
                               "some seen class",
        },
        "groups": {g: list(v) for g, v in GROUPS.items()},
        "lexicon": LEXICON,
        "classes": [
            {"id": c.class_id, "dir": c.dirname, "name": c.name, "family": c.family,
             "heldout": c.heldout, "attributes": dict(c.attributes)}
            for c in classes
        ],
    }
