"""Training and export of the fine-grained image generation studio's graphs (see training/SPEC.md).

Small helpers shared by the training loops: thread count, seeding, a wall-clock budget and a logger.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time

__version__ = "0.1.0"


def setup(threads: int = 2, seed: int = 0) -> None:
    """torch.set_num_threads(threads) and seed python, numpy and torch."""
    import numpy as np
    import torch

    torch.set_num_threads(max(1, int(threads)))
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_checkpoint(path: str) -> dict:
    """torch.load onto the CPU. Checkpoints hold configs, vocabularies and metrics beside tensors,
    so newer torch versions (weights_only=True by default) are told to unpickle them in full; they
    are files this code wrote itself."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


class Budget:
    """Wall-clock training budget. `seconds_before` is time already spent (from a checkpoint), so a
    resumed run continues the same schedule. frac() in [0,1] drives learning-rate schedules; with
    max_steps the schedule follows steps instead (deterministic, used by --quick)."""

    def __init__(self, minutes: float, seconds_before: float = 0.0, max_steps: int | None = None,
                 steps_before: int = 0):
        self.total = max(1e-6, float(minutes) * 60.0)
        self.before = float(seconds_before)
        self.start = time.monotonic()
        self.max_steps = max_steps
        self.step = steps_before

    def elapsed(self) -> float:
        return self.before + time.monotonic() - self.start

    def frac(self) -> float:
        if self.max_steps:
            return min(1.0, self.step / self.max_steps)
        return min(1.0, self.elapsed() / self.total)

    def done(self) -> bool:
        if self.max_steps is not None and self.step >= self.max_steps:
            return True
        return self.elapsed() >= self.total


def cosine_lr(base: float, frac: float, warmup: float = 0.03, floor: float = 0.02) -> float:
    """Linear warm-up over the first `warmup` of the run, then cosine decay to floor*base."""
    if frac < warmup:
        return base * max(0.05, frac / warmup)
    p = (frac - warmup) / max(1e-9, 1 - warmup)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


class Logger:
    """Prints one line per record and appends it as JSON to <out>/<name>.log.jsonl."""

    def __init__(self, out_dir: str, name: str):
        os.makedirs(out_dir, exist_ok=True)
        self.path = os.path.join(out_dir, name + ".log.jsonl")
        self.name = name

    def __call__(self, **rec) -> None:
        rec = {"t": round(time.time(), 1), **rec}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        parts = []
        for k, v in rec.items():
            if k == "t":
                continue
            parts.append("%s=%s" % (k, ("%.4g" % v) if isinstance(v, float) else v))
        print("[%s] %s" % (self.name, " ".join(parts)), file=sys.stderr, flush=True)
