"""Fixtures: a tiny data set made by the sample data set maker (session-scoped), a vocabulary,
and trained-for-a-few-steps checkpoints shared by the export tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TRAINING)
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

import torch  # noqa: E402

torch.set_num_threads(2)

TINY = dict(classes=12, per_class=6, size=64, seed=0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """/usr/bin/python3 -m samples.cubmaker --out TMP --classes 12 --per-class 6 --size 64."""
    out = tmp_path_factory.mktemp("cub") / "tiny"
    cmd = [sys.executable, "-m", "samples.cubmaker", "--out", str(out),
           "--classes", str(TINY["classes"]), "--per-class", str(TINY["per_class"]),
           "--size", str(TINY["size"]), "--seed", str(TINY["seed"])]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "cubmaker failed: %s\n%s" % (r.stdout, r.stderr)
    return str(out)


@pytest.fixture(scope="session")
def tiny_index(tiny_data):
    from fgtrain import data
    return data.load_index(tiny_data)


@pytest.fixture(scope="session")
def tiny_vocab(tiny_data, tiny_index):
    from fgtrain import data
    return data.build_vocab(tiny_data, index=tiny_index)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> str:
    """A run directory with classifier.pt and damsm.pt after a few --quick steps."""
    from fgtrain import classifier, damsm, setup
    out = str(tmp_path_factory.mktemp("run"))
    setup(2, 0)
    quiet = lambda **kw: None  # noqa: E731
    classifier.train(tiny_data, out, quick=True, batch=16, log=quiet, width=8)
    damsm.train(tiny_data, out, quick=True, batch=12, width=8,
                init_classifier=os.path.join(out, "classifier.pt"), log=quiet)
    return out


@pytest.fixture(scope="session")
def tiny_data128(tmp_path_factory) -> str:
    """The tiny data set at 128 px (for the v2 generators):
    /usr/bin/python3 -m samples.cubmaker --out TMP --classes 12 --per-class 6 --size 128."""
    out = tmp_path_factory.mktemp("cub128") / "tiny"
    cmd = [sys.executable, "-m", "samples.cubmaker", "--out", str(out), "--classes", str(TINY["classes"]),
           "--per-class", str(TINY["per_class"]), "--size", "128", "--seed", str(TINY["seed"])]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "cubmaker failed: %s\n%s" % (r.stdout, r.stderr)
    return str(out)


@pytest.fixture(scope="session")
def tiny_run128(tiny_data128, tmp_path_factory) -> str:
    """classifier.pt and damsm.pt (64-px networks, as in the real pipeline) on tiny_data128."""
    from fgtrain import classifier, damsm, setup
    out = str(tmp_path_factory.mktemp("run128"))
    setup(2, 0)
    quiet = lambda **kw: None  # noqa: E731
    classifier.train(tiny_data128, out, quick=True, batch=16, log=quiet, width=8)
    damsm.train(tiny_data128, out, quick=True, batch=12, width=8,
                init_classifier=os.path.join(out, "classifier.pt"), log=quiet)
    return out
