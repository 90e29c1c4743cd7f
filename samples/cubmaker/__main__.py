"""CLI: /usr/bin/python3 -m samples.cubmaker --out DIR [--seed 0] [--classes 60] ..."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .maker import Config, build


def parse(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(
        prog="python3 -m samples.cubmaker",
        description="Deterministic fine-grained bird data set in the CUB-200-2011 layout, "
                    "with Reed et al. captions.")
    p.add_argument("--out", type=Path, required=True, help="output directory (empty or new)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--per-class", type=int, default=60, help="images per class")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--heldout-frac", type=float, default=0.25, help="share of unseen classes")
    p.add_argument("--captions", type=int, default=10, help="captions per image")
    p.add_argument("--workers", type=int, default=1, help="render processes (output is identical)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier maker output in --out")
    a = p.parse_args(argv)
    return Config(out=a.out, seed=a.seed, classes=a.classes, per_class=a.per_class, size=a.size,
                  heldout_frac=a.heldout_frac, captions=a.captions, workers=a.workers,
                  overwrite=a.overwrite)


def main(argv: list[str]) -> int:
    cfg = parse(argv)
    start = time.monotonic()
    try:
        s = build(cfg)
    except (ValueError, FileExistsError) as e:
        print(f"cubmaker: {e}", file=sys.stderr)
        return 2
    print(f"cubmaker: wrote {s.images} images of {s.classes} classes ({s.heldout} held out, "
          f"{s.train} train images) to {cfg.out} in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
